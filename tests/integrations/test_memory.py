"""Issue 13 through the frameworks, on full SciFact: a fit through a store (LlamaIndex
SimpleVectorStore, LangChain InMemoryVectorStore) equals the array estimator on the same data
with the defaults (cross-validated choice, refit, query memory), and the retriever ranks as
``NudgeN.top_k`` does, ids and scores."""

from __future__ import annotations

import numpy as np
import pytest

from nudge_rag import EmbeddingFinetuner, NudgeN
from nudge_rag.core.array_parts import array_parts
from nudge_rag.core.relevance import to_pairs
from nudge_rag.questions import QuestionSet, group_fold_labels
from tests.conftest import as_id_questions

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

STORES = ("scifact_llama_index", "scifact_inmemory")


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def questions(scifact_split):
    return (QuestionSet.coerce(as_id_questions(scifact_split, "train")),
            QuestionSet.coerce(as_id_questions(scifact_split, "val")))


@pytest.fixture(scope="module")
def arrays(scifact_split, questions):
    """The array estimator fitted on SciFact held in id order (a store's records tie by id as
    an array's tie by row), the folds cut as the finetuner cuts them (by text groups)."""
    sp = scifact_split
    train, val = questions
    order = np.argsort(np.array(sp.doc_ids, dtype=object), kind="stable")
    ids = [sp.doc_ids[o] for o in order]
    docs = np.asarray(sp.doc_emb)[order]
    row = {d: r for r, d in enumerate(ids)}
    tq, vq = _unit(train.embeddings), _unit(val.embeddings)
    tp = to_pairs([{row[i]: g for i, g in r.items()} for r in train.relevance], len(tq),
                  len(docs), "train_rel")
    vp = to_pairs([{row[i]: g for i, g in r.items()} for r in val.relevance], len(vq),
                  len(docs), "val_rel", require_each=True)
    est = NudgeN()
    depth = min(est._depth(), len(docs))
    folds = group_fold_labels(train, k=5, seed=0)
    norms = np.linalg.norm(docs.astype(np.float64), axis=1)
    est.fit_prepared(array_parts(docs, norms, tq, tp, (vq, vp), folds, depth, True, "cpu"))
    return est, ids, docs


@pytest.fixture(scope="module", params=STORES)
def fitted(request, questions):
    store = request.getfixturevalue(request.param)
    return store, EmbeddingFinetuner(store, show_progress=False).fit(*questions)


def test_a_store_fit_equals_the_array_estimator(fitted, arrays):
    _, delta = fitted
    est, ids, _ = arrays
    assert delta.gamma == est.gamma_ and delta.alpha == est.alpha_ > 0
    assert delta.ids == [ids[r] for r in est.rows_]
    np.testing.assert_allclose(delta.vectors, est.vectors_, atol=1e-6)
    assert delta.n_memory == len(est.memory_) == 886  # 776 training + 110 validation
    for key in ("before", "after"):
        for metric, value in est.report_[key].items():
            assert delta.fit_report[key][metric] == pytest.approx(value, abs=1e-9)
    assert delta.fit_report["estimate"] == "cross-validated" and delta.fit_report["refit"]
    assert delta.fit_report["warm"]["n_questions"] + delta.fit_report["cold"][
        "n_questions"] == 886


def test_the_retriever_ranks_as_top_k(fitted, arrays, scifact_split):
    store, delta = fitted
    est, ids, docs = arrays
    queries = _unit(scifact_split.test_q)
    rows, scores = est.top_k(docs, queries, 10)
    retriever = delta.as_retriever(store, **({"similarity_top_k": 10} if hasattr(
        store, "docstore") else {"k": 10}))
    for q, want_rows, want_scores in zip(queries, rows, scores):
        if hasattr(store, "docstore"):
            from llama_index.core.schema import QueryBundle

            hits = retriever.retrieve(QueryBundle("", embedding=q.tolist()))
            got = [(h.node.node_id, h.score) for h in hits]
        else:
            got = [(d.id, s) for d, s in retriever.search_with_scores(q.tolist())]
        assert [i for i, _ in got] == [ids[r] for r in want_rows]
        np.testing.assert_allclose([s for _, s in got], want_scores, rtol=0, atol=1e-6)


def test_evaluate_gives_warm_and_cold_questions_apart(fitted, scifact_split):
    store, delta = fitted
    ft = EmbeddingFinetuner(store, show_progress=False)
    result = ft.evaluate(as_id_questions(scifact_split, "test"), delta)
    warm, cold = result["warm"], result["cold"]
    assert warm["n_questions"] + cold["n_questions"] == result["n_questions"]
    assert warm["n_questions"] > 0 and cold["n_questions"] > 0
    share = warm["n_questions"] / result["n_questions"]
    mixed = share * warm["after"]["ndcg@10"] + (1 - share) * cold["after"]["ndcg@10"]
    assert mixed == pytest.approx(result["after"]["ndcg@10"], abs=1e-9)
    # the warm questions gain, the cold ones cannot
    assert warm["after"]["ndcg@10"] > warm["before"]["ndcg@10"] + 0.1
    assert cold["after"]["ndcg@10"] <= cold["before"]["ndcg@10"] + 0.01


def test_the_paper_protocol_keeps_no_memory(scifact_inmemory, questions):
    delta = EmbeddingFinetuner(scifact_inmemory, show_progress=False, selection="validation",
                               refit=False, memory=False).fit(*questions)
    est_ids = sorted({i for rel in questions[0].relevance for i in rel})
    assert delta.ids == est_ids and delta.n_memory == 0 and delta.alpha == 0
    assert delta.fit_report["estimate"] == "validation" and not delta.fit_report["refit"]
    assert "none kept" in delta.report()


@pytest.mark.parametrize("bad, match", [({"selection": "folds"}, "selection"),
                                        ({"folds": 1}, "folds"), ({"refit": "yes"}, "refit"),
                                        ({"memory": None}, "memory"), ({"alpha": -1}, "alpha")])
def test_bad_settings_get_the_estimators_errors(scifact_inmemory, questions, bad, match):
    from nudge_rag.errors import InputError

    with pytest.raises(InputError, match=match):
        EmbeddingFinetuner(scifact_inmemory, show_progress=False, **bad).fit(*questions)


def test_node_ids_retrieval_scores_the_memory_too(scifact_llama_index, questions, arrays,
                                                  scifact_split):
    """LlamaIndex's ``node_ids`` path scores the listed nodes one by one: the memory counts
    there as in a search (all nodes listed: the same ranking as ``top_k``)."""
    from llama_index.core.schema import QueryBundle

    est, ids, docs = arrays
    delta = EmbeddingFinetuner(scifact_llama_index, show_progress=False).fit(*questions)
    among = delta.as_retriever(scifact_llama_index, similarity_top_k=10, node_ids=ids)
    queries = _unit(scifact_split.test_q[:40])
    rows, scores = est.top_k(docs, queries, 10)
    for q, want_rows, want_scores in zip(queries, rows, scores):
        hits = among.retrieve(QueryBundle("", embedding=q.tolist()))
        assert [h.node.node_id for h in hits] == [ids[r] for r in want_rows]
        np.testing.assert_allclose([h.score for h in hits], want_scores, rtol=0, atol=1e-6)


def test_update_grows_the_memory_and_validation_chooses_again():
    """An update folds the new questions into the memory (at the delta's γ and α, as a fit on
    the union would); with validation questions γ and α are chosen again on them, and a memory
    that α = 0 turns off is not kept."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from tests.fakes import CountingLlamaEmbedding
    from tests.small_corpus import DOCS, QUESTIONS

    index = VectorStoreIndex([TextNode(id_=k, text=t) for k, (t, _) in DOCS.items()],
                             embed_model=CountingLlamaEmbedding(dim=64))
    ft = EmbeddingFinetuner(index, show_progress=False, gamma=0.2, alpha=0.9)
    first = ft.fit(QUESTIONS[:6])
    assert first.n_memory == 6 and first.alpha == 0.9
    grown = ft.update(first, QUESTIONS[6:])
    assert grown.n_memory == len(QUESTIONS) and grown.alpha == 0.9 and grown.gamma == 0.2
    assert set(grown.ids) == {i for _, rel in QUESTIONS for i in rel}
    retriever = grown.as_retriever(index, similarity_top_k=1)
    for text, rel in QUESTIONS:  # a training question asked again finds its record
        assert retriever.retrieve(text)[0].node.node_id in rel
    val = [("purring pet", {"cats": 1}), ("fetching sticks", {"dogs": 1})]
    again = EmbeddingFinetuner(index, show_progress=False).update(first, QUESTIONS[6:], val)
    assert again.fit_report["n_val_questions"] == 2 and again.fit_report["before"]
    assert again.n_memory == (len(QUESTIONS) if again.alpha > 0 else 0)
