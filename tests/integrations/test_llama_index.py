"""EmbeddingFinetuner + NudgeDelta through LlamaIndex, on full SciFact and small indexes."""

import asyncio
import warnings

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.schema import QueryBundle, TextNode
from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

from nudge_rag import EmbeddingFinetuner, InputError, MismatchError, NudgeDelta, StoreError
from nudge_rag.core.metrics import evaluate_topk
from nudge_rag.questions import QuestionSet
from tests.conftest import as_id_questions
from tests.fakes import CountingLlamaEmbedding
from tests.small_corpus import DOCS, QUESTIONS


def retrieve_ids(retriever, q):
    return [n.node.node_id for n in retriever.retrieve(QueryBundle("", embedding=list(q)))]


@pytest.fixture(scope="module")
def fitted(scifact_llama_index, scifact_split):
    model = scifact_llama_index._embed_model
    before = dict(model.calls)
    # no query memory: the applied index it is compared with cannot hold one
    ft = EmbeddingFinetuner(scifact_llama_index, show_progress=False, memory=False)
    delta = ft.fit(as_id_questions(scifact_split, "train"), as_id_questions(scifact_split, "val"))
    nudged = delta.apply(scifact_llama_index)
    assert model.calls == before  # nothing was embedded: questions came pre-embedded
    return ft, delta, nudged


@pytest.fixture(scope="module")
def materialised_hits(fitted, scifact_split):
    """Top-10 (ids, scores) of every test question from the nudged index's own retriever."""
    retriever = fitted[2].as_retriever(similarity_top_k=10)
    hits = [retriever.retrieve(QueryBundle("", embedding=list(q))) for q in scifact_split.test_q]
    return [([n.node.node_id for n in h], [n.score for n in h]) for h in hits]


def test_full_scifact_reaches_the_engine_bar(fitted, scifact_split, materialised_hits):
    ft, delta, nudged = fitted
    assert delta.method == "nudge-n" and delta.similarity == "cosine"
    row = {d: i for i, d in enumerate(scifact_split.doc_ids)}
    top = np.array([[row[i] for i in ids] for ids, _ in materialised_hits])
    after = evaluate_topk(top, scifact_split.test_rel, ("ndcg@10",),
                          n_rows=len(row))["ndcg@10"]
    assert after >= 0.845
    exact = ft.evaluate(as_id_questions(scifact_split, "test"), delta)
    assert exact["after"]["ndcg@10"] == pytest.approx(after, abs=1e-6)
    assert exact["before"]["ndcg@10"] == pytest.approx(0.629, abs=2e-3)
    assert "records moved" in delta.report() and "ndcg@10" in delta.report()


def test_overlay_equals_the_materialised_index(fitted, scifact_split, scifact_llama_index,
                                               materialised_hits):
    _, delta, _ = fitted
    overlay = delta.as_retriever(scifact_llama_index, similarity_top_k=10)
    for q, (ids, scores) in zip(scifact_split.test_q, materialised_hits):
        got = overlay.retrieve(QueryBundle("", embedding=list(q)))
        assert [n.node.node_id for n in got] == ids
        np.testing.assert_allclose([n.score for n in got], scores, atol=1e-6)


def test_original_index_is_untouched_and_nodes_are_shared(fitted, scifact_llama_index):
    _, delta, nudged = fitted
    stored = scifact_llama_index.vector_store.data.embedding_dict
    np.testing.assert_allclose([stored[i] for i in delta.ids], delta.original)
    new = nudged.vector_store.data.embedding_dict
    np.testing.assert_allclose([new[i] for i in delta.ids], delta.vectors, atol=1e-7)
    assert nudged.docstore is scifact_llama_index.docstore


def test_filters_pass_through_and_exclude_moved_nodes(fitted, scifact_split,
                                                      scifact_llama_index):
    _, delta, nudged = fitted
    filters = MetadataFilters(filters=[MetadataFilter(key="parity", value=0)])
    overlay = delta.as_retriever(scifact_llama_index, similarity_top_k=10, filters=filters)
    materialised = nudged.as_retriever(similarity_top_k=10, filters=filters)
    moved = set(delta.ids)
    odd_moved = {n.node_id for n in scifact_llama_index.docstore.get_nodes(list(moved))
                 if n.metadata["parity"] == 1}
    assert odd_moved
    for q in scifact_split.test_q[:15]:
        got = overlay.retrieve(QueryBundle("", embedding=list(q)))
        assert all(n.node.metadata["parity"] == 0 for n in got)
        assert not {n.node.node_id for n in got} & odd_moved
        assert [n.node.node_id for n in got] == retrieve_ids(materialised, q)


def test_persist_and_load_keep_the_nudged_vectors(fitted, tmp_path):
    _, delta, nudged = fitted
    nudged.storage_context.persist(persist_dir=str(tmp_path))
    loaded = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(tmp_path)),
                                     embed_model=CountingLlamaEmbedding(dim=384))
    emb = loaded.vector_store.data.embedding_dict
    np.testing.assert_allclose([emb[i] for i in delta.ids], delta.vectors, atol=1e-7)
    # the loaded index is a fine target for the same delta (already nudged: nothing to do)
    again = delta.apply(loaded, inplace=True)
    assert again is loaded


def test_async_and_query_engine(fitted, scifact_llama_index, scifact_split):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    _, delta, _ = fitted
    retriever = delta.as_retriever(scifact_llama_index, similarity_top_k=3)
    qb = QueryBundle("", embedding=list(scifact_split.test_q[0]))
    sync = [n.node.node_id for n in retriever.retrieve(qb)]
    asy = asyncio.run(retriever.aretrieve(qb))
    assert sync == [n.node.node_id for n in asy]
    # a text query goes through the index's own query embedding model
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("Do statins reduce cardiovascular risk?")
    assert len(response.source_nodes) == 3


# -- small indexes that tests may change ----------------------------------------------------

def small_index():
    model = CountingLlamaEmbedding(dim=64)
    nodes = [TextNode(id_=k, text=t, metadata={"kind": kind}) for k, (t, kind) in DOCS.items()]
    return VectorStoreIndex(nodes, embed_model=model), model


def test_questions_are_embedded_with_the_index_model_and_docs_never_again():
    index, model = small_index()
    text_calls = model.calls["text"]
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    assert model.calls["query"] == len(QUESTIONS) + 1  # and the probe text (its fingerprint)
    new = delta.apply(index)
    delta.apply(index, inplace=True)
    delta.revert(index)
    assert model.calls["text"] == text_calls  # no document was embedded again
    assert set(delta.ids) == {k for _, rel in QUESTIONS for k in rel}
    assert new is not index


def test_inplace_apply_is_reverted_exactly():
    index, _ = small_index()
    before = {k: list(v) for k, v in index.vector_store.data.embedding_dict.items()}
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    assert delta.apply(index, inplace=True) is index
    now = index.vector_store.data.embedding_dict
    assert any(now[i] != before[i] for i in delta.ids)
    delta.revert(index)
    assert index.vector_store.data.embedding_dict == before


def test_added_deleted_and_reembedded_records():
    index, model = small_index()
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    index.insert_nodes([TextNode(id_="milk", text="milk comes from cows and goats")])
    index.delete_nodes(["fish"])
    store = index.vector_store.data.embedding_dict
    store["cars"] = model.get_text_embedding("cars run on roads today")  # re-embedded
    with pytest.warns(UserWarning) as record:
        new = delta.apply(index)
    messages = " ".join(str(w.message) for w in record)
    assert "no longer in the store" in messages and "re-embedded" in messages
    emb = new.vector_store.data.embedding_dict
    assert "milk" in emb and "fish" not in emb
    assert emb["cars"] == store["cars"]  # skipped, not overwritten
    np.testing.assert_allclose(emb["cats"], delta.vectors[delta.ids.index("cats")], atol=1e-7)
    # the overlay follows the store at search time: the new record is found, the deleted one
    # never returned, the re-embedded one ranked by the vector the store now holds
    retriever = delta.as_retriever(index, similarity_top_k=3)
    ids = retrieve_ids(retriever, model.get_query_embedding("milk from goats"))
    assert ids[0] == "milk"
    query = model.get_query_embedding("cars run on roads today")
    hits = retriever.retrieve(QueryBundle("", embedding=query))
    assert hits[0].node.node_id == "cars"
    assert hits[0].score == pytest.approx(float(np.dot(query, store["cars"])), abs=1e-6)
    everything = delta.as_retriever(index, similarity_top_k=len(store))
    assert "fish" not in retrieve_ids(everything, query)


def test_update_equals_refit_on_the_union():
    index, _ = small_index()
    first, second = QUESTIONS[:6], QUESTIONS[6:]
    fixed = {"gamma": 0.25, "alpha": 0.9, "show_progress": False}
    ft = EmbeddingFinetuner(index, **fixed)
    updated = ft.update(ft.fit(first), second)
    refit = EmbeddingFinetuner(index, **fixed).fit(QUESTIONS)
    assert updated.ids == refit.ids
    np.testing.assert_allclose(updated.vectors, refit.vectors, atol=1e-6)
    np.testing.assert_allclose(updated.sums, refit.sums, atol=1e-9)
    # the memory grows with the new questions, as the refit's holds them all
    assert updated.n_memory == refit.n_memory == len(QUESTIONS)
    a_mem, b_mem = updated.query_memory(), refit.query_memory()
    q = np.random.default_rng(0).standard_normal((5, updated.dim))
    np.testing.assert_allclose(a_mem.best(q), b_mem.best(q), atol=1e-6)
    # with validation questions γ is chosen again on them, as a paper-protocol refit would
    val = [("purring pet", {"cats": 1}), ("fetching sticks", {"dogs": 1})]
    paper = {"selection": "validation", "refit": False, "memory": False,
             "show_progress": False}
    ft2 = EmbeddingFinetuner(index, **paper)
    a = ft2.update(ft2.fit(first, val), second, val)
    b = EmbeddingFinetuner(index, **paper).fit(QUESTIONS, val)
    assert a.gamma == b.gamma
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-6)


def test_val_fraction_holds_out_questions():
    index, _ = small_index()
    delta = EmbeddingFinetuner(index, show_progress=False, selection="validation").fit(
        QUESTIONS, val_fraction=0.3)
    assert delta.fit_report["n_val_questions"] == 3
    assert delta.fit_report["n_train_questions"] == 7
    # cross-validation needs no held-out part: the folds choose, every question moves records
    cv = EmbeddingFinetuner(index, show_progress=False).fit(QUESTIONS, val_fraction=0.3)
    assert cv.fit_report["n_val_questions"] == 0 and cv.fit_report["n_train_questions"] == 10
    assert cv.fit_report["estimate"] == "cross-validated"


def test_fit_twice_replaces_the_first():
    index, _ = small_index()
    ft = EmbeddingFinetuner(index, gamma=0.2, memory=False, show_progress=False)
    first = ft.fit(QUESTIONS[:3])
    second = ft.fit(QUESTIONS[5:])
    assert ft.delta_ is second
    assert not set(first.ids) & set(second.ids)


def test_bad_input_is_refused_and_nothing_changes():
    index, _ = small_index()
    before = {k: list(v) for k, v in index.vector_store.data.embedding_dict.items()}
    ft = EmbeddingFinetuner(index, gamma=0.2, show_progress=False)
    with pytest.raises(InputError, match="not in the llama-index SimpleVectorStore"):
        ft.fit([("q", {"unicorns": 1})])
    with pytest.raises(InputError, match="unanswerable"):
        ft.fit([("q", {}), ("r", [])])
    with pytest.raises(InputError, match="method='nudge-m' needs a store that scores by inner"):
        EmbeddingFinetuner(index, method="nudge-m").fit(QUESTIONS)
    with pytest.raises(InputError, match="method='nudge-x'"):
        EmbeddingFinetuner(index, method="nudge-x").fit(QUESTIONS)
    empty = VectorStoreIndex([], embed_model=CountingLlamaEmbedding(dim=64))
    with pytest.raises(StoreError, match="holds no vectors"):
        EmbeddingFinetuner(empty).fit(QUESTIONS)
    assert index.vector_store.data.embedding_dict == before


def test_a_delta_refuses_the_wrong_index(fitted, tmp_path):
    _, delta, _ = fitted
    index, _ = small_index()
    with pytest.raises(MismatchError, match="384-d"):
        delta.apply(index)
    other = VectorStoreIndex([TextNode(id_="x", text="t", embedding=[1.0] + [0.0] * 383)],
                             embed_model=CountingLlamaEmbedding(dim=384))
    with pytest.raises(MismatchError, match="another index"):
        delta.apply(other)
    small_delta = EmbeddingFinetuner(index, gamma=0.2, show_progress=False).fit(QUESTIONS)
    from tests.fakes import hashed_embedding

    twin = VectorStoreIndex([TextNode(id_=k, text=t, embedding=hashed_embedding(t, 64))
                             for k, (t, _) in DOCS.items()], embed_model=_OtherModel())
    with pytest.raises(MismatchError, match="embedding model"):
        small_delta.apply(twin)
    assert small_delta.apply(twin, allow_model_mismatch=True) is not twin


def _OtherModel():
    from llama_index.core.embeddings import MockEmbedding

    return MockEmbedding(embed_dim=64)


def test_save_load_roundtrip_and_tampering(fitted, tmp_path):
    _, delta, _ = fitted
    path = delta.save(tmp_path / "nudge")
    loaded = NudgeDelta.load(path)
    assert loaded.ids == delta.ids and loaded.gamma == delta.gamma
    np.testing.assert_array_equal(loaded.vectors, delta.vectors)
    np.testing.assert_array_equal(loaded.original, delta.original)
    assert loaded.fit_report == delta.fit_report
    delta.save(path, overwrite=True)  # over an existing one: replaced whole, no leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nudge"]
    raw = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated"):
        NudgeDelta.load(path)
    delta.save(path, overwrite=True)
    meta = (path / "delta.json").read_text()
    (path / "delta.json").write_text(meta[:100])
    with pytest.raises(InputError, match="truncated or corrupt"):
        NudgeDelta.load(path)
    with pytest.raises(InputError, match="no delta.json"):
        NudgeDelta.load(tmp_path / "missing")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        delta.save(tmp_path / "again")


def test_held_out_validation_keeps_near_duplicates_together():
    index, _ = small_index()
    twins = [(text + "?", rel) for text, rel in QUESTIONS]  # near-identical wording
    ft = EmbeddingFinetuner(index, show_progress=False)
    train, val = ft._split(QuestionSet.coerce(QUESTIONS + twins))
    norm = {t.rstrip("?") for t in val.texts}
    assert norm.isdisjoint({t.rstrip("?") for t in train.texts})
    assert len(val) % 2 == 0 and len(val) >= 2
