"""LangChain's community ``FAISS`` store: flat indexes (L2 by default, inner product with
``DistanceStrategy.MAX_INNER_PRODUCT``) read as one matrix, HNSW and IVF indexes read by
position (:mod:`nudge_rag.stores.faiss_index`). Documents live in the store's docstore;
filters are LangChain's (a metadata dict or a callable)."""

from __future__ import annotations

import copy

import numpy as np

from ..errors import InputError, StoreError
from .base import MatrixBacked, MatrixCache, StoreState
from .faiss_index import FLAT_TYPES, FaissPositionalAdapter, check_supported, within_index


def faiss_similarity(store) -> str:
    """How a LangChain FAISS store ranks, from its distance strategy."""
    from langchain_community.vectorstores.utils import DistanceStrategy

    strategy = store.distance_strategy
    if strategy == DistanceStrategy.MAX_INNER_PRODUCT:
        found = "dot"
    elif strategy == DistanceStrategy.EUCLIDEAN_DISTANCE:
        found = "l2"
    else:
        raise InputError(f"FAISS distance_strategy={strategy} is not supported; use "
                         "EUCLIDEAN_DISTANCE or MAX_INNER_PRODUCT")
    # both sides normalised: ranks by cosine
    return "cosine" if getattr(store, "_normalize_L2", False) else found


def langchain_faiss(store) -> FaissAdapter | LangChainFaissAnnAdapter:
    """The adapter for a LangChain ``FAISS`` store, by the kind of index it searches."""
    import faiss

    if type(faiss.downcast_index(store.index)).__name__ in FLAT_TYPES:
        return FaissAdapter(store)
    check_supported(store.index)
    return LangChainFaissAnnAdapter(store)


def own_documents(copied):
    """A shallow copy of a LangChain ``FAISS`` store given a row map and a docstore of its
    own (sharing the Document objects): ``FAISS.delete`` removes documents from the docstore
    too, so a shared one would lose the other store's documents."""
    copied.index_to_docstore_id = dict(copied.index_to_docstore_id)
    copied.docstore = copy.copy(copied.docstore)
    if isinstance(getattr(copied.docstore, "_dict", None), dict):  # InMemoryDocstore
        copied.docstore._dict = dict(copied.docstore._dict)
    return copied


class FaissDocuments:
    """A LangChain ``FAISS`` store's documents (its docstore), its own filters (a metadata
    dict or a callable) and search options, whatever index it searches with."""

    framework = "langchain"
    kind = "langchain FAISS"
    #: how many records LangChain's filtered search fetches before filtering; here the first
    #: depth of a filtered search, which goes deeper until ``k`` records pass
    search_options = frozenset({"fetch_k"})
    store = None

    def framework_object(self):
        return self.store

    def embed_model(self):
        emb = self.store.embedding_function
        return emb if not callable(emb) or hasattr(emb, "embed_query") else None

    def payloads(self, ids):
        from langchain_core.documents import Document

        # the docstore answers a missing id with a message string, not an error
        found = [self.store.docstore.search(i) for i in ids]
        return [d if isinstance(d, Document) else None for d in found]

    def filter_ids(self, ids, filters, options=None):
        if filters is None:
            return list(ids)
        admit = self.store._create_filter_func(filters)
        return [i for i, d in zip(ids, self.payloads(ids)) if d is not None and admit(d.metadata)]

    def query(self, query, k, filters=None, options=None):
        """FAISS's own index search; with a filter, deeper until ``k`` records pass
        (LangChain's own filtered search stops at ``fetch_k`` and can return fewer)."""
        self.check_options(options)
        if filters is not None:
            return self.admitted_search(query, k, filters, (options or {}).get("fetch_k"))
        ids, native = self.search(np.asarray(query)[None, :], k)
        return ids[0], native[0][:len(ids[0])]


class FaissAdapter(FaissDocuments, MatrixBacked):
    """Flat FAISS indexes. They cannot change one row in place, so writes rebuild the flat
    index from its own vectors (a copy of a few MB per 10k records)."""

    #: the rows are copied out of the index in milliseconds: one store's at a time, kept
    #: apart from the list-backed stores' (whose stacking is worth keeping)
    stacks = MatrixCache(kept=1)

    def __init__(self, store):
        self.store = store
        self.similarity = faiss_similarity(store)

    def _state(self):
        # rows are added or removed, never edited in place; LangChain replaces the id map on
        # deletion and grows it on addition
        index, id_map = self.store.index, self.store.index_to_docstore_id
        return StoreState((index, id_map), (index.ntotal, len(id_map)))

    def _all(self):
        # a copy, not a view of the index's rows: the store may grow (and reallocate them)
        # while a stacked matrix is still in use
        index = self.store.index
        mat = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d))
        ids = [self.store.index_to_docstore_id[i] for i in range(index.ntotal)]
        return ids, mat

    def count(self):
        return int(self.store.index.ntotal)

    def dimension(self):
        return int(self.store.index.d) if self.store.index.ntotal else None

    def search(self, queries, k, filters=None):
        if filters is not None:
            return super().search(queries, k, filters)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32)).copy()
        if getattr(self.store, "_normalize_L2", False):
            q /= np.linalg.norm(q, axis=1, keepdims=True)
        native, rows = self.store.index.search(q, within_index(k, self.store.index))
        id_at = self.store.index_to_docstore_id
        ids = [[id_at[r] for r in rr if r >= 0] for rr in rows.tolist()]
        return ids, np.where(rows >= 0, native.astype(np.float64), np.nan)

    def _rebuilt(self, ids, vectors):
        import faiss

        stacked = self._matrix()
        mat = stacked.matrix.copy()
        for doc_id, vec in zip(ids, np.asarray(vectors, dtype=np.float32)):
            if doc_id not in stacked.row:
                raise StoreError(f"id {doc_id!r} is not in this FAISS store")
            mat[stacked.row[doc_id]] = vec
        index = faiss.IndexFlat(mat.shape[1], self.store.index.metric_type)
        if len(mat):
            index.add(mat)
        return index

    def write(self, ids, vectors):
        self.store.index = self._rebuilt(ids, vectors)

    def clone_with(self, ids, vectors, name=None):
        new = own_documents(copy.copy(self.store))
        new.index = self._rebuilt(ids, vectors)
        return new


class LangChainFaissAnnAdapter(FaissDocuments, FaissPositionalAdapter):
    """HNSW and IVF indexes behind a LangChain ``FAISS`` store."""

    def __init__(self, store):
        self.store = store
        super().__init__(store.index, faiss_similarity(store))

    def _id_at(self):
        return self.store.index_to_docstore_id

    def _put_index(self, index):
        self.store.index = index

    def _normalise_queries(self):
        return bool(getattr(self.store, "_normalize_L2", False))

    def clone_with(self, ids, vectors, name=None):
        new = own_documents(copy.copy(self.store))
        rows = self._rows(ids)
        new.index = self._ivf_updated(rows, vectors) if self.ivf else \
            self._rebuilt(rows, np.asarray(vectors, np.float32))
        return new
