"""Chroma, Qdrant and Milvus (milvus-lite), each through LlamaIndex and LangChain: fit reads
only the moved records, apply writes only them, revert restores every vector, and the overlay
equals the applied store."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import BUILDERS, PACKAGES, overlay_hits, problem

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


@pytest.fixture(scope="module")
def prob():
    return problem()


@pytest.fixture(params=sorted(BUILDERS))
def built(request, tmp_path, prob):
    for module in PACKAGES[request.param]:
        pytest.importorskip(module)
    obj, counter = BUILDERS[request.param](tmp_path / "db", prob)
    return request.param, obj, counter


def _fit(obj, prob, **kwargs):
    from nudge_rag import EmbeddingFinetuner

    # no query memory: these tests hold the overlay to the applied store, which has none
    kwargs.setdefault("memory", False)
    return EmbeddingFinetuner(obj, show_progress=False, **kwargs).fit(prob.train, prob.val)


def _all_vectors(obj, ids):
    from nudge_rag.stores import adapt

    found, rows = adapt(obj).fetch(ids)
    assert found == ids
    return rows


def _same(a, b):
    """Equal up to one float32 rounding: cosine collections (Chroma, Qdrant) renormalise what
    is written, and Qdrant's local mode hands back renormalised copies on later reads."""
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-7)


def test_fit_reads_only_the_moved_records(built, prob):
    name, obj, counter = built
    delta = _fit(obj, prob)
    assert counter.vectors_read == len(delta.ids)
    assert 0 < len(delta.ids) < len(prob.ids)
    assert delta.fit_report["after"]["ndcg@10"] > delta.fit_report["before"]["ndcg@10"]


def test_apply_writes_moved_records_and_revert_restores_every_vector(built, prob):
    name, obj, counter = built
    before = _all_vectors(obj, prob.ids)
    delta = _fit(obj, prob)
    assert delta.apply(obj, inplace=True) is obj
    after = _all_vectors(obj, prob.ids)
    row = {i: r for r, i in enumerate(prob.ids)}
    moved = [row[i] for i in delta.ids]
    still = np.setdiff1d(np.arange(len(prob.ids)), moved)
    _same(after[still], before[still])
    np.testing.assert_allclose(after[moved], delta.vectors, atol=1e-6)
    # applying twice changes nothing
    delta.apply(obj, inplace=True)
    _same(_all_vectors(obj, prob.ids), after)
    delta.revert(obj)
    _same(_all_vectors(obj, prob.ids), before)


def test_overlay_equals_the_applied_store(built, prob):
    from nudge_rag.stores import adapt

    name, obj, counter = built
    delta = _fit(obj, prob)
    queries = np.array([q for q, _ in prob.val[:10]])
    overlaid = [overlay_hits(obj, delta, q, 10) for q in queries]
    delta.apply(obj, inplace=True)
    adapter = adapt(obj)
    for q, (ids, scores) in zip(queries, overlaid):
        want_ids, want_scores = adapter.query(q, 10)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    delta.revert(obj)


def test_overlay_retriever_returns_nodes_or_documents(built, prob):
    name, obj, counter = built
    delta = _fit(obj, prob)
    before = _all_vectors(obj, prob.ids)
    if name.endswith("llama"):
        retriever = delta.as_retriever(obj, similarity_top_k=5)
        hits = retriever.retrieve("document parity")
        texts = [h.node.get_content() for h in hits]
    else:
        retriever = delta.as_retriever(obj, k=5)
        hits = retriever.invoke("document parity")
        texts = [d.page_content for d in hits]
    assert len(texts) == 5 and all(t.startswith("document ") for t in texts)
    _same(_all_vectors(obj, prob.ids), before)  # wrote nothing


def test_overlay_respects_filters(built, prob):

    name, obj, counter = built
    delta = _fit(obj, prob)
    if name.endswith("-llama"):
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        filters = MetadataFilters(filters=[MetadataFilter(key="parity", value=1)])
    elif name == "chroma-langchain":
        filters = {"parity": 1}
    elif name == "milvus-langchain":
        filters = "parity == 1"  # a Milvus boolean expression, the store's own `expr`
    else:
        from qdrant_client import models

        filters = models.Filter(must=[models.FieldCondition(
            key="metadata.parity", match=models.MatchValue(value=1))])
    ids, _ = overlay_hits(obj, delta, prob.val[0][0], 10, filters)
    odd = {i for r, i in enumerate(prob.ids) if r % 2}
    assert len(ids) == 10 and set(ids) <= odd


def test_nudge_m_is_refused_on_cosine_collections(built, prob):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.errors import InputError

    name, obj, counter = built
    with pytest.raises(InputError, match="nudge-m"):
        EmbeddingFinetuner(obj, method="nudge-m", show_progress=False).fit(prob.train, prob.val)
