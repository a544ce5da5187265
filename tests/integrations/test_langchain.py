"""EmbeddingFinetuner + NudgeDelta through LangChain: InMemoryVectorStore and FAISS."""

import asyncio

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore

from nudge_rag import EmbeddingFinetuner, InputError, StoreError
from nudge_rag.core.metrics import evaluate_topk
from tests.conftest import as_id_questions
from tests.fakes import CountingLangChainEmbeddings, hashed_embedding
from tests.small_corpus import DOCS, QUESTIONS


def ndcg_of(ids_per_question, split):
    row = {d: i for i, d in enumerate(split.doc_ids)}
    top = np.array([[row[i] for i in ids] for ids in ids_per_question])
    return evaluate_topk(top, split.test_rel, ("ndcg@10",), n_rows=len(row))["ndcg@10"]


@pytest.fixture(scope="module")
def inmemory_fit(scifact_inmemory, scifact_split):
    emb = scifact_inmemory.embeddings
    before = dict(emb.calls)
    # no query memory: the applied store it is compared with cannot hold one
    delta = EmbeddingFinetuner(scifact_inmemory, show_progress=False, memory=False).fit(
        as_id_questions(scifact_split, "train"), as_id_questions(scifact_split, "val"))
    nudged = delta.apply(scifact_inmemory)
    assert emb.calls == before  # nothing embedded: no document, no pre-embedded question
    return delta, nudged


def test_inmemory_full_scifact_and_overlay_equality(inmemory_fit, scifact_inmemory,
                                                    scifact_split):
    delta, nudged = inmemory_fit
    assert isinstance(nudged, InMemoryVectorStore) and nudged is not scifact_inmemory
    overlay = delta.as_retriever(scifact_inmemory, k=10)
    materialised = []
    for q in scifact_split.test_q:
        hits = nudged.similarity_search_with_score_by_vector(list(q), k=10)
        ids = [d.id for d, _ in hits]
        materialised.append(ids)
        got = overlay.search_with_scores(list(q))
        assert [d.id for d, _ in got] == ids
        np.testing.assert_allclose([s for _, s in got], [s for _, s in hits], atol=1e-6)
    assert ndcg_of(materialised, scifact_split) >= 0.845
    # the original store still holds the original vectors
    np.testing.assert_allclose([scifact_inmemory.store[i]["vector"] for i in delta.ids],
                               delta.original)


def test_faiss_full_scifact_l2(scifact_faiss, scifact_split):
    delta = EmbeddingFinetuner(scifact_faiss, show_progress=False, memory=False).fit(
        as_id_questions(scifact_split, "train"), as_id_questions(scifact_split, "val"))
    assert delta.similarity == "l2"
    nudged = delta.apply(scifact_faiss)
    overlay = delta.as_retriever(scifact_faiss, k=10)
    ids_all = []
    for q in scifact_split.test_q:
        hits = nudged.similarity_search_with_score_by_vector(list(q), k=10)
        ids = [nudged.index_to_docstore_id[i] for i in
               nudged.index.search(np.asarray([q], dtype=np.float32), 10)[1][0]]
        ids_all.append(ids)
        got = overlay.search_with_scores(list(q))
        assert [d.id for d, _ in got] == ids
        np.testing.assert_allclose([s for _, s in got], [s for _, s in hits], atol=1e-4)
    assert ndcg_of(ids_all, scifact_split) >= 0.845
    assert scifact_faiss.index.ntotal == nudged.index.ntotal


def test_faiss_inner_product_accepts_nudge_m_and_l2_refuses_it(scifact_split):
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    split = scifact_split
    pairs = [(d, v.tolist()) for d, v in zip(split.doc_ids, split.doc_emb)]
    emb = CountingLangChainEmbeddings(dim=384)
    ip = FAISS.from_embeddings(pairs, emb, ids=list(split.doc_ids),
                               distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    train, val = as_id_questions(split, "train"), as_id_questions(split, "val")
    delta = EmbeddingFinetuner(ip, method="nudge-m", show_progress=False).fit(train, val)
    assert delta.similarity == "dot" and delta.gamma > 0
    assert delta.fit_report["after"]["ndcg@10"] >= delta.fit_report["before"]["ndcg@10"]
    l2 = FAISS.from_embeddings(pairs, emb, ids=list(split.doc_ids))
    with pytest.raises(InputError, match="nudge-n"):
        EmbeddingFinetuner(l2, method="nudge-m").fit(train, val)
    with pytest.raises(InputError, match="inner product"):
        delta.apply(l2)


# -- small stores ------------------------------------------------------------------------

def small_store():
    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=64))
    store.add_documents([Document(id=k, page_content=t, metadata={"kind": kind})
                         for k, (t, kind) in DOCS.items()])
    return store


def test_lcel_chain_invoke_ainvoke_batch_and_filter():
    store = small_store()
    delta = EmbeddingFinetuner(store, gamma=0.4, show_progress=False).fit(QUESTIONS)
    retriever = delta.as_retriever(store, k=2)
    chain = retriever | RunnableLambda(lambda docs: [d.id for d in docs])
    assert chain.invoke("which pet makes a purring sound")[0] == "cats"
    assert asyncio.run(chain.ainvoke("what plays fetch"))[0] == "dogs"
    out = chain.batch(["seasonal foliage", "what needs yeast"])
    assert [o[0] for o in out] == ["trees", "bread"]
    pets = delta.as_retriever(store, k=3, filter=lambda d: d.metadata["kind"] == "pet")
    got = pets.invoke("what needs yeast")
    assert {d.id for d in got} <= {"cats", "dogs"} and len(got) == 2
    # nudging helps the training questions themselves
    plain = store.as_retriever(search_kwargs={"k": 1})
    hits_plain = sum(plain.invoke(q)[0].id in rel for q, rel in QUESTIONS)
    hits_nudged = sum(delta.as_retriever(store, k=1).invoke(q)[0].id in rel
                      for q, rel in QUESTIONS)
    assert hits_nudged >= hits_plain


def test_inplace_apply_and_revert_and_no_reembedding():
    store = small_store()
    emb = store.embeddings
    docs_embedded = emb.calls["text"]
    before = {k: list(v["vector"]) for k, v in store.store.items()}
    delta = EmbeddingFinetuner(store, gamma=0.4, show_progress=False).fit(QUESTIONS)
    delta.apply(store, inplace=True)
    assert any(store.store[i]["vector"] != before[i] for i in delta.ids)
    delta.apply(store, inplace=True)  # idempotent: already nudged records are left alone
    delta.revert(store)
    assert {k: v["vector"] for k, v in store.store.items()} == before
    assert emb.calls["text"] == docs_embedded


def test_errors_through_langchain():
    store = small_store()
    with pytest.raises(InputError, match="not in the langchain InMemoryVectorStore"):
        EmbeddingFinetuner(store, gamma=0.2).fit([("q", ["nope"])])
    empty = InMemoryVectorStore(CountingLangChainEmbeddings(dim=64))
    with pytest.raises(StoreError, match="holds no vectors"):
        EmbeddingFinetuner(empty).fit(QUESTIONS)
    with pytest.raises(InputError, match="not supported"):
        EmbeddingFinetuner(object()).fit(QUESTIONS)
    emb = np.array(hashed_embedding("which pet purrs", 32))
    with pytest.raises(InputError, match="dimension 32"):
        EmbeddingFinetuner(store, gamma=0.2).fit([(emb, {"cats": 1})])
