"""Deterministic embedding models that count their calls.

They hash words into a fixed-size vector (a bag of hashed words), so texts that share words
are near each other and ranking is meaningful, unlike LlamaIndex's MockEmbedding.
"""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np


def hashed_embedding(text: str, dim: int) -> list[float]:
    v = np.zeros(dim)
    for word in text.lower().split():
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        v[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    n = np.linalg.norm(v)
    if n == 0:
        v[0] = 1.0
        n = 1.0
    return (v / n).tolist()


@cache
def _llama_class():
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class CountingLlamaEmbedding(BaseEmbedding):
        dim: int = 64
        _calls: dict = PrivateAttr(default_factory=lambda: {"query": 0, "text": 0})

        @classmethod
        def class_name(cls) -> str:
            return "CountingLlamaEmbedding"

        @property
        def calls(self):
            return self._calls

        def _get_query_embedding(self, query):
            self._calls["query"] += 1
            return hashed_embedding(query, self.dim)

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text):
            self._calls["text"] += 1
            return hashed_embedding(text, self.dim)

    return CountingLlamaEmbedding


@cache
def _langchain_class():
    from langchain_core.embeddings import Embeddings

    class CountingLangChainEmbeddings(Embeddings):
        def __init__(self, dim: int = 64):
            self.dim = dim
            self.calls = {"query": 0, "text": 0}
            self.model_name = f"hashed-{dim}"

        def embed_documents(self, texts):
            self.calls["text"] += len(texts)
            return [hashed_embedding(t, self.dim) for t in texts]

        def embed_query(self, text):
            self.calls["query"] += 1
            return hashed_embedding(text, self.dim)

    return CountingLangChainEmbeddings


def __getattr__(name):
    if name == "CountingLlamaEmbedding":
        return _llama_class()
    if name == "CountingLangChainEmbeddings":
        return _langchain_class()
    raise AttributeError(name)
