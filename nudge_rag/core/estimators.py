"""``NudgeM`` and ``NudgeN``: NUDGE on embedding arrays, in scikit-learn's estimator style.

``fit`` reads the corpus once per question set (a blocked top-k scan for each held-out
question's competition), chooses γ and the memory weight α on held-out questions
(:mod:`.selection`), and keeps only the moved records: ``rows_``, their new ``vectors_``, the
per-record question sums ``sums_`` that later updates fold new questions into, and the query
memory ``memory_`` (:mod:`.memory`) that :meth:`top_k` scores.

The defaults go beyond the paper's protocol: γ and α are chosen on the validation questions
plus 5 folds of the training questions (``selection="cv"``), the model is then fitted on every
labelled question (``refit=True``), and it remembers the questions (``memory=True``). Under
cross-validation the choice is the centre of the best 3 × 3 neighbourhood of the (γ, α) grid
(:func:`.selection.smoothed`), and ``report_`` holds that pool's cross-validated estimate
(``"estimate": "cross-validated"``), its warm and cold questions apart, and under
``"validation"`` the validation questions' own figures against the fit on the training
questions (the paper's). ``selection="validation", refit=False, memory=False`` is the paper's
protocol, unchanged.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError, NotFittedError
from .array_parts import array_parts, check_groups, check_validation
from .checks import as_matrix, check_finite_nonzero, check_same_dim
from .closed_form import Geometry
from .crossings import TIE
from .folds import cosine_groups, fold_labels_at_most
from .memory import DEFAULT_ALPHAS, QueryMemory
from .method import Method
from .metrics import REPORT_METRICS, parse_metric
from .relevance import to_pairs
from .selection import (
    Choice,
    FinalFit,
    FitParts,
    Pool,
    build_pool,
    check_protocol,
    search_table,
    sweep_pool,
)
from .topk import nudged_top_k

#: nudge-ft's γ grid for NUDGE-N: 0, 0.02, …, 0.48
NUDGE_FT_GRID = tuple(0.02 * i for i in range(25))
#: NUDGE-M's γ grid where memory is on: 0, 0.025, …, 1
M_GRID = tuple(0.025 * i for i in range(41))
#: NUDGE-M's (γ, α) grid under cross-validation: every other point of ``M_GRID`` and of the
#: memory weights. NUDGE-M has no pruned evaluation, so each point costs a dense count over
#: every fold; the coarser grid keeps the fit within a few times NudgeN's.
M_CV_GRID = M_GRID[::2]


class _Nudge:
    """Shared parameters, validation and fitting; subclasses set the method."""

    _method: Method

    def __init__(self, metric: str = "ndcg@10", gamma: float | None = None,
                 device: str = "cpu", nudge_ft_compat: bool = False, selection: str = "cv",
                 folds: int = 5, refit: bool = True, memory: bool = True,
                 alpha: float | None = None, seed: int = 0):
        self.metric = metric
        self.gamma = gamma
        self.device = device
        self.nudge_ft_compat = nudge_ft_compat
        self.selection = selection
        self.folds = folds
        self.refit = refit
        self.memory = memory
        self.alpha = alpha
        self.seed = seed

    # -- parameters ----------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._param_names():
                raise InputError(f"{type(self).__name__} has no parameter {name!r}; valid: "
                                 f"{sorted(self._param_names())}")
            setattr(self, name, value)
        return self

    def _param_names(self):
        return ("metric", "gamma", "device", "nudge_ft_compat", "selection", "folds", "refit",
                "memory", "alpha", "seed")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _selection_metric(self) -> str:
        return "hit@1" if self.nudge_ft_compat else self.metric

    def _check_params(self) -> None:
        parse_metric(self.metric, "metric")
        for name in ("gamma", "alpha"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                                  or not np.isfinite(v) or v < 0):
                raise InputError(f"{name}={v!r} must be a finite number ≥ 0, or None to choose "
                                 "it on held-out questions")
        if not isinstance(self.device, str):
            raise InputError(f"device={self.device!r} must be a string such as 'cpu' or 'cuda'")
        if not isinstance(self.nudge_ft_compat, (bool, np.bool_)):
            raise InputError(f"nudge_ft_compat={self.nudge_ft_compat!r} must be True or False")
        seed = self.seed
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
                or seed < 0:
            raise InputError(f"seed={seed!r} must be an integer ≥ 0 (it draws the folds)")
        check_protocol(self.selection, self.folds, self.refit, self.memory)
        if not self.memory and self.alpha:
            raise InputError(f"alpha={self.alpha!r} weighs the query memory, but memory=False "
                             "keeps none; drop alpha or set memory=True")

    # -- the protocol --------------------------------------------------------------------------
    def _uses_folds(self) -> bool:
        return self._searching() and self.selection == "cv" and not self.nudge_ft_compat

    def _refits(self) -> bool:
        return bool(self.refit) and not self.nudge_ft_compat

    def _alphas(self) -> tuple[float, ...]:
        """The memory weights a fit may choose from (``(0,)``: no memory)."""
        if not self.memory or self.nudge_ft_compat:
            return (0.0,)
        return DEFAULT_ALPHAS if self.alpha is None else (float(self.alpha),)

    def _searching(self) -> bool:
        return self.gamma is None or len(self._alphas()) > 1

    def _depth(self) -> int:
        return max(parse_metric(self._selection_metric())[1],
                   *(parse_metric(m)[1] for m in REPORT_METRICS))

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, doc_emb, train_q, train_rel, val_q=None, val_rel=None, groups=None):
        """Fit on records ``doc_emb`` (n × d) and training questions ``train_q`` (m × d) with
        relevance ``train_rel``; ``val_q`` with ``val_rel`` are validation questions (needed
        by ``selection="validation"``; optional with the default cross-validation, where
        K folds of the training questions choose too). Relevance: one entry per question, a
        list of rows or a dict ``{row: grade}`` (grade > 0 is relevant). ``groups``: a label
        per training question, equal for questions that are the same question (they share a
        fold); default: questions whose vectors have cosine ≥ 0.995. Returns ``self``."""
        self._check_params()
        docs = as_matrix(doc_emb, "doc_emb")
        tq = as_matrix(train_q, "train_q")
        check_same_dim(docs, "doc_emb", tq, "train_q")
        check_finite_nonzero(tq, "train_q")
        train_pairs = to_pairs(train_rel, len(tq), len(docs), "train_rel")
        if len(train_pairs) == 0:
            raise InputError("train_rel names no relevant record (grade > 0) for any question; "
                             "give at least one (question, record) pair")
        val = check_validation(docs, val_q, val_rel, self._needs_validation())
        folds = self._fold_labels(tq, groups)
        norms = check_finite_nonzero(docs, "doc_emb")
        # no question has more competitors than there are records
        depth = min(self._depth(), len(docs)) if self._searching() else None
        parts = array_parts(docs, norms, tq, train_pairs, val, folds, depth, self._refits(),
                            self.device)
        return self.fit_prepared(parts)

    def _fold_labels(self, train_q: np.ndarray, groups=None) -> np.ndarray | None:
        """The training questions' fold labels where cross-validation chooses, else
        ``None``; questions of one group (default: cosine ≥ 0.995) share a fold. Fewer
        groups than ``folds`` get fewer folds (``None`` below two)."""
        if not self._uses_folds():
            return None
        labels = cosine_groups(train_q) if groups is None else check_groups(groups,
                                                                            len(train_q))
        return fold_labels_at_most(labels, int(self.folds), self.seed)

    def _needs_validation(self) -> bool:
        return self._searching() and (self.selection == "validation" or self.nudge_ft_compat)

    def fit_prepared(self, parts: FitParts):
        """Fit from parts a caller has gathered itself (:class:`.selection.FitParts`: from an
        array, shards or a vector store). Returns ``self``."""
        self._check_params()
        training = parts.training
        geometry = Geometry.build(training.vectors, training.sums(),
                                  skip_opposed=self._skip_opposed())
        gamma, alpha, report = self._choose(parts, geometry)
        final = parts.final if parts.final is not None and self._refits() else None
        if final is None:
            final = FinalFit(training.rows, training.vectors, training.sums(),
                             training.memory() if alpha > 0 else None)
            geometry_final = geometry
        else:
            geometry_final = Geometry.build(final.vectors, final.sums,
                                            skip_opposed=self._skip_opposed())
        self.gamma_ = gamma
        self.alpha_ = alpha
        self.rows_ = np.asarray(final.rows, dtype=np.int64)
        self.sums_ = final.sums
        self.geometry_ = geometry_final
        self.vectors_ = _as_float32(self._vectors(geometry_final, gamma), gamma)
        self.moved_ = self._moved_mask(geometry_final, gamma)
        self.memory_ = final.memory if alpha > 0 and final.memory is not None else \
            QueryMemory.empty(final.sums.shape[1], len(final.rows))
        self.n_features_in_ = int(final.sums.shape[1])
        report.update({"n_moved": int(np.count_nonzero(self.moved_)),
                       "refit": final is parts.final,
                       "n_memory_questions": len(self.memory_)})
        self.report_ = report
        return self

    def _choose(self, parts: FitParts, geometry: Geometry) -> tuple[float, float, dict]:
        """``(γ, α, report)``: fixed, or chosen on the held-out questions of ``parts``."""
        alphas = self._alphas()
        report = {"method": self._method, "metric": self._selection_metric(),
                  "nudge_ft_compat": bool(self.nudge_ft_compat),
                  "selection": "cv" if self._uses_folds() else "validation"}
        if not self._searching():
            self.search_ = None
            report.update({"gamma": float(self.gamma), "alpha": alphas[0]})
            return float(self.gamma), alphas[0], report
        cv = self._uses_folds() and parts.folds is not None
        if parts.validation is None and not cv:
            raise InputError("no held-out questions to choose gamma on: pass validation "
                             "questions, give at least 2 distinct training questions (for "
                             "selection='cv'), or fix gamma (and alpha)")
        pool = build_pool(parts, geometry, self._skip_opposed(), cv,
                          len(alphas) > 1 or alphas[0] > 0)
        choice = self._search(pool, alphas)
        self.search_ = choice.search
        metrics = tuple(dict.fromkeys((self._selection_metric(), *REPORT_METRICS)))
        estimate = pool.report(choice.gamma, choice.alpha, self._method, metrics)
        report.update({"gamma": choice.gamma, "alpha": choice.alpha,
                       "gamma_fixed": self.gamma is not None,
                       "estimate": "cross-validated" if cv else "validation",
                       "folds": len(np.unique(parts.folds)) if cv else 0,
                       "n_val_questions": 0 if parts.validation is None else
                       int(parts.validation.pairs.n_queries), **estimate})
        if cv and parts.validation is not None:
            report["validation"] = pool.problem_report(0, choice.gamma, choice.alpha,
                                                      self._method, metrics)
        return choice.gamma, choice.alpha, report

    # -- use -----------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "gamma_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() "
                                 "first")

    def _check_records(self, doc_emb) -> tuple[np.ndarray, np.ndarray]:
        """``doc_emb`` as a matrix, checked against the fit, and its row norms."""
        self._check_fitted()
        docs = as_matrix(doc_emb, "doc_emb")
        if docs.shape[1] != self.n_features_in_:
            raise InputError(f"doc_emb has dimension {docs.shape[1]} but the fit saw "
                             f"{self.n_features_in_}; pass the records the model was fitted on")
        if len(docs) <= int(self.rows_.max()):
            raise InputError(f"doc_emb has {len(docs)} rows but the fit moved row "
                             f"{int(self.rows_.max())}; pass the records it was fitted on")
        return docs, check_finite_nonzero(docs, "doc_emb")

    def transform(self, doc_emb) -> np.ndarray:
        """A copy of ``doc_emb`` with rows L2-normalised and the moved rows replaced. Keeps
        the input's float dtype. The query memory is not in it: :meth:`top_k` scores it."""
        docs, norms = self._check_records(doc_emb)
        out = (docs / norms[:, None].astype(docs.dtype)).astype(docs.dtype, copy=False)
        out[self.rows_] = self.vectors_.astype(out.dtype)
        return out

    def fit_transform(self, doc_emb, train_q, train_rel, val_q=None, val_rel=None,
                      groups=None):
        return self.fit(doc_emb, train_q, train_rel, val_q, val_rel, groups).transform(doc_emb)

    def top_k(self, doc_emb, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The exact top ``k`` records of the nudged corpus for each query, memory applied:
        ``(rows, scores)``, each queries × k, best first (ties to the lower row). Scores are
        inner products with the records as :meth:`transform` gives them (for unit queries,
        the cosine a store reports); a remembered record scores the better of that and
        ``alpha_ · max q·t̂`` over the training questions ``t`` that named it."""
        docs, norms = self._check_records(doc_emb)
        q = as_matrix(queries, "queries")
        check_same_dim(docs, "doc_emb", q, "queries")
        check_finite_nonzero(q, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k={k!r} must be an integer ≥ 1")
        return nudged_top_k(docs, norms, q, int(k), self.rows_, self.vectors_, self.memory_,
                            self.alpha_, self.device)


def _as_float32(vectors: np.ndarray, gamma: float) -> np.ndarray:
    """The moved vectors as stores keep them (float32), refusing a γ that overflows it."""
    largest = float(np.max(np.abs(vectors), initial=0.0))
    if not np.isfinite(largest) or largest > float(np.finfo(np.float32).max):
        raise InputError(f"gamma={gamma!r} moves records so far that their vectors do not fit "
                         f"in float32 (largest value {largest:.3g}, float32 ends at 3.4e38); "
                         "use a smaller gamma")
    return vectors.astype(np.float32)


class NudgeM(_Nudge):
    """NUDGE-M: ``e' = ê + γĜ``. Under cross-validation (the default) γ and α are chosen
    on a grid (``M_CV_GRID``: γ from 0 to 1 in steps of 0.05, α = 0 or 0.80 to 0.98 in steps
    of 0.02) as NudgeN chooses them. With
    ``selection="validation"`` and no memory γ is chosen by exact maximisation of the
    held-out metric over all γ ≥ 0; with memory each α > 0 is also tried on the grid,
    refined around its best. The output is not unit-norm: score it by inner
    product, never cosine.

    ``nudge_ft_compat=True`` reproduces nudge-ft 0.1.2: the paper's protocol (validation
    questions choose, no refit, no memory), γ maximises validation hit@1 and is the left end
    of the best interval (a crossing point) instead of its midpoint."""

    _method = Method.M

    def _skip_opposed(self) -> bool:
        return False

    def _search(self, pool: Pool, alphas) -> Choice:
        metric = self._selection_metric()
        if self.gamma is not None:
            return search_table(pool, Method.M, metric, [float(self.gamma)], alphas, 0)
        if self._uses_folds():  # cross-validation: the best neighbourhood of the grid
            if self.alpha is None and len(alphas) > 1:
                alphas = (0.0, *[a for a in alphas if a > 0][::2])
            return search_table(pool, Method.M, metric, M_CV_GRID, alphas, 0, smooth=True)
        sweep = sweep_pool(pool, metric, left_end=self.nudge_ft_compat)
        best = Choice(sweep.gamma, 0.0, sweep)
        with_memory = [a for a in alphas if a > 0]
        if with_memory:
            value = pool.value(best.gamma, 0.0, Method.M, metric)
            other = search_table(pool, Method.M, metric, M_GRID, with_memory, refine=10)
            if pool.value(other.gamma, other.alpha, Method.M, metric) > value + TIE:
                return other
        return best

    def _vectors(self, geometry: Geometry, gamma: float) -> np.ndarray:
        return geometry.m_vectors(gamma)

    def _moved_mask(self, geometry, gamma):
        return ~geometry.m_frozen & (gamma > 0)


class NudgeN(_Nudge):
    """NUDGE-N: each moved record travels on the unit sphere toward the sum of its questions,
    at most ``||e' − ê||² ≤ γ``. Output is unit-norm, so cosine and inner-product stores rank
    alike: the default for RAG vector stores.

    γ is chosen on a grid (default 0 to ``max_gamma`` in steps of ``grid_step`` = 0.02), with
    α when there is memory: under cross-validation (the default) the best neighbourhood of
    the grid wins; with ``selection="validation"`` the best point, refined with ``refine``
    points each side. ``skip_opposed`` leaves alone
    records whose questions point away from them (``G·ê < 0``), as nudge-ft does; by default
    they move, which is the true optimum of the constrained problem.
    ``nudge_ft_compat=True`` reproduces nudge-ft 0.1.2 exactly: the paper's protocol
    (validation questions choose, no refit, no memory), its grid (0 … 0.48), hit@1
    selection, no refinement, ``skip_opposed=True``."""

    _method = Method.N

    def __init__(self, metric: str = "ndcg@10", gamma: float | None = None,
                 device: str = "cpu", nudge_ft_compat: bool = False, selection: str = "cv",
                 folds: int = 5, refit: bool = True, memory: bool = True,
                 alpha: float | None = None, seed: int = 0, max_gamma: float = 0.48,
                 grid_step: float = 0.02, refine: int = 10, skip_opposed: bool = False):
        super().__init__(metric=metric, gamma=gamma, device=device,
                         nudge_ft_compat=nudge_ft_compat, selection=selection, folds=folds,
                         refit=refit, memory=memory, alpha=alpha, seed=seed)
        self.max_gamma = max_gamma
        self.grid_step = grid_step
        self.refine = refine
        self.skip_opposed = skip_opposed

    def _param_names(self):
        return (*super()._param_names(), "max_gamma", "grid_step", "refine", "skip_opposed")

    def _check_params(self) -> None:
        super()._check_params()
        if self.gamma is not None and self.gamma > 4:
            raise InputError(f"gamma={self.gamma!r} exceeds 4, the squared diameter of the unit "
                             "sphere; any gamma ≥ 4 already lets every record reach its target")
        if not isinstance(self.skip_opposed, (bool, np.bool_)):
            raise InputError(f"skip_opposed={self.skip_opposed!r} must be True or False")
        refine = self.refine
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 0:
            raise InputError(f"refine={refine!r} must be an integer ≥ 0 (points each side)")
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                   for v in (self.grid_step, self.max_gamma)) \
                or not (0 < self.grid_step <= self.max_gamma <= 4):
            raise InputError(f"need 0 < grid_step ≤ max_gamma ≤ 4; got grid_step="
                             f"{self.grid_step!r}, max_gamma={self.max_gamma!r}")

    def _skip_opposed(self) -> bool:
        return bool(self.skip_opposed or self.nudge_ft_compat)

    def _search(self, pool: Pool, alphas) -> Choice:
        smooth = False
        if self.gamma is not None:
            grid, refine = [float(self.gamma)], 0
        elif self.nudge_ft_compat:
            grid, refine = list(NUDGE_FT_GRID), 0
        else:
            n_steps = int(np.floor(self.max_gamma / self.grid_step + 1e-9))
            grid, refine = list(self.grid_step * np.arange(n_steps + 1)), int(self.refine)
            if self._uses_folds():  # cross-validation: the best neighbourhood of the grid
                refine, smooth = 0, True
        step = grid[1] - grid[0] if len(grid) > 1 else 0.0
        pool.prune(Method.N, max(grid) + step, alphas)
        return search_table(pool, Method.N, self._selection_metric(), grid, alphas, refine,
                            smooth)

    def _vectors(self, geometry: Geometry, gamma: float) -> np.ndarray:
        return geometry.n_vectors(gamma)

    def _moved_mask(self, geometry, gamma):
        return ~geometry.n_frozen & (gamma > 0)
