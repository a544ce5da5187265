"""``EmbeddingFinetuner``: NUDGE on the index a user already has.

It embeds the questions with the index's own model (query path), reads the stored vectors of
the records the training questions name and nothing else, takes each validation question's
competition from the store's own search, runs the engine, and returns a :class:`NudgeDelta`.
The embedding model is never touched and the corpus is never re-embedded.
"""

from __future__ import annotations

import numpy as np

from .core.closed_form import Geometry, question_sums
from .core.estimators import NudgeM, NudgeN
from .core.gamma_search import Competition, ValidationProblem
from .core.method import Method
from .core.metrics import REPORT_METRICS, parse_metric
from .core.relevance import Pairs, to_pairs
from .delta import NudgeDelta
from .embedding import (
    PROBE_TEXT,
    embed_queries,
    model_fingerprint,
    questions_fingerprint,
    remember_probe,
)
from .errors import InputError, MismatchError, StoreError
from .questions import QuestionSet
from .questions.split import group_split
from .stores import adapt
from .stores.base import check_method_fits_store, check_unit_norm

METHODS = {Method.N: NudgeN, Method.M: NudgeM}


class EmbeddingFinetuner:
    """Fit NUDGE on a LlamaIndex index or a LangChain vector store.

    Parameters are stored as given; ``fit`` returns the fitted :class:`NudgeDelta` and keeps
    it as ``delta_``. ``method`` is ``"nudge-n"`` (unit-norm output, safe for every store) or
    ``"nudge-m"`` (inner-product stores only). ``metric`` chooses γ on validation questions;
    ``gamma`` fixes it instead. ``val_fraction`` holds out part of the training questions when
    no validation questions are given. ``embed_model`` overrides the index's own model.
    """

    def __init__(self, index_or_store, method: str = "nudge-n", metric: str = "ndcg@10",
                 gamma: float | None = None, val_fraction: float = 0.1, seed: int = 0,
                 embed_model=None, show_progress: bool = True, batch_size: int = 64,
                 nudge_ft_compat: bool = False, device: str = "cpu"):
        self.index_or_store = index_or_store
        self.method = method
        self.metric = metric
        self.gamma = gamma
        self.val_fraction = val_fraction
        self.seed = seed
        self.embed_model = embed_model
        self.show_progress = show_progress
        self.batch_size = batch_size
        self.nudge_ft_compat = nudge_ft_compat
        self.device = device

    # -- helpers ---------------------------------------------------------------------------------
    def _adapter(self):
        adapter = adapt(self.index_or_store)
        if adapter.count() == 0 or adapter.dimension() is None:
            raise StoreError(f"the {adapter.kind} holds no vectors; build the index over your "
                             "documents (with an embedding model) before fitting")
        return adapter

    def _model(self, adapter):
        return self.embed_model if self.embed_model is not None else adapter.embed_model()

    @property
    def _method(self) -> Method:
        return Method.parse(self.method)

    def _check_params(self):
        Method.parse(self.method)
        parse_metric(self.metric, "metric")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"val_fraction={self.val_fraction!r} must be between 0 and 1")

    def _embed(self, qs: QuestionSet, adapter, name: str, probe: bool = False) -> np.ndarray:
        if qs.embeddings is not None:
            emb = np.asarray(qs.embeddings, dtype=np.float64)
        else:
            if any(t is None or not str(t).strip() for t in qs.texts):
                raise InputError(f"{name} has a question without text or embedding")
            texts = list(qs.texts) + ([PROBE_TEXT] if probe else [])
            emb = embed_queries(self._model(adapter), texts, self.batch_size,
                                self.show_progress)
            if probe:  # the model's fingerprint: what it makes of a fixed text
                remember_probe(self._model(adapter), emb[-1])
                emb = emb[:-1]
        dim = adapter.dimension()
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise MismatchError(f"{name} embeddings have dimension {emb.shape[-1]} but the "
                                f"{adapter.kind} holds {dim}-d vectors; embed the questions with "
                                "the model that built the index")
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        if not np.all(np.isfinite(emb)) or np.any(norms == 0):
            raise InputError(f"{name} has a NaN, infinite or zero embedding")
        # unit questions: each question counts once in G, whatever its length
        return emb / norms

    def _split(self, qs: QuestionSet) -> tuple[QuestionSet, QuestionSet]:
        """Hold out ``val_fraction`` of the questions with the group-aware split, so
        validation never scores a question that training has seen in other words."""
        # at least one validation question, however small the set
        val_share = max(self.val_fraction, 1 / len(qs))
        try:
            train, val, _ = group_split(qs, train=1 - val_share, val=val_share, test=0,
                                        seed=self.seed)
        except InputError as exc:
            raise InputError(f"{exc}; or pass val_questions=...") from None
        return train, val

    def _check_ids(self, adapter, qs: QuestionSet, name: str) -> None:
        qs.validate(adapter.existing, name, f"the {adapter.kind}")

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, train_questions, val_questions=None, *, val_fraction: float | None = None):
        """Fit on ``train_questions``; choose γ on ``val_questions`` (or on a held-out
        ``val_fraction`` of the training questions, split group-aware). Questions are a
        ``QuestionSet`` or anything ``QuestionSet.coerce`` takes (a JSONL path, ``(text or
        embedding, relevant)`` pairs, dict rows). Returns the :class:`NudgeDelta`."""
        if val_fraction is not None:
            self.val_fraction = val_fraction
        self._check_params()
        check_method_fits_store(adapt(self.index_or_store), self._method)
        adapter = self._adapter()
        train = QuestionSet.coerce(train_questions, "train_questions")
        val = None
        if self.gamma is None:
            if val_questions is None:
                train, val = self._split(train)
            else:
                val = QuestionSet.coerce(val_questions, "val_questions")
        self._check_ids(adapter, train, "train_questions")
        if val is not None:
            self._check_ids(adapter, val, "val_questions")
        train_q = self._embed(train, adapter, "train_questions", probe=True)
        ids = sorted({i for rel in train.relevance for i in rel})
        row = {i: r for r, i in enumerate(ids)}
        pairs = _pairs(train.relevance, row)
        _, sums = question_sums(train_q, pairs)
        counts = np.bincount(pairs.row, minlength=len(ids))
        found, original = adapter.fetch(ids)
        if found != ids:
            raise StoreError("the store changed while fitting: some records vanished")
        fp = questions_fingerprint(train.ids, train.texts, ids, pairs)
        self.delta_ = self._fit_from_sums(adapter, ids, original, sums, counts, val,
                                          len(train), fp)
        return self.delta_

    def _fit_from_sums(self, adapter, ids, original, sums, counts, val: QuestionSet | None,
                       n_train: int, questions_fp: str, gamma=None) -> NudgeDelta:
        check_unit_norm(adapter, np.asarray(original), self._method)
        gamma = self.gamma if gamma is None else gamma
        est = METHODS[self._method](metric=self.metric, gamma=gamma, device=self.device,
                                    nudge_ft_compat=self.nudge_ft_compat)
        rows = np.arange(len(ids))
        if gamma is not None:
            est.fit_prepared(rows, original, sums)
        else:
            val_q = self._embed(val, adapter, "val_questions")
            k = max(parse_metric(est._selection_metric())[1],
                    *(parse_metric(m)[1] for m in REPORT_METRICS))
            k = min(k, adapter.count())  # no more competitors than records
            val_pairs, competition, unmoved = _competition(adapter, val_q, val.relevance, ids, k)
            # the γ search scores questions against the stored vectors: at their precision
            # (float32 for most stores), as the array engine does with float32 records
            val_q = val_q.astype(np.result_type(np.asarray(original).dtype, np.float32))
            est.fit_prepared(rows, original, sums, val_q, val_pairs, competition, unmoved)
        report = dict(est.report_)
        report.update({"n_train_questions": int(n_train),
                       "n_val_questions": 0 if val is None else len(val),
                       "store": adapter.kind, "similarity": adapter.similarity})
        model = self._model(adapter)
        # records that do not move (γ = 0, or questions that give no direction) keep the
        # stored vector exactly, so that applying the delta rewrites nothing of theirs
        vectors = est.vectors_.copy()
        vectors[~est.moved_] = np.asarray(original)[~est.moved_]
        return NudgeDelta(
            ids=list(ids), vectors=vectors, original=np.asarray(original),
            sums=est.sums_, counts=np.asarray(counts, dtype=np.int64), method=self._method,
            gamma=float(est.gamma_), metric=est._selection_metric(),
            similarity=adapter.similarity, dim=int(adapter.dimension()),
            model=model_fingerprint(model, adapter.dimension()), questions=questions_fp,
            fit_report=report)

    def update(self, delta: NudgeDelta, new_questions, val_questions=None) -> NudgeDelta:
        """Fold ``new_questions`` into ``delta`` without re-embedding the old ones: the delta
        keeps each moved record's sum of question vectors. With ``val_questions`` γ is chosen
        again; without, the delta's γ is kept. Equals a full refit on the union."""
        self._check_params()
        adapter = self._adapter()
        new = QuestionSet.coerce(new_questions, "new_questions")
        self._check_ids(adapter, new, "new_questions")
        new_q = self._embed(new, adapter, "new_questions", probe=True)
        ids = sorted(set(delta.ids) | {i for rel in new.relevance for i in rel})
        row = {i: r for r, i in enumerate(ids)}
        sums = np.zeros((len(ids), delta.dim))
        counts = np.zeros(len(ids), dtype=np.int64)
        old_rows = [row[i] for i in delta.ids]
        sums[old_rows] = delta.sums
        counts[old_rows] = delta.counts
        pairs = _pairs(new.relevance, row)
        new_rows, new_sums = question_sums(new_q, pairs)
        sums[new_rows] += new_sums
        counts += np.bincount(pairs.row, minlength=len(ids))
        # old records keep their pre-nudge vectors, even if the delta was applied in place
        original = np.zeros((len(ids), delta.dim))
        original[old_rows] = delta.original
        fresh = [i for i in ids if i not in set(delta.ids)]
        found, vecs = adapter.fetch(fresh)
        if found != fresh:
            raise StoreError("some records named by new_questions vanished from the store")
        if fresh:
            original[[row[i] for i in fresh]] = vecs
        val = None
        gamma = None
        if val_questions is None:
            gamma = delta.gamma
        else:
            val = QuestionSet.coerce(val_questions, "val_questions")
            self._check_ids(adapter, val, "val_questions")
        fp = questions_fingerprint([delta.questions, *new.ids], [None, *new.texts], ids, pairs)
        n_train = delta.fit_report.get("n_train_questions", 0) + len(new)
        self.delta_ = self._fit_from_sums(adapter, ids, original, sums, counts, val, n_train,
                                          fp, gamma=gamma)
        return self.delta_

    def evaluate(self, questions, delta: NudgeDelta | None = None,
                 metrics=REPORT_METRICS) -> dict:
        """Metrics of ``questions`` on the store as it is (``before``) and with ``delta``
        overlaid (``after``), exact, from the store's own search and the delta's records."""
        delta = delta if delta is not None else getattr(self, "delta_", None)
        if delta is None:
            raise InputError("no delta to evaluate; fit first or pass delta=...")
        adapter = self._adapter()
        qs = QuestionSet.coerce(questions, "questions")
        self._check_ids(adapter, qs, "questions")
        q = self._embed(qs, adapter, "questions")
        k = min(max(10, *(parse_metric(m)[1] for m in metrics)), adapter.count())
        pairs, competition, unmoved = _competition(adapter, q, qs.relevance, delta.ids, k)
        skip = delta.method is Method.N and bool(delta.fit_report.get("nudge_ft_compat"))
        geometry = Geometry.build(delta.original, delta.sums, skip_opposed=skip)
        problem = ValidationProblem(q, pairs, np.arange(len(delta.ids)), geometry, competition,
                                    unmoved)
        return {"n_questions": len(qs), "gamma": delta.gamma,
                "before": problem.report(0.0, delta.method, metrics),
                "after": problem.report(delta.gamma, delta.method, metrics)}


def _competition(adapter, q: np.ndarray, relevance, moved_ids: list[str], k: int):
    """Relevant pairs, the top-k unmoved competitors per question (from the store's search)
    and the scores of relevant records that do not move, all over one row numbering where the
    moved records come first."""
    comp_ids, comp_scores = adapter.competition(q, k, moved_ids)
    row = {i: r for r, i in enumerate(moved_ids)}
    for ids in [*(list(rel) for rel in relevance), *comp_ids]:
        for i in ids:
            row.setdefault(i, len(row))
    comp_rows = np.full(comp_scores.shape, -1, dtype=np.int64)
    for qi, ids in enumerate(comp_ids):
        comp_rows[qi, :len(ids)] = [row[i] for i in ids]
    pairs = _pairs(relevance, row)
    # a relevant record that does not move and is not among its question's top-k unmoved
    # records ranks below k whatever γ is: -inf says exactly that
    unmoved = np.full(len(pairs), -np.inf)
    match = comp_rows[pairs.query] == pairs.row[:, None]
    found = match.any(axis=1) & (pairs.row >= len(moved_ids))
    unmoved[found] = comp_scores[pairs.query[found], match[found].argmax(axis=1)]
    return pairs, Competition(comp_scores, comp_rows), unmoved


def _pairs(relevance: list[dict[str, float]], row: dict[str, int]) -> Pairs:
    rel_rows = [{row[i]: g for i, g in rel.items()} for rel in relevance]
    return to_pairs(rel_rows, len(rel_rows), len(row), "relevance")
