"""Which adapter serves which store: one table, keyed by the store's class.

Keys are where each class is defined (``module.QualName``), so finding an adapter imports no
framework: a user who holds a store has already imported its class, and the lookup walks that
object's class and its bases (a subclass of a supported store is served like its base). The
adapter modules are imported only when their entry is used.

Adding a store is one adapter module plus one entry here (or a :func:`register` call).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import InputError
from .base import StoreAdapter

#: store class (where it is defined) -> "adapter module:factory"; a factory takes the store,
#: and ``index=`` the LlamaIndex index over it when the user passed one
ADAPTERS: dict[str, str | Callable] = {
    # LlamaIndex
    "llama_index.core.vector_stores.simple.SimpleVectorStore":
        "llama_index:SimpleVectorStoreAdapter",
    "llama_index.vector_stores.faiss.base.FaissVectorStore": "faiss_index:llama_faiss",
    "llama_index.vector_stores.chroma.base.ChromaVectorStore": "chroma:LlamaChromaAdapter",
    "llama_index.vector_stores.qdrant.base.QdrantVectorStore": "qdrant:LlamaQdrantAdapter",
    "llama_index.vector_stores.postgres.base.PGVectorStore": "pgvector:LlamaPgVectorAdapter",
    "llama_index.vector_stores.milvus.base.MilvusVectorStore": "milvus:LlamaMilvusAdapter",
    # LangChain
    "langchain_core.vectorstores.in_memory.InMemoryVectorStore": "langchain:InMemoryAdapter",
    "langchain_community.vectorstores.faiss.FAISS": "langchain_faiss:langchain_faiss",
    "langchain_chroma.vectorstores.Chroma": "chroma:LangChainChromaAdapter",
    "langchain_qdrant.qdrant.QdrantVectorStore": "qdrant:LangChainQdrantAdapter",
    "langchain_postgres.vectorstores.PGVector": "pgvector:LangChainPgVectorAdapter",
    "langchain_milvus.vectorstores.milvus.Milvus": "milvus:LangChainMilvusAdapter",
}

#: LlamaIndex indexes over a vector store: the adapter is the one of ``index.vector_store``
INDEXES = ("llama_index.core.indices.vector_store.base.VectorStoreIndex",)

SUPPORTED = ("LlamaIndex VectorStoreIndex over SimpleVectorStore, FaissVectorStore, "
             "ChromaVectorStore, QdrantVectorStore, PGVectorStore or MilvusVectorStore; "
             "LangChain InMemoryVectorStore, FAISS, Chroma, QdrantVectorStore, PGVector or "
             "Milvus")


def register(store_class: type | str, adapter: Callable | str) -> None:
    """Serve ``store_class`` (a class, or ``"module.QualName"``) with ``adapter``: a callable
    ``adapter(store)`` (``adapter(store, index=index)`` for a LlamaIndex store reached through
    its index) returning a :class:`StoreAdapter`, or ``"module:name"`` of one inside
    ``nudge_rag.stores``."""
    ADAPTERS[_key(store_class) if isinstance(store_class, type) else store_class] = adapter


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _entry(obj, table) -> str | Callable | None:
    """The entry for ``obj``'s class or its nearest base that has one."""
    for cls in type(obj).__mro__:
        key = _key(cls)
        if key in table:
            return table[key] if isinstance(table, dict) else key
    return None


def _resolve(entry: str | Callable) -> Callable:
    if callable(entry):
        return entry
    module, name = entry.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def adapt(obj) -> StoreAdapter:
    """The adapter for ``obj``: a LlamaIndex index or vector store, or a LangChain vector
    store (an adapter is returned as it is)."""
    if isinstance(obj, StoreAdapter):
        return obj
    index = None
    if _entry(obj, INDEXES) is not None:
        index, obj = obj, obj.vector_store
    entry = _entry(obj, ADAPTERS)
    if entry is None:
        held = f" holds a {type(obj).__name__}, which" if index is not None else ""
        raise InputError(f"index_or_store of type {type(index or obj).__name__}{held} is not "
                         f"supported; supported: {SUPPORTED}")
    factory = _resolve(entry)
    return factory(obj) if index is None else factory(obj, index=index)
