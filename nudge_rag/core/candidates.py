"""NUDGE-N's pruned evaluations: only the moved records that can matter over a γ range.

Over γ ∈ [0, γ_hi] a NUDGE-N score follows ``R cos(θ − θ0)`` on an arc, so each moved record's
best and worst score over the range are closed-form (:func:`score_bounds`). Two prunings follow:

- per relevant pair (:func:`n_candidates`): a moved record can only ever rank above a pair if
  its best beats the pair's worst. Where few records move, a handful per pair remain and a γ
  costs a few thousand comparisons. Where most move, little is pruned and it gives up early
  (after one small block of pairs);
- per question (:func:`top_candidates`): only records whose best reaches the K-th best worst
  can ever be among the question's K best, which is all a rank down to K needs. Where most
  records move but each question has a neighbourhood of its own, this keeps a few dozen.

When neither pays, the γ search scores every (question, moved record) densely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .closed_form import Geometry
from .memory import memory_high
from .method import Method
from .scores import Products, ScoresAtGamma

# pairs per block when comparing pairs with every moved record (bounds memory); the first
# block is small, so that giving up where nothing is pruned costs little
PAIR_BLOCK = 2048
_FIRST_BLOCK = 256
# (question, moved record) entries per block of score bounds: about ten float64 temporaries
# of this size live at once (2 MB each), however many records move
_BOUND_ENTRIES = 1 << 18
# a candidate costs about this many dense (question, record) scores per γ
_CANDIDATE_COST = 2.0


def _covered(gamma: float, alpha: float, method: Method, gamma_hi: float,
             alphas: tuple[float, float]) -> bool:
    """Whether candidates built for γ ≤ ``gamma_hi`` and memory weights in ``alphas`` serve
    (γ, α)."""
    return method is Method.N and gamma <= gamma_hi and (
        alpha == 0 or alphas[0] <= alpha <= alphas[1])


class _Pruned:
    """What both prunings share: the (γ, α) they serve and their scores at a γ, the nudged
    part computed once per γ (:class:`.scores.ScoresAtGamma`)."""

    gamma_hi: float
    alphas: tuple[float, float]
    products: Products
    _at: ScoresAtGamma | None

    def covers(self, gamma: float, method: Method, alpha: float = 0.0) -> bool:
        return _covered(gamma, alpha, method, self.gamma_hi, self.alphas)

    def _scores(self, gamma: float, geometry: Geometry, alpha: float, cols) -> np.ndarray:
        if self._at is None:
            self._at = ScoresAtGamma(self.products, cols)
        return self._at(gamma, Method.N, geometry, alpha)


@dataclass
class NCandidates(_Pruned):
    """For γ ≤ ``gamma_hi`` and memory weight 0 or within ``alphas``: candidate (pair, moved
    record) entries with their products."""

    gamma_hi: float
    pair: np.ndarray
    col: np.ndarray
    products: Products
    alphas: tuple[float, float] = (0.0, 0.0)
    _at: ScoresAtGamma | None = field(default=None, repr=False, compare=False)

    def count_above(self, gamma: float, geometry: Geometry, own: np.ndarray,
                    alpha: float = 0.0, ties: np.ndarray | None = None) -> np.ndarray:
        """Moved records scoring strictly above each pair at γ (exact); with ``ties`` (each
        pair's own moved column, −1: none) also those tied with it at a lower column."""
        s = self._scores(gamma, geometry, alpha, self.col)
        above = s > own[self.pair]
        if ties is not None:
            above |= (s == own[self.pair]) & (self.col < ties[self.pair])
        return np.bincount(self.pair, weights=above, minlength=len(own))


def score_bounds(q_e, q_u, cos_phi, frozen, gamma_hi: float, low: bool = True,
                 high: bool = True):
    """``(lowest, highest)`` NUDGE-N score over γ ∈ [0, gamma_hi] of records with products
    ``q_e``, ``q_u`` and geometry ``cos_phi``, ``frozen`` (broadcastable); either is ``None``
    when not asked for. They bound what the search can see, so they need no more than float
    accuracy: callers leave a margin."""
    theta_hi = np.arccos(1.0 - min(gamma_hi, 4.0) / 2.0)
    arc = np.where(frozen, 0.0, np.minimum(np.arccos(np.clip(cos_phi, -1.0, 1.0)), theta_hi))
    cos_arc, sin_arc = np.cos(arc), np.sin(arc)
    # f(θ) = q_e cos θ + q_u sin θ = R cos(θ − θ0) on θ ∈ [0, arc]: its peak (trough) lies
    # inside the arc, or the extreme is at an end
    radius = np.sqrt(q_e * q_e + q_u * q_u)
    end = q_e * cos_arc + q_u * sin_arc
    reach = radius * cos_arc
    lowest = np.where((q_u <= 0) & (-q_e >= reach), -radius, np.minimum(q_e, end)) \
        if low else None
    highest = np.where((q_u >= 0) & (q_e >= reach), radius, np.maximum(q_e, end)) \
        if high else None
    return lowest, highest


def n_candidates(products: Products, geometry: Geometry, pair_query: np.ndarray,
                 own_col: np.ndarray, fixed_scores: np.ndarray, gamma_hi: float,
                 budget: float | None = None,
                 alphas: tuple[float, float] = (0.0, 0.0)) -> NCandidates | None:
    """Candidates for γ ∈ [0, gamma_hi] and memory weights 0 or in ``alphas``, or ``None``
    when there would be more than ``budget`` of them (default: as many as cost the same as
    scoring every (question, moved record) densely). ``own_col`` is each pair's moved column
    (−1 if its record does not move, and then ``fixed_scores`` holds its score). A pair's
    own score is never below its nudged score, so memory only raises the records' bests."""
    g = geometry
    moved = own_col >= 0
    own_low = fixed_scores.copy()
    if moved.any():
        qm, jm = pair_query[moved], own_col[moved]
        own_low[moved] = score_bounds(products.q_e[qm, jm], products.q_u[qm, jm],
                                      g.cos_phi[jm], g.n_frozen[jm], gamma_hi, high=False)[0]
    slack = 1e-9 * (1.0 + np.abs(own_low))
    # a pair scored -inf (a relevant record known to rank below the top k whatever γ is)
    # needs no candidates: nothing can push it further down
    floor = np.where(np.isfinite(own_low), own_low - slack, np.inf)
    budget = products.q_e.size / _CANDIDATE_COST if budget is None else budget
    found_pairs, found_cols, count = [], [], 0
    # a block's pairs span at most as many questions as it has pairs
    step = max(1, min(PAIR_BLOCK, _BOUND_ENTRIES // max(products.q_e.shape[1], 1)))
    first = min(_FIRST_BLOCK, step)
    for lo in [0, *range(first, len(pair_query), step)]:
        hi = min(lo + (first if lo == 0 else step), len(pair_query))
        if hi == lo:
            break
        # the best score over the range of every moved record, for this block's questions
        q_lo, q_hi = int(pair_query[lo]), int(pair_query[hi - 1]) + 1
        high = score_bounds(products.q_e[q_lo:q_hi], products.q_u[q_lo:q_hi], g.cos_phi,
                            g.n_frozen, gamma_hi, low=False)[1]
        if products.q_mem is not None:
            np.maximum(high, memory_high(products.q_mem[q_lo:q_hi], alphas), out=high)
        i, j = np.nonzero(high[pair_query[lo:hi] - q_lo] >= floor[lo:hi, None])
        found_pairs.append(i + lo)
        found_cols.append(j)
        count += len(i)
        if count * len(pair_query) / hi > budget:  # on course to prune too little
            return None
    pair = np.concatenate(found_pairs) if found_pairs else np.zeros(0, dtype=np.int64)
    col = np.concatenate(found_cols) if found_cols else np.zeros(0, dtype=np.int64)
    return NCandidates(gamma_hi, pair, col, products.take(pair_query[pair], col), alphas)


@dataclass
class TopCandidates(_Pruned):
    """For γ ≤ ``gamma_hi`` and memory weight 0 or within ``alphas``: per question, the
    moved records that may be among its ``depth`` best (``cols``, questions × widest, ``-1``
    pads) with their products."""

    gamma_hi: float
    depth: int
    cols: np.ndarray
    products: Products
    pair_query: np.ndarray
    alphas: tuple[float, float] = (0.0, 0.0)
    _at: ScoresAtGamma | None = field(default=None, repr=False, compare=False)

    def count_above(self, gamma: float, geometry: Geometry, own: np.ndarray,
                    alpha: float = 0.0, ties: np.ndarray | None = None) -> np.ndarray:
        """Moved records scoring strictly above each pair at γ, exact up to ``depth``: each
        question's ``depth`` best candidates are its ``depth`` best moved records. With
        ``ties`` (each pair's own moved column, −1: none) those tied with it at a lower
        column count too (a tied record left out ranks below ``depth`` anyway)."""
        s = self._scores(gamma, geometry, alpha, np.maximum(self.cols, 0))
        s[self.cols < 0] = -np.inf
        tied = 0.0 if ties is None else tied_below(s, self.pair_query, own, ties, self.cols)
        width = s.shape[1]
        keep = min(self.depth, width)
        s.partition(width - keep, axis=1)
        best = s[:, width - keep:]
        return (best[self.pair_query] > own[:, None]).sum(axis=1) + tied


def tied_below(scores: np.ndarray, pair_row: np.ndarray, own: np.ndarray, own_col: np.ndarray,
               cols: np.ndarray) -> np.ndarray:
    """Per pair, the entries of its row ``pair_row`` of ``scores`` (columns ``cols``: one per
    entry, or per row and entry) that tie with its score ``own`` at a column below its own
    moved column ``own_col`` (−1: it does not move, and nothing counts)."""
    out = np.zeros(len(own))
    for lo in range(0, len(own), PAIR_BLOCK):  # bounds the pairs × entries masks
        hi = min(lo + PAIR_BLOCK, len(own))
        c = cols[pair_row[lo:hi]] if cols.ndim == 2 else cols[None, :]
        tied = (scores[pair_row[lo:hi]] == own[lo:hi, None]) & (c >= 0) \
            & (c < own_col[lo:hi, None])
        out[lo:hi] = tied.sum(axis=1)
    return out


def top_candidates(products: Products, geometry: Geometry, pair_query: np.ndarray, depth: int,
                   gamma_hi: float, block: int,
                   alphas: tuple[float, float] = (0.0, 0.0)) -> TopCandidates | None:
    """Per question, the moved records whose best score over γ ∈ [0, gamma_hi] (and memory
    weights 0 or in ``alphas``) reaches the ``depth``-th best worst score (the others stay
    below ``depth`` records throughout), or ``None`` when that keeps more than half of them.
    ``block`` bounds the entries held."""
    g = geometry
    n_q, m = products.q_e.shape
    if m <= depth:
        return None

    def reaches_floor(part: slice) -> np.ndarray:
        low, high = score_bounds(products.q_e[part], products.q_u[part], g.cos_phi,
                                 g.n_frozen, gamma_hi)
        if products.q_mem is not None:  # memory raises a record's best, never its worst
            np.maximum(high, memory_high(products.q_mem[part], alphas), out=high)
        floor = np.partition(low, m - depth, axis=1)[:, m - depth]
        floor -= 1e-9 * (1.0 + np.abs(floor))  # float rounding never drops a record
        return high >= floor[:, None]

    keep = blocked_mask(n_q, m, block, reaches_floor)
    cols = kept_columns(keep)
    if cols is None:
        return None
    rows = np.arange(n_q)[:, None]
    return TopCandidates(gamma_hi, depth, cols, products.take(rows, np.maximum(cols, 0)),
                         pair_query, alphas)


def blocked_mask(n_rows: int, m: int, block: int, rows_kept) -> np.ndarray:
    """An ``n_rows × m`` mask filled by ``rows_kept(rows)`` for slices of rows small enough
    that a block holds about ``block`` entries."""
    keep = np.zeros((n_rows, m), dtype=bool)
    step = max(1, block // max(m, 1))
    for lo in range(0, n_rows, step):
        keep[lo:lo + step] = rows_kept(slice(lo, lo + step))
    return keep


def kept_columns(keep: np.ndarray, most: float = 0.5) -> np.ndarray | None:
    """Each row's kept columns, ascending, padded with ``-1`` to the widest row; ``None``
    when more than ``most`` of all entries are kept (pruning would not pay)."""
    count = keep.sum(axis=1)
    if count.sum() > most * keep.size:
        return None
    qi, j = np.nonzero(keep)
    cols = np.full((len(keep), max(int(count.max(initial=0)), 1)), -1, dtype=np.int64)
    cols[qi, np.arange(len(j)) - np.repeat(np.cumsum(count) - count, count)] = j
    return cols
