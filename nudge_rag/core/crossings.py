"""NUDGE-M's exact γ search: where score lines cross, then the best interval between crossings.

Under NUDGE-M every score is a line in γ (``q·ê + γ q·Ĝ`` for a moved record, a constant for
the rest), so a relevant record's rank changes only where its line crosses another, and any
rank metric is a step function of γ. :func:`crossing_events` finds the steps and
:func:`best_interval` picks the best one; together they maximise the metric over all γ ≥ 0.

Cost. A crossing changes the metric only when the relevant record's rank passes through the
metric's depth k. With many relevant records per question most crossings happen far below the
top k, so two things keep the work bounded:

- *line filter*: a line that is never among a question's top k (checked on a grid of γ with
  a bound that holds between grid points) cannot move any rank within the top k, so only the
  other lines are crossed with each other;
- *event budget*: past ``EVENT_BUDGET`` events only those that change the metric are kept.

What is dropped never changes the metric, but it may bound an interval: the chosen γ is the
midpoint of the best interval, so its right end is then found by :func:`next_crossing`, which
looks only at lines whose values are close to each pair's at the left end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .candidates import blocked_mask, kept_columns
from .metrics import RankScorer, parse_metric

# events held before only the ones that change the metric are kept (about 40 MB)
EVENT_BUDGET = 2_000_000
# (pair, line) entries per block of the scans (bounds memory: about 8 MB per array)
_ENTRY_BLOCK = 1_000_000
# the line filter pays where questions have several relevant records each
_FILTER_MIN_PAIRS_PER_QUESTION = 3.0
# γ grid of the line filter: tan of evenly spaced angles (ranking depends on the angle); finer
# grids prune no more on the problems measured (benchmarks/dense_labels.py)
_FILTER_GRID = np.tan(np.linspace(0.0, np.pi / 2, 9)[:-1])
# metric values closer than this count as ties (float sums of the same terms)
TIE = 1e-9
# crossings closer than this (relative to 1 + γ) are one: lines that meet at one γ give
# crossings a few bits apart, and the slivers between them hold the tie point's ranks
GAMMA_TIE = 1e-9


@dataclass
class LineSet:
    """The score lines of a validation problem under NUDGE-M. Moved records: intercept
    ``q_e`` (question·ê) and slope ``q_g`` (question·Ĝ), questions × moved. Unmoved
    competitors: one constant per pair and slot in ``rivals`` (``-inf`` where empty or where
    it is the pair's own record). Each relevant pair (sorted by question): its question, its
    record's moved column (−1 if it does not move) and its own line."""

    q_e: np.ndarray
    q_g: np.ndarray
    rivals: np.ndarray
    pair_query: np.ndarray
    own_col: np.ndarray
    own_intercept: np.ndarray
    own_slope: np.ndarray


@dataclass
class LineTable:
    """The moved lines that may enter each question's top k: ``cols`` (questions × widest,
    ``-1`` pads, ascending) and ``count`` per question."""

    keep: np.ndarray
    cols: np.ndarray
    count: np.ndarray


@dataclass
class Crossings:
    """Events of the γ sweep, sorted by γ: where they happen and how much each changes the
    mean metric. ``value0`` is the metric just after γ = 0. ``complete``: every crossing is
    listed, including those that change nothing (else only those that may change it)."""

    gamma: np.ndarray
    delta: np.ndarray
    value0: float
    complete: bool

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, values)``: the metric on ``[starts[i], starts[i+1])``, from γ = 0.
        Events within :data:`GAMMA_TIE` of each other form one step, starting at the last."""
        values = self.value0 + np.cumsum(self.delta)
        g = self.gamma
        last = np.r_[g[1:] - g[:-1] > GAMMA_TIE * (1.0 + g[1:]), True] if len(g) else []
        return np.r_[0.0, g[last]], np.r_[self.value0, values[last]]


# -- finding the events ----------------------------------------------------------------------
def crossing_events(lines: LineSet, scorer: RankScorer, metric: str,
                    filter_lines: bool | None = None,
                    event_budget: int | None = None) -> Crossings:
    """Every event that can change ``metric``, with the change it makes. ``filter_lines``:
    cross only the lines that may enter the top k (default: where questions have several
    relevant records each); past ``event_budget`` events (default ``EVENT_BUDGET``) only
    metric-changing ones stay."""
    name, k = parse_metric(metric)
    n_pairs = len(lines.pair_query)
    if filter_lines is None:
        filter_lines = n_pairs >= _FILTER_MIN_PAIRS_PER_QUESTION * len(lines.q_e)
    table = candidate_lines(lines, k) if filter_lines else None
    pairs = np.arange(n_pairs) if table is None else _pairs_on(table, lines)
    rank0 = np.full(n_pairs, np.inf)
    budget = EVENT_BUDGET if event_budget is None else event_budget
    store = _EventStore(k, budget, complete=table is None)
    # relevant records on the same line never cross: they keep ranks by row throughout
    tied = scorer.pairs.tied_before(lines.own_intercept, lines.own_slope)
    for block in _blocks(pairs, table, lines):
        d0, d1 = _differences(lines, block, table)
        rank0[block] = 1.0 + ((d0 > 0) | ((d0 == 0) & (d1 > 0))).sum(axis=1) + tied[block]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = -d0 / d1
        i, j = np.nonzero((d1 != 0) & (cross > 0) & np.isfinite(cross))
        gam, pair = cross[i, j], block[i]
        direction = np.sign(d1[i, j]).astype(np.int64)
        before, after = _ranks_around_events(gam, pair, direction, rank0)
        store.add(gam, pair, before, after, np.minimum(before, after) <= k)
    gam, pair, before, after = store.arrays()
    delta = _event_deltas(scorer, name, k, pair, gam, before, after, rank0)
    order = np.argsort(gam, kind="stable")
    return Crossings(gam[order], delta[order], scorer.mean(rank0, metric), store.complete)


class _EventStore:
    """Events gathered block by block; past the budget only those that may change a metric
    of depth ``k`` stay, and ``complete`` turns false."""

    def __init__(self, k: int, budget: int, complete: bool):
        self.k = k
        self.budget = budget
        self.complete = complete
        self.parts: list[tuple] = []
        self.size = 0

    def add(self, gam, pair, before, after, may_change):
        part = (gam, pair, before, after)
        self.parts.append(part if self.complete else tuple(a[may_change] for a in part))
        self.size += len(self.parts[-1][0])
        if self.complete and self.size > self.budget:
            self.parts = [self._changing(p) for p in self.parts]
            self.size = sum(len(p[0]) for p in self.parts)
            self.complete = False

    def _changing(self, part):
        keep = np.minimum(part[2], part[3]) <= self.k
        return tuple(a[keep] for a in part)

    def arrays(self):
        if not self.parts:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(4))


def _blocks(pairs: np.ndarray, table: LineTable | None, lines: LineSet):
    width = (lines.q_e.shape[1] if table is None else table.cols.shape[1]) \
        + lines.rivals.shape[1]
    step = max(1, _ENTRY_BLOCK // max(width, 1))
    for lo in range(0, len(pairs), step):
        yield pairs[lo:lo + step]


def _differences(lines: LineSet, block: np.ndarray, table: LineTable | None):
    """Per pair of ``block`` and per line of its question (moved records, then unmoved
    rivals): the line minus the pair's own, as ``d0 + γ d1``. Lines the filter left out are
    padded with ``d0 = -inf``, which never ranks above and never crosses."""
    qs = lines.pair_query[block]
    rivals = lines.rivals[block]
    if table is None:
        intercept, slope = lines.q_e[qs], lines.q_g[qs]
    else:
        cols = table.cols[qs, :max(int(table.count[qs].max()), 1)]
        present = cols >= 0
        at = (qs[:, None], np.maximum(cols, 0))
        intercept = np.where(present, lines.q_e[at], -np.inf)
        slope = np.where(present, lines.q_g[at], 0.0)
    d0 = np.concatenate([intercept, rivals], axis=1)
    d0 -= lines.own_intercept[block, None]
    d1 = np.concatenate([slope, np.zeros_like(rivals)], axis=1)
    d1 -= lines.own_slope[block, None]
    return d0, d1


# -- the line filter -------------------------------------------------------------------------
def candidate_lines(lines: LineSet, k: int) -> LineTable | None:
    """The moved lines that may be among a question's top k for some γ ≥ 0, or ``None`` when
    that prunes too little to pay. Between two grid points every line is linear, so the
    lowest of any k lines is lowest at an end: the top k at either end give a floor the k-th
    best score never drops below there, and a line whose higher end is under the floor
    stays out of the top k on that stretch. Past the last grid point scores are ranked by
    score/γ, which is linear in 1/γ and ends at the slope."""
    nv, m = lines.q_e.shape
    if m <= k:
        return None
    keep = blocked_mask(nv, m, _ENTRY_BLOCK,
                        lambda rows: _ever_in_top(lines.q_e[rows], lines.q_g[rows], k))
    cols = kept_columns(keep)
    return None if cols is None else LineTable(keep, cols, keep.sum(axis=1))


def _ever_in_top(intercept: np.ndarray, slope: np.ndarray, k: int) -> np.ndarray:
    keep = np.zeros(intercept.shape, dtype=bool)
    prev, top_prev = intercept, _top(intercept, k)
    for gamma in _FILTER_GRID[1:]:
        cur = intercept + gamma * slope
        top = _top(cur, k)
        _mark(keep, prev, cur, top_prev, top)
        prev, top_prev = cur, top
    _mark(keep, prev / _FILTER_GRID[-1], slope, top_prev, _top(slope, k))
    return keep


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(values, values.shape[1] - k, axis=1)[:, -k:]


def _mark(keep, start, end, top_start, top_end) -> None:
    """Mark lines that may be in the top k between ``start`` and ``end`` (their values at
    the two ends of a stretch; ``top_*`` the top k at each end)."""
    floor = np.maximum(_lowest(start, end, top_start), _lowest(start, end, top_end))
    floor -= 1e-9 * (1.0 + np.abs(floor))  # float rounding never drops a line
    keep |= np.maximum(start, end) >= floor[:, None]


def _lowest(start, end, top):
    return np.minimum(np.take_along_axis(start, top, axis=1),
                      np.take_along_axis(end, top, axis=1)).min(axis=1)


def _pairs_on(table: LineTable, lines: LineSet) -> np.ndarray:
    """Pairs whose own line may enter the top k (the others never count)."""
    moved = lines.own_col >= 0
    on = np.isfinite(lines.own_intercept)
    on[moved] = table.keep[lines.pair_query[moved], lines.own_col[moved]]
    return np.flatnonzero(on)


# -- what each event does to the metric ------------------------------------------------------
def _ranks_around_events(gam, pair, direction, rank0):
    """Rank of the event's pair just before and just after each event."""
    order = np.lexsort((gam, pair))
    after = np.empty(len(order))
    after[order] = rank0[pair[order]] + _cumsum_by_group(direction[order], pair[order])
    return after - direction, after


def _cumsum_by_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` that restarts wherever ``groups`` changes (both in order)."""
    if not len(values):
        return values
    total = np.cumsum(values)
    first = np.r_[True, groups[1:] != groups[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))
    return total - (total - values)[start]


def _event_deltas(scorer: RankScorer, name, k, pair, gam, before, after, rank0):
    """Change of the mean metric caused by each event."""
    p = scorer.pairs
    n_q = p.n_queries
    q_of = p.query[pair]
    if name == "ndcg":
        w = p.grade[pair] / scorer.idcg(k)[q_of] / n_q
        return w * (_discount(after, k) - _discount(before, k))
    if name == "recall":
        w = 1.0 / np.minimum(scorer.n_rel[q_of], k) / n_q
        return w * ((after <= k).astype(float) - (before <= k))
    if name == "hit":
        return _hit_deltas(q_of, gam, before, after, rank0, p, k) / n_q
    # mrr@k = Σ_{t≤k} (1/t − 1/(t+1)) hit@t + hit@k / (k+1)
    total = np.zeros(len(pair))
    for t in range(1, k + 1):
        w = 1.0 / t - 1.0 / (t + 1) + (1.0 / (k + 1) if t == k else 0.0)
        total += w * _hit_deltas(q_of, gam, before, after, rank0, p, t)
    return total / n_q


def _discount(rank, k):
    return np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)


def _hit_deltas(q_of, gam, before, after, rank0, pairs, k):
    """Change in hit@k (0/1 per question) caused by each event."""
    change = (after <= k).astype(np.int64) - (before <= k).astype(np.int64)
    count0 = np.bincount(pairs.query, (rank0 <= k).astype(float),
                         minlength=pairs.n_queries).astype(np.int64)
    order = np.lexsort((gam, q_of))
    c = change[order]
    count_after = count0[q_of[order]] + _cumsum_by_group(c, q_of[order])
    delta = np.empty(len(order))
    delta[order] = (count_after > 0).astype(float) - (count_after - c > 0)
    return delta


# -- choosing the interval -------------------------------------------------------------------
def next_crossing(lines: LineSet, after: float, bound: float = np.inf) -> float | None:
    """The first crossing of any relevant pair's line with any other line strictly after
    ``after`` and at most ``bound`` (``bound`` itself when nothing comes sooner; ``None``
    when there is no crossing after ``after`` at all). With a finite ``bound`` only lines
    near a pair's own at ``after`` can reach it in time (:func:`_first_nearby`); without
    one every line is scanned. One block of questions in memory at a time."""
    if not np.isfinite(bound):
        best = bound
        for block in _blocks(np.arange(len(lines.pair_query)), None, lines):
            best = min(best, _first_after(*_differences(lines, block, None), after))
        return None if np.isinf(best) else best
    rivals = lines.rivals
    best = min(bound, _first_after(rivals - lines.own_intercept[:, None],
                                   np.zeros_like(rivals) - lines.own_slope[:, None], after))
    nv, m = lines.q_e.shape
    step = max(1, _ENTRY_BLOCK // max(m, 1))
    bounds = np.arange(0, nv + step, step).clip(max=nv)
    at = np.searchsorted(lines.pair_query, bounds)
    for i in range(len(bounds) - 1):
        if at[i] < at[i + 1]:
            best = min(best, _first_nearby(lines, slice(bounds[i], bounds[i + 1]),
                                           np.arange(at[i], at[i + 1]), after, bound))
    return best


def _first_after(d0: np.ndarray, d1: np.ndarray, after: float) -> float:
    """The smallest crossing γ = −d0/d1 beyond ``after`` (``inf`` if none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = -d0 / d1
    later = (d1 != 0) & (cross > after) & np.isfinite(cross)
    return float(cross[later].min()) if later.any() else np.inf


def _first_nearby(lines: LineSet, questions: slice, pairs: np.ndarray, after: float,
                  bound: float) -> float:
    """The first crossing in (after, bound] of ``pairs`` (all of whose questions are in
    ``questions``) with a moved line. Two lines can only meet by ``bound`` if their values at
    ``after`` differ by at most what the steepest slopes close in that time, so each
    question's lines are sorted by value at ``after`` and each pair looks at a window around
    its own value. Where windows hold most lines, the pairs are scanned in full instead."""
    q_e, q_g = lines.q_e[questions], lines.q_g[questions]
    nv, m = q_e.shape
    value = q_e + after * q_g
    order = np.argsort(value, axis=1)
    own = lines.own_intercept[pairs] + after * lines.own_slope[pairs]
    present = np.isfinite(own)
    reach = 2.0 * np.abs(q_g).max(axis=1, initial=0.0) * (bound - after) \
        + 1e-9 * (1.0 + np.abs(value).max(axis=1, initial=0.0))
    # one sorted key for the block: question q's values shifted by q * spacing
    spacing = float(np.ptp(np.r_[value.ravel(), own[present]]) + 4.0 * reach.max() + 1.0)
    keys = (np.take_along_axis(value, order, axis=1)
            + (np.arange(nv) * spacing)[:, None]).ravel()
    q = lines.pair_query[pairs] - questions.start
    width = reach[q] + 8.0 * np.spacing(spacing * nv)
    lo = np.searchsorted(keys, own + q * spacing - width)
    count = np.where(present, np.searchsorted(keys, own + q * spacing + width, "right") - lo, 0)
    if count.sum() > 0.25 * len(pairs) * m:
        return min(_first_after(*_differences(lines, block, None), after)
                   for block in _blocks(pairs, None, lines))
    near = np.repeat(np.arange(len(pairs)), count)
    flat = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    at = (q[near], order.ravel()[flat])
    pair = pairs[near]
    return _first_after(q_e[at] - lines.own_intercept[pair], q_g[at] - lines.own_slope[pair],
                        after)


def count_crossings(lines: LineSet) -> int:
    """How many (pair, line) crossings there are at γ > 0 in all: the events an unfiltered
    sweep would have to hold (a diagnostic for benchmarks; one block in memory at a time)."""
    total = 0
    for block in _blocks(np.arange(len(lines.pair_query)), None, lines):
        d0, d1 = _differences(lines, block, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = -d0 / d1
        total += int(((d1 != 0) & (cross > 0) & np.isfinite(cross)).sum())
    return total


def best_interval(crossings: Crossings, zero_value: float,
                  following: Callable[[float, float], float | None], left_end: bool):
    """``(gamma, starts, values)``: the γ that maximises the metric. The first (smallest)
    best interval wins and γ is its midpoint, or its left end with ``left_end`` (as nudge-ft
    does); γ = 0 unless the best beats the metric at γ = 0 itself. ``following(a, b)`` gives
    the first crossing after ``a`` (at most ``b``), for curves that are not complete."""
    starts, values = crossings.curve()
    best = first_best(values)
    if values[best] <= zero_value + TIE:
        return 0.0, starts, values

    def right_end(i):
        bound = starts[i + 1] if i + 1 < len(starts) else np.inf
        if crossings.complete:
            return None if np.isinf(bound) else float(bound)
        # crossings left out of the list may sit a few bits after the start: skip them
        return following(float(starts[i]) + GAMMA_TIE * (1.0 + float(starts[i])), bound)

    if best == 0:  # the interval (0, first crossing) only beats γ = 0 through exact ties
        end = right_end(0)
        return (0.0 if end is None else 0.5 * end), starts, values
    if left_end:
        return float(starts[best]), starts, values
    end = right_end(best)
    gamma = 1.5 * starts[best] if end is None else 0.5 * (starts[best] + end)
    return float(gamma), starts, values


def first_best(values) -> int:
    values = np.asarray(values, dtype=float)
    return int(np.flatnonzero(values >= values.max() - TIE)[0])
