"""What ``delta.apply(obj)`` promises on a database, checked the same way for every store and
framework: the original is untouched, the copy holds the nudged vectors and the same records,
and the copy's own search ranks as the overlay does on the original."""

from __future__ import annotations

import numpy as np
import pytest


def vectors(obj, ids):
    from nudge_rag.stores import adapt

    found, rows = adapt(obj).fetch(ids)
    assert found == ids
    return rows


def contents(obj, ids):
    """Each record's text and metadata, as the framework hands them out."""
    from nudge_rag.stores import adapt

    adapter = adapt(obj)
    found = adapter.payloads(ids)
    if adapter.framework == "llama-index":
        return [(n.node_id, n.get_content(), n.metadata) for n in found]
    # LangChain's Qdrant store names the collection in each document's metadata
    return [(d.id, d.page_content, {k: v for k, v in d.metadata.items()
                                    if k != "_collection_name"}) for d in found]


def _doc_id(doc) -> str:
    # LangChain's Qdrant and Milvus stores put the record id in the metadata rather than in
    # Document.id
    return doc.id or str(doc.metadata["_id"] if "_id" in doc.metadata else doc.metadata["pk"])


def own_ranks(obj, queries, k: int) -> list[list[str]]:
    """Top-``k`` ids through the framework object's own search."""
    if type(obj).__module__.startswith("llama_index"):
        from llama_index.core.schema import QueryBundle

        retriever = obj.as_retriever(similarity_top_k=k)
        return [[h.node.node_id for h in retriever.retrieve(
            QueryBundle(query_str="", embedding=q.tolist()))] for q in queries]
    return [[_doc_id(d) for d in obj.similarity_search_by_vector(q.tolist(), k=k)]
            for q in queries]


def overlay_ranks(obj, delta, queries, k: int) -> list[list[str]]:
    """Top-``k`` ids through the overlay retriever on ``obj``."""
    if type(obj).__module__.startswith("llama_index"):
        from llama_index.core.schema import QueryBundle

        retriever = delta.as_retriever(obj, similarity_top_k=k)
        return [[h.node.node_id for h in retriever.retrieve(
            QueryBundle(query_str="", embedding=q.tolist()))] for q in queries]
    retriever = delta.as_retriever(obj, k=k)
    return [[_doc_id(d) for d, _ in retriever.search_with_scores(q)] for q in queries]


def check_copy(obj, delta, prob, atol: float = 0.0):
    """Apply ``delta`` as a copy of ``obj`` and check every promise of a copy; returns it.
    ``atol`` allows the one float32 rounding of stores that renormalise what they store."""
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.errors import InputError
    from nudge_rag.stores import adapt

    def same(a, b):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)

    before = vectors(obj, prob.ids)
    texts = contents(obj, prob.ids)
    copy = delta.apply(obj)
    assert copy is not obj and type(copy) is type(obj)
    # (1) the original is untouched, every record of it
    same(vectors(obj, prob.ids), before)
    # (2) the copy: nudged vectors for moved records, the original ones for all others
    got = vectors(copy, prob.ids)
    row = {i: r for r, i in enumerate(prob.ids)}
    moved = [row[i] for i in delta.ids]
    still = np.setdiff1d(np.arange(len(prob.ids)), moved)
    np.testing.assert_allclose(got[moved], delta.vectors, rtol=0, atol=max(atol, 1e-7))
    same(got[still], before[still])
    assert adapt(copy).count() == len(prob.ids)
    # (3) the same texts and metadata
    assert contents(copy, prob.ids) == texts
    # (4) the copy's own search ranks as the overlay ranks on the original
    queries = np.array([q for q, _ in prob.val])
    assert own_ranks(copy, queries, 10) == overlay_ranks(obj, delta, queries, 10)
    # it carries the embedding model, so the library's other entry points take it
    assert adapt(copy).embed_model() is adapt(obj).embed_model()
    EmbeddingFinetuner(copy, show_progress=False)
    # (5) the name is now taken: a second copy is refused, and nothing changes
    with pytest.raises(InputError, match="copy_name=.*already exists.*another copy_name"):
        delta.apply(obj)
    same(vectors(obj, prob.ids), before)
    same(vectors(copy, prob.ids), got)
    with pytest.raises(InputError, match="copy_name names the copy"):
        delta.apply(obj, inplace=True, copy_name="elsewhere")
    # revert on the copy brings back the original vectors there
    delta.revert(copy)
    np.testing.assert_allclose(vectors(copy, prob.ids), before, rtol=0, atol=max(atol, 1e-7))
    return copy
