"""Adapters between nudge-rag and vector stores (one small module per framework)."""

from __future__ import annotations

from ..errors import InputError
from .base import StoreAdapter


def adapt(obj) -> StoreAdapter:
    """The adapter for a LlamaIndex index/vector store or a LangChain vector store."""
    if isinstance(obj, StoreAdapter):
        return obj
    module = type(obj).__module__.split(".")[0]
    if module.startswith("llama_index"):
        from .llama_index import adapt as llama_adapt

        found = llama_adapt(obj)
    elif module.startswith("langchain"):
        from .langchain import adapt as lc_adapt

        found = lc_adapt(obj)
    else:
        found = None
    if found is None:
        raise InputError(f"index_or_store of type {type(obj).__name__} is not supported; pass a "
                         "LlamaIndex VectorStoreIndex / SimpleVectorStore, or a LangChain "
                         "InMemoryVectorStore / FAISS store")
    return found


__all__ = ["StoreAdapter", "adapt"]
