"""LangChain FAISS over approximate indexes (HNSW, IVF): fit reads only moved records and
searches with the index's own search; IVF updates a copy, HNSW rebuilds its graph."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import (
    check_applied,
    faiss_langchain,
    faiss_llama,
    overlay_hits,
    problem,
)

faiss = pytest.importorskip("faiss")
pytest.importorskip("langchain_community")


@pytest.fixture(params=["hnsw", "ivf"])
def built(request):
    prob = problem()
    return request.param, prob, faiss_langchain(request.param, prob)


def test_fit_apply_revert_overlay(built, monkeypatch):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt
    from nudge_rag.stores.langchain_faiss import LangChainFaissAnnAdapter

    kind, prob, store = built
    read = []
    real_fetch = LangChainFaissAnnAdapter.fetch

    def counted(self, ids):
        found, rows = real_fetch(self, ids)
        read.append(len(rows))
        return found, rows

    monkeypatch.setattr(LangChainFaissAnnAdapter, "fetch", counted)
    delta = EmbeddingFinetuner(store, show_progress=False, memory=False).fit(prob.train, prob.val)
    assert sum(read) == len(delta.ids)
    assert delta.similarity == "l2"
    before = adapt(store).fetch(prob.ids)[1]
    queries = np.array([q for q, _ in prob.val[:10]])
    overlaid = [overlay_hits(store, delta, q, 10) for q in queries]
    index_before = store.index
    delta.apply(store, inplace=True)
    assert store.index is not index_before  # written into a new index, swapped in
    check_applied(store, prob, delta, before, queries, overlaid)
    docs = store.similarity_search_by_vector(queries[0].tolist(), k=3)
    assert [d.id for d in docs] == overlaid[0][0][:3]
    delta.revert(store)
    np.testing.assert_array_equal(adapt(store).fetch(prob.ids)[1], before)


def test_overlay_retriever(built):
    from nudge_rag import EmbeddingFinetuner

    kind, prob, store = built
    delta = EmbeddingFinetuner(store, show_progress=False, memory=False).fit(prob.train, prob.val)
    docs = delta.as_retriever(store, k=4).invoke("document parity")
    assert len(docs) == 4 and all(d.page_content.startswith("document ") for d in docs)


def test_unsupported_index_type():
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS

    from nudge_rag.errors import InputError
    from nudge_rag.stores import adapt
    from tests.fakes import CountingLangChainEmbeddings

    index = faiss.IndexLSH(16, 32)
    store = FAISS(CountingLangChainEmbeddings(dim=16), index, InMemoryDocstore(), {})
    with pytest.raises(InputError, match="IndexLSH is not supported"):
        adapt(store)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_llama_index_faiss(kind):
    pytest.importorskip("llama_index.vector_stores.faiss")
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    prob = problem()
    llama = faiss_llama(kind, prob)
    delta = EmbeddingFinetuner(llama, show_progress=False, memory=False).fit(prob.train, prob.val)
    before = adapt(llama).fetch(prob.ids)[1]
    q = prob.val[0][0]
    overlaid = overlay_hits(llama, delta, q, 10)
    hits = delta.as_retriever(llama, similarity_top_k=3).retrieve("document parity")
    assert len(hits) == 3 and hits[0].node.get_content().startswith("document ")
    delta.apply(llama, inplace=True)
    assert adapt(llama).query(q, 10)[0] == overlaid[0]
    np.testing.assert_allclose(adapt(llama).fetch(delta.ids)[1], delta.vectors, atol=1e-6)
    delta.revert(llama)
    np.testing.assert_array_equal(adapt(llama).fetch(prob.ids)[1], before)


def _filtered_overlay_equals_filtered_store(obj, prob, filters):
    """The overlay under a filter returns only admitted records and, after an in-place apply,
    exactly what the nudged index returns under that filter."""
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    odd = {i for r, i in enumerate(prob.ids) if r % 2}
    assert set(adapt(obj).filter_ids(delta.ids, filters)) == set(delta.ids) & odd
    queries = [q for q, _ in prob.val[:8]]
    overlaid = [overlay_hits(obj, delta, q, 10, filters) for q in queries]
    delta.apply(obj, inplace=True)
    for q, (ids, scores) in zip(queries, overlaid):
        assert len(ids) == 10 and set(ids) <= odd
        want_ids, want_scores = adapt(obj).query(q, 10, filters)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    return delta


def test_langchain_filters(built):
    kind, prob, store = built
    delta = _filtered_overlay_equals_filtered_store(store, prob, {"parity": 1})
    docs = delta.as_retriever(store, k=6, filter={"parity": 1}).invoke("document parity")
    assert len(docs) == 6 and all(d.metadata["parity"] == 1 for d in docs)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_llama_index_faiss_filters(kind):
    pytest.importorskip("llama_index.vector_stores.faiss")
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    prob = problem()
    llama = faiss_llama(kind, prob)
    filters = MetadataFilters(filters=[MetadataFilter(key="parity", value=1)])
    delta = _filtered_overlay_equals_filtered_store(llama, prob, filters)
    hits = delta.as_retriever(llama, similarity_top_k=6, filters=filters).retrieve("document")
    assert len(hits) == 6 and all(h.node.metadata["parity"] == 1 for h in hits)
