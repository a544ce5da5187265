"""The array engine on Ray: fit NUDGE on a corpus kept as shard files (``.npy``, Parquet) or
as a Ray Dataset, and embed many questions in parallel.

A fit reads the corpus once, for each validation question's best *unmoved* competitors; that
pass is split by shard, one Ray task per shard, each holding one shard (memory-mapped for
``.npy``) and the validation questions. The driver merges the shards' top-k lists, reads the
rows that questions name (again one small task per shard that holds some), and runs the γ
search of the estimator itself (``fit_prepared``). The driver never holds the corpus, and the
result equals ``estimator.fit`` on the concatenated shards: rows are global (shard by shard,
in the order given).

Needs the ``ray`` extra (``pip install 'nudge-rag[ray]'``); connect to a cluster with
``ray.init(address=...)`` first, or a local Ray is started.
"""

from __future__ import annotations

import numpy as np

from .core.array_parts import gather_parts
from .core.checks import as_matrix, check_finite_nonzero, check_same_dim
from .core.gamma_search import Competition
from .core.relevance import to_pairs
from .errors import InputError
from .shards import merge_competition, scan_shard, shard_files, take_rows


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("fitting on shards with Ray needs the ray extra: pip install "
                         "'nudge-rag[ray]'") from None
    if not ray.is_initialized():
        ray.init()
    return ray


def _remote(ray, fn, **options):
    """``fn`` as a Ray task, made once per process."""
    made = _TASKS.get((fn, tuple(sorted(options.items()))))
    if made is None:
        made = ray.remote(**options)(fn) if options else ray.remote(fn)
        _TASKS[(fn, tuple(sorted(options.items())))] = made
    return made


_TASKS: dict = {}


def _shape(block) -> tuple:
    return np.shape(block)


class _Corpus:
    """The shards as Ray sees them: per shard, what a task reads (a ``ShardFile``, or the
    ObjectRef of a Ray Dataset block), its row count and first global row."""

    def __init__(self, ray, shards, column: str | None):
        self.ray = ray
        if hasattr(shards, "to_numpy_refs"):  # a Ray Dataset: one shard per block
            if column is None:
                names = shards.columns()
                if len(names) != 1:
                    raise InputError(f"the Ray Dataset has columns {names}; pass column=... "
                                     "to say which holds the record vectors")
                column = names[0]
            self.sources = shards.to_numpy_refs(column=column)
            shapes = ray.get([_remote(ray, _shape).remote(r) for r in self.sources])
            self.rows = np.array([s[0] for s in shapes], dtype=np.int64)
            dims = {s[1] for s in shapes if len(s) == 2}
        else:
            files = shard_files(shards, column)
            self.sources = files
            self.rows = np.array([f.rows for f in files], dtype=np.int64)
            dims = {int(take_rows(f, [0]).shape[1]) for f in files if f.rows}
        if len(dims) != 1:
            raise InputError(f"the shards hold vectors of different dimensions {sorted(dims)}; "
                             "every shard must come from the same model")
        self.dim = dims.pop()
        self.offsets = np.concatenate([[0], np.cumsum(self.rows)])
        self.total = int(self.offsets[-1])

    def split(self, rows: np.ndarray):
        """Sorted global ``rows`` as (shard, local rows) for the shards that hold some."""
        cut = np.searchsorted(rows, self.offsets)
        return [(s, rows[cut[s]:cut[s + 1]] - self.offsets[s])
                for s in range(len(self.rows)) if cut[s + 1] > cut[s]]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of sorted global ``rows``: one task per shard that holds some."""
        task = _remote(self.ray, take_rows)
        parts = self.split(rows)
        got = self.ray.get([task.remote(self.sources[s], local) for s, local in parts])
        return np.concatenate(got) if got else np.zeros((0, self.dim), dtype=np.float32)

    def competition(self, queries: np.ndarray, k: int, moved: np.ndarray):
        """Each query's top-``k`` unmoved rows: one scan task per shard, then a merge. When
        some shard is not unit-norm the whole corpus is scored with inverse norms, as the
        in-process fit does: shards scanned without them are scanned again."""
        task = _remote(self.ray, scan_shard)
        q = self.ray.put(queries)
        moved_in = dict(self.split(moved))
        empty = np.zeros(0, dtype=np.int64)

        def run(shards, force):
            return self.ray.get([task.remote(self.sources[s], q, k, moved_in.get(s, empty),
                                             int(self.offsets[s]), force) for s in shards])

        shards = [s for s in range(len(self.rows)) if self.rows[s]]
        parts = dict(zip(shards, run(shards, False)))
        if not all(p[2] for p in parts.values()):
            again = [s for s in shards if parts[s][2]]
            parts.update(zip(again, run(again, True)))
        return merge_competition([parts[s] for s in shards], k)


def fit_shards(estimator, shards, train_q, train_rel, val_q=None, val_rel=None, groups=None, *,
               column: str | None = None):
    """Fit ``estimator`` (``NudgeN`` or ``NudgeM``, unfitted) on the corpus in ``shards``: a
    list of ``.npy`` / ``.parquet`` files, or a Ray Dataset (``column``: its vector column, or
    the Parquet one when a file has several). Relevance names global rows; ``groups`` labels
    the training questions for the folds, as in ``estimator.fit``. Returns the fitted
    estimator, equal to ``estimator.fit(np.concatenate(shards), ...)``."""
    ray = _ray()
    corpus = _Corpus(ray, shards, column)
    tq = as_matrix(train_q, "train_q")
    if tq.shape[1] != corpus.dim:
        raise InputError(f"train_q has dimension {tq.shape[1]} but the shards hold "
                         f"{corpus.dim}-d vectors; embed both with the same model")
    check_finite_nonzero(tq, "train_q")
    train_pairs = to_pairs(train_rel, len(tq), corpus.total, "train_rel")
    if len(train_pairs) == 0:
        raise InputError("train_rel names no relevant record (grade > 0) for any question; "
                         "give at least one (question, record) pair")
    estimator._check_params()
    val = None
    if val_q is not None and val_rel is not None:
        vq = as_matrix(val_q, "val_q")
        check_same_dim(tq, "train_q", vq, "val_q")
        check_finite_nonzero(vq, "val_q")
        val = (vq, to_pairs(val_rel, len(vq), corpus.total, "val_rel", require_each=True))
    elif estimator._needs_validation():
        raise InputError("val_q and val_rel are needed to choose gamma with "
                         "selection='validation'; pass validation questions, use "
                         "selection='cv', or fix the step with gamma=...")
    depth = min(estimator._depth(), corpus.total) if estimator._searching() else None
    parts = gather_parts(corpus.take, lambda q, pairs, moved, k: _compete(corpus, q, pairs,
                                                                          moved, k),
                         tq, train_pairs, val, estimator._fold_labels(tq, groups), depth,
                         estimator._refits())
    return estimator.fit_prepared(parts)


def _compete(corpus, questions, pairs, moved, k):
    """``(Competition, unmoved scores)`` of ``questions`` over the shards, as
    :func:`.core.array_parts.array_competition` gives them over an array."""
    scores, comp_rows = corpus.competition(questions, k, moved)
    unmoved = np.zeros(len(pairs))
    still = ~np.isin(pairs.row, moved)
    if still.any():
        named = np.unique(pairs.row[still])
        rel = corpus.take(named)[np.searchsorted(named, pairs.row[still])]
        # as the in-process fit scores them: float64 rows times their inverse norms
        rel = np.asarray(rel, dtype=np.float64) * (
            1.0 / check_finite_nonzero(rel, "doc_emb"))[:, None]
        unmoved[still] = np.einsum("ij,ij->i", np.asarray(questions, dtype=np.float64)[
            pairs.query[still]], rel)
    return Competition(scores, comp_rows), unmoved


def _embed_part(model, texts, batch_size: int, device: str | None):
    from .embedding import embed_queries

    if callable(model) and not hasattr(model, "embed_query") and \
            not hasattr(model, "get_query_embedding") and not hasattr(model, "embed_queries"):
        model = model(device)  # a factory: build the model where the task runs
    return embed_queries(model, list(texts), batch_size)


def embed_questions(texts, model, *, batch_size: int = 64, part_size: int = 10_000,
                    num_gpus: float = 0) -> np.ndarray:
    """Query embeddings of ``texts`` (float64, in order), one Ray task per ``part_size``
    texts, each embedding its part in batches of ``batch_size``. ``model`` is the embedding
    model (a LlamaIndex or LangChain one, shipped to the tasks), or a factory
    ``model(device)`` called in each task with ``"cuda"`` when the task was given a GPU
    (``num_gpus`` per task) and ``None`` otherwise."""
    ray = _ray()
    texts = list(texts)
    if part_size < 1 or batch_size < 1:
        raise InputError("part_size and batch_size must be at least 1")
    task = _remote(ray, _embed_part, num_gpus=num_gpus) if num_gpus else \
        _remote(ray, _embed_part)
    shipped = ray.put(model)
    device = "cuda" if num_gpus else None
    parts = [task.remote(shipped, texts[i:i + part_size], batch_size, device)
             for i in range(0, len(texts), part_size)]
    got = ray.get(parts)
    return np.concatenate(got) if got else np.zeros((0, 0))
