"""Choosing γ and the memory weight α on held-out questions: validation questions, K folds of
the training questions, or both.

The paper chooses γ on validation questions alone, a few dozen on small datasets, so the choice
is noisy. Cross-validation scores every training question too: fold ``j``'s questions are
held out and scored against a fit of the other folds. Each held-out set is a
:class:`.gamma_search.ValidationProblem`; a :class:`Pool` of them is scored as one set, every
question counting once, and the searches maximise the pooled metric.

Folds cost little. A fit on part of the training questions moves a subset of the records that
all of them name, so every fold's problem is built over the same moved records (those that a
fold's fitting questions do not name have a zero question sum and stay where they are, with
no memory). The records that do not move are then the same in every fold, and one search of
the corpus per training question gives every fold its competition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .closed_form import Geometry, question_sums
from .crossings import (
    TIE,
    Crossings,
    best_interval,
    crossing_events,
    first_best,
    next_crossing,
)
from .gamma_search import Competition, SearchResult, ValidationProblem, grid_search
from .memory import QueryMemory, alpha_bounds, unit_keys
from .method import Method
from .metrics import parse_metric, questions_with
from .relevance import Pairs

SELECTIONS = ("cv", "validation")


def check_protocol(selection, folds, refit, memory) -> None:
    """The parameters that say how a fit chooses and what it keeps."""
    if selection not in SELECTIONS:
        raise InputError(f"selection={selection!r} is unknown; use 'cv' (validation questions "
                         "plus folds of the training questions choose; the default) or "
                         "'validation' (the paper's protocol)")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InputError(f"folds={folds!r} must be an integer ≥ 2 (the number of folds)")
    for name, value in (("refit", refit), ("memory", memory)):
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{name}={value!r} must be True or False")


@dataclass
class HeldOut:
    """Questions scored against a fit that did not see them: their vectors, relevant pairs,
    each one's top-K competitors among the records that do not move, and the scores of the
    relevant records that do not move (see :class:`.gamma_search.ValidationProblem`)."""

    questions: np.ndarray
    pairs: Pairs
    competition: Competition
    unmoved: np.ndarray

    def subset(self, keep: np.ndarray) -> HeldOut:
        """The questions where ``keep`` is true."""
        return HeldOut(self.questions[keep], self.pairs.subset(keep),
                       Competition(self.competition.scores[keep], self.competition.rows[keep]),
                       self.unmoved[keep[self.pairs.query]])


@dataclass
class Training:
    """Training questions and the records they name: ``rows`` (sorted, in the caller's
    numbering) with their stored ``vectors``; ``pairs`` name rows of that numbering."""

    rows: np.ndarray
    vectors: np.ndarray
    questions: np.ndarray
    pairs: Pairs
    _unit_keys: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def columns(self) -> np.ndarray:
        """Each pair's record as a position in ``rows``."""
        return np.searchsorted(self.rows, self.pairs.row)

    def sums(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Per record of ``rows``, the sum of the kept questions that name it (zero where none
        does); all questions when ``keep`` is ``None``."""
        pairs = self.pairs if keep is None else _pairs_of(self.pairs, keep)
        named, sums = question_sums(self.questions, pairs)
        if keep is None:
            return sums
        out = np.zeros((len(self.rows), self.questions.shape[1]))
        out[np.searchsorted(self.rows, named)] = sums
        return out

    def memory(self, keep: np.ndarray | None = None) -> QueryMemory:
        """The kept questions as memory keys over the columns of ``rows``."""
        pairs, cols = self.pairs, self.columns()
        if keep is not None:
            mine = np.asarray(keep, dtype=bool)[pairs.query]
            pairs = Pairs(pairs.query[mine], pairs.row[mine], pairs.grade[mine],
                          pairs.n_queries)
            cols = cols[mine]
        return QueryMemory.build(self.questions, pairs, cols, len(self.rows), self._keys())

    def _keys(self) -> np.ndarray:
        """The questions as unit vectors, computed once: every fold's memory shares them."""
        if self._unit_keys is None:
            self._unit_keys = unit_keys(self.questions)
        return self._unit_keys


def _pairs_of(pairs: Pairs, keep: np.ndarray) -> Pairs:
    """The pairs of the kept questions, question numbers unchanged."""
    mine = np.asarray(keep, dtype=bool)[pairs.query]
    return Pairs(pairs.query[mine], pairs.row[mine], pairs.grade[mine], pairs.n_queries)


@dataclass
class FinalFit:
    """What the fitted model is built from: the moved ``rows`` with their stored ``vectors``
    and question ``sums``, and the memory of its questions (``None``: none kept)."""

    rows: np.ndarray
    vectors: np.ndarray
    sums: np.ndarray
    memory: QueryMemory | None = None

    @classmethod
    def of(cls, training: Training) -> FinalFit:
        """The fit on every question of ``training``."""
        return cls(training.rows, training.vectors, training.sums(), training.memory())


@dataclass
class FitParts:
    """Everything a fit needs, gathered by its caller from an array, shards or a store.

    ``training``: the training questions. ``validation``: validation questions, their
    competition taken without the records the training questions name. ``training_held``:
    the training questions' own competition, taken the same way (for the folds), with
    ``folds`` their fold labels. ``final``: the fit on every labelled question (the refit);
    ``None`` builds the model from the training questions."""

    training: Training
    validation: HeldOut | None = None
    training_held: HeldOut | None = None
    folds: np.ndarray | None = None
    final: FinalFit | None = None


# -- the pool of held-out problems -----------------------------------------------------------
class Pool:
    """Held-out problems scored as one question set. ``warm[i]`` says whether problem ``i``'s
    questions have a relevant record that its fitting questions name (the others, "cold",
    cannot gain from NUDGE)."""

    def __init__(self, problems: list[ValidationProblem], warm: list[np.ndarray],
                 names: list[str]):
        self.problems = problems
        self.warm = warm
        self.names = names
        self.n_questions = int(sum(p.pairs.n_queries for p in problems))
        self._candidates: list = [None] * len(problems)

    def prune(self, method: Method, gamma_hi: float, alphas) -> None:
        """Prepare NUDGE-N's candidates for γ ≤ ``gamma_hi`` and the weights ``alphas``."""
        if method is Method.N:
            bounds = alpha_bounds(alphas)
            self._candidates = []
            for problem in self.problems:
                self._candidates.append(problem.cheapest_candidates(gamma_hi, bounds))
                # where pruning does not pay, :meth:`scored` computes them again, one
                # problem at a time
                problem.release_products()

    def per_question(self, gamma: float, alpha: float, method: Method,
                     metric: str) -> np.ndarray:
        """``metric`` of every question of every problem, problem by problem."""
        return np.concatenate([p.per_question(gamma, method, metric, c, alpha)
                               for p, c in zip(self.problems, self._candidates)])

    def scored(self, points, method: Method, metrics) -> list[dict[str, np.ndarray]]:
        """Per (γ, α) of ``points`` and per metric, every question's value (as
        :meth:`per_question`). Problem by problem, all points at once: a problem scored
        densely (NUDGE-M, or NUDGE-N where pruning does not pay) holds its products only
        while its own questions are scored, so the sets' products are never all held."""
        parts = [{m: [] for m in metrics} for _ in points]
        for problem, cands in zip(self.problems, self._candidates):
            for out, (gamma, alpha) in zip(parts, points):
                for m in metrics:
                    out[m].append(problem.per_question(gamma, method, m, cands, alpha))
            problem.release_products()
        return [{m: np.concatenate(v) for m, v in out.items()} for out in parts]

    def table(self, grid, alphas, method: Method, metric: str) -> np.ndarray:
        """:meth:`value` at every (γ, α) of ``grid`` × ``alphas`` (see :meth:`scored`)."""
        points = [(g, a) for g in grid for a in alphas]
        values = [float(v[metric].sum() / self.n_questions)
                  for v in self.scored(points, method, (metric,))]
        return np.array(values).reshape(len(grid), len(alphas))

    def value(self, gamma: float, alpha: float, method: Method, metric: str) -> float:
        """The pooled mean of ``metric``."""
        return float(self.per_question(gamma, alpha, method, metric).sum() / self.n_questions)

    def problem_report(self, i: int, gamma: float, alpha: float, method: Method,
                       metrics) -> dict:
        """Before and after means of problem ``i`` alone (the validation questions, say)."""
        problem, cands = self.problems[i], self._candidates[i]
        return {key: {m: float(problem.per_question(g, method, m, cands, a).mean())
                      for m in metrics}
                for key, (g, a) in (("before", (0.0, 0.0)), ("after", (gamma, alpha)))}

    def report(self, gamma: float, alpha: float, method: Method, metrics) -> dict:
        """Before (γ = 0, no memory) and after (γ, α) means of ``metrics``, over all questions
        and over the warm and the cold ones apart."""
        warm = np.concatenate(self.warm)
        out: dict = {"n_questions": self.n_questions,
                     "warm": {"n_questions": int(warm.sum())},
                     "cold": {"n_questions": int((~warm).sum())}}
        keys = ("before", "after")
        scored = self.scored(((0.0, 0.0), (gamma, alpha)), method, metrics)
        for key, values in zip(keys, scored):
            out[key] = {m: float(v.sum() / self.n_questions) for m, v in values.items()}
            for part, mask in (("warm", warm), ("cold", ~warm)):
                out[part][key] = {m: float(v[mask].mean()) if mask.any() else None
                                  for m, v in values.items()}
        return out


def validation_pool_part(training: Training, held: HeldOut, geometry: Geometry,
                         memory: QueryMemory | None):
    """The validation questions against the fit on every training question."""
    problem = ValidationProblem(held.questions, held.pairs, training.rows, geometry,
                                held.competition, held.unmoved, memory)
    return problem, questions_with(held.pairs, problem.own_col >= 0)


def fold_pool_parts(training: Training, held: HeldOut, folds: np.ndarray, skip_opposed: bool,
                    with_memory: bool, e_hat: np.ndarray):
    """Per fold: its questions against the fit on the other folds' questions (``e_hat``: the
    unit records, the same in every fold)."""
    parts = []
    cols = training.columns()
    for j in np.unique(folds):
        out = folds == j
        fit = ~out
        geometry = Geometry.build(training.vectors, training.sums(fit), skip_opposed, e_hat)
        memory = training.memory(fit) if with_memory else None
        mine = held.subset(out)
        problem = ValidationProblem(mine.questions, mine.pairs, training.rows, geometry,
                                    mine.competition, mine.unmoved, memory)
        named = np.zeros(len(training.rows), dtype=bool)
        named[cols[fit[training.pairs.query]]] = True
        own = problem.own_col
        parts.append((problem, questions_with(mine.pairs, (own >= 0) & named[own])))
    return parts


def build_pool(parts: FitParts, geometry: Geometry, skip_opposed: bool, use_folds: bool,
               with_memory: bool) -> Pool:
    """The held-out problems of a fit: validation (if any) and the folds (if asked)."""
    problems, warm, names = [], [], []
    memory = parts.training.memory() if with_memory else None
    if parts.validation is not None:
        problem, w = validation_pool_part(parts.training, parts.validation, geometry, memory)
        problems.append(problem)
        warm.append(w)
        names.append("validation")
    if use_folds:
        for i, (problem, w) in enumerate(fold_pool_parts(parts.training, parts.training_held,
                                                         parts.folds, skip_opposed,
                                                         with_memory, geometry.e_hat)):
            problems.append(problem)
            warm.append(w)
            names.append(f"fold {i}")
    return Pool(problems, warm, names)


# -- searches ----------------------------------------------------------------------------------
@dataclass
class Choice:
    """The chosen γ and α, with the search's curve (γ at the chosen α)."""

    gamma: float
    alpha: float
    search: SearchResult


def search_table(pool: Pool, method: Method, metric: str, grid, alphas, refine: int,
                 smooth: bool = False) -> Choice:
    """Every (γ, α) of ``grid`` × ``alphas``; the first best (smallest γ, then smallest α)
    wins, and γ is then refined at that α with ``refine`` points each side. With ``smooth``
    the best is that of :func:`smoothed` (the centre of the best neighbourhood)."""
    grid = [float(g) for g in grid]
    alphas = [float(a) for a in alphas]
    table = pool.table(grid, alphas, method, metric)
    best = first_best((smoothed(table, alphas) if smooth else table).ravel())
    if smooth and grid[0] == 0 and alphas[0] == 0 and table.flat[best] < table[0, 0] - TIE:
        best = 0  # a neighbourhood's centre that does worse than no change is no choice
    alpha = alphas[best % len(alphas)]
    column = dict(zip(grid, table[:, best % len(alphas)]))

    def values_of(gammas):
        if all(g in column for g in gammas):
            return [column[g] for g in gammas]
        # the refinement's points, problem by problem (each dense one's products once)
        return list(pool.table(gammas, [alpha], method, metric)[:, 0])

    search = grid_search(values_of, grid, refine)
    return Choice(search.gamma, alpha, search)


def smoothed(table: np.ndarray, alphas) -> np.ndarray:
    """``table`` (γ × α, α ascending) with each entry replaced by the mean of its 3 × 3
    neighbourhood, edges repeated. A column α = 0 (no memory) is smoothed along γ alone, and
    stands beside the smallest α > 0 as its neighbour: below about 0.8 the memory rarely
    outscores a record (:data:`.memory.DEFAULT_ALPHAS`), so the two are close in effect.

    On a few hundred held-out questions the table is noisy: a lone peak one grid step wide is
    mostly luck (choosing it overfitted Cranfield's γ to a few questions), while a good
    region stays good around its best point. Choosing the best neighbourhood keeps the
    choice on a plateau."""
    n, m = table.shape
    pad = np.pad(table, 1, mode="edge")
    out = np.mean([pad[1 + i:1 + i + n, 1 + j:1 + j + m] for i in (-1, 0, 1)
                   for j in (-1, 0, 1)], axis=0)
    off = np.asarray(alphas) == 0
    if off.any():
        out[:, off] = np.mean([pad[1 + i:1 + i + n, 1:1 + m][:, off] for i in (-1, 0, 1)],
                              axis=0)
    return out


def sweep_pool(pool: Pool, metric: str, left_end: bool) -> SearchResult:
    """NUDGE-M without memory: the exact sweep over every γ ≥ 0 of the pooled metric. Each
    problem's crossing events change its own mean; weighted by its share of the questions
    they change the pooled mean."""
    parse_metric(metric)
    share = [p.pairs.n_queries / pool.n_questions for p in pool.problems]
    lines = [p.lines() for p in pool.problems]
    events = [crossing_events(ls, p.scorer, metric) for ls, p in zip(lines, pool.problems)]
    gamma = np.concatenate([e.gamma for e in events])
    delta = np.concatenate([e.delta * w for e, w in zip(events, share)])
    order = np.argsort(gamma, kind="stable")
    pooled = Crossings(gamma[order], delta[order], sum(e.value0 * w for e, w in zip(events, share)),
                       all(e.complete for e in events))
    zero = sum(p.metric(0.0, Method.M, metric) * w for p, w in zip(pool.problems, share))

    def following(after: float, bound: float) -> float | None:
        found = [next_crossing(ls, after, bound) for ls in lines]
        found = [f for f in found if f is not None]
        return min(found) if found else None

    gamma_best, starts, values = best_interval(pooled, zero, following, left_end)
    return SearchResult(gamma_best, starts, values)
