"""LangChain: ``InMemoryVectorStore`` (langchain-core, cosine) and community ``FAISS`` (flat
indexes; L2 by default, inner product with ``DistanceStrategy.MAX_INNER_PRODUCT``)."""

from __future__ import annotations

import copy

import numpy as np

from ..errors import InputError, StoreError
from .base import MatrixBacked


class InMemoryAdapter(MatrixBacked):
    kind = "langchain InMemoryVectorStore"
    similarity = "cosine"

    def __init__(self, store):
        self.store = store

    def framework_object(self):
        return self.store

    def count(self):
        return len(self.store.store)

    def _cache_owner(self):
        return self.store.store

    def _all(self):
        items = self.store.store
        return list(items.keys()), [rec["vector"] for rec in items.values()]

    def embed_model(self):
        return self.store.embeddings

    def query(self, query, k, filters=None):
        hits = self.store.similarity_search_with_score_by_vector(list(map(float, query)), k=k,
                                                                 filter=filters)
        return [d.id for d, _ in hits], np.asarray([s for _, s in hits], dtype=np.float64)

    def documents(self, ids):
        from langchain_core.documents import Document

        recs = [self.store.store[i] for i in ids]
        return [Document(id=r["id"], page_content=r["text"], metadata=r["metadata"])
                for r in recs]

    def filter_ids(self, ids, filters):
        if filters is None:
            return list(ids)
        if not callable(filters):
            raise InputError("filter for an InMemoryVectorStore must be a callable taking a "
                             "Document and returning a bool")
        return [d.id for d in self.documents(ids) if filters(d)]

    def write(self, ids, vectors):
        for doc_id, vec in zip(ids, np.asarray(vectors, dtype=np.float64)):
            rec = dict(self.store.store[doc_id])
            rec["vector"] = vec.tolist()
            self.store.store[doc_id] = rec
        self._invalidate()

    def clone_with(self, ids, vectors, name=None):
        new = type(self.store)(self.store.embeddings)
        new.store = dict(self.store.store)
        InMemoryAdapter(new).write(ids, vectors)
        return new


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


def _is_flat(index) -> bool:
    return type(index).__name__ in ("IndexFlatL2", "IndexFlatIP", "IndexFlat")


class FaissDocuments:
    """A LangChain ``FAISS`` store's documents (its docstore) and its own filters (a metadata
    dict or a callable), whatever index it searches with."""

    store = None

    def documents(self, ids):
        return [self.store.docstore.search(i) for i in ids]

    def filter_ids(self, ids, filters):
        if filters is None:
            return list(ids)
        admit = self.store._create_filter_func(filters)
        return [i for i, d in zip(ids, self.documents(ids)) if admit(d.metadata)]


class FaissAdapter(FaissDocuments, MatrixBacked):
    """Flat FAISS indexes. They cannot change one row in place, so writes rebuild the flat
    index from its own vectors (a copy of a few MB per 10k records)."""

    kind = "langchain FAISS"

    def __init__(self, store):
        self.store = store
        self.similarity = faiss_similarity(store)
        index = store.index
        if not hasattr(index, "reconstruct_n") or type(index).__name__ not in (
                "IndexFlatL2", "IndexFlatIP", "IndexFlat"):
            raise InputError(f"FAISS index type {type(index).__name__} is not supported yet; "
                             "use a flat index (IndexFlatL2 / IndexFlatIP) or the overlay")

    def framework_object(self):
        return self.store

    def _all(self):
        # a copy, not a view of the index's rows: the store may grow (and reallocate them)
        # while an adapter still holds its matrix
        index = self.store.index
        mat = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d))
        ids = [self.store.index_to_docstore_id[i] for i in range(index.ntotal)]
        return ids, mat

    def count(self):
        return int(self.store.index.ntotal)

    def dimension(self):
        return int(self.store.index.d) if self.store.index.ntotal else None

    def embed_model(self):
        emb = self.store.embedding_function
        return emb if not callable(emb) or hasattr(emb, "embed_query") else None

    def search(self, queries, k, filters=None):
        if filters is not None:
            return super().search(queries, k, filters)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32)).copy()
        if getattr(self.store, "_normalize_L2", False):
            q /= np.linalg.norm(q, axis=1, keepdims=True)
        native, rows = self.store.index.search(q, k)
        ids = [[self.store.index_to_docstore_id[r] for r in rr if r >= 0] for rr in rows]
        return ids, np.where(rows >= 0, native.astype(np.float64), np.nan)

    def query(self, query, k, filters=None):
        """FAISS's own index search; with a filter, deeper until ``k`` records pass (LangChain's
        own filtered search stops at ``fetch_k`` and can return fewer)."""
        if filters is not None:
            return self.admitted_search(query, k, filters)
        ids, native = self.search(np.asarray(query)[None, :], k)
        return ids[0], native[0][:len(ids[0])]


    def _rebuilt(self, ids, vectors):
        import faiss

        _, mat, row = self._matrix()
        mat = mat.copy()
        for doc_id, vec in zip(ids, np.asarray(vectors, dtype=np.float32)):
            if doc_id not in row:
                raise StoreError(f"id {doc_id!r} is not in this FAISS store")
            mat[row[doc_id]] = vec
        index = faiss.IndexFlat(mat.shape[1], self.store.index.metric_type)
        if len(mat):
            index.add(mat)
        return index

    def write(self, ids, vectors):
        self.store.index = self._rebuilt(ids, vectors)
        self._invalidate()

    def clone_with(self, ids, vectors, name=None):
        new = copy.copy(self.store)
        new.index = self._rebuilt(ids, vectors)
        new.index_to_docstore_id = dict(self.store.index_to_docstore_id)
        return new


def adapt(obj):
    """An adapter for a LangChain vector store, or ``None`` if ``obj`` is not one."""
    try:
        from langchain_core.vectorstores import InMemoryVectorStore, VectorStore
    except ImportError:
        return None
    if isinstance(obj, InMemoryVectorStore):
        return InMemoryAdapter(obj)
    name = type(obj).__name__
    if name == "Chroma" and type(obj).__module__.startswith("langchain_chroma"):
        from .chroma import LangChainChromaAdapter

        return LangChainChromaAdapter(obj)
    if name == "QdrantVectorStore" and type(obj).__module__.startswith("langchain_qdrant"):
        from .qdrant import LangChainQdrantAdapter

        return LangChainQdrantAdapter(obj)
    if name == "PGVector" and type(obj).__module__.startswith("langchain_postgres"):
        from .pgvector import LangChainPgVectorAdapter

        return LangChainPgVectorAdapter(obj)
    if type(obj).__module__.startswith("langchain_milvus"):
        from .milvus import LangChainMilvusAdapter

        return LangChainMilvusAdapter(obj)
    try:
        from langchain_community.vectorstores import FAISS
    except ImportError:
        FAISS = None
    if FAISS is not None and isinstance(obj, FAISS):
        if _is_flat(obj.index):
            return FaissAdapter(obj)
        from .faiss_ann import LangChainFaissAnnAdapter, check_supported

        check_supported(obj.index)
        return LangChainFaissAnnAdapter(obj, faiss_similarity(obj))
    if isinstance(obj, VectorStore):
        raise InputError(f"LangChain store {type(obj).__name__} is not supported yet; "
                         "supported: InMemoryVectorStore, FAISS, Chroma, QdrantVectorStore, "
                         "PGVector, Milvus")
    return None
