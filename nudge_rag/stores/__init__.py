"""Adapters between nudge-rag and vector stores: the contract every adapter keeps
(:mod:`.base`), what database adapters share (:mod:`.database`), one module per store, and
the registry that picks an adapter by the store's class (:mod:`.registry`).

The stores served are the entries of :data:`.registry.ADAPTERS` (its ``SUPPORTED`` names them
in messages): LlamaIndex ``VectorStoreIndex`` over ``SimpleVectorStore``, ``FaissVectorStore``
(flat, HNSW, IVF), ``ChromaVectorStore``, ``QdrantVectorStore``, ``PGVectorStore`` or
``MilvusVectorStore``, or the bare store; LangChain ``InMemoryVectorStore``, ``FAISS`` (flat,
HNSW, IVF), ``Chroma``, ``QdrantVectorStore``, ``PGVector`` and ``Milvus``.
"""

from __future__ import annotations

from .base import StoreAdapter
from .registry import adapt, register

__all__ = ["StoreAdapter", "adapt", "register"]
