"""``NudgeM`` and ``NudgeN``: NUDGE on embedding arrays, in scikit-learn's estimator style.

``fit`` reads the corpus once (a blocked top-k scan for the validation competition) and keeps
only the moved records: ``rows_``, their new ``vectors_`` and the per-record question sums
``sums_`` that later updates fold new questions into.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError, NotFittedError
from .checks import as_matrix, check_finite_nonzero, check_same_dim
from .closed_form import Geometry, question_sums
from .gamma_search import (
    Competition,
    SearchResult,
    ValidationProblem,
    search_grid,
    sweep_linear,
)
from .method import Method
from .metrics import REPORT_METRICS, parse_metric
from .relevance import Pairs, to_pairs
from .topk import topk_scan

#: nudge-ft's γ grid for NUDGE-N: 0, 0.02, …, 0.48
NUDGE_FT_GRID = tuple(0.02 * i for i in range(25))


def array_competition(docs: np.ndarray, norms: np.ndarray, val_q: np.ndarray, val_pairs: Pairs,
                      moved_rows: np.ndarray, k: int, device: str = "cpu"):
    """``(Competition, unmoved scores)`` of validation questions over records held in an
    array: each question's top ``k`` records among those that do not move (one blocked scan
    of the corpus, by cosine), and the cosine of every relevant pair whose record does not
    move (0 for the others)."""
    exclude = np.zeros(len(docs), dtype=bool)
    exclude[moved_rows] = True
    inv_norm = 1.0 / norms
    # unit-norm records (most embedding models) need no rescaling pass over the corpus
    unit = bool(np.all(np.abs(norms - 1.0) < 1e-6))
    scores, comp_rows = topk_scan(docs, val_q, k, row_scale=None if unit else inv_norm,
                                  exclude=exclude, device=device)
    # relevant records that move are scored by the search itself
    unmoved = np.zeros(len(val_pairs))
    still = ~exclude[val_pairs.row]
    if still.any():
        rows = val_pairs.row[still]
        rel_vecs = np.asarray(docs[rows], dtype=np.float64) * inv_norm[rows, None]
        unmoved[still] = np.einsum("ij,ij->i", np.asarray(val_q, dtype=np.float64)[
            val_pairs.query[still]], rel_vecs)
    return Competition(scores, comp_rows), unmoved


class _Nudge:
    """Shared parameters, validation and fitting; subclasses set the method."""

    _method: Method

    def __init__(self, metric: str = "ndcg@10", gamma: float | None = None,
                 device: str = "cpu", nudge_ft_compat: bool = False):
        self.metric = metric
        self.gamma = gamma
        self.device = device
        self.nudge_ft_compat = nudge_ft_compat

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
        return ("metric", "gamma", "device", "nudge_ft_compat")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _selection_metric(self) -> str:
        return "hit@1" if self.nudge_ft_compat else self.metric

    def _check_params(self) -> None:
        parse_metric(self.metric, "metric")
        if self.gamma is not None:
            g = self.gamma
            if isinstance(g, bool) or not isinstance(g, numbers.Real) or not np.isfinite(g) \
                    or g < 0:
                raise InputError(f"gamma={g!r} must be a finite number ≥ 0, or None to choose "
                                 "it on validation questions")
        if not isinstance(self.device, str):
            raise InputError(f"device={self.device!r} must be a string such as 'cpu' or 'cuda'")

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, doc_emb, train_q, train_rel, val_q=None, val_rel=None):
        """Fit on records ``doc_emb`` (n × d), training questions ``train_q`` (m × d) with
        relevance ``train_rel`` and, unless ``gamma`` is fixed, validation questions
        ``val_q`` with ``val_rel``. Relevance: one entry per question, a list of rows or a
        dict ``{row: grade}`` (grade > 0 is relevant). Returns ``self``."""
        self._check_params()
        docs = as_matrix(doc_emb, "doc_emb")
        tq = as_matrix(train_q, "train_q")
        check_same_dim(docs, "doc_emb", tq, "train_q")
        check_finite_nonzero(tq, "train_q")
        train_pairs = to_pairs(train_rel, len(tq), len(docs), "train_rel")
        if len(train_pairs) == 0:
            raise InputError("train_rel names no relevant record (grade > 0) for any question; "
                             "give at least one (question, record) pair")
        searching = self.gamma is None
        if searching:
            if val_q is None or val_rel is None:
                raise InputError("val_q and val_rel are needed to choose gamma; pass "
                                 "validation questions, or fix the step with gamma=...")
            vq = as_matrix(val_q, "val_q")
            check_same_dim(docs, "doc_emb", vq, "val_q")
            check_finite_nonzero(vq, "val_q")
            val_pairs = to_pairs(val_rel, len(vq), len(docs), "val_rel", require_each=True)
        norms = check_finite_nonzero(docs, "doc_emb")
        rows, sums = question_sums(tq, train_pairs)
        if not searching:
            return self._finish(rows, docs[rows], sums, None, None, None, None)

        k = max(parse_metric(self._selection_metric())[1],
                *(parse_metric(m)[1] for m in REPORT_METRICS))
        k = min(k, len(docs))  # no question has more competitors than there are records
        competition, unmoved = array_competition(docs, norms, vq, val_pairs, rows, k,
                                                 self.device)
        return self._finish(rows, docs[rows], sums, vq, val_pairs, competition, unmoved)

    def fit_prepared(self, rows: np.ndarray, vectors: np.ndarray, sums: np.ndarray,
                     val_q=None, val_pairs: Pairs | None = None,
                     competition: Competition | None = None, unmoved_scores=None):
        """Fit from parts a caller has gathered itself (a vector store, say): the moved
        ``rows`` (sorted, unique), their stored ``vectors``, their question ``sums``, and for
        validation the question vectors, relevant pairs, the top-K unmoved competitors per
        question and the scores of relevant records that do not move. Returns ``self``."""
        self._check_params()
        return self._finish(np.asarray(rows, dtype=np.int64), vectors, sums, val_q, val_pairs,
                            competition, unmoved_scores)

    def _finish(self, rows, vectors, sums, vq, val_pairs, competition, unmoved):
        geometry = Geometry.build(vectors, sums, skip_opposed=self._skip_opposed())
        report = {"method": self._method, "metric": self._selection_metric(),
                  "nudge_ft_compat": bool(self.nudge_ft_compat)}
        if self.gamma is not None:
            gamma = float(self.gamma)
            self.search_ = None
        else:
            problem = ValidationProblem(vq, val_pairs, rows, geometry, competition, unmoved)
            self.search_ = self._search(problem)
            gamma = self.search_.gamma
            metrics = tuple(dict.fromkeys((self._selection_metric(), *REPORT_METRICS)))
            report["n_val_questions"] = int(val_pairs.n_queries)
            report["before"] = problem.report(0.0, self._method, metrics)
            report["after"] = problem.report(gamma, self._method, metrics)
        report["gamma"] = gamma
        self.gamma_ = gamma
        self.rows_ = rows
        self.sums_ = sums
        self.geometry_ = geometry
        self.vectors_ = _as_float32(self._vectors(geometry, gamma), gamma)
        self.moved_ = self._moved_mask(geometry, gamma)
        report["n_moved"] = int(np.count_nonzero(self.moved_))
        self.n_features_in_ = int(sums.shape[1])
        self.report_ = report
        return self

    # -- use -----------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "gamma_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() "
                                 "first")

    def transform(self, doc_emb) -> np.ndarray:
        """A copy of ``doc_emb`` with rows L2-normalised and the moved rows replaced. Keeps
        the input's float dtype."""
        self._check_fitted()
        docs = as_matrix(doc_emb, "doc_emb")
        if docs.shape[1] != self.n_features_in_:
            raise InputError(f"doc_emb has dimension {docs.shape[1]} but the fit saw "
                             f"{self.n_features_in_}; pass the records the model was fitted on")
        if len(docs) <= int(self.rows_.max()):
            raise InputError(f"doc_emb has {len(docs)} rows but the fit moved row "
                             f"{int(self.rows_.max())}; pass the records it was fitted on")
        norms = check_finite_nonzero(docs, "doc_emb")
        out = (docs / norms[:, None].astype(docs.dtype)).astype(docs.dtype, copy=False)
        out[self.rows_] = self.vectors_.astype(out.dtype)
        return out

    def fit_transform(self, doc_emb, train_q, train_rel, val_q=None, val_rel=None):
        return self.fit(doc_emb, train_q, train_rel, val_q, val_rel).transform(doc_emb)


def _as_float32(vectors: np.ndarray, gamma: float) -> np.ndarray:
    """The moved vectors as stores keep them (float32), refusing a γ that overflows it."""
    largest = float(np.max(np.abs(vectors), initial=0.0))
    if not np.isfinite(largest) or largest > float(np.finfo(np.float32).max):
        raise InputError(f"gamma={gamma!r} moves records so far that their vectors do not fit "
                         f"in float32 (largest value {largest:.3g}, float32 ends at 3.4e38); "
                         "use a smaller gamma")
    return vectors.astype(np.float32)


class NudgeM(_Nudge):
    """NUDGE-M: ``e' = ê + γĜ``, γ chosen by exact maximisation of the validation metric over
    all γ ≥ 0. The output is not unit-norm: score it by inner product, never cosine.

    ``nudge_ft_compat=True`` reproduces nudge-ft 0.1.2: γ maximises validation hit@1 and is
    the left end of the best interval (a crossing point) instead of its midpoint."""

    _method = Method.M

    def _skip_opposed(self) -> bool:
        return False

    def _search(self, problem: ValidationProblem) -> SearchResult:
        return sweep_linear(problem, self._selection_metric(), left_end=self.nudge_ft_compat)

    def _vectors(self, geometry: Geometry, gamma: float) -> np.ndarray:
        return geometry.m_vectors(gamma)

    def _moved_mask(self, geometry, gamma):
        return ~geometry.m_frozen & (gamma > 0)


class NudgeN(_Nudge):
    """NUDGE-N: each moved record travels on the unit sphere toward the sum of its questions,
    at most ``||e' − ê||² ≤ γ``. Output is unit-norm, so cosine and inner-product stores rank
    alike: the default for RAG vector stores.

    γ is chosen on a grid (``grid``, default 0 to ``max_gamma`` in steps of 0.02) and refined
    around the best point. ``skip_opposed`` leaves alone records whose questions point away
    from them (``G·ê < 0``), as nudge-ft does; by default they move, which is the true optimum
    of the constrained problem. ``nudge_ft_compat=True`` reproduces nudge-ft 0.1.2 exactly:
    its grid (0 … 0.48), hit@1 selection, no refinement, ``skip_opposed=True``."""

    _method = Method.N

    def __init__(self, metric: str = "ndcg@10", gamma: float | None = None,
                 device: str = "cpu", nudge_ft_compat: bool = False,
                 max_gamma: float = 0.48, grid_step: float = 0.02, refine: int = 10,
                 skip_opposed: bool = False):
        super().__init__(metric=metric, gamma=gamma, device=device,
                         nudge_ft_compat=nudge_ft_compat)
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
        if not (0 < self.grid_step <= self.max_gamma <= 4):
            raise InputError(f"need 0 < grid_step ≤ max_gamma ≤ 4; got grid_step="
                             f"{self.grid_step!r}, max_gamma={self.max_gamma!r}")

    def _skip_opposed(self) -> bool:
        return bool(self.skip_opposed or self.nudge_ft_compat)

    def _search(self, problem: ValidationProblem) -> SearchResult:
        if self.nudge_ft_compat:
            return search_grid(problem, "hit@1", np.asarray(NUDGE_FT_GRID), refine=0)
        n_steps = int(np.floor(self.max_gamma / self.grid_step + 1e-9))
        grid = self.grid_step * np.arange(n_steps + 1)
        return search_grid(problem, self.metric, grid, refine=int(self.refine))

    def _vectors(self, geometry: Geometry, gamma: float) -> np.ndarray:
        return geometry.n_vectors(gamma)

    def _moved_mask(self, geometry, gamma):
        return ~geometry.n_frozen & (gamma > 0)
