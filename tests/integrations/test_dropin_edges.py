"""The nudged retrievers used the way LlamaIndex and LangChain users use their own: options set
at run time through LangChain's configurable fields, a retriever pointed at another store,
nodes restricted by ``node_ids``/``doc_ids`` while documents are updated, a copy from
``delta.apply`` edited on its own, and ``k`` larger than the store. Every result is compared
with the framework's own retriever over ``delta.apply(...)`` (a materialised copy)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

from langchain_core.runnables import ConfigurableField
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import Document as LlamaDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.schema import QueryBundle

from nudge_rag import EmbeddingFinetuner, InputError
from tests.conftest import as_id_questions
from tests.fakes import CountingLangChainEmbeddings, CountingLlamaEmbedding
from tests.small_corpus import DOCS, QUESTIONS


class QuestionVectors(CountingLangChainEmbeddings):
    """The SciFact test questions' cached embeddings behind the texts ``"q0"``, ``"q1"``, ..."""

    def __init__(self, vectors):
        super().__init__(dim=vectors.shape[1])
        self.vectors = vectors

    def embed_query(self, text):
        return self.vectors[int(text[1:])].tolist()


def scifact_inmemory_part(split, texts, n: int):
    """The first ``n`` SciFact records in an InMemoryVectorStore (their cached embeddings,
    metadata ``parity``), and the questions about them."""
    store = InMemoryVectorStore(QuestionVectors(split.test_q))
    for r, (d, v) in enumerate(zip(split.doc_ids[:n], split.doc_emb[:n])):
        store.store[d] = {"id": d, "vector": v.tolist(), "text": texts.doc_text(d),
                          "metadata": {"parity": r % 2}}
    kept = set(split.doc_ids[:n])

    def about_kept(part):
        pairs = [(q, {d: g for d, g in rel.items() if d in kept})
                 for q, rel in as_id_questions(split, part)]
        return [(q, rel) for q, rel in pairs if rel]

    return store, about_kept("train"), about_kept("val")


@pytest.fixture(scope="module")
def scifact_part(scifact_split, scifact_texts):
    store, train, val = scifact_inmemory_part(scifact_split, scifact_texts, 1500)
    # compared with the applied store, which cannot hold a query memory
    delta = EmbeddingFinetuner(store, show_progress=False, memory=False).fit(train, val)
    assert len(delta) > 50
    return store, delta, delta.apply(store)


def ids_of(docs) -> list[str]:
    return [d.id for d in docs]


# -- LangChain: run-time configuration ------------------------------------------------------------

def test_configurable_search_kwargs_as_langchain_documents_them(scifact_part):
    """LangChain's way to choose ``k`` and a filter per request (per user, per tenant) is a
    configurable ``search_kwargs`` field. It rebuilds the retriever from its fields with the
    request's ``search_kwargs``; the nudged retriever refused that ("k is given twice")."""
    store, delta, nudged = scifact_part
    odd = lambda d: d.metadata["parity"] == 1  # noqa: E731
    requests = [{"k": 1}, {"k": 7, "filter": odd}, {"filter": odd}]
    ours = delta.as_retriever(store).configurable_fields(
        search_kwargs=ConfigurableField(id="search_kwargs"))
    theirs = nudged.as_retriever().configurable_fields(
        search_kwargs=ConfigurableField(id="search_kwargs"))
    configs = [{"configurable": {"search_kwargs": kw}} for kw in requests]
    questions = [f"q{n}" for n in range(len(configs))]
    for question, config in zip(questions, configs):
        got = ids_of(ours.invoke(question, config=config))
        assert got == ids_of(theirs.invoke(question, config=config))
        assert len(got) == config["configurable"]["search_kwargs"].get("k", 4)
    # one request per item, each with its own options
    want = [ids_of(d) for d in theirs.batch(questions, config=configs)]
    assert [ids_of(d) for d in ours.batch(questions, config=configs)] == want
    assert [ids_of(d) for d in asyncio.run(ours.abatch(questions, config=configs))] == want
    # a request's search_kwargs replace the retriever's whole, as LangChain's do (k=3 given to
    # the retriever is one of its search_kwargs)
    mine = delta.as_retriever(store, k=3).configurable_fields(
        search_kwargs=ConfigurableField(id="search_kwargs"))
    yours = nudged.as_retriever(search_kwargs={"k": 3}).configurable_fields(
        search_kwargs=ConfigurableField(id="search_kwargs"))
    for config in ({}, {"configurable": {"search_kwargs": {"filter": odd}}}):
        assert ids_of(mine.invoke("q5", config=config)) == ids_of(yours.invoke("q5",
                                                                               config=config))
    assert len(mine.invoke("q5")) == 3


def test_k_and_filter_read_and_set_as_search_kwargs(scifact_part):
    store, delta, _ = scifact_part
    retriever = delta.as_retriever(store, search_kwargs={"k": 2})
    assert retriever.k == 2 and retriever.search_kwargs["k"] == 2
    retriever.k = 5
    assert retriever.search_kwargs["k"] == 5 and len(retriever.invoke("q0")) == 5
    retriever.search_kwargs["k"] = 6  # VectorStoreRetriever's own idiom
    assert retriever.k == 6 and len(retriever.invoke("q0")) == 6
    copy = retriever.model_copy(update={"search_kwargs": {"k": 1}})
    assert copy.k == 1 and len(copy.invoke("q0")) == 1 and retriever.k == 6
    odd = lambda d: d.metadata["parity"] == 1  # noqa: E731
    copy = retriever.model_copy(update={"k": 3, "filter": odd})
    assert copy.search_kwargs == {"k": 3, "filter": odd} and retriever.k == 6
    assert len(got := copy.invoke("q0")) == 3 and {d.metadata["parity"] for d in got} == {1}


@pytest.mark.parametrize("bad", [0, -1, True, "3", 2.5, None])
def test_bad_k_is_the_packages_error_wherever_it_is_given(scifact_part, bad):
    store, delta, _ = scifact_part
    for given in ({"k": bad}, {"search_kwargs": {"k": bad}}):
        with pytest.raises(InputError, match="k="):
            delta.as_retriever(store, **given)
    retriever = delta.as_retriever(store)
    with pytest.raises(InputError, match="k="):
        retriever.k = bad
    with pytest.raises(InputError, match="k="):
        retriever.invoke("q0", k=bad)


def test_a_retriever_pointed_at_another_store_searches_that_store(scifact_part):
    """``VectorStoreRetriever`` reads ``vectorstore`` at every call; so must ours, or a copy
    made with ``model_copy(update=...)`` (or an assignment) silently searches the old store."""
    store, delta, _ = scifact_part
    other = InMemoryVectorStore(store.embeddings)  # the even half of the documents
    other.store = {i: r for i, r in store.store.items() if r["metadata"]["parity"] == 0}
    on_other = delta.as_retriever(other, k=5)
    copied = delta.as_retriever(store, k=5).model_copy(update={"vectorstore": other})
    assigned = delta.as_retriever(store, k=5)
    assigned.vectorstore = other
    for n in range(20):
        want = ids_of(on_other.invoke(f"q{n}"))
        assert {other.store[i]["metadata"]["parity"] for i in want} == {0}
        assert ids_of(copied.invoke(f"q{n}")) == want
        assert ids_of(assigned.invoke(f"q{n}")) == want


# -- LlamaIndex: node_ids and doc_ids --------------------------------------------------------------

def test_node_ids_check_the_moved_records_once_per_retrieval(scifact_llama_index, scifact_split):
    """``node_ids`` retrievals checked every moved record's stored state once per candidate
    node (16 s a retrieval with all of SciFact's nodes); they check it once."""
    index = scifact_llama_index
    delta = EmbeddingFinetuner(index, show_progress=False, memory=False).fit(
        as_id_questions(scifact_split, "train"), as_id_questions(scifact_split, "val"))
    among = list(delta.ids[:150]) + list(scifact_split.doc_ids[:250])
    ours = delta.as_retriever(index, similarity_top_k=10, node_ids=among)
    theirs = VectorIndexRetriever(delta.apply(index), similarity_top_k=10, node_ids=among)
    checks = []
    usable = ours.overlay.moved.usable
    ours.overlay.moved.usable = lambda *a: checks.append(1) or usable(*a)
    for q in scifact_split.test_q[:20]:
        bundle = QueryBundle("", embedding=q.tolist())
        got = [(n.node.node_id, n.score) for n in ours.retrieve(bundle)]
        want = [(n.node.node_id, n.score) for n in theirs.retrieve(bundle)]
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
    assert len(checks) == 20


def test_doc_ids_follow_documents_updated_after_the_retriever_was_made():
    """``index.update_ref_doc`` replaces a document's nodes with new ones (new node ids). A
    retriever restricted by ``doc_ids`` must serve the document's nodes as they are now, as
    LlamaIndex's own retriever asks its store at query time."""
    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=t, id_=k, metadata={"kind": kind}) for k, (t, kind) in DOCS.items()],
        embed_model=CountingLlamaEmbedding(dim=64))
    node_of = {k: index.docstore.get_ref_doc_info(k).node_ids[0] for k in DOCS}
    questions = [(q, {node_of[k]: g for k, g in rel.items()}) for q, rel in QUESTIONS]
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(questions)
    pets = delta.as_retriever(index, similarity_top_k=2, doc_ids=["cats", "dogs"])
    index.update_ref_doc(LlamaDocument(text="cats chase laser dots around the kitchen floor",
                                       id_="cats", metadata={"kind": "pet"}))
    new_cats = index.docstore.get_ref_doc_info("cats").node_ids
    assert new_cats and new_cats[0] != node_of["cats"]
    for question in ("laser dots on the kitchen floor", "what plays fetch"):
        got = [n.node.node_id for n in pets.retrieve(question)]
        assert sorted(got) == sorted(new_cats + [node_of["dogs"]])
    assert pets.retrieve("laser dots on the kitchen floor")[0].node.node_id == new_cats[0]
    index.delete_ref_doc("dogs", delete_from_docstore=True)
    assert [n.node.node_id for n in pets.retrieve("what plays fetch")] == new_cats


# -- copies and sizes ------------------------------------------------------------------------------

@pytest.fixture
def scifact_faiss_part(scifact_split, scifact_texts):
    """A LangChain FAISS store (flat L2) of 1,000 SciFact records, built for one test."""
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from langchain_community.vectorstores import FAISS

    n = 1000
    pairs = [(scifact_texts.doc_text(d), v.tolist())
             for d, v in zip(scifact_split.doc_ids[:n], scifact_split.doc_emb[:n])]
    store = FAISS.from_embeddings(pairs, QuestionVectors(scifact_split.test_q),
                                  ids=list(scifact_split.doc_ids[:n]))
    kept = set(scifact_split.doc_ids[:n])
    train = [(q, {d: g for d, g in rel.items() if d in kept})
             for q, rel in as_id_questions(scifact_split, "train")]
    delta = EmbeddingFinetuner(store, show_progress=False, memory=False).fit(
        [t for t in train if t[1]])
    return store, delta


def test_a_faiss_copy_is_edited_without_touching_the_original(scifact_faiss_part):
    """``delta.apply(store)`` returns a new store. LangChain's ``FAISS.delete`` always deletes
    from the docstore too, and the copy shared the original's: deleting from the copy made
    the original's own search raise ``ValueError`` for the deleted documents."""
    store, delta = scifact_faiss_part
    before = [ids_of(store.as_retriever(search_kwargs={"k": 10}).invoke(f"q{n}"))
              for n in range(20)]
    copy = delta.apply(store)
    gone = list(delta.ids[:20])
    copy.delete(gone)
    assert [ids_of(store.as_retriever(search_kwargs={"k": 10}).invoke(f"q{n}"))
            for n in range(20)] == before
    assert store.get_by_ids(gone) and not copy.get_by_ids(gone)
    store.delete(list(delta.ids[20:40]))  # and the other way round
    assert len(copy.get_by_ids(list(delta.ids[20:40]))) == 20


class _RecordingIndex:
    """A FAISS index that records the depth of every search asked of it (it answers at most
    what it holds, so a test cannot exhaust the machine's memory)."""

    def __init__(self, inner):
        self.inner = inner
        self.depths: list[int] = []

    def search(self, queries, k):
        self.depths.append(int(k))
        return self.inner.search(queries, min(int(k), self.inner.ntotal))

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_huge_k_asks_faiss_for_no_more_than_it_holds(scifact_faiss_part):
    """FAISS allocates its answer for every row asked: ``k=10**9`` took 20 GB and the process
    was killed. ``k`` beyond the store's size returns every record, in the nudged order."""
    store, delta = scifact_faiss_part
    retriever = delta.as_retriever(store, k=10)
    want = ids_of(delta.apply(store).as_retriever(search_kwargs={"k": 1000}).invoke("q3"))
    recording = _RecordingIndex(store.index)
    store.index = recording
    got = ids_of(retriever.invoke("q3", k=10**9))
    assert got == want and len(got) == 1000
    # a filtered search goes deeper by itself; a huge fetch_k asks no more either
    assert ids_of(retriever.invoke("q3", k=20, filter=lambda meta: True,
                                   fetch_k=10**9)) == want[:20]
    assert max(recording.depths) <= 1000


@pytest.mark.parametrize("search_type", ["mmr", "similarity_score_threshold"])
def test_search_types_the_overlay_cannot_serve_are_the_packages_error(scifact_part,
                                                                     search_type):
    """``as_retriever(search_type="mmr")`` is common LangChain code; it gets an InputError
    that says what to do instead, not pydantic's literal_error."""
    store, delta, _ = scifact_part
    with pytest.raises(InputError, match=f"search_type='{search_type}'.*similarity"):
        delta.as_retriever(store, search_type=search_type)


def test_a_hybrid_langchain_qdrant_store_is_refused_not_served_dense_only(scifact_split,
                                                                           scifact_texts):
    """A LangChain ``QdrantVectorStore`` in hybrid (dense + sparse) or sparse mode ranks by
    more than the dense vectors NUDGE moves. It was fitted and served dense-only, silently
    ranking unlike the store's own retriever; LlamaIndex's hybrid Qdrant and Milvus stores
    were already refused."""
    pytest.importorskip("langchain_qdrant")
    import hashlib
    import uuid

    from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
    from qdrant_client import models

    class HashedWords(SparseEmbeddings):
        """Sparse vectors of hashed word counts (a local stand-in for BM25 or SPLADE)."""

        def _vector(self, text):
            counts: dict[int, float] = {}
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(),
                                   "little") % 50_000
                counts[h] = counts.get(h, 0.0) + 1.0
            return SparseVector(indices=list(counts), values=list(counts.values()))

        def embed_documents(self, texts):
            return [self._vector(t) for t in texts]

        def embed_query(self, text):
            return self._vector(text)

    ids = scifact_split.doc_ids[:300]
    point = {d: str(uuid.uuid5(uuid.NAMESPACE_URL, d)) for d in ids}
    questions = [(q, {point[d]: g for d, g in rel.items() if d in point})
                 for q, rel in as_id_questions(scifact_split, "train")]
    questions = [(q, rel) for q, rel in questions if rel]
    for mode in (RetrievalMode.HYBRID, RetrievalMode.DENSE):
        store = QdrantVectorStore.from_texts(
            [scifact_texts.doc_text(d) for d in ids], QuestionVectors(scifact_split.test_q),
            ids=[point[d] for d in ids], location=":memory:", collection_name="docs",
            retrieval_mode=mode, sparse_embedding=HashedWords())
        # the dense vectors: SciFact's cached embeddings, as the questions were embedded
        store.client.update_vectors("docs", points=[
            models.PointVectors(id=point[d], vector={store.vector_name: v.tolist()})
            for d, v in zip(ids, scifact_split.doc_emb[:300])])
        if mode == RetrievalMode.HYBRID:
            with pytest.raises(InputError, match="hybrid"):
                EmbeddingFinetuner(store, show_progress=False).fit(questions)
            hybrid = store
        else:
            delta = EmbeddingFinetuner(store, show_progress=False).fit(questions)
            assert len(delta.as_retriever(store, k=3).invoke("q0")) == 3
            with pytest.raises(InputError, match="hybrid"):
                delta.as_retriever(hybrid, k=3)


def test_k_computed_with_numpy_is_a_whole_number(scifact_part, scifact_split):
    """``k`` often comes out of numpy (``np.int64``), which the frameworks' own retrievers
    take; the nudged ones refused it as not a whole number."""
    store, delta, nudged = scifact_part
    k = np.arange(10)[3]
    assert ids_of(delta.as_retriever(store, k=k).invoke("q1")) == \
        ids_of(nudged.as_retriever(search_kwargs={"k": 3}).invoke("q1"))
    assert len(delta.as_retriever(store).invoke("q1", k=np.int32(2))) == 2
    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=t, id_=key) for key, (t, _) in DOCS.items()],
        embed_model=CountingLlamaEmbedding(dim=64))
    questions = [(q, {index.docstore.get_ref_doc_info(key).node_ids[0]: g
                      for key, g in rel.items()}) for q, rel in QUESTIONS]
    fitted = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(questions)
    retriever = fitted.as_retriever(index, similarity_top_k=np.int64(3))
    assert len(retriever.retrieve("what plays fetch")) == 3
    retriever.similarity_top_k = np.int64(5)
    assert retriever.similarity_top_k == 5 and type(retriever.similarity_top_k) is int


def test_a_delta_from_another_index_is_refused_by_the_retriever_as_by_apply(scifact_part):
    """A delta used on a store that holds none of its records (another index with the same
    embedding model) nudges nothing. ``delta.apply`` refuses it; the retriever served the
    un-nudged ranking without a word."""
    from nudge_rag import MismatchError

    store, delta, _ = scifact_part
    moved = set(delta.ids)
    other = InMemoryVectorStore(store.embeddings)
    other.store = {i: r for i, r in store.store.items() if i not in moved}
    with pytest.raises(MismatchError, match="another index"):
        delta.apply(other)
    with pytest.raises(MismatchError, match="another index"):
        delta.as_retriever(other)
    # the package's errors at construction are its own, not pydantic's ValidationError
    with pytest.raises(InputError, match="search option"):
        delta.as_retriever(store, search_kwargs={"where_document": {"$contains": "cell"}})
    # one moved record held is enough: records deleted since the fit are served as deleted
    kept = delta.ids[-1]
    other.store[kept] = store.store[kept]
    assert len(delta.as_retriever(other, k=5).invoke("q0")) == 5
    assert delta.as_retriever(InMemoryVectorStore(store.embeddings)).invoke("q0") == []
