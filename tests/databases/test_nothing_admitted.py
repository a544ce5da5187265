"""A search that admits nothing (a filter no record passes), on every database × framework
pair: the nudged retriever returns nothing, as the framework's own does, and reads no record.

Asking a store for the documents of no ids is not asking for nothing: LangChain's Chroma
raises on it, and LlamaIndex's Chroma and pgvector stores read the whole collection or
table (with every vector, for pgvector)."""

from __future__ import annotations

import pytest

from tests.databases.builders import PAIRS, build_and_fit, unsynced_qdrant

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

DATABASES = [name for name in PAIRS if not name.startswith("faiss")]


def _nothing_passes(name: str):
    """A filter in the store's own form that no record passes (records have parity 0 or 1)."""
    if name.endswith("-llama"):
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        return MetadataFilters(filters=[MetadataFilter(key="parity", value=7)])
    if name.startswith("qdrant"):
        from qdrant_client import models

        return models.Filter(must=[models.FieldCondition(
            key="metadata.parity", match=models.MatchValue(value=7))])
    if name.startswith("milvus"):
        return "parity == 7"  # a Milvus boolean expression, the store's own filter
    return {"parity": 7}


def _count_reads(obj, reads: list) -> None:
    """Record how many records each read of documents by id returns (LlamaIndex stores'
    ``get_nodes``, LangChain stores' ``get_by_ids``), and for how many ids."""
    store = obj.vector_store if hasattr(obj, "vector_store") else obj
    name = "get_nodes" if hasattr(obj, "vector_store") else "get_by_ids"
    real = getattr(store, name)

    def counted(*args, **kwargs):
        ids = kwargs.get("node_ids", args[0] if args else None)
        got = real(*args, **kwargs)
        reads.append((len(ids or []), len(got)))
        return got

    object.__setattr__(store, name, counted)


@pytest.mark.parametrize("name", DATABASES)
def test_nothing_admitted(name, place):
    """A filter no record passes: nothing returned, and no read returns more than asked."""
    from llama_index.core.schema import QueryBundle

    obj, prob, delta = build_and_fit(PAIRS[name], place(name))
    nothing = _nothing_passes(name)
    reads: list = []
    with unsynced_qdrant():
        _count_reads(obj, reads)
        for q, _ in prob.val[:3]:
            vector = list(map(float, q))
            if name.endswith("-llama"):
                retriever = delta.as_retriever(obj, similarity_top_k=5, filters=nothing)
                assert retriever.retrieve(QueryBundle("", embedding=vector)) == []
                assert obj.as_retriever(similarity_top_k=5, filters=nothing).retrieve(
                    QueryBundle("", embedding=vector)) == []
            else:
                retriever = delta.as_retriever(obj, k=5, filter=nothing)
                assert retriever.search_with_scores(vector) == []
                own = {"expr" if name.startswith("milvus") else "filter": nothing}
                assert obj.similarity_search_by_vector(vector, k=5, **own) == []
        # the store contract: the payloads of no ids are none, read from nowhere
        from nudge_rag.stores import adapt

        assert adapt(obj).payloads([]) == []
    # no read returned more records than it was asked for
    assert all(got <= asked for asked, got in reads), reads
