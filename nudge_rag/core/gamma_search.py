"""Choosing the step γ on validation questions.

Only moved records change with γ. For each validation question the rest of the corpus enters
through its top-K unmoved scores (``Competition``), so trying a γ costs a few small dense
products, never a pass over the corpus.

NUDGE-M scores are linear in γ, so every rank metric is piecewise constant with breakpoints
where a relevant record's score line crosses another record's. ``sweep_linear`` finds them all
and maximises the metric exactly. NUDGE-N scores follow the great circle; they are searched on
a grid and refined around the best grid point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .closed_form import Geometry, n_coefficients
from .metrics import RankScorer, parse_metric
from .relevance import Pairs

# pairs per block when comparing a pair's score with every moved record (bounds memory)
_PAIR_BLOCK = 2048
# metric values closer than this count as ties (float sums of the same terms)
_TIE = 1e-9


@dataclass
class Competition:
    """Top-K *unmoved* records per validation question, by descending score. ``rows`` only
    need to be comparable with the relevance rows (``-1`` pads; scores pad with ``-inf``)."""

    scores: np.ndarray
    rows: np.ndarray


@dataclass
class SearchResult:
    gamma: float
    curve_gamma: np.ndarray  # γ values (grid points, or interval starts for the exact sweep)
    curve_value: np.ndarray  # validation metric at / from each of them


class ValidationProblem:
    """Everything needed to score validation questions at any γ."""

    def __init__(self, val_q: np.ndarray, pairs: Pairs, moved_rows: np.ndarray,
                 geometry: Geometry, competition: Competition, unmoved_scores: np.ndarray):
        self.pairs = pairs
        self.geometry = geometry
        self.competition = competition
        self.scorer = RankScorer(pairs)
        q = np.asarray(val_q, dtype=np.float64)
        pos = np.searchsorted(moved_rows, pairs.row)
        pos_c = np.minimum(pos, len(moved_rows) - 1)
        self.is_moved = moved_rows[pos_c] == pairs.row
        self.pos = np.where(self.is_moved, pos_c, -1)
        self.unmoved_scores = np.where(self.is_moved, 0.0, unmoved_scores)
        m = len(moved_rows)
        products = q @ np.concatenate([geometry.e_hat, geometry.g_hat, geometry.u]).T
        self.A, self.B, self.C = products[:, :m], products[:, m:2 * m], products[:, 2 * m:]

    # -- scores and ranks at one γ ----------------------------------------------------------
    def moved_scores(self, gamma: float, method: str) -> np.ndarray:
        g = self.geometry
        if method == "m":
            return self.A + gamma * self.B
        alpha, beta = n_coefficients(gamma)
        s = alpha * self.A + beta * self.C
        s = np.where(g.n_saturated(gamma)[None, :], self.B, s)
        return np.where(g.n_frozen[None, :], self.A, s)

    def _own_scores(self, gamma: float, method: str) -> np.ndarray:
        """Score of each pair's relevant record at γ."""
        p = self.pairs
        if not self.is_moved.any():
            return self.unmoved_scores
        qm, jm = p.query[self.is_moved], self.pos[self.is_moved]
        own = self.unmoved_scores.copy()
        own[self.is_moved] = self._flat_scores(gamma, method, self.A[qm, jm], self.B[qm, jm],
                                               None if method == "m" else self.C[qm, jm], jm)
        return own

    def _flat_scores(self, gamma, method, a, b, c, j):
        """Scores of moved records ``j`` from their gathered products (any shape)."""
        if method == "m":
            return a + gamma * b
        g = self.geometry
        alpha, beta = n_coefficients(gamma)
        s = alpha * a + beta * c
        s = np.where(g.n_saturated(gamma)[j], b, s)
        return np.where(g.n_frozen[j], a, s)

    def _unmoved_above(self, own: np.ndarray) -> np.ndarray:
        p = self.pairs
        comp_s = self.competition.scores[p.query]
        return ((comp_s > own[:, None]) & (self.competition.rows[p.query] != p.row[:, None])
                ).sum(axis=1)

    def restrict_n(self, gamma_hi: float) -> None:
        """Prune, for γ ∈ [0, gamma_hi], the moved records that can never outscore a pair's
        relevant record: a competitor matters only if its best score over the range beats the
        pair's worst. NUDGE-N scores follow ``R cos(θ − θ0)`` on an arc, so both bounds are
        closed-form. Afterwards :meth:`ranks` only compares the surviving candidates."""
        g = self.geometry
        theta_hi = np.arccos(1.0 - min(gamma_hi, 4.0) / 2.0)
        arc = np.where(g.n_frozen, 0.0,
                       np.minimum(np.arccos(np.clip(g.cos_phi, -1.0, 1.0)), theta_hi))
        cos_arc, sin_arc = np.cos(arc), np.sin(arc)
        # f(θ) = A cos θ + C sin θ = R cos(θ − θ0) on θ ∈ [0, arc]
        radius = np.hypot(self.A, self.C)
        end = self.A * cos_arc + self.C * sin_arc
        peak_inside = (self.C >= 0) & (self.A >= radius * cos_arc)
        upper = np.where(peak_inside, radius, np.maximum(self.A, end))
        p = self.pairs
        own_low = self.unmoved_scores.copy()
        if self.is_moved.any():
            qm, jm = p.query[self.is_moved], self.pos[self.is_moved]
            a_, c_ = self.A[qm, jm], self.C[qm, jm]
            r_ = np.hypot(a_, c_)
            end_ = a_ * cos_arc[jm] + c_ * sin_arc[jm]
            trough_inside = (c_ <= 0) & (-a_ >= r_ * cos_arc[jm])
            own_low[self.is_moved] = np.where(trough_inside, -r_, np.minimum(a_, end_))
        slack = 1e-9 * (1.0 + np.abs(own_low))
        # a pair scored -inf (a relevant record known to rank below the top k whatever γ is)
        # needs no candidates: nothing can push it further down
        floor = np.where(np.isfinite(own_low), own_low - slack, np.inf)
        cand = []
        for lo in range(0, len(p), _PAIR_BLOCK):
            hi = min(lo + _PAIR_BLOCK, len(p))
            keep = upper[p.query[lo:hi]] >= floor[lo:hi, None]
            i, j = np.nonzero(keep)
            cand.append((i + lo, j))
        pi = np.concatenate([c[0] for c in cand])
        j = np.concatenate([c[1] for c in cand])
        qs = p.query[pi]
        self._restricted = (gamma_hi, pi, j, self.A[qs, j], self.B[qs, j], self.C[qs, j])

    def ranks(self, gamma: float, method: str) -> np.ndarray:
        """1-based rank of every relevant pair at γ (ties count in the pair's favour)."""
        p = self.pairs
        own = self._own_scores(gamma, method)
        above = self._unmoved_above(own)
        restricted = getattr(self, "_restricted", None)
        if method == "n" and restricted is not None and gamma <= restricted[0]:
            _, pi, j, a, b, c = restricted
            s = self._flat_scores(gamma, "n", a, b, c, j)
            above = above + np.bincount(pi, weights=s > own[pi], minlength=len(p))
            return 1.0 + above
        s = self.moved_scores(gamma, method)
        for lo in range(0, len(p), _PAIR_BLOCK):
            hi = min(lo + _PAIR_BLOCK, len(p))
            above[lo:hi] += (s[p.query[lo:hi]] > own[lo:hi, None]).sum(axis=1)
        return 1.0 + above

    def metric(self, gamma: float, method: str, metric: str) -> float:
        return self.scorer.mean(self.ranks(gamma, method), metric)

    def report(self, gamma: float, method: str, metrics) -> dict[str, float]:
        return self.scorer.report(self.ranks(gamma, method), metrics)

    # -- NUDGE-N: grid, then refine -------------------------------------------------------------
    def search_grid(self, metric: str, grid: np.ndarray, refine: int) -> SearchResult:
        gammas = [float(g) for g in grid]
        step = gammas[1] - gammas[0] if len(gammas) > 1 else 0.0
        self.restrict_n(max(gammas) + step)
        values = [self.metric(g, "n", metric) for g in gammas]
        if refine and len(gammas) > 1:
            best = _first_best(values)
            lo, hi = max(gammas[best] - step, 0.0), min(gammas[best] + step, 4.0)
            for g in np.linspace(lo, hi, 2 * refine + 1):
                if not np.any(np.isclose(g, gammas, rtol=0, atol=1e-12)):
                    gammas.append(float(g))
                    values.append(self.metric(float(g), "n", metric))
        order = np.argsort(gammas, kind="stable")
        g_arr, v_arr = np.asarray(gammas)[order], np.asarray(values)[order]
        return SearchResult(float(g_arr[_first_best(v_arr)]), g_arr, v_arr)

    # -- NUDGE-M: exact sweep over all crossings ----------------------------------------------
    def sweep_linear(self, metric: str, left_end: bool = False) -> SearchResult:
        """Maximise ``metric`` over all γ ≥ 0 for NUDGE-M. The smallest maximising interval
        wins; its midpoint is returned (its left end when ``left_end``, as nudge-ft does)."""
        name, k = parse_metric(metric)
        p = self.pairs
        own0 = np.where(self.is_moved, self.A[p.query, np.maximum(self.pos, 0)],
                        self.unmoved_scores)
        slope = np.where(self.is_moved, self.B[p.query, np.maximum(self.pos, 0)], 0.0)
        above0 = np.zeros(len(p), dtype=np.int64)
        ev_gamma, ev_pair, ev_dir = [], [], []
        for lo in range(0, len(p), _PAIR_BLOCK):
            hi = min(lo + _PAIR_BLOCK, len(p))
            qs = p.query[lo:hi]
            comp_s = self.competition.scores[qs]
            valid = np.isfinite(comp_s) & (self.competition.rows[qs] != p.row[lo:hi, None])
            d0 = np.concatenate([self.A[qs], np.where(valid, comp_s, -np.inf)], axis=1)
            d0 -= own0[lo:hi, None]
            d1 = np.concatenate([self.B[qs], np.zeros_like(comp_s)], axis=1)
            d1 -= slope[lo:hi, None]
            above0[lo:hi] = ((d0 > 0) | ((d0 == 0) & (d1 > 0))).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = -d0 / d1
            hit = (d1 != 0) & (cross > 0) & np.isfinite(cross)
            i, j = np.nonzero(hit)
            ev_gamma.append(cross[i, j])
            ev_pair.append(i + lo)
            ev_dir.append(np.sign(d1[i, j]).astype(np.int64))
        gam = np.concatenate(ev_gamma) if ev_gamma else np.zeros(0)
        pair = np.concatenate(ev_pair) if ev_pair else np.zeros(0, dtype=np.int64)
        direction = np.concatenate(ev_dir) if ev_dir else np.zeros(0, dtype=np.int64)
        rank0 = 1.0 + above0
        value0 = self.scorer.mean(rank0, metric)
        zero_value = self.metric(0.0, "m", metric)

        if len(gam) == 0:
            return SearchResult(0.0, np.zeros(1), np.array([zero_value]))
        before, after = _ranks_around_events(gam, pair, direction, rank0)
        delta = self._event_deltas(name, k, pair, gam, before, after, rank0)

        order = np.argsort(gam, kind="stable")
        g_sorted = gam[order]
        values = value0 + np.cumsum(delta[order])
        last = np.r_[g_sorted[1:] != g_sorted[:-1], True]
        starts = g_sorted[last]
        vals = values[last]
        curve_g = np.r_[0.0, starts]
        curve_v = np.r_[value0, vals]
        best = _first_best(curve_v)
        if curve_v[best] <= zero_value + _TIE:
            return SearchResult(0.0, curve_g, curve_v)
        if best == 0:  # the interval (0, first crossing) only beats γ = 0 through exact ties
            gamma = 0.5 * curve_g[1] if len(curve_g) > 1 else 1.0
        elif left_end:
            gamma = curve_g[best]
        elif best + 1 < len(curve_g):
            gamma = 0.5 * (curve_g[best] + curve_g[best + 1])
        else:  # the best interval is unbounded: step past its start
            gamma = 1.5 * curve_g[best]
        return SearchResult(float(gamma), curve_g, curve_v)

    def _event_deltas(self, name, k, pair, gam, before, after, rank0):
        """Change of the mean metric caused by each event."""
        p = self.pairs
        n_q = p.n_queries
        q_of = p.query[pair]
        if name == "ndcg":
            idcg = self.scorer.idcg(k)
            w = p.grade[pair] / idcg[q_of] / n_q
            return w * (_discount(after, k) - _discount(before, k))
        if name == "recall":
            w = 1.0 / np.minimum(self.scorer.n_rel[q_of], k) / n_q
            return w * ((after <= k).astype(float) - (before <= k))
        if name == "hit":
            return _hit_deltas(q_of, gam, before, after, rank0, p, k) / n_q
        # mrr@k = Σ_{t≤k} (1/t − 1/(t+1)) hit@t + hit@k / (k+1); no rank exceeds the rows
        # this problem holds, and past them mrr@k equals mrr@(that many), so k stops there
        k = min(k, self.A.shape[1] + self.competition.scores.shape[1] + 1)
        total = np.zeros(len(pair))
        for t in range(1, k + 1):
            w = 1.0 / t - 1.0 / (t + 1) + (1.0 / (k + 1) if t == k else 0.0)
            total += w * _hit_deltas(q_of, gam, before, after, rank0, p, t)
        return total / n_q


def _discount(rank, k):
    return np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)


def _ranks_around_events(gam, pair, direction, rank0):
    """Rank of the event's pair just before and just after each event."""
    order = np.lexsort((gam, pair))
    d = direction[order]
    csum = np.cumsum(d)
    p_sorted = pair[order]
    first = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    offset = np.maximum.accumulate(np.where(first, np.arange(len(d)), 0))
    base = (csum - d)[offset]  # cumulative sum before each group's first event
    after_sorted = rank0[p_sorted] + csum - base
    after = np.empty_like(after_sorted)
    after[order] = after_sorted
    return after - direction, after


def _hit_deltas(q_of, gam, before, after, rank0, pairs, k):
    """Change in hit@k (0/1 per question) caused by each event."""
    change = (after <= k).astype(np.int64) - (before <= k).astype(np.int64)
    count0 = np.bincount(pairs.query, (rank0 <= k).astype(float),
                         minlength=pairs.n_queries).astype(np.int64)
    order = np.lexsort((gam, q_of))
    c = change[order]
    csum = np.cumsum(c)
    qs = q_of[order]
    first = np.r_[True, qs[1:] != qs[:-1]] if len(qs) else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))
    base = (csum - c)[start]
    count_after = count0[qs] + csum - base
    count_before = count_after - c
    delta_sorted = (count_after > 0).astype(float) - (count_before > 0)
    delta = np.empty_like(delta_sorted)
    delta[order] = delta_sorted
    return delta


def _first_best(values) -> int:
    values = np.asarray(values, dtype=float)
    return int(np.flatnonzero(values >= values.max() - _TIE)[0])
