"""LangChain: ``InMemoryVectorStore`` (langchain-core, cosine). FAISS is in
:mod:`nudge_rag.stores.langchain_faiss`."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import MatrixBacked, StoreState


class InMemoryAdapter(MatrixBacked):
    kind = "langchain InMemoryVectorStore"
    framework = "langchain"
    similarity = "cosine"

    def __init__(self, store):
        self.store = store

    def framework_object(self):
        return self.store

    def count(self):
        return len(self.store.store)

    def dimension(self):
        first = next(iter(self.store.store.values()), None)
        return None if first is None else len(first["vector"])

    def _state(self):
        records = self.store.store
        return StoreState((*records.keys(), *(r["vector"] for r in records.values())))

    def _all(self):
        records = self.store.store
        return list(records.keys()), [r["vector"] for r in records.values()]

    def embed_model(self):
        return self.store.embeddings

    def query(self, query, k, filters=None, options=None):
        self.check_options(options)
        hits = self.store.similarity_search_with_score_by_vector(list(map(float, query)), k=k,
                                                                 filter=filters)
        return [d.id for d, _ in hits], np.asarray([s for _, s in hits], dtype=np.float64)

    def payloads(self, ids):
        from langchain_core.documents import Document

        records = self.store.store
        return [None if (r := records.get(i)) is None else
                Document(id=r["id"], page_content=r["text"], metadata=r["metadata"])
                for i in ids]

    def filter_ids(self, ids, filters, options=None):
        if filters is None:
            return list(ids)
        if not callable(filters):
            raise InputError("filter for an InMemoryVectorStore must be a callable taking a "
                             "Document and returning a bool")
        return [d.id for d in self.payloads(ids) if d is not None and filters(d)]

    def write(self, ids, vectors):
        for doc_id, vec in zip(ids, np.asarray(vectors, dtype=np.float64)):
            rec = dict(self.store.store[doc_id])
            rec["vector"] = vec.tolist()
            self.store.store[doc_id] = rec

    def clone_with(self, ids, vectors, name=None):
        new = type(self.store)(self.store.embeddings)
        new.store = dict(self.store.store)
        InMemoryAdapter(new).write(ids, vectors)
        return new
