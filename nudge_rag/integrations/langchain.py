"""LangChain: a retriever that overlays a NudgeDelta on a vector store.

A ``BaseRetriever``, so it has ``invoke``, ``ainvoke``, ``batch`` and ``abatch`` and composes
in LCEL chains. Like LangChain's ``VectorStoreRetriever`` it returns the stored Documents,
keeps its search options (``k`` and ``filter`` among them) in ``search_kwargs``, and options
given to a call override the retriever's own for that call; ``search_with_scores`` gives the
Documents with the store's own scores.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field, InstanceOf, PrivateAttr

from ..errors import InputError, positive_whole
from ..overlay import Delta, Overlay

#: documents a call returns unless ``k`` is given (LangChain's own default)
DEFAULT_K = 4


class NudgedRetriever(BaseRetriever):
    """Top-``k`` documents of ``vectorstore`` as if ``delta`` had been applied, without
    writing to it.

    Like LangChain's ``VectorStoreRetriever``, ``search_kwargs`` holds every search option:
    ``k`` (4 unless given), ``filter`` (the store's own: a callable for InMemoryVectorStore, a
    dict or callable for FAISS, a ``where`` dict for Chroma, a Qdrant ``Filter``, a dict for
    PGVector, a boolean expression for Milvus; it applies to moved documents too) and the
    store's other options (``where_document`` for Chroma; ``search_params``, ``consistency``,
    ``score_threshold`` for Qdrant; ``fetch_k`` for FAISS; ``expr`` for Milvus). ``k=`` and
    ``filter=`` may be given to the constructor too, and ``retriever.k`` / ``retriever.filter``
    read and set them there, so LangChain's configurable ``search_kwargs`` field sets them per
    request. A call's keyword arguments override them for that call only:
    ``retriever.invoke(query, k=1)``. The store and the delta are read at every call, as
    ``VectorStoreRetriever`` reads its store.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: VectorStore
    delta: InstanceOf[Delta]
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: only plain similarity search: MMR and relevance thresholds re-rank what the store
    #: returns by scores that the nudged vectors would change
    search_type: Literal["similarity"] = "similarity"
    allow_model_mismatch: bool = False
    #: the overlay, and the (store, delta, allow_model_mismatch) it was made for
    _overlay: Overlay | None = PrivateAttr(default=None)
    _overlay_for: tuple = PrivateAttr(default=())

    def __init__(self, **data: Any):
        super().__init__(**_arguments(data))
        # made now, so that a delta that does not fit the store is refused at construction;
        # here, not in model_post_init, where pydantic would turn the package's errors (all
        # ValueErrors) into its ValidationError
        self._current_overlay()

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> NudgedRetriever:
        """A copy, with ``update`` applied; ``k`` and ``filter`` in it go to its
        ``search_kwargs`` (over this retriever's, or over those ``update`` gives)."""
        update = dict(update or {})
        given = {name: update.pop(name) for name in ("k", "filter") if name in update}
        if given:
            base = update.get("search_kwargs", self.search_kwargs)
            if "search_kwargs" not in update:  # the update's values win over the retriever's
                base = {name: v for name, v in base.items() if name not in given}
            update["search_kwargs"] = _arguments(
                {"search_kwargs": base, **given})["search_kwargs"]
        return super().model_copy(update=update, deep=deep)

    @classmethod
    def from_store(cls, vectorstore, delta, **kwargs) -> NudgedRetriever:
        """The retriever for ``vectorstore`` and ``delta`` (what ``delta.as_retriever`` calls)."""
        return cls(vectorstore=vectorstore, delta=delta, **kwargs)

    @property
    def overlay(self) -> Overlay:
        """The delta overlaid on the store as they are now."""
        return self._current_overlay()

    def _current_overlay(self) -> Overlay:
        """The overlay, made again when the store or the delta was replaced since (by an
        assignment, or ``model_copy(update=...)``, which builds no new retriever)."""
        wanted = (self.vectorstore, self.delta, self.allow_model_mismatch)
        if self._overlay is None or not all(map(operator.is_, self._overlay_for, wanted)):
            overlay = Overlay(self.vectorstore, self.delta,
                              allow_model_mismatch=self.allow_model_mismatch)
            overlay.adapter.check_options(_store_options(self.search_kwargs))
            self._overlay, self._overlay_for = overlay, wanted
        return self._overlay

    @property
    def k(self) -> int:
        """How many documents a call returns (``search_kwargs["k"]``, 4 unless given)."""
        return self.search_kwargs.get("k", DEFAULT_K)

    @k.setter
    def k(self, value: int) -> None:
        self.search_kwargs = {**self.search_kwargs, "k": _checked_k(value)}

    @property
    def filter(self) -> Any:
        """The store's own filter (``search_kwargs["filter"]``), ``None`` for none."""
        return self.search_kwargs.get("filter")

    @filter.setter
    def filter(self, value: Any) -> None:
        self.search_kwargs = {**self.search_kwargs, "filter": value}

    # -- searching ---------------------------------------------------------------------------------
    def _call_options(self, kwargs: dict) -> tuple[int, Any, dict]:
        """``k``, ``filter`` and the other search options of one call: the call's over the
        retriever's."""
        options = {**self.search_kwargs, **kwargs}
        k = _checked_k(options.pop("k", DEFAULT_K))
        return k, options.pop("filter", None), options

    def search_with_scores(self, embedding, **kwargs) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs for a query vector, best first; scores are the store's
        own (a distance for L2 stores), as ``similarity_search_with_score_by_vector`` gives.
        Keyword arguments override the retriever's options, as in ``invoke``."""
        k, filters, options = self._call_options(kwargs)
        return [(hit.payload, hit.score)
                for hit in self.overlay.search(embedding, k, filters, options)]

    def _embeddings(self):
        return self.vectorstore.embeddings

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k, filters, options = self._call_options(kwargs)
        embedding = self._embeddings().embed_query(query)
        return [hit.payload for hit in self.overlay.search(embedding, k, filters, options)]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        k, filters, options = self._call_options(kwargs)
        embedding = await self._embeddings().aembed_query(query)
        hits = await self.overlay.asearch(embedding, k, filters, options)
        return [hit.payload for hit in hits]


def _arguments(data: dict) -> dict:
    """The constructor's arguments, checked: ``k=`` and ``filter=`` join ``search_kwargs``,
    where VectorStoreRetriever keeps them (and where LangChain's configurable fields set
    them), a value given both ways must agree, and ``k`` and ``search_type`` are refused with
    the package's error rather than pydantic's."""
    options = dict(data.get("search_kwargs") or {})
    for name in ("k", "filter"):
        if name in data:
            given = data[name]
            if name in options and options[name] != given:
                raise InputError(f"{name} is given twice, as {given!r} and in search_kwargs "
                                 f"as {options[name]!r}; give it once")
            options[name] = given
    if "k" in options:
        _checked_k(options["k"])
    search_type = data.get("search_type", "similarity")
    if search_type != "similarity":
        raise InputError(f"search_type={search_type!r}: the nudged retriever serves plain "
                         "similarity search only (search_type='similarity'); MMR and relevance "
                         "thresholds re-rank by scores the nudged vectors change. Drop it (a "
                         "Qdrant store takes search_kwargs={'score_threshold': ...})")
    rest = {name: value for name, value in data.items() if name not in ("k", "filter")}
    return {**rest, "search_kwargs": options}


def _checked_k(k) -> int:
    return positive_whole(k, "k")


def _store_options(search_kwargs: dict) -> dict:
    """The store's own search options among ``search_kwargs`` (all but ``k`` and ``filter``)."""
    return {name: v for name, v in search_kwargs.items() if name not in ("k", "filter")}
