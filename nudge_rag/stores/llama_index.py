"""LlamaIndex: a ``VectorStoreIndex`` over a ``SimpleVectorStore`` (in memory, or loaded from a
persist dir). SimpleVectorStore ranks by cosine similarity."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import MatrixBacked


class SimpleVectorStoreAdapter(MatrixBacked):
    kind = "llama-index SimpleVectorStore"
    similarity = "cosine"

    def __init__(self, index=None, vector_store=None):
        self.index = index
        self.store = vector_store if vector_store is not None else index.vector_store

    def framework_object(self):
        return self.index if self.index is not None else self.store

    def count(self):
        return len(self.store.data.embedding_dict)

    def _cache_owner(self):
        return self.store.data.embedding_dict

    def _all(self):
        emb = self.store.data.embedding_dict
        return list(emb.keys()), list(emb.values())

    def embed_model(self):
        return getattr(self.index, "_embed_model", None) if self.index is not None else None

    def query(self, query, k, filters=None):
        from llama_index.core.vector_stores.types import VectorStoreQuery

        res = self.store.query(VectorStoreQuery(query_embedding=list(map(float, query)),
                                                similarity_top_k=k, filters=filters))
        return list(res.ids or []), np.asarray(res.similarities or [], dtype=np.float64)

    def filter_ids(self, ids, filters):
        if filters is None:
            return list(ids)
        from llama_index.core.vector_stores.utils import build_metadata_filter_fn

        meta = self.store.data.metadata_dict
        if not meta and self.store.data.embedding_dict:
            raise InputError("filters were given but this SimpleVectorStore holds no metadata "
                             "(persisted without it); rebuild the index to filter")
        admit = build_metadata_filter_fn(lambda node_id: meta.get(node_id, {}), filters)
        return [i for i in ids if admit(i)]

    def write(self, ids, vectors):
        emb = self.store.data.embedding_dict
        for node_id, vec in zip(ids, np.asarray(vectors, dtype=np.float64)):
            emb[node_id] = vec.tolist()
        self._invalidate()

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

    def nodes(self, ids):
        """Nodes of ``ids`` from the index's docstore, in order."""
        return self.index.docstore.get_nodes(list(ids))


def _database(store, index):
    """A database adapter for a LlamaIndex vector store backed by one, else ``None``."""
    name = type(store).__name__
    if name == "ChromaVectorStore":
        from .chroma import LlamaChromaAdapter

        return LlamaChromaAdapter(index=index, vector_store=store)
    if name == "QdrantVectorStore":
        from .qdrant import LlamaQdrantAdapter

        return LlamaQdrantAdapter(index=index, vector_store=store)
    if name == "PGVectorStore":
        from .pgvector import LlamaPgVectorAdapter

        return LlamaPgVectorAdapter(index=index, vector_store=store)
    if name == "MilvusVectorStore":
        from .milvus import LlamaMilvusAdapter

        return LlamaMilvusAdapter(index=index, vector_store=store)
    return None


def adapt(obj):
    """An adapter for a LlamaIndex index or vector store, or ``None`` if ``obj`` is neither."""
    try:
        from llama_index.core.indices.vector_store.base import VectorStoreIndex
        from llama_index.core.vector_stores import SimpleVectorStore
    except ImportError:
        return None
    if isinstance(obj, VectorStoreIndex):
        if isinstance(obj.vector_store, SimpleVectorStore):
            return SimpleVectorStoreAdapter(index=obj)
        if type(obj.vector_store).__name__ == "FaissVectorStore":
            from .faiss_ann import LlamaFaissAdapter, check_supported

            check_supported(obj.vector_store._faiss_index, flat_ok=True)
            return LlamaFaissAdapter(obj)
        found = _database(obj.vector_store, obj)
        if found is not None:
            return found
        raise InputError(f"the index's vector store {type(obj.vector_store).__name__} is not "
                         "supported yet; supported: SimpleVectorStore, ChromaVectorStore, "
                         "QdrantVectorStore, PGVectorStore, MilvusVectorStore, "
                         "FaissVectorStore")
    if isinstance(obj, SimpleVectorStore):
        return SimpleVectorStoreAdapter(vector_store=obj)
    return _database(obj, None)
