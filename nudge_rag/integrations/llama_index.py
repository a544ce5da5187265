"""LlamaIndex: a retriever that overlays a NudgeDelta on a ``VectorStoreIndex``.

It drops into query engines (``RetrieverQueryEngine.from_args(retriever)``) like the index's
own retriever, and scores are the store's own (cosine for SimpleVectorStore).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from ..overlay import Overlay


class NudgedRetriever(BaseRetriever):
    """Top-``similarity_top_k`` nodes of ``index`` as if ``delta`` had been applied.
    ``filters`` (``MetadataFilters``) apply to moved and unmoved nodes alike."""

    def __init__(self, index, delta, similarity_top_k: int = 2, filters=None,
                 embed_model=None, allow_model_mismatch: bool = False, **kwargs: Any):
        self._index = index
        self._overlay = Overlay(index, delta, allow_model_mismatch=allow_model_mismatch)
        self._similarity_top_k = similarity_top_k
        self._filters = filters
        self._embed_model = embed_model or index._embed_model
        super().__init__(**kwargs)

    @property
    def delta(self):
        return self._overlay.delta

    def _nodes(self, query_embedding) -> list[NodeWithScore]:
        ids, scores = self._overlay.search(query_embedding, self._similarity_top_k,
                                           self._filters)
        nodes = self._index.docstore.get_nodes(ids)
        return [NodeWithScore(node=n, score=s) for n, s in zip(nodes, scores)]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        emb = query_bundle.embedding
        if emb is None:
            emb = self._embed_model.get_agg_embedding_from_queries(
                query_bundle.embedding_strs)
        return self._nodes(emb)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        emb = query_bundle.embedding
        if emb is None:
            emb = await self._embed_model.aget_agg_embedding_from_queries(
                query_bundle.embedding_strs)
        return self._nodes(emb)
