"""What nudge-rag needs from a vector store, and nothing more.

One small adapter per store speaks that store's API; every quirk of a store (how it scores,
how it writes, what it can fetch by id) lives in its adapter. Vectors cross this boundary as
float32 numpy rows, ids as strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import InputError, StoreError

SIMILARITIES = ("cosine", "dot", "l2")


class StoreAdapter(ABC):
    """A vector store seen by nudge-rag.

    ``similarity`` is how the store ranks: ``cosine`` (it normalises both sides), ``dot``
    (inner product, vectors as stored) or ``l2`` (smallest Euclidean distance first).
    """

    similarity: str = "cosine"
    #: a short name for messages and the delta's record ("llama-index SimpleVectorStore")
    kind: str = "store"

    # -- reading -------------------------------------------------------------------------------
    @abstractmethod
    def count(self) -> int:
        """How many records the store holds."""

    @abstractmethod
    def fetch(self, ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Stored vectors of ``ids``: ``(found ids, rows)``; missing ids are left out."""

    def existing(self, ids: list[str]) -> list[str]:
        """Which of ``ids`` the store holds (databases answer without sending vectors)."""
        return self.fetch(ids)[0]

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, filters=None) -> tuple[list[list[str]],
                                                                          np.ndarray]:
        """The store's own top-``k`` for each query: ids and native scores (padded with
        ``nan``), best first, in the store's own convention (a distance for ``l2``)."""

    def competition(self, queries: np.ndarray, k: int, exclude_ids) -> tuple[list[list[str]],
                                                                               np.ndarray]:
        """Top-``k`` records outside ``exclude_ids`` per query, scored as ``q̂ · x`` (see
        :meth:`to_cosine`), through the store's own search: ask for a little more than ``k``
        and ask again, deeper, for the questions where excluded records crowd the top."""
        exclude = set(exclude_ids)
        n = len(queries)
        out_ids: list[list[str]] = [[] for _ in range(n)]
        out_s = np.full((n, k), -np.inf)
        todo = np.arange(n)
        depth = k + min(len(exclude), 2 * k)
        total = self.count()
        while len(todo):
            ids, native = self.search(queries[todo], depth)
            sims = self.to_cosine(native, queries[todo])
            again = []
            for j, qi in enumerate(todo):
                keep = [(i, s) for i, s in zip(ids[j], sims[j]) if i not in exclude]
                if len(keep) < k and len(ids[j]) >= depth and depth < total:
                    again.append(qi)
                    continue
                keep = keep[:k]
                out_ids[qi] = [i for i, _ in keep]
                out_s[qi, :len(keep)] = [s for _, s in keep]
            todo = np.asarray(again, dtype=np.int64)
            depth = min(2 * depth, total)
        return out_ids, out_s

    def dimension(self) -> int | None:
        """Vector dimension, or ``None`` for an empty store."""
        return None

    def query(self, query: np.ndarray, k: int, filters=None) -> tuple[list[str], np.ndarray]:
        """One query through the store's own search API: ids and native scores, best first.
        Retrievers use this, so they see the store as it is now (added or deleted records
        included)."""
        ids, native = self.search(np.asarray(query)[None, :], k, filters)
        return ids[0], native[0][:len(ids[0])]

    def filter_ids(self, ids: list[str], filters) -> list[str]:
        """The subset of ``ids`` that ``filters`` admits (used for moved records)."""
        if filters is None:
            return list(ids)
        raise StoreError(f"{self.kind} cannot evaluate metadata filters on moved records")

    def admitted_search(self, query: np.ndarray, k: int, filters) -> tuple[list[str],
                                                                           np.ndarray]:
        """Top-``k`` of one query among the records ``filters`` admits, for stores whose index
        cannot filter while it searches (FAISS): unfiltered searches, twice as deep each time,
        until ``k`` records pass or the index has nothing more to give."""
        total = self.count()
        depth = min(4 * k, total)
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

    # -- the embedding model behind it ------------------------------------------------------------
    def embed_model(self):
        """The model that embedded this store's records (query side), if known."""
        return None

    def framework_object(self):
        """What the user handed in (index or store)."""
        raise NotImplementedError


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


# id(store data) -> (store data, its vector objects, (ids, matrix, row of id)); a few stores
_MATRICES: dict = {}
_MATRICES_KEPT = 2
# id(matrix cache) -> (that cache, float32 copy, inverse norms or None); as many as _MATRICES
_SCANS: dict = {}


class MatrixBacked(StoreAdapter):
    """In-memory stores: every vector is at hand, so search and competition are one blocked
    matrix product (exactly the store's ranking, without its per-query Python loops)."""

    _cache = None
    _scan = None

    @abstractmethod
    def _all(self) -> tuple[list[str], list]:
        """All ids and their stored vectors, in a stable order."""

    def _matrix(self):
        if self._cache is None:
            ids, vecs = self._all()
            key = self._cache_owner()
            hit = _MATRICES.get(id(key)) if key is not None else None
            # reuse a stacked matrix only if the store still holds the very same vector
            # objects (stores replace, never edit, a record's vector list)
            if (hit is not None and hit[0] is key and len(hit[1]) == len(vecs)
                    and all(a is b for a, b in zip(hit[1], vecs)) and hit[2][0] == ids):
                self._cache = hit[2]
            else:
                self._cache = (ids, stack(vecs), {i: r for r, i in enumerate(ids)})
                if key is not None:
                    while len(_MATRICES) >= _MATRICES_KEPT:
                        _MATRICES.pop(next(iter(_MATRICES)))
                    _MATRICES[id(key)] = (key, list(vecs), self._cache)
        return self._cache

    def _cache_owner(self):
        """The object whose vector lists may be stacked once and reused (``None``: never)."""
        return None

    def _invalidate(self) -> None:
        self._cache = None
        self._scan = None

    def count(self) -> int:
        return len(self._matrix()[0])

    def dimension(self) -> int | None:
        ids, mat, _ = self._matrix()
        return int(mat.shape[1]) if len(ids) else None

    def existing(self, ids):
        row = self._matrix()[2]
        return [i for i in ids if i in row]

    def fetch(self, ids):
        all_ids, mat, row = self._matrix()
        found = [i for i in ids if i in row]
        return found, mat[[row[i] for i in found]]

    def _scan_parts(self):
        """The matrix as float32 for scanning (the stored float64 lists are kept for exact
        reverts, but ranking needs no more than the float32 that embeddings carry) and, for a
        cosine store, the inverse row norms it ranks by (``None`` when every row is unit-norm
        or the store does not rank by cosine). Shared across adapters of one store, like the
        matrix itself."""
        cache = self._matrix()
        got = self._scan if self._scan is not None and self._scan[0] is cache else None
        if got is None:
            got = _SCANS.get(id(cache))
        if got is None or got[0] is not cache:
            mat, scale = cache[1], None
            if self.similarity == "cosine":
                norms = np.linalg.norm(mat, axis=1)
                if not np.all(np.abs(norms - 1.0) < 1e-6):
                    scale = 1.0 / np.maximum(norms, 1e-30)
            got = (cache, np.ascontiguousarray(mat, dtype=np.float32), scale)
            if self._cache_owner() is not None:
                while len(_SCANS) >= _MATRICES_KEPT:
                    _SCANS.pop(next(iter(_SCANS)))
                _SCANS[id(cache)] = got
        self._scan = got
        return got[1], got[2]

    def competition(self, queries: np.ndarray, k: int, exclude_ids) -> tuple[list[list[str]],
                                                                               np.ndarray]:
        """Top-``k`` records outside ``exclude_ids`` per query, scored as ``q̂ · x̂``."""
        from ..core.topk import topk_scan

        all_ids, _, row = self._matrix()
        mat, scale = self._scan_parts()
        exclude = np.zeros(len(all_ids), dtype=bool)
        exclude[[row[i] for i in exclude_ids if i in row]] = True
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        scores, rows = topk_scan(mat, q, k, row_scale=scale, exclude=exclude)
        return [[all_ids[r] for r in rr if r >= 0] for rr in rows], scores

    def search(self, queries, k, filters=None):
        from ..core.topk import topk_scan

        all_ids, mat, row = self._matrix()
        allowed = None
        if filters is not None:
            keep = set(self.filter_ids(all_ids, filters))
            allowed = np.array([i not in keep for i in all_ids], dtype=bool)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if self.similarity == "l2":
            # rank by −‖q − x‖² = 2 q·x − ‖x‖² − ‖q‖²: a scan on [x, −‖x‖²/2] against [q, 1]
            aug = np.c_[mat, -0.5 * np.einsum("ij,ij->i", mat, mat)].astype(np.float32)
            sims, rows = topk_scan(aug, np.c_[q, np.ones(len(q))], k, exclude=allowed)
            native = np.sum(q**2, axis=1, keepdims=True) - 2 * sims
        else:
            scale = None
            if self.similarity == "cosine":
                scale = 1.0 / np.maximum(np.linalg.norm(mat, axis=1), 1e-30)
                q = q / np.linalg.norm(q, axis=1, keepdims=True)
            native, rows = topk_scan(mat, q, k, row_scale=scale, exclude=allowed)
        native = np.where(rows >= 0, native, np.nan)
        return [[all_ids[r] for r in rr if r >= 0] for rr in rows], native
