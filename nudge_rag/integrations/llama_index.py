"""LlamaIndex: a retriever that overlays a NudgeDelta on a ``VectorStoreIndex``.

It takes the arguments of LlamaIndex's own ``VectorIndexRetriever`` and drops into query
engines (``RetrieverQueryEngine.from_args(retriever)``) like the index's own retriever:
callbacks and ``verbose`` go to ``BaseRetriever``, every retrieval is an instrumentation span,
``similarity_top_k`` can be read and set, and ``aretrieve`` awaits the store's async search
(or runs its search in a worker thread) instead of blocking the event loop. Scores are the
store's own (cosine for SimpleVectorStore).
"""

from __future__ import annotations

import llama_index.core.instrumentation as instrument
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.constants import DEFAULT_SIMILARITY_TOP_K
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import VectorStoreQueryMode

from ..errors import InputError, positive_whole
from ..overlay import Hit, Overlay
from ..stores.base import run_blocking

dispatcher = instrument.get_dispatcher(__name__)


class NudgedRetriever(BaseRetriever):
    """Top-``similarity_top_k`` nodes of ``index`` as if ``delta`` had been applied, without
    writing to it. ``filters`` (``MetadataFilters``) apply to moved and unmoved nodes alike;
    ``vector_store_kwargs`` are the store's search options.

    ``node_ids`` and ``doc_ids`` restrict retrieval to those nodes, or to the nodes of those
    documents (as the docstore records them), scored exactly. NUDGE moves dense vectors, so
    only the default (dense) query mode is served; ``alpha``, ``sparse_top_k`` and
    ``hybrid_top_k``, which only hybrid and sparse modes read, are kept as given.
    """

    def __init__(self, index, delta, similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
                 vector_store_query_mode: VectorStoreQueryMode | str =
                 VectorStoreQueryMode.DEFAULT, filters=None, alpha: float | None = None,
                 node_ids: list[str] | None = None, doc_ids: list[str] | None = None,
                 sparse_top_k: int | None = None, hybrid_top_k: int | None = None,
                 callback_manager: CallbackManager | None = None,
                 object_map: dict | None = None, embed_model=None, verbose: bool = False,
                 allow_model_mismatch: bool = False,
                 vector_store_kwargs: dict | None = None) -> None:
        if VectorStoreQueryMode(vector_store_query_mode) != VectorStoreQueryMode.DEFAULT:
            raise InputError(f"vector_store_query_mode={vector_store_query_mode!r}: the nudged "
                             "retriever searches dense vectors only "
                             "(VectorStoreQueryMode.DEFAULT)")
        self._alpha, self._sparse_top_k, self._hybrid_top_k = alpha, sparse_top_k, hybrid_top_k
        self._node_ids = None if node_ids is None else list(node_ids)
        self._doc_ids = None if doc_ids is None else list(doc_ids)
        _check_documents(index, self._doc_ids)
        self._index = index
        self._overlay = Overlay(index, delta, allow_model_mismatch=allow_model_mismatch)
        self.similarity_top_k = similarity_top_k
        self._filters = filters
        self._options = dict(vector_store_kwargs or {})
        self._overlay.adapter.check_options(self._options)
        self._embed_model = embed_model or self._overlay.adapter.embed_model()
        super().__init__(callback_manager=callback_manager or CallbackManager(),
                         object_map=object_map, verbose=verbose)

    @property
    def delta(self):
        return self._overlay.delta

    @property
    def overlay(self) -> Overlay:
        return self._overlay

    @property
    def similarity_top_k(self) -> int:
        """How many nodes a retrieval returns."""
        return self._similarity_top_k

    @similarity_top_k.setter
    def similarity_top_k(self, value: int) -> None:
        self._similarity_top_k = positive_whole(value, "similarity_top_k")

    def _scored(self, hits: list[Hit]) -> list[NodeWithScore]:
        return [NodeWithScore(node=hit.payload, score=hit.score) for hit in hits]

    def _check_embedding(self, query_bundle: QueryBundle) -> None:
        if query_bundle.embedding is None and not query_bundle.embedding_strs:
            raise InputError("the query has neither text nor an embedding; pass a question")
        if query_bundle.embedding is None and self._embed_model is None:
            raise InputError("no embedding model is known for this index; pass "
                             "embed_model=... or a QueryBundle with an embedding")

    @dispatcher.span
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self._check_embedding(query_bundle)
        embedding = query_bundle.embedding
        if embedding is None:
            embedding = self._embed_model.get_agg_embedding_from_queries(
                query_bundle.embedding_strs)
        return self._scored(self._search(embedding))

    def _search(self, embedding):
        among = self._among()
        if among is not None:
            return self._overlay.search_among(among, embedding, self._similarity_top_k,
                                              self._filters, self._options)
        return self._overlay.search(embedding, self._similarity_top_k, self._filters,
                                    self._options)

    @dispatcher.span
    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self._check_embedding(query_bundle)
        embedding = query_bundle.embedding
        if embedding is None:
            embedding = await self._embed_model.aget_agg_embedding_from_queries(
                query_bundle.embedding_strs)
        if self._node_ids is not None or self._doc_ids is not None:
            return self._scored(await run_blocking(self._search, embedding))
        return self._scored(await self._overlay.asearch(embedding, self._similarity_top_k,
                                                        self._filters, self._options))

    def _among(self) -> list[str] | None:
        """The node ids a retrieval is restricted to (``None``: no restriction):
        ``node_ids``, plus the nodes of ``doc_ids`` as the docstore records them now (a
        document updated or deleted since the retriever was made has other nodes, or none)."""
        if self._node_ids is None and self._doc_ids is None:
            return None
        among = list(self._node_ids or [])
        for doc_id in self._doc_ids or []:
            info = self._index.docstore.get_ref_doc_info(doc_id)
            among.extend(info.node_ids if info is not None else [])
        return among


def _check_documents(index, doc_ids) -> None:
    """Refuse ``doc_ids`` that the index's docstore does not know when the retriever is made."""
    for doc_id in doc_ids or []:
        if index.docstore.get_ref_doc_info(doc_id) is None:
            raise InputError(f"doc_ids: the index's docstore knows no document {doc_id!r} "
                             "(stores that keep nodes themselves record no documents there); "
                             "pass node_ids or filters instead")
