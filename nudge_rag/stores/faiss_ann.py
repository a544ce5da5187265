"""Approximate FAISS indexes (HNSW, IVF) behind LangChain's ``FAISS`` store.

Vectors are read by position (``reconstruct``) and searched with the index's own search, so
the validation competition is what the index itself would return. Writes change only what
must change: an IVF index moves the changed rows to their new lists (``update_vectors``); an
HNSW graph cannot change a node in place, so writing rebuilds the graph (same M and
efConstruction) from its own stored vectors; where that is too costly, use the overlay.
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import InputError, StoreError
from .base import StoreAdapter

ANN_TYPES = ("IndexHNSWFlat", "IndexIVFFlat")


class LangChainFaissAnnAdapter(StoreAdapter):
    kind = "langchain FAISS (approximate index)"

    def __init__(self, store, similarity: str):
        import faiss

        self.store = store
        self.similarity = similarity
        self.index = faiss.downcast_index(store.index)
        self.ivf = type(self.index).__name__ == "IndexIVFFlat"
        self.kind = f"langchain FAISS {type(self.index).__name__}"

    def framework_object(self):
        return self.store

    def count(self):
        return int(self.index.ntotal)

    def dimension(self):
        return int(self.index.d) if self.index.ntotal else None

    def embed_model(self):
        emb = self.store.embedding_function
        return emb if not callable(emb) or hasattr(emb, "embed_query") else None

    def _positions(self):
        return {doc_id: pos for pos, doc_id in self.store.index_to_docstore_id.items()}

    def _direct_map(self):
        if self.ivf and self.index.direct_map.type == 0:  # NoMap
            self.index.make_direct_map()

    def existing(self, ids):
        pos = self._positions()
        return [i for i in ids if i in pos]

    def fetch(self, ids):
        pos = self._positions()
        found = [i for i in ids if i in pos]
        if not found:
            return [], np.zeros((0, self.index.d))
        self._direct_map()
        rows = np.stack([self.index.reconstruct(int(pos[i])) for i in found])
        return found, rows.astype(np.float64)

    def search(self, queries, k, filters=None):
        if filters is not None:
            raise StoreError(f"{self.kind}: filtered search is not supported; filter after "
                             "retrieval or use a flat index")
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32)).copy()
        if getattr(self.store, "_normalize_L2", False):
            q /= np.linalg.norm(q, axis=1, keepdims=True)
        native, rows = self.index.search(q, k)
        ids = [[self.store.index_to_docstore_id[int(r)] for r in rr if r >= 0] for rr in rows]
        return ids, np.where(rows >= 0, native.astype(np.float64), np.nan)

    def documents(self, ids):
        return [self.store.docstore.search(i) for i in ids]

    def _rows(self, ids):
        pos = self._positions()
        missing = [i for i in ids if i not in pos]
        if missing:
            raise StoreError(f"ids {missing[:3]} are not in this FAISS store")
        return np.array([pos[i] for i in ids], dtype=np.int64)

    def _rebuilt_hnsw(self, rows, vectors):
        import faiss

        index = self.index
        mat = index.reconstruct_n(0, index.ntotal)
        mat[rows] = vectors
        new = faiss.IndexHNSWFlat(index.d, index.hnsw.nb_neighbors(0) // 2, index.metric_type)
        new.hnsw.efConstruction = index.hnsw.efConstruction
        new.hnsw.efSearch = index.hnsw.efSearch
        new.add(mat)
        return new

    def write(self, ids, vectors):
        rows = self._rows(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.ivf:
            self._direct_map()
            self.index.update_vectors(rows, vectors)
        else:
            self.index = self._rebuilt_hnsw(rows, vectors)
            self.store.index = self.index

    def clone_with(self, ids, vectors):
        import faiss

        new = copy.copy(self.store)
        new.index_to_docstore_id = dict(self.store.index_to_docstore_id)
        if self.ivf:
            self._direct_map()
            new.index = faiss.clone_index(self.index)
            new.index.make_direct_map()
            new.index.update_vectors(self._rows(ids),
                                     np.ascontiguousarray(vectors, dtype=np.float32))
        else:
            new.index = self._rebuilt_hnsw(self._rows(ids), np.asarray(vectors, np.float32))
        return new


def check_supported(index) -> None:
    import faiss

    name = type(faiss.downcast_index(index)).__name__
    if name not in ANN_TYPES:
        raise InputError(f"FAISS index type {name} is not supported; use a flat index, "
                         "IndexHNSWFlat or IndexIVFFlat, or the overlay retriever")
