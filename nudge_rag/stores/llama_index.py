"""LlamaIndex: a ``VectorStoreIndex`` over a ``SimpleVectorStore`` (in memory, or loaded from a
persist dir), or the bare store. SimpleVectorStore ranks by cosine similarity."""

from __future__ import annotations

import numpy as np

from ..errors import InputError, StoreError
from .base import MatrixBacked, StoreState


class SimpleVectorStoreAdapter(MatrixBacked):
    kind = "llama-index SimpleVectorStore"
    framework = "llama-index"
    similarity = "cosine"

    def __init__(self, vector_store, index=None):
        self.index = index
        self.store = vector_store

    def framework_object(self):
        return self.index if self.index is not None else self.store

    def count(self):
        return len(self.store.data.embedding_dict)

    def dimension(self):
        first = next(iter(self.store.data.embedding_dict.values()), None)
        return None if first is None else len(first)

    def _state(self):
        emb = self.store.data.embedding_dict
        return StoreState((*emb.keys(), *emb.values()))

    def _all(self):
        emb = self.store.data.embedding_dict
        return list(emb.keys()), list(emb.values())

    def embed_model(self):
        return getattr(self.index, "_embed_model", None) if self.index is not None else None

    def query(self, query, k, filters=None, options=None):
        from llama_index.core.vector_stores.types import VectorStoreQuery

        self.check_options(options)
        res = self.store.query(VectorStoreQuery(query_embedding=list(map(float, query)),
                                                similarity_top_k=k, filters=filters))
        return list(res.ids or []), np.asarray(res.similarities or [], dtype=np.float64)

    def filter_ids(self, ids, filters, options=None):
        if filters is None:
            return list(ids)
        from llama_index.core.vector_stores.utils import build_metadata_filter_fn

        meta = self.store.data.metadata_dict
        if not meta and self.store.data.embedding_dict:
            raise InputError("filters were given but this SimpleVectorStore holds no metadata "
                             "(persisted without it); rebuild the index to filter")
        admit = build_metadata_filter_fn(lambda node_id: meta.get(node_id, {}), filters)
        return [i for i in ids if admit(i)]

    def payloads(self, ids):
        """Nodes of ``ids`` from the index's docstore, in order (``None`` for a missing one).
        A bare SimpleVectorStore holds vectors only: the nodes live in an index's docstore."""
        if self.index is None:
            raise StoreError("a bare SimpleVectorStore holds no nodes; pass the "
                             "VectorStoreIndex over it")
        return self.index.docstore.get_nodes(list(ids), raise_error=False)

    def write(self, ids, vectors):
        emb = self.store.data.embedding_dict
        for node_id, vec in zip(ids, np.asarray(vectors, dtype=np.float64)):
            emb[node_id] = vec.tolist()

    def clone_with(self, ids, vectors, name=None):
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.vector_stores import SimpleVectorStore
        from llama_index.core.vector_stores.simple import SimpleVectorStoreData

        data = self.store.data
        new_data = SimpleVectorStoreData(
            embedding_dict=dict(data.embedding_dict),
            text_id_to_ref_doc_id=dict(data.text_id_to_ref_doc_id),
            metadata_dict=dict(data.metadata_dict),
        )
        for node_id, vec in zip(ids, np.asarray(vectors, dtype=np.float64)):
            new_data.embedding_dict[node_id] = vec.tolist()
        store = SimpleVectorStore(data=new_data)
        if self.index is None:
            return store
        storage = StorageContext.from_defaults(docstore=self.index.docstore, vector_store=store)
        struct = type(self.index.index_struct).from_dict(self.index.index_struct.to_dict())
        storage.index_store.add_index_struct(struct)
        return VectorStoreIndex(index_struct=struct, storage_context=storage,
                                embed_model=self.embed_model())
