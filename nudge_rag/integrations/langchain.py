"""LangChain: a retriever that overlays a NudgeDelta on a vector store.

A ``BaseRetriever``, so it has ``invoke``, ``ainvoke`` and ``batch`` and composes in LCEL
chains. Like LangChain's own retrievers it returns the stored Documents; ``search_with_scores``
gives them with the store's own scores.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ..overlay import Overlay


class NudgedRetriever(BaseRetriever):
    """Top-``k`` documents of ``vectorstore`` as if ``delta`` had been applied. ``filter``
    is the store's own filter (a callable for InMemoryVectorStore, a dict or callable for
    FAISS) and applies to moved documents too."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: Any
    overlay: Any
    k: int = 4
    filter: Any = None

    @classmethod
    def from_store(cls, vectorstore, delta, k: int = 4, filter=None,  # noqa: A002
                   allow_model_mismatch: bool = False, **kwargs) -> NudgedRetriever:
        overlay = Overlay(vectorstore, delta, allow_model_mismatch=allow_model_mismatch)
        return cls(vectorstore=vectorstore, overlay=overlay, k=k, filter=filter, **kwargs)

    @property
    def delta(self):
        return self.overlay.delta

    def search_with_scores(self, embedding) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs for a query vector, best first; scores are the store's
        own (a distance for L2 stores), as ``similarity_search_with_score_by_vector`` gives."""
        ids, scores = self.overlay.search(embedding, self.k, self.filter)
        return list(zip(self.overlay.adapter.documents(ids), scores))

    def _documents(self, embedding) -> list[Document]:
        return [doc for doc, _ in self.search_with_scores(embedding)]

    def _embeddings(self):
        emb = getattr(self.vectorstore, "embeddings", None)
        return emb if emb is not None else self.vectorstore.embedding_function

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._documents(self._embeddings().embed_query(query))

    async def _aget_relevant_documents(
            self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        embedding = await self._embeddings().aembed_query(query)
        return await asyncio.get_running_loop().run_in_executor(None, self._documents,
                                                                embedding)
