"""Choosing the step γ on validation questions.

Only moved records change with γ. For each validation question the rest of the corpus enters
through its top-K unmoved scores (``Competition``), so trying a γ costs a few small dense
products, never a pass over the corpus. Ranks are exact down to K (the depth every metric
needs) and "below K" after that.

Three ways to count the moved records above each relevant record, chosen by cost; all give
the same ranks, bit for bit:

- *dense*: score every (question, moved record) at γ, block by block, and keep each
  question's K best (a partition, linear time). Fast however many records move.
- *per pair* (NUDGE-N, :func:`.candidates.n_candidates`): only the moved records that can
  outscore a relevant record over the searched range. Where few records move this is a few
  thousand comparisons per γ; where most move it is given up after one small block.
- *per question* (NUDGE-N, :func:`.candidates.top_candidates`): only the moved records that
  can be among a question's K best over the range. Where most records move but questions
  have neighbourhoods of their own, a few dozen per question.

NUDGE-M scores are linear in γ, so every rank metric is piecewise constant with breakpoints
where score lines cross: :mod:`.crossings` finds them and the best interval exactly. NUDGE-N
scores follow the great circle; they are searched on a grid and refined around the best point.

Several validation sets (cross-validation folds) are several problems: :func:`grid_search`
takes any objective, such as the mean metric over problems, and the crossing events of
several problems pool (their metric changes weighted) before :func:`.crossings.best_interval`.
A second score source (another parameter beside γ) enters where moved records are scored:
:func:`.scores.scores_at`, the one formula every path uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .candidates import NCandidates, TopCandidates, n_candidates, tied_below, top_candidates
from .closed_form import Geometry
from .crossings import (
    LineSet,
    best_interval,
    crossing_events,
    first_best,
    next_crossing,
)
from .memory import QueryMemory
from .method import Method
from .metrics import RankScorer, parse_metric
from .relevance import Pairs
from .scores import Products, ScoresAtGamma, scores_at

# (question, moved record) scores held at once by the dense count (about 2 MB)
_DENSE_BLOCK = 262_144


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
    """Everything needed to score validation questions at any γ: the relevant (question,
    record) pairs, each question's unmoved competition, and the products of the questions
    with the moved records' directions (:class:`.scores.Products`, computed on first use)."""

    def __init__(self, val_q: np.ndarray, pairs: Pairs, moved_rows: np.ndarray,
                 geometry: Geometry, competition: Competition, unmoved_scores: np.ndarray,
                 memory: QueryMemory | None = None):
        self.pairs = pairs
        self.memory = memory
        self.geometry = geometry
        self.competition = competition
        self.scorer = RankScorer(pairs)
        self.questions = np.asarray(val_q, dtype=np.float64)
        moved_rows = np.asarray(moved_rows)
        pos = np.minimum(np.searchsorted(moved_rows, pairs.row), max(len(moved_rows) - 1, 0))
        moved = (moved_rows[pos] == pairs.row) if len(moved_rows) else np.zeros(len(pairs), bool)
        #: per pair, its record's column among the moved records (−1: it does not move)
        self.own_col = np.where(moved, pos, -1)
        #: per pair whose record does not move, its fixed score (0 for moved ones)
        self.fixed_scores = np.where(moved, 0.0, unmoved_scores)
        #: per pair and competition slot, the unmoved rival's score (−inf: none, or itself)
        comp_rows = competition.rows[pairs.query]
        self.rivals = np.where(np.isfinite(competition.scores[pairs.query])
                               & (comp_rows != pairs.row[:, None]),
                               competition.scores[pairs.query], -np.inf)
        #: ranks are exact down to this depth and reported as depth + 1 below it
        self.depth = int(competition.scores.shape[1]) or max(len(moved_rows), 1)
        self._products: dict[Method, Products] = {}
        self._own_products: dict[Method, ScoresAtGamma] = {}
        self._released_n = False
        self._blocks = self._question_blocks(len(moved_rows))

    def _question_blocks(self, n_moved: int) -> list[tuple[int, int, int, int]]:
        """``(first question, end, first pair, end)`` of each block the dense count scores."""
        n_q = self.pairs.n_queries
        step = max(1, _DENSE_BLOCK // max(n_moved, 1))
        bounds = np.arange(0, n_q + step, step).clip(max=n_q)
        at = np.searchsorted(self.pairs.query, bounds)
        return [(int(bounds[i]), int(bounds[i + 1]), int(at[i]), int(at[i + 1]))
                for i in range(len(bounds) - 1) if at[i] < at[i + 1]]

    # -- products, computed once per method ----------------------------------------------------
    def products(self, method: Method) -> Products:
        method = Method.parse(method)
        if Method.N in self._products:  # NUDGE-N's products include NUDGE-M's
            return self._products[Method.N]
        if self._released_n:  # as before the release: NUDGE-N's served every method
            method = Method.N
        if method not in self._products:
            self._products[method] = Products.compute(self.questions, self.geometry, method,
                                                      self.memory)
        return self._products[method]

    def release_products(self) -> None:
        """Drop the dense products (questions × moved records, four float64 arrays) once
        pruned candidates carry what the search needs, or the pool has scored this problem
        densely: a pool's problems then hold them one at a time, not all at once. The own
        records' products are kept; a later dense count computes the products again, bit
        for bit the same."""
        for method in self._products:
            self._own(method)
        self._released_n = self._released_n or Method.N in self._products
        self._products.clear()

    def _own(self, method: Method) -> ScoresAtGamma:
        """The scores of each moved pair's own record (from its products with it)."""
        if method not in self._own_products:
            moved = self.own_col >= 0
            self._own_products[method] = ScoresAtGamma(self.products(method).take(
                self.pairs.query[moved], self.own_col[moved]), self.own_col[moved])
        return self._own_products[method]

    # -- scores and ranks at one γ -------------------------------------------------------------
    def own_scores(self, gamma: float, method: Method, alpha: float = 0.0) -> np.ndarray:
        """Score of each pair's relevant record at γ, with the memory at weight ``alpha``."""
        method = Method.parse(method)
        own = self.fixed_scores.copy()
        moved = self.own_col >= 0
        if moved.any():
            own[moved] = self._own(method)(gamma, method, self.geometry, alpha)
        return own

    def ranks(self, gamma: float, method: Method,
              candidates: NCandidates | TopCandidates | None = None,
              alpha: float = 0.0) -> np.ndarray:
        """1-based rank of every relevant pair at γ, exact down to :attr:`depth`; a pair
        below it gets ``depth + 1``. Ties with other records count in the pair's favour; tied
        relevant records of one question are ranked by row (:meth:`.Pairs.tied_before`).
        With ``candidates`` that cover (γ, α) the moved records are counted sparsely, else
        densely; both agree exactly. ``alpha`` weighs the memory (0: none)."""
        method = Method.parse(method)
        own = self.own_scores(gamma, method, alpha)
        # memory scores tie systematically (every record a key names gets its score): there
        # a pair counts the moved records tied with it at a lower row, as top_k ranks them
        ties = self.own_col if alpha > 0 and self.memory is not None else None
        above = (self.rivals > own[:, None]).sum(axis=1).astype(np.float64)
        if candidates is not None and candidates.covers(gamma, method, alpha):
            above += candidates.count_above(gamma, self.geometry, own, alpha, ties)
        else:
            above += self._moved_above_dense(gamma, method, own, alpha, ties)
        tied = self.pairs.tied_before(own)
        # with ``ties`` a moved pair has counted its tied moved records, relevant ones too (a
        # tie with an unmoved record has probability zero, as in the paper's protocol)
        above += tied if ties is None else np.where(ties >= 0, 0.0, tied)
        return np.minimum(1.0 + above, self.depth + 1.0)

    def _moved_above_dense(self, gamma: float, method: Method, own: np.ndarray,
                           alpha: float = 0.0, ties: np.ndarray | None = None) -> np.ndarray:
        """Moved records scoring above each pair, counted exactly up to :attr:`depth`: each
        question's ``depth`` best moved scores hold every one that can rank above a pair
        that is itself within the depth. With ``ties`` (each pair's own moved column, −1:
        none) a moved record tied with a pair at a lower column counts too."""
        products = self.products(method)
        m = products.q_e.shape[1]
        above = np.zeros(len(own))
        keep = min(self.depth, m)
        if keep == 0:
            return above
        query = self.pairs.query
        for q_lo, q_hi, p_lo, p_hi in self._blocks:
            s = scores_at(gamma, method, self.geometry,
                          products.take(slice(q_lo, q_hi), slice(None)), alpha=alpha)
            if ties is not None:
                above[p_lo:p_hi] = tied_below(s, query[p_lo:p_hi] - q_lo, own[p_lo:p_hi],
                                              ties[p_lo:p_hi], np.arange(m))
            s.partition(m - keep, axis=1)  # s is a fresh array: partition it in place
            best = s[:, m - keep:]
            above[p_lo:p_hi] += (best[query[p_lo:p_hi] - q_lo] > own[p_lo:p_hi, None]).sum(1)
        return above

    def metric(self, gamma: float, method: Method, metric: str,
               candidates: NCandidates | TopCandidates | None = None,
               alpha: float = 0.0) -> float:
        return self.scorer.mean(self.ranks(gamma, method, candidates, alpha), metric)

    def per_question(self, gamma: float, method: Method, metric: str,
                     candidates: NCandidates | TopCandidates | None = None,
                     alpha: float = 0.0) -> np.ndarray:
        """``metric`` of each question at (γ, α): what several problems pool."""
        name, k = parse_metric(metric)
        return self.scorer.per_query(self.ranks(gamma, method, candidates, alpha), name, k)

    def report(self, gamma: float, method: Method, metrics,
               alpha: float = 0.0) -> dict[str, float]:
        return self.scorer.report(self.ranks(gamma, method, alpha=alpha), metrics)

    # -- the parts the searches need -----------------------------------------------------------
    def n_candidates(self, gamma_hi: float, budget: float | None = None,
                     alphas: tuple[float, float] = (0.0, 0.0)) -> NCandidates | None:
        """NUDGE-N's candidates per pair for γ ∈ [0, gamma_hi] (memory weights 0 or in
        ``alphas``), or ``None`` where the dense count is cheaper (or there would be more
        than ``budget``)."""
        return n_candidates(self.products(Method.N), self.geometry, self.pairs.query,
                            self.own_col, self.fixed_scores, gamma_hi, budget, alphas)

    def top_candidates(self, gamma_hi: float,
                       alphas: tuple[float, float] = (0.0, 0.0)) -> TopCandidates | None:
        """NUDGE-N's candidates per question for γ ∈ [0, gamma_hi] (memory weights 0 or in
        ``alphas``), or ``None`` where they would prune too little to pay."""
        return top_candidates(self.products(Method.N), self.geometry, self.pairs.query,
                              self.depth, gamma_hi, _DENSE_BLOCK, alphas)

    def cheapest_candidates(self, gamma_hi: float, alphas: tuple[float, float] = (0.0, 0.0)
                            ) -> NCandidates | TopCandidates | None:
        """The pruning that pays for γ ∈ [0, gamma_hi] (memory weights 0 or in ``alphas``):
        per pair where few records move, else per question, else none (the dense count)."""
        per_pair = self.n_candidates(gamma_hi, alphas=alphas)
        return per_pair if per_pair is not None else self.top_candidates(gamma_hi, alphas)

    def lines(self) -> LineSet:
        """The NUDGE-M score lines of every pair's question, and each pair's own line."""
        p = self.products(Method.M)
        moved = self.own_col >= 0
        intercept, slope = self.fixed_scores.copy(), np.zeros(len(self.pairs))
        at = (self.pairs.query[moved], self.own_col[moved])
        intercept[moved], slope[moved] = p.q_e[at], p.q_g[at]
        return LineSet(p.q_e, p.q_g, self.rivals, self.pairs.query, self.own_col, intercept,
                       slope)


# -- NUDGE-N: grid, then refine ------------------------------------------------------------------
def search_grid(problem: ValidationProblem, metric: str, grid, refine: int) -> SearchResult:
    """Best γ of NUDGE-N on ``grid``, refined with ``refine`` points each side of the best."""
    grid = np.asarray(grid, dtype=float)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 0.0
    candidates = problem.cheapest_candidates(float(grid.max()) + step)
    return grid_search(lambda gs: [problem.metric(g, Method.N, metric, candidates) for g in gs],
                       grid, refine)


def grid_search(values_of: Callable[[list[float]], list[float]], grid,
                refine: int) -> SearchResult:
    """Maximise the objective on ``grid`` (ties to the smaller γ), then on ``2·refine + 1``
    evenly spaced points within one grid step of the best. ``values_of`` gives the objective
    at a list of γ (all at once: a pool scores them problem by problem)."""
    gammas = [float(g) for g in grid]
    step = gammas[1] - gammas[0] if len(gammas) > 1 else 0.0
    values = [float(v) for v in values_of(gammas)]
    if refine and len(gammas) > 1:
        best = first_best(values)
        lo, hi = max(gammas[best] - step, 0.0), min(gammas[best] + step, 4.0)
        new = [float(g) for g in np.linspace(lo, hi, 2 * refine + 1)
               if not np.any(np.isclose(g, gammas, rtol=0, atol=1e-12))]
        gammas += new
        values += [float(v) for v in values_of(new)] if new else []
    order = np.argsort(gammas, kind="stable")
    g_arr, v_arr = np.asarray(gammas)[order], np.asarray(values)[order]
    return SearchResult(float(g_arr[first_best(v_arr)]), g_arr, v_arr)


# -- NUDGE-M: exact sweep over all crossings -----------------------------------------------------
def sweep_linear(problem: ValidationProblem, metric: str, left_end: bool = False, *,
                 filter_lines: bool | None = None, event_budget: int | None = None
                 ) -> SearchResult:
    """Maximise ``metric`` over all γ ≥ 0 for NUDGE-M. The smallest maximising interval
    wins; its midpoint is returned (its left end when ``left_end``, as nudge-ft does).
    ``filter_lines`` and ``event_budget``: see :func:`.crossings.crossing_events`."""
    lines = problem.lines()
    crossings = crossing_events(lines, problem.scorer, metric, filter_lines, event_budget)
    zero_value = problem.metric(0.0, Method.M, metric)
    gamma, starts, values = best_interval(
        crossings, zero_value, lambda after, bound: next_crossing(lines, after, bound), left_end)
    return SearchResult(gamma, starts, values)
