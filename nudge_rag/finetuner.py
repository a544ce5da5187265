"""``EmbeddingFinetuner``: NUDGE on the index a user already has.

It embeds the questions with the index's own model (query path), reads the stored vectors of
the records the training questions name and nothing else, takes each validation question's
competition from the store's own search, runs the engine, and returns a :class:`NudgeDelta`.
The embedding model is never touched and the corpus is never re-embedded.
"""

from __future__ import annotations

import numpy as np

from .core.checks import check_finite_nonzero
from .core.closed_form import Geometry
from .core.estimators import NudgeM, NudgeN
from .core.gamma_search import ValidationProblem
from .core.memory import QueryMemory
from .core.method import Method
from .core.metrics import REPORT_METRICS, parse_metric, questions_with
from .core.relevance import Pairs
from .delta import NudgeDelta
from .embedding import (
    PROBE_TEXT,
    embed_queries,
    model_fingerprint,
    questions_fingerprint,
    remember_probe,
)
from .errors import InputError, MismatchError, StoreError
from .questions import QuestionSet, group_fold_labels
from .questions.split import check_seed, group_split
from .store_parts import add_questions, held_out, relevance_pairs, store_parts, summed_parts
from .stores import adapt
from .stores.base import check_method_fits_store, check_unit_norm

METHODS = {Method.N: NudgeN, Method.M: NudgeM}


class EmbeddingFinetuner:
    """Fit NUDGE on a LlamaIndex index or a LangChain vector store.

    Parameters are stored as given; ``fit`` returns the fitted :class:`NudgeDelta` and keeps
    it as ``delta_``. ``method`` is ``"nudge-n"`` (unit-norm output, safe for every store) or
    ``"nudge-m"`` (inner-product stores only). ``metric`` chooses γ (and α) on held-out
    questions; ``gamma`` (and ``alpha``) fix them instead. ``embed_model`` overrides the
    index's own model.

    How the fit chooses and what it keeps, as :class:`~nudge_rag.NudgeN` does:
    ``selection="cv"`` (default) chooses on the validation questions plus ``folds`` folds of
    the training questions, duplicates kept in one fold; ``"validation"`` on validation
    questions alone, the paper's protocol (without them ``val_fraction`` of the training
    questions is held out). ``refit=True`` then fits on training and validation questions
    together. ``memory=True`` keeps the questions' vectors in the delta as extra keys
    pointing at the records they name (the retriever scores them; ``apply`` cannot write
    them, and they can reveal what users asked: ``memory=False`` keeps none, though every
    delta keeps the per-record question sums that :meth:`update` needs).
    ``selection="validation", refit=False, memory=False`` is the paper's protocol.
    """

    def __init__(self, index_or_store, method: str = "nudge-n", metric: str = "ndcg@10",
                 gamma: float | None = None, val_fraction: float = 0.1, seed: int = 0,
                 embed_model=None, show_progress: bool = True, batch_size: int = 64,
                 nudge_ft_compat: bool = False, device: str = "cpu", selection: str = "cv",
                 folds: int = 5, refit: bool = True, memory: bool = True,
                 alpha: float | None = None):
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
        self.selection = selection
        self.folds = folds
        self.refit = refit
        self.memory = memory
        self.alpha = alpha

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
        if not 0 < self.val_fraction < 1:
            raise InputError(f"val_fraction={self.val_fraction!r} must be between 0 and 1")
        check_seed(self.seed)  # before the folds, whose cutting treats errors as too few
        self._estimator()._check_params()

    def _estimator(self, **override):
        """The array estimator this finetuner runs, with its settings (``override`` changes
        some, as an update does)."""
        params = {"metric": self.metric, "gamma": self.gamma, "device": self.device,
                  "nudge_ft_compat": self.nudge_ft_compat, "selection": self.selection,
                  "folds": self.folds, "refit": self.refit, "memory": self.memory,
                  "alpha": self.alpha, "seed": self.seed, **override}
        return METHODS[self._method](**params)

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
        # NaN/inf, zero rows, and rows too large to square (which np.linalg.norm would
        # silently turn into zero vectors) are refused, each said as what it is
        norms = check_finite_nonzero(emb, name)
        # unit questions: each question counts once in G, whatever its length
        return emb / norms[:, None]

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
        """Fit on ``train_questions``. γ and the memory weight α are chosen on
        ``val_questions`` plus ``folds`` folds of the training questions (``selection="cv"``,
        the default; without validation questions the folds alone choose) or on validation
        questions alone (``selection="validation"``; without them ``val_fraction`` of the
        training questions is held out, split group-aware). With ``refit`` the final fit uses
        the validation questions too. Questions are a ``QuestionSet`` or anything
        ``QuestionSet.coerce`` takes (a JSONL path, ``(text or embedding, relevant)`` pairs,
        dict rows). Returns the :class:`NudgeDelta`."""
        if val_fraction is not None:
            self.val_fraction = val_fraction
        self._check_params()
        check_method_fits_store(adapt(self.index_or_store), self._method)
        adapter = self._adapter()
        est = self._estimator()
        train, val = self._question_sets(adapter, est, train_questions, val_questions)
        train_q = self._embed(train, adapter, "train_questions", probe=True)
        val_q = None if val is None else self._embed(val, adapter, "val_questions")
        folds = self._fold_labels(train) if est._uses_folds() else None
        depth = min(est._depth(), adapter.count()) if est._searching() else None
        got = store_parts(adapter, train, train_q, val, val_q, depth=depth, folds=folds,
                          refit=est._refits())
        _check_stored(np.asarray(got.original), got.ids, adapter.kind)
        check_unit_norm(adapter, got.original, self._method)
        est.fit_prepared(got.parts)
        fp = fit_fingerprint(train, val if est._refits() else None, got)
        counts = {"n_train_questions": len(train),
                  "n_val_questions": 0 if val is None else len(val)}
        self.delta_ = self._delta(adapter, est, got.ids, got.original, got.counts, counts, fp)
        return self.delta_

    def _question_sets(self, adapter, est, train_questions, val_questions):
        """The training and validation question sets, checked against the store; the
        validation set is split off the training one where the protocol needs one and none
        is given (``None`` where there is none)."""
        train = QuestionSet.coerce(train_questions, "train_questions")
        val = None
        if val_questions is not None and (est._searching() or est._refits()):
            val = QuestionSet.coerce(val_questions, "val_questions")
        elif val_questions is None and est._needs_validation():
            train, val = self._split(train)
        self._check_ids(adapter, train, "train_questions")
        if val is not None:
            self._check_ids(adapter, val, "val_questions")
        return train, val

    def _fold_labels(self, train: QuestionSet) -> np.ndarray | None:
        """The training questions' folds: duplicates and near-duplicates share one (by text,
        as the group-aware split keeps them together). A small set gets fewer folds, down to
        two, as the array estimator does; ``None`` where not even two can be cut (then the
        validation questions alone choose)."""
        for k in range(min(int(self.folds), len(train)), 1, -1):
            try:
                return group_fold_labels(train, k=k, seed=self.seed)
            except InputError:  # fewer groups than k, or a group larger than n / k
                continue
        return None

    def _delta(self, adapter, est, ids, original, counts, sizes: dict,
               questions_fp: str) -> NudgeDelta:
        """The delta of a fitted estimator whose records are ``ids`` (stored as
        ``original``)."""
        if not np.array_equal(est.rows_, np.arange(len(ids))):
            raise AssertionError("the fit's records are not the delta's")  # a bug, not input
        report = dict(est.report_)
        report.update({**sizes, "store": adapter.kind, "similarity": adapter.similarity})
        model = self._model(adapter)
        # records that do not move (γ = 0, or questions that give no direction) keep the
        # stored vector exactly, so that applying the delta rewrites nothing of theirs
        vectors = est.vectors_.copy()
        vectors[~est.moved_] = np.asarray(original)[~est.moved_]
        memory = est.memory_
        return NudgeDelta(
            ids=list(ids), vectors=vectors, original=np.asarray(original),
            sums=est.sums_, counts=np.asarray(counts, dtype=np.int64), method=self._method,
            gamma=float(est.gamma_), metric=est._selection_metric(),
            similarity=adapter.similarity, dim=int(adapter.dimension()),
            model=model_fingerprint(model, adapter.dimension()), questions=questions_fp,
            fit_report=report, alpha=float(est.alpha_) if len(memory) else 0.0,
            memory_keys=memory.keys.astype(np.float32),
            memory_links=np.stack([memory.key, memory.col], axis=1).astype(np.int64))

    def update(self, delta: NudgeDelta, new_questions, val_questions=None) -> NudgeDelta:
        """Fold ``new_questions`` into ``delta`` without re-embedding the old ones: the delta
        keeps each moved record's sum of question vectors (and, with memory, the question
        vectors themselves). Without ``val_questions`` the delta's γ and α are kept, and the
        result equals a fit on the union at them; with ``val_questions`` they are chosen
        again on those questions (the old questions cannot be cut into folds: only their sums
        are kept)."""
        self._check_params()
        adapter = self._adapter()
        new = QuestionSet.coerce(new_questions, "new_questions")
        self._check_ids(adapter, new, "new_questions")
        new_q = self._embed(new, adapter, "new_questions", probe=True)
        ids = sorted(set(delta.ids) | new.record_ids)
        row = {i: r for r, i in enumerate(ids)}
        pairs = relevance_pairs(new.relevance, row)
        sums, counts, original = self._grown(adapter, delta, ids, row)
        sums, counts = add_questions(sums, counts, new_q, pairs)
        # memory=False keeps no question vectors, the delta's included
        memory = grown_memory(delta, new_q, pairs, row, len(ids)) if self.memory else None
        parts = summed_parts(original, sums, memory, delta.dim)
        keep = val_questions is None
        est = self._estimator(gamma=delta.gamma if keep else None,
                              alpha=delta.alpha if keep and memory is not None else None,
                              memory=memory is not None,
                              selection="validation")
        if not keep:
            val = QuestionSet.coerce(val_questions, "val_questions")
            self._check_ids(adapter, val, "val_questions")
            val_q = self._embed(val, adapter, "val_questions")
            parts.validation = held_out(adapter, val_q, val.relevance, row, ids,
                                        min(est._depth(), adapter.count()))
        _check_stored(np.asarray(original), ids, adapter.kind)
        check_unit_norm(adapter, original, self._method)
        est.fit_prepared(parts)
        fp = questions_fingerprint([delta.questions, *new.ids], [None, *new.texts], ids, pairs)
        sizes = {"n_train_questions": delta.fit_report.get("n_train_questions", 0) + len(new),
                 "n_val_questions": 0 if keep else len(val)}
        self.delta_ = self._delta(adapter, est, ids, original, counts, sizes, fp)
        return self.delta_

    def _grown(self, adapter, delta: NudgeDelta, ids: list[str], row: dict[str, int]):
        """The delta's sums, counts and original vectors spread over ``ids`` (a superset of
        its records); the records new to it are read from the store."""
        sums = np.zeros((len(ids), delta.dim))
        counts = np.zeros(len(ids), dtype=np.int64)
        old_rows = [row[i] for i in delta.ids]
        sums[old_rows] = delta.sums
        counts[old_rows] = delta.counts
        # old records keep their pre-nudge vectors, even if the delta was applied in place
        original = np.zeros((len(ids), delta.dim))
        original[old_rows] = delta.original
        known = set(delta.ids)
        fresh = [i for i in ids if i not in known]
        if fresh:
            found, vecs = adapter.fetch(fresh)
            if found != fresh:
                raise StoreError("some records named by new_questions vanished from the store")
            original[[row[i] for i in fresh]] = vecs
        return sums, counts, original

    def evaluate(self, questions, delta: NudgeDelta | None = None,
                 metrics=REPORT_METRICS) -> dict:
        """Metrics of ``questions`` on the store as it is (``before``) and with ``delta``
        overlaid (``after``, its memory included), exact, from the store's own search and the
        delta's records; ``warm`` and ``cold`` give them apart for the questions of which
        some relevant record the fit's questions named and for the others (NUDGE cannot
        help a cold question)."""
        delta = delta if delta is not None else getattr(self, "delta_", None)
        if delta is None:
            raise InputError("no delta to evaluate; fit first or pass delta=...")
        adapter = self._adapter()
        qs = QuestionSet.coerce(questions, "questions")
        self._check_ids(adapter, qs, "questions")
        q = self._embed(qs, adapter, "questions")
        metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        k = min(max([10, *(parse_metric(m, "metrics")[1] for m in metrics)]), adapter.count())
        row = {i: r for r, i in enumerate(delta.ids)}
        held = held_out(adapter, q, qs.relevance, row, delta.ids, k)
        skip = delta.method is Method.N and bool(delta.fit_report.get("nudge_ft_compat"))
        geometry = Geometry.build(delta.original, delta.sums, skip_opposed=skip)
        problem = ValidationProblem(q, held.pairs, np.arange(len(delta.ids)), geometry,
                                    held.competition, held.unmoved, delta.query_memory())
        warm = questions_with(held.pairs, held.pairs.row < len(delta.ids))
        return {"n_questions": len(qs), "gamma": delta.gamma, "alpha": delta.alpha,
                "before": problem.report(0.0, delta.method, metrics),
                "after": problem.report(delta.gamma, delta.method, metrics, delta.alpha),
                **warm_cold(problem, delta, warm, metrics)}


def fit_fingerprint(train: QuestionSet, val: QuestionSet | None, got) -> str:
    """The fingerprint of the questions a fit moved records with: the training ones, and the
    validation ones after them where the final fit used them too."""
    sets = [train] if val is None else [train, val]
    ids = [f"{n}:{i}" if n else i for n, qs in enumerate(sets) for i in qs.ids]
    texts = [t for qs in sets for t in qs.texts]
    pairs = Pairs.concat([relevance_pairs(qs.relevance, got.row) for qs in sets])
    return questions_fingerprint(ids, texts, got.ids, pairs)


def warm_cold(problem: ValidationProblem, delta: NudgeDelta, warm: np.ndarray,
              metrics) -> dict:
    """Before and after means of ``metrics`` over the ``warm`` questions and the others."""
    out = {}
    for part, mask in (("warm", warm), ("cold", ~warm)):
        out[part] = {"n_questions": int(mask.sum())}
        for key, (g, a) in (("before", (0.0, 0.0)), ("after", (delta.gamma, delta.alpha))):
            out[part][key] = {
                m: float(problem.per_question(g, delta.method, m, None, a)[mask].mean())
                if mask.any() else None for m in metrics}
    return out


def grown_memory(delta: NudgeDelta, new_q: np.ndarray, pairs: Pairs, row: dict[str, int],
                 n_cols: int) -> QueryMemory | None:
    """The delta's memory with the new questions added, over the records ``row`` numbers
    (``None`` when the delta keeps no memory)."""
    old = delta.query_memory()
    if old is None:
        return None
    where = np.array([row[i] for i in delta.ids], dtype=np.int64)
    old_pairs = Pairs(old.key, where[old.col], np.ones(len(old.key)), len(old.keys))
    both = Pairs.concat([old_pairs, pairs])
    return QueryMemory.build(np.concatenate([old.keys, new_q]), both, both.row, n_cols)


def _check_stored(original: np.ndarray, ids, kind: str) -> None:
    """Refuse records the store holds as NaN or inf, naming them: the fit cannot move
    them, and would otherwise blame γ for the NaN it makes of them."""
    bad = ~np.isfinite(original).all(axis=1)
    if bad.any():
        first = ids[int(np.flatnonzero(bad)[0])]
        raise InputError(f"the {kind} holds NaN or inf in the vector of record {first!r} "
                         f"({int(bad.sum())} such records among the questions' records); "
                         "re-embed those records, or drop the questions that name them")
