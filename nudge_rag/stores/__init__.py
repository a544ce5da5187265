"""Adapters between nudge-rag and vector stores: the contract every adapter keeps
(:mod:`.base`), what database adapters share (:mod:`.database`), one module per store, and
the registry that picks an adapter by the store's class (:mod:`.registry`).

Supported: LlamaIndex ``VectorStoreIndex`` over ``SimpleVectorStore``, ``FaissVectorStore``
(flat, HNSW, IVF), ``ChromaVectorStore``, ``QdrantVectorStore`` or ``PGVectorStore``; LangChain
``InMemoryVectorStore``, ``FAISS`` (flat, HNSW, IVF), ``Chroma``, ``QdrantVectorStore`` and
``PGVector``.
"""

from __future__ import annotations

from .base import StoreAdapter
from .registry import adapt, register

__all__ = ["StoreAdapter", "adapt", "register"]
