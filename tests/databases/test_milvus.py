"""What is particular to Milvus (milvus-lite, started by the client in this process): inner
product and L2 collections, filtered overlays equal the filtered applied store, an HNSW
search deeper than the store's ``ef``, generated keys (``auto_id``), partitions in a copy,
and a collection that is not loaded. The guarantees every database shares are checked in
test_stores.py, test_copy.py, test_faults.py, test_crash.py and test_concurrency.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import (
    check_apply_and_revert,
    milvus_langchain,
    milvus_llama,
    milvus_uri,
    overlay_hits,
    problem,
)
from tests.databases.copies import check_copy

pytest.importorskip("milvus_lite")
pytest.importorskip("llama_index.vector_stores.milvus")
pytest.importorskip("langchain_milvus")


@pytest.fixture(scope="module")
def prob():
    return problem()


def _fit(obj, prob):
    from nudge_rag import EmbeddingFinetuner

    return EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)


@pytest.mark.parametrize(("build", "metric", "similarity"),
                         [(milvus_langchain, "IP", "dot"), (milvus_llama, "l2", "l2")])
def test_inner_product_and_l2_collections(build, metric, similarity, prob, tmp_path):
    from nudge_rag.stores import adapt

    obj, counter = build(tmp_path / "db", prob, metric=metric)
    adapter = adapt(obj)
    assert adapter.similarity == similarity
    delta = _fit(obj, prob)
    assert counter.vectors_read == len(delta.ids)
    check_apply_and_revert(obj, prob, delta)


@pytest.mark.parametrize("build", [milvus_llama, milvus_langchain])
def test_filtered_overlay_equals_the_filtered_applied_store(build, prob, tmp_path):
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    from nudge_rag.stores import adapt

    obj, _ = build(tmp_path / "db", prob)
    filters = "parity == 1" if build is milvus_langchain else \
        MetadataFilters(filters=[MetadataFilter(key="parity", value=1)])
    delta = _fit(obj, prob)
    adapter = adapt(obj)
    odd = {i for r, i in enumerate(prob.ids) if r % 2}
    assert set(adapter.filter_ids(delta.ids, filters)) == set(delta.ids) & odd
    queries = np.array([q for q, _ in prob.val[:8]])
    overlaid = [overlay_hits(obj, delta, q, 10, filters) for q in queries]
    delta.apply(obj, inplace=True)
    for q, (ids, scores) in zip(queries, overlaid):
        assert len(ids) == 10 and set(ids) <= odd
        want_ids, want_scores = adapter.query(q, 10, filters)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_search_deeper_than_the_stores_ef(prob, tmp_path):
    """The stores search HNSW with ef=32; a competition asks deeper when moved records crowd
    the top, and Milvus refuses ef below the limit: the adapter raises ef to the depth."""
    from nudge_rag.stores import adapt

    obj, _ = milvus_llama(tmp_path / "db", prob)
    adapter = adapt(obj)
    ids, scores = adapter.search(prob.docs[:3], 100)
    assert [len(i) for i in ids] == [100] * 3 and np.isfinite(scores).all()
    exact = np.argsort(-(prob.docs[:3] @ prob.docs.T), axis=1)[:, :100]
    found = [len(set(i) & {prob.ids[r] for r in e}) for i, e in zip(ids, exact)]
    assert min(found) >= 95  # an approximate index, deep enough to find nearly all


def _auto_id_collection(tmp_path, prob):
    """A langchain-milvus store whose primary keys Milvus generates (no ids given)."""
    from langchain_milvus import Milvus

    from tests.fakes import CountingLangChainEmbeddings

    store = Milvus(CountingLangChainEmbeddings(dim=prob.dim), collection_name="auto",
                   connection_args={"uri": milvus_uri(tmp_path / "db")}, auto_id=True,
                   index_params={"index_type": "FLAT", "metric_type": "COSINE"})
    keys = store.add_embeddings([prob.text(r) for r in range(len(prob.ids))],
                                [v.tolist() for v in prob.docs],
                                metadatas=[{"parity": r % 2} for r in range(len(prob.ids))])
    return store, [str(k) for k in keys]


def test_generated_keys_refuse_in_place_writes_and_copy_keeps_them(prob, tmp_path):
    from nudge_rag.errors import StoreError
    from nudge_rag.stores import adapt

    store, keys = _auto_id_collection(tmp_path, prob)
    row = {i: k for i, k in zip(prob.ids, keys)}
    named = prob.__class__(prob.docs, keys,
                           [(q, {row[i]: g for i, g in rel.items()}) for q, rel in prob.train],
                           [(q, {row[i]: g for i, g in rel.items()}) for q, rel in prob.val])
    delta = _fit(store, named)
    adapter = adapt(store)
    before = adapter.fetch(keys)[1]
    with pytest.raises(StoreError, match="auto_id.*new key.*overlay"):
        delta.apply(store, inplace=True)
    np.testing.assert_array_equal(adapter.fetch(keys)[1], before)
    copy = delta.apply(store)  # the copy keeps every record's generated key
    found, got = adapt(copy).fetch(keys)
    assert found == keys
    moved = [keys.index(i) for i in delta.ids]
    np.testing.assert_allclose(got[moved], delta.vectors, atol=1e-7)
    still = np.setdiff1d(np.arange(len(keys)), moved)
    np.testing.assert_array_equal(got[still], before[still])


def test_copy_keeps_partitions(prob, tmp_path):
    from nudge_rag.stores import adapt

    obj, _ = milvus_llama(tmp_path / "db", prob)
    client = adapt(obj).client
    odd = [i for r, i in enumerate(prob.ids) if r % 2]
    client.create_partition("docs", "odd")
    moved = client.get("docs", ids=odd, output_fields=["*"])
    client.delete("docs", ids=odd)
    client.insert("docs", [dict(m) for m in moved], partition_name="odd")
    delta = _fit(obj, prob)
    assert set(delta.ids) & set(odd) and set(delta.ids) - set(odd)

    def odd_partition(o):
        a = adapt(o)
        return sorted(r["id"] for r in a.client.query(a.collection_name, filter="",
                                                      output_fields=["id"],
                                                      partition_names=["odd"]))

    # in place, each record is written back into its own partition (an upsert names one)
    delta.apply(obj, inplace=True)
    assert odd_partition(obj) == sorted(odd)
    delta.revert(obj)
    assert odd_partition(obj) == sorted(odd)
    copy = check_copy(obj, delta, prob)  # applies, then reverts, on the copy
    assert sorted(adapt(copy).client.list_partitions(adapt(copy).collection_name)) == \
        ["_default", "odd"]
    assert odd_partition(copy) == sorted(odd)


def test_unloaded_collection_is_refused_not_loaded(prob, tmp_path):
    from nudge_rag.errors import StoreError
    from nudge_rag.stores import adapt

    obj, _ = milvus_llama(tmp_path / "db", prob)
    client = obj.vector_store.client
    client.release_collection("docs")
    with pytest.raises(StoreError, match="not loaded.*load_collection"):
        adapt(obj)
    assert str(client.get_load_state("docs")["state"]).endswith("NotLoad")



def test_many_questions_go_in_one_search_request(prob, tmp_path):
    """Milvus searches a request's queries together, and each request visits every segment
    (milvus-lite passes over every row's key once per request, and once per count): the
    competition of 600 validation questions is one request and no count, and its answers are
    those of one question asked alone."""
    from nudge_rag.stores import adapt

    obj, counter = milvus_llama(tmp_path / "db", prob)
    adapter = adapt(obj)
    rng = np.random.default_rng(0)
    queries = prob.docs[rng.integers(0, len(prob.docs), 600)] + \
        0.1 * rng.standard_normal((600, prob.dim))
    sizes, counts = [], []
    search, query = counter.__getattr__("search"), counter.__getattr__("query")

    def spy(*args, **kwargs):
        sizes.append(len(kwargs["data"]))
        return search(*args, **kwargs)

    def spy_query(*args, **kwargs):
        counts.append("count(*)" in kwargs.get("output_fields", ()))
        return query(*args, **kwargs)

    counter.search, counter.query = spy, spy_query
    ids, scores = adapter.competition(queries, 10, prob.ids[:20])
    assert sizes == [600]
    assert not any(counts)  # milvus-lite counts by reading every row's key
    assert all(len(i) == 10 and not set(i) & set(prob.ids[:20]) for i in ids)
    for j in (0, 299, 599):
        alone, alone_scores = adapter.competition(queries[j:j + 1], 10, prob.ids[:20])
        assert alone[0] == ids[j]
        np.testing.assert_allclose(alone_scores[0], scores[j], atol=1e-6)


def test_a_fit_asks_whether_the_collection_holds_records_once(prob, tmp_path):
    """On milvus-lite every query over the whole collection reads every segment (5-8 s at a
    million records), so a fit asks for the size twice (the check that the store holds
    vectors, the competition's depth) and nothing else of the whole collection: the
    dimension is the schema's, and a count that found records has said the collection
    holds some."""
    obj, counter = milvus_llama(tmp_path / "db", prob)
    query, whole = counter.__getattr__("query"), []

    def spy_query(*args, **kwargs):
        if not kwargs.get("filter"):
            whole.append("count" if "count(*)" in kwargs.get("output_fields", ()) else "rows")
        return query(*args, **kwargs)

    counter.query = spy_query
    delta = _fit(obj, prob)
    assert whole == ["count", "count"]
    assert len(delta) > 0 and delta.dim == prob.dim
