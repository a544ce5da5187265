"""LangChain: a retriever that overlays a NudgeDelta on a vector store.

A ``BaseRetriever``, so it has ``invoke``, ``ainvoke``, ``batch`` and ``abatch`` and composes
in LCEL chains. Like LangChain's ``VectorStoreRetriever`` it returns the stored Documents, and
options given to a call (``k``, ``filter`` and the store's other search options) override
the retriever's own for that call; ``search_with_scores`` gives the Documents with the
store's own scores.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field, InstanceOf, PrivateAttr

from ..errors import InputError
from ..overlay import Delta, Overlay


class NudgedRetriever(BaseRetriever):
    """Top-``k`` documents of ``vectorstore`` as if ``delta`` had been applied, without
    writing to it.

    ``filter`` is the store's own filter (a callable for InMemoryVectorStore, a dict or
    callable for FAISS, a ``where`` dict for Chroma, a Qdrant ``Filter``, a dict for PGVector)
    and applies to moved documents too. ``search_kwargs`` holds the store's other search
    options (``where_document`` for Chroma; ``search_params``, ``consistency``,
    ``score_threshold`` for Qdrant; ``fetch_k`` for FAISS). A call's keyword arguments
    override ``k``, ``filter`` and ``search_kwargs`` for that call only, as in LangChain's
    ``VectorStoreRetriever``: ``retriever.invoke(query, k=1)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: VectorStore
    delta: InstanceOf[Delta]
    k: int = Field(default=4, ge=1)
    filter: Any = None
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: only plain similarity search: MMR and relevance thresholds re-rank what the store
    #: returns by scores that the nudged vectors would change
    search_type: Literal["similarity"] = "similarity"
    allow_model_mismatch: bool = False
    _overlay: Overlay = PrivateAttr()

    def __init__(self, **data: Any):
        super().__init__(**_k_and_filter_as_fields(data))

    def model_post_init(self, context: Any) -> None:
        self._overlay = Overlay(self.vectorstore, self.delta,
                                allow_model_mismatch=self.allow_model_mismatch)
        self._overlay.adapter.check_options(self.search_kwargs)

    @classmethod
    def from_store(cls, vectorstore, delta, **kwargs) -> NudgedRetriever:
        """The retriever for ``vectorstore`` and ``delta`` (what ``delta.as_retriever`` calls)."""
        return cls(vectorstore=vectorstore, delta=delta, **kwargs)

    @property
    def overlay(self) -> Overlay:
        return self._overlay

    # -- searching ---------------------------------------------------------------------------------
    def _call_options(self, kwargs: dict) -> tuple[int, Any, dict]:
        """``k``, ``filter`` and the other search options of one call: the call's over the
        retriever's."""
        options = {"k": self.k, "filter": self.filter, **self.search_kwargs, **kwargs}
        k, filters = options.pop("k"), options.pop("filter")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InputError(f"k={k!r} must be a positive whole number")
        return k, filters, options

    def search_with_scores(self, embedding, **kwargs) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs for a query vector, best first; scores are the store's
        own (a distance for L2 stores), as ``similarity_search_with_score_by_vector`` gives.
        Keyword arguments override the retriever's options, as in ``invoke``."""
        k, filters, options = self._call_options(kwargs)
        return [(hit.payload, hit.score)
                for hit in self._overlay.search(embedding, k, filters, options)]

    def _embeddings(self):
        return self.vectorstore.embeddings

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k, filters, options = self._call_options(kwargs)
        embedding = self._embeddings().embed_query(query)
        return [hit.payload for hit in self._overlay.search(embedding, k, filters, options)]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        k, filters, options = self._call_options(kwargs)
        embedding = await self._embeddings().aembed_query(query)
        hits = await self._overlay.asearch(embedding, k, filters, options)
        return [hit.payload for hit in hits]


def _k_and_filter_as_fields(data: dict) -> dict:
    """``k`` and ``filter`` may come in ``search_kwargs`` too (as VectorStoreRetriever takes
    them); they become the fields, so that one value holds each."""
    options = dict(data.get("search_kwargs") or {})
    data = {**data, "search_kwargs": options}
    for name in ("k", "filter"):
        if name in options:
            given = options.pop(name)
            if name in data and data[name] != given:
                raise InputError(f"{name} is given twice, as {data[name]!r} and in "
                                 f"search_kwargs as {given!r}; give it once")
            data[name] = given
    return data
