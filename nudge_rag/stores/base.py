"""What nudge-rag needs from a vector store: the one contract every adapter keeps.

One small adapter per store speaks that store's API; every quirk of a store (how it scores,
how it writes, what it can fetch by id) lives in its adapter. Vectors cross this boundary as
float32/float64 numpy rows, ids as strings, and payloads (LlamaIndex nodes, LangChain
documents) as lists aligned with the ids asked for, ``None`` where a record is missing.
Which adapter serves which store is decided in :mod:`nudge_rag.stores.registry`.
"""

from __future__ import annotations

import asyncio
import operator
import weakref
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, MismatchError, StoreError

SIMILARITIES = ("cosine", "dot", "l2")
FRAMEWORKS = ("llama-index", "langchain")


class StoreAdapter(ABC):
    """A vector store seen by nudge-rag: everything the rest of the package calls.

    ``similarity`` is how the store ranks: ``cosine`` (it normalises both sides), ``dot``
    (inner product, vectors as stored) or ``l2`` (smallest Euclidean distance first).
    ``framework`` says whose objects :meth:`payloads` returns and so which retriever serves
    the store. Every read sees the store as it is when called: records added, deleted or
    re-embedded through the framework since the adapter was made included.
    """

    similarity: str = "cosine"
    #: a short name for messages and the delta's record ("llama-index SimpleVectorStore")
    kind: str = "store"
    #: "llama-index" (payloads are nodes) or "langchain" (payloads are Documents)
    framework: str = ""
    #: search options of the store's own API that :meth:`query` takes besides ``filters``
    #: (LangChain's ``search_kwargs``); each also applies to moved records through
    #: :meth:`filter_ids` or :meth:`admits_score`
    search_options: frozenset[str] = frozenset()

    # -- reading -------------------------------------------------------------------------------
    @abstractmethod
    def count(self) -> int:
        """How many records the store holds."""

    @abstractmethod
    def dimension(self) -> int | None:
        """Vector dimension, or ``None`` for an empty store."""

    @abstractmethod
    def fetch(self, ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Stored vectors of ``ids``: ``(found ids, rows)`` in the order asked for; missing
        ids are left out."""

    def existing(self, ids: list[str]) -> list[str]:
        """Which of ``ids`` the store holds (databases answer without sending vectors)."""
        return self.fetch(ids)[0]

    @abstractmethod
    def payloads(self, ids: list[str]) -> list:
        """The framework's objects for ``ids`` (nodes or Documents), one per id asked for, in
        that order, ``None`` for an id the store does not hold."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, filters=None) -> tuple[list[list[str]],
                                                                          np.ndarray]:
        """The store's own top-``k`` for each query: ids and native scores (padded with
        ``nan``), best first, in the store's own convention (a distance for ``l2``)."""

    def query(self, query: np.ndarray, k: int, filters=None,
              options: dict | None = None) -> tuple[list[str], np.ndarray]:
        """One query through the store's own search, as its framework runs it: ids and native
        scores, best first. ``options`` are :attr:`search_options` of the store."""
        self.check_options(options)
        ids, native = self.search(np.asarray(query)[None, :], k, filters)
        return ids[0], native[0][:len(ids[0])]

    async def aquery(self, query: np.ndarray, k: int, filters=None,
                     options: dict | None = None) -> tuple[list[str], np.ndarray]:
        """:meth:`query` without blocking the event loop: the store's own async search where
        an adapter has one, otherwise the blocking one in a worker thread."""
        return await run_blocking(self.query, query, k, filters, options)

    def check_options(self, options: dict | None) -> None:
        """Refuse search options this store does not take, naming the ones it does."""
        unknown = sorted(set(options or ()) - self.search_options)
        if unknown:
            takes = ", ".join(sorted(self.search_options)) or "none besides k and filter"
            raise InputError(f"search option(s) {unknown} are not options of the {self.kind}'s "
                             f"search; it takes: {takes}")

    def filter_ids(self, ids: list[str], filters, options: dict | None = None) -> list[str]:
        """The subset of ``ids`` that ``filters`` (and any restricting ``options``) admits,
        in order (used for moved records)."""
        if filters is None:
            return list(ids)
        raise StoreError(f"{self.kind} cannot evaluate metadata filters on moved records")

    def admits_score(self, native: np.ndarray, options: dict | None) -> np.ndarray:
        """Which native scores the store's search ``options`` would let through (a score
        threshold); all by default."""
        return np.ones(len(native), dtype=bool)

    def admitted_search(self, query: np.ndarray, k: int, filters,
                        start: int | None = None) -> tuple[list[str], np.ndarray]:
        """Top-``k`` of one query among the records ``filters`` admits, for stores whose index
        cannot filter while it searches (FAISS): unfiltered searches from depth ``start``
        (``4 k`` by default), twice as deep each time, until ``k`` records pass or the index
        has nothing more to give."""
        total = self.count()
        depth = min(start or 4 * k, total)
        verdict: dict[str, bool] = {}
        while True:
            ids, native = self.search(np.asarray(query)[None, :], max(depth, 1))
            ids, native = ids[0], native[0][:len(ids[0])]
            unseen = [i for i in ids if i not in verdict]
            admitted = set(self.filter_ids(unseen, filters))
            verdict.update((i, i in admitted) for i in unseen)
            keep = [j for j, i in enumerate(ids) if verdict[i]]
            if len(keep) >= k or depth >= total or len(ids) < depth:
                keep = keep[:k]
                return [ids[j] for j in keep], native[keep]
            depth = min(2 * depth, total)

    def competition(self, queries: np.ndarray, k: int, exclude_ids) -> tuple[list[list[str]],
                                                                               np.ndarray]:
        """Top-``k`` records outside ``exclude_ids`` per query, scored as ``q̂ · x`` (see
        :meth:`to_cosine`), through the store's own search: ask for a little more than ``k``
        and ask again, deeper, for the questions where excluded records crowd the top. A
        search that returns fewer than it was asked for has nothing more to give, so the
        store is never counted (on some engines a count reads every record)."""
        exclude = set(exclude_ids)
        n = len(queries)
        out_ids: list[list[str]] = [[] for _ in range(n)]
        out_s = np.full((n, k), -np.inf)
        todo = np.arange(n)
        depth = k + min(len(exclude), 2 * k)
        while len(todo):
            ids, native = self.search(queries[todo], depth)
            sims = self.to_cosine(native, queries[todo])
            again = []
            for j, qi in enumerate(todo):
                keep = [(i, s) for i, s in zip(ids[j], sims[j]) if i not in exclude]
                if len(keep) < k and len(ids[j]) >= depth:
                    again.append(qi)
                    continue
                keep = keep[:k]
                out_ids[qi] = [i for i, _ in keep]
                out_s[qi, :len(keep)] = [s for _, s in keep]
            todo = np.asarray(again, dtype=np.int64)
            depth *= 2
        return out_ids, out_s

    # -- scoring ---------------------------------------------------------------------------------
    @property
    def higher_is_better(self) -> bool:
        return self.similarity != "l2"

    def to_cosine(self, native: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """Turn native scores into ``q̂ · x`` (cosine for unit-norm records), the scale the
        engine compares moved records on. ``dot`` and ``l2`` assume unit-norm records, which
        :func:`check_unit_norm` enforces before a fit."""
        native = np.asarray(native, dtype=np.float64)
        qn = np.linalg.norm(queries, axis=1, keepdims=True)
        if self.similarity == "cosine":
            return native
        if self.similarity == "dot":
            return native / qn
        return (qn**2 + 1.0 - native) / (2.0 * qn)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, ids: list[str], vectors: np.ndarray) -> None:
        """Replace the stored vectors of ``ids`` in place."""
        raise StoreError(f"{self.kind} cannot be written to; use the overlay retriever "
                         "(delta.as_retriever) instead")

    def clone_with(self, ids: list[str], vectors: np.ndarray, name: str | None = None):
        """A new store (or index) that shares everything but holds ``vectors`` for ``ids``.
        Databases copy into a new collection or table called ``name`` (a default derived from
        the source when ``None``) and refuse a name that is taken; in-memory stores copy in
        memory and have no use for it."""
        raise StoreError(f"{self.kind} cannot be copied; apply in place (inplace=True) or use "
                         "the overlay retriever")

    # -- the framework around it -------------------------------------------------------------------
    def embed_model(self):
        """The model that embedded this store's records (query side), if known."""
        return None

    @abstractmethod
    def framework_object(self):
        """What the user handed in (index or store)."""


#: threads for blocking store calls made from async code: searches wait on a server or run in
#: numpy/FAISS with the GIL released, so many may usefully run at once (a loop's default
#: executor has about as many threads as cores, which would queue concurrent retrievals)
_BLOCKING_THREADS = 64


class _Workers:
    """The thread pool that async retrievals run blocking store calls in, made on first use."""

    pool: ThreadPoolExecutor | None = None

    @classmethod
    def get(cls) -> ThreadPoolExecutor:
        if cls.pool is None:
            cls.pool = ThreadPoolExecutor(_BLOCKING_THREADS,
                                          thread_name_prefix="nudge-rag-store")
        return cls.pool


async def run_blocking(fn, *args):
    """``fn(*args)`` in a worker thread, awaited."""
    return await asyncio.get_running_loop().run_in_executor(_Workers.get(), fn, *args)


#: a stored vector within this distance (largest coordinate difference) of a delta's copy is
#: that vector: the store may have rounded it to float32 or renormalised it
SAME_VECTOR = 1e-5


def held_states(stored: np.ndarray, original: np.ndarray,
                nudged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row by row, whether a store holds a moved record's ``original`` vector, and whether it
    holds the ``nudged`` one; neither means the record was re-embedded since the fit."""
    stored = np.asarray(stored, dtype=np.float64)
    is_original = np.abs(stored - original).max(axis=1) <= SAME_VECTOR
    is_nudged = np.abs(stored - nudged).max(axis=1) <= SAME_VECTOR
    return is_original, is_nudged


def check_target(adapter: StoreAdapter, delta, allow_model_mismatch: bool = False) -> None:
    """Refuse a store that ``delta`` was not fitted for: another vector dimension, another
    embedding model (unless ``allow_model_mismatch``), or a ranking that would change the
    delta's method."""
    from ..embedding import model_mismatch

    dim = adapter.dimension()
    if dim is not None and dim != delta.dim:
        raise MismatchError(f"this delta holds {delta.dim}-d vectors but the {adapter.kind} "
                            f"holds {dim}-d vectors; it was fitted on another index")
    why = None if allow_model_mismatch else model_mismatch(delta.model, adapter.embed_model(),
                                                           dim)
    if why is not None:
        raise MismatchError(f"this delta was fitted with another embedding model than the "
                            f"index uses: {why}; pass allow_model_mismatch=True if they "
                            "really are the same model")
    check_method_fits_store(adapter, delta.method)


def check_unit_norm(adapter: StoreAdapter, vectors: np.ndarray, method: str) -> None:
    """NUDGE compares records by direction. Stores that rank by inner product or distance
    only agree with that when their records are unit-norm; refuse otherwise."""
    if adapter.similarity == "cosine" or len(vectors) == 0:
        return
    norms = np.linalg.norm(vectors, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        raise StoreError(f"{adapter.kind} ranks by {adapter.similarity} but its vectors are not "
                         f"unit-norm (norms {norms.min():.3g}…{norms.max():.3g}); NUDGE would "
                         "change how unmoved records rank. Rebuild the store with normalised "
                         "embeddings or use a cosine store")


def check_method_fits_store(adapter: StoreAdapter, method: str) -> None:
    """NUDGE-M output is not unit-norm: a store that normalises would silently turn it into
    another method."""
    if method == "nudge-m" and adapter.similarity != "dot":
        raise InputError(f"method='nudge-m' needs a store that scores by inner product, but "
                         f"{adapter.kind} scores by {adapter.similarity}, which would silently "
                         "change the method. Use method='nudge-n' (unit-norm output, safe for "
                         "any store) or an inner-product store (e.g. LangChain FAISS with "
                         "distance_strategy=MAX_INNER_PRODUCT)")


def stack(vectors, dim: int | None = None) -> np.ndarray:
    """Stored vectors as one matrix: float64 for Python lists (kept exact, so a revert
    restores them bit for bit), the array's own float dtype otherwise."""
    if len(vectors) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    if isinstance(vectors, np.ndarray):
        return vectors if np.issubdtype(vectors.dtype, np.floating) else vectors.astype(float)
    return np.asarray(vectors, dtype=np.float64)


@dataclass(frozen=True)
class StoreState:
    """What tells whether a store changed since its vectors were stacked: ``objects`` it
    holds (compared by identity: stores replace, never edit, a record's vector) and
    ``numbers`` (compared by value, such as a FAISS index's row count)."""

    objects: tuple
    numbers: tuple = ()

    def same(self, other: StoreState) -> bool:
        return (self.numbers == other.numbers and len(self.objects) == len(other.objects)
                and all(map(operator.is_, self.objects, other.objects)))


@dataclass(eq=False)
class StackedVectors:
    """A store's vectors as one matrix, with its ids, the row of each id and the state of the
    store it was stacked from."""

    ids: list[str]
    matrix: np.ndarray
    state: StoreState
    row: dict[str, int] = field(init=False)
    #: the matrix as float32 and, for a cosine store, its inverse row norms; made on first scan
    scan_parts: tuple | None = field(default=None, init=False)

    def __post_init__(self):
        self.row = {i: r for r, i in enumerate(self.ids)}

    def scan(self, similarity: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The matrix as float32 for scanning (stored float64 lists are kept for exact
        reverts, but ranking needs no more than the float32 that embeddings carry) and, for a
        cosine store, the inverse row norms it ranks by (``None`` when every row is unit-norm
        or the store does not rank by cosine)."""
        if self.scan_parts is None:
            scale = None
            if similarity == "cosine":
                norms = np.linalg.norm(self.matrix, axis=1)
                if not np.all(np.abs(norms - 1.0) < 1e-6):
                    scale = 1.0 / np.maximum(norms, 1e-30)
            self.scan_parts = (np.ascontiguousarray(self.matrix, dtype=np.float32), scale)
        return self.scan_parts


class MatrixCache:
    """The stacked vectors of the last ``kept`` stores, so that every adapter of one store
    (one per fit, per retriever) stacks its vectors once. Each entry holds its store weakly
    and goes when the store is garbage-collected; it is used only while the store still
    holds exactly what was stacked."""

    def __init__(self, kept: int = 2):
        self.kept = kept
        self._entries: list[tuple[weakref.ref, StackedVectors]] = []

    def get(self, store, state: StoreState, stack_all) -> StackedVectors:
        """The entry for ``store`` in ``state``, made with ``stack_all()`` (``(ids, matrix)``)
        when there is none."""
        for ref, entry in self._entries:
            if ref() is store and entry.state.same(state):
                return entry
        ids, matrix = stack_all()
        entry = StackedVectors(ids, matrix, state)
        others = [(r, e) for r, e in self._entries if r() is not None and r() is not store]
        self._entries = others[max(0, len(others) - self.kept + 1):]
        self._entries.append((weakref.ref(store, self._forget), entry))
        return entry

    def _forget(self, ref: weakref.ref) -> None:
        self._entries = [(r, e) for r, e in self._entries if r is not ref]

    def clear(self) -> None:
        self._entries = []


class MatrixBacked(StoreAdapter):
    """In-memory stores: every vector is at hand, so search and competition are one blocked
    matrix product (exactly the store's ranking, without its per-query Python loops)."""

    #: the owner of every in-memory store's stacked vectors
    stacks = MatrixCache()
    #: the framework's store object that the stacked vectors belong to (held weakly)
    store = None

    @abstractmethod
    def _all(self) -> tuple[list[str], object]:
        """All ids and their stored vectors (lists or a matrix), in a stable order."""

    @abstractmethod
    def _state(self) -> StoreState:
        """The store's current state, cheaply (see :class:`StoreState`)."""

    def _matrix(self) -> StackedVectors:
        """The store's vectors as they are now, stacked once per state of the store."""

        def stack_all():
            ids, vectors = self._all()
            return ids, stack(vectors)

        return self.stacks.get(self.store, self._state(), stack_all)

    def count(self) -> int:
        return len(self._matrix().ids)

    def dimension(self) -> int | None:
        stacked = self._matrix()
        return int(stacked.matrix.shape[1]) if stacked.ids else None

    def existing(self, ids):
        row = self._matrix().row
        return [i for i in ids if i in row]

    def fetch(self, ids):
        stacked = self._matrix()
        found = [i for i in ids if i in stacked.row]
        return found, stacked.matrix[[stacked.row[i] for i in found]]

    def competition(self, queries: np.ndarray, k: int, exclude_ids) -> tuple[list[list[str]],
                                                                               np.ndarray]:
        """Top-``k`` records outside ``exclude_ids`` per query, scored as ``q̂ · x̂``."""
        from ..core.topk import topk_scan

        stacked = self._matrix()
        mat, scale = stacked.scan(self.similarity)
        excluded = np.zeros(len(stacked.ids), dtype=bool)
        excluded[[stacked.row[i] for i in exclude_ids if i in stacked.row]] = True
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        scores, rows = topk_scan(mat, q, k, row_scale=scale, exclude=excluded)
        return [[stacked.ids[r] for r in rr if r >= 0] for rr in rows], scores

    def search(self, queries, k, filters=None):
        from ..core.topk import topk_scan

        stacked = self._matrix()
        all_ids, mat = stacked.ids, stacked.matrix
        rejected = None
        if filters is not None:
            admitted = set(self.filter_ids(all_ids, filters))
            rejected = np.array([i not in admitted for i in all_ids], dtype=bool)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if self.similarity == "l2":
            # rank by −‖q − x‖² = 2 q·x − ‖x‖² − ‖q‖²: a scan on [x, −‖x‖²/2] against [q, 1]
            aug = np.c_[mat, -0.5 * np.einsum("ij,ij->i", mat, mat)].astype(np.float32)
            sims, rows = topk_scan(aug, np.c_[q, np.ones(len(q))], k, exclude=rejected)
            native = np.sum(q**2, axis=1, keepdims=True) - 2 * sims
        else:
            scale = None
            if self.similarity == "cosine":
                scale = 1.0 / np.maximum(np.linalg.norm(mat, axis=1), 1e-30)
                q = q / np.linalg.norm(q, axis=1, keepdims=True)
            native, rows = topk_scan(mat, q, k, row_scale=scale, exclude=rejected)
        native = np.where(rows >= 0, native, np.nan)
        return [[all_ids[r] for r in rr if r >= 0] for rr in rows], native
