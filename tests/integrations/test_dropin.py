"""The nudged retrievers as drop-in replacements: per-call options as LangChain's
``VectorStoreRetriever`` takes them, the arguments, callbacks, spans and async path of
LlamaIndex's ``VectorIndexRetriever``, and real pipelines (a LlamaIndex query engine, a
LangChain LCEL chain) answering through them with a deterministic local LLM."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.language_models.llms import LLM
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import SimpleVectorStore

from nudge_rag import EmbeddingFinetuner, InputError
from tests.fakes import CountingLangChainEmbeddings, CountingLlamaEmbedding
from tests.small_corpus import DOCS, QUESTIONS


class Overlapping:
    """Counts the calls inside a block at once, and the most there ever were. A call waits in
    the block until ``crowd`` calls have entered, or ``patience`` seconds: like a remote
    search, slow, but over at once when callers really run side by side (a busy machine then
    cannot make the test miss the overlap)."""

    def __init__(self, crowd: int, patience: float):
        self._ready = threading.Condition()
        self.crowd, self.patience = crowd, patience
        self.now = 0
        self.most = 0
        self.calls = 0

    def __enter__(self):
        with self._ready:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
            self._ready.notify_all()
            self._ready.wait_for(lambda: self.most >= self.crowd, timeout=self.patience)

    def __exit__(self, *exc):
        with self._ready:
            self.now -= 1


SEARCHES = Overlapping(crowd=40, patience=1.0)


class SlowVectorStore(SimpleVectorStore):
    """A SimpleVectorStore whose search waits like a remote database's (a subclass of a
    supported store is served by that store's adapter)."""

    def query(self, query, **kwargs):
        with SEARCHES:
            return super().query(query, **kwargs)


def _nodes():
    return [TextNode(id_=k, text=t, metadata={"kind": kind}) for k, (t, kind) in DOCS.items()]


def small_index(store=None):
    from llama_index.core import StorageContext

    storage = StorageContext.from_defaults(vector_store=store or SimpleVectorStore())
    return VectorStoreIndex(_nodes(), storage_context=storage,
                            embed_model=CountingLlamaEmbedding(dim=64))


def small_store():
    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=64))
    store.add_documents([Document(id=k, page_content=t, metadata={"kind": kind})
                         for k, (t, kind) in DOCS.items()])
    return store


def fitted(obj):
    return EmbeddingFinetuner(obj, gamma=0.3, show_progress=False).fit(QUESTIONS)


# -- LlamaIndex ------------------------------------------------------------------------------

def test_llama_async_equals_sync_and_top_k_is_a_property():
    index = small_index()
    retriever = fitted(index).as_retriever(index, similarity_top_k=3)
    for question, _ in QUESTIONS:
        sync = retriever.retrieve(question)
        asy = asyncio.run(retriever.aretrieve(question))
        assert [(n.node.node_id, n.score) for n in sync] == \
            [(n.node.node_id, n.score) for n in asy]
        assert len(sync) == 3
    assert retriever.similarity_top_k == 3
    retriever.similarity_top_k = 5
    assert len(retriever.retrieve("what plays fetch")) == 5
    with pytest.raises(InputError, match="similarity_top_k"):
        retriever.similarity_top_k = 0


def test_fifty_concurrent_aretrieve_calls_search_at_once():
    """On a store whose search waits up to a second, 50 concurrent retrievals run their
    searches side by side (not one after another, as a blocking search on the event loop
    would: then each waits its full second and at most one runs at a time)."""
    index = small_index(SlowVectorStore())
    retriever = fitted(index).as_retriever(index, similarity_top_k=2)
    before = SEARCHES.calls

    async def fifty():
        return await asyncio.gather(*(retriever.aretrieve(q) for q, _ in QUESTIONS * 5))

    got = asyncio.run(fifty())
    # one store search per retrieval, a second where moved records crowd the first
    assert 50 <= SEARCHES.calls - before <= 100
    assert SEARCHES.most >= 40, f"at most {SEARCHES.most} searches ran at once"
    assert [[n.node.node_id for n in hits] for hits in got[:10]] == \
        [[n.node.node_id for n in retriever.retrieve(q)] for q, _ in QUESTIONS]


def test_llama_callbacks_verbose_and_one_span_per_retrieval():
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler

    index = small_index()
    debug = LlamaDebugHandler()
    retriever = fitted(index).as_retriever(index, similarity_top_k=2,
                                           callback_manager=CallbackManager([debug]),
                                           verbose=True)
    spans = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(spans)
    try:
        retriever.retrieve("what plays fetch")
        asyncio.run(retriever.aretrieve("seasonal foliage"))
    finally:
        root.span_handlers.remove(spans)
    assert len(debug.get_event_pairs(CBEventType.RETRIEVE)) == 2
    ours = [s for s in spans.completed_spans if s.id_.startswith("NudgedRetriever._")]
    assert sorted(s.id_.split("-")[0] for s in ours) == ["NudgedRetriever._aretrieve",
                                                         "NudgedRetriever._retrieve"]


def test_llama_node_ids_and_doc_ids_restrict_the_nudged_ranking():
    from llama_index.core import Document as LlamaDocument

    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=t, id_=k, metadata={"kind": kind}) for k, (t, kind) in DOCS.items()],
        embed_model=CountingLlamaEmbedding(dim=64))
    questions = [(q, {index.docstore.get_ref_doc_info(k).node_ids[0]: g for k, g in rel.items()})
                 for q, rel in QUESTIONS]
    delta = EmbeddingFinetuner(index, gamma=0.3, show_progress=False).fit(questions)
    everything = delta.as_retriever(index, similarity_top_k=len(DOCS))
    pets = ["cats", "dogs"]
    pet_nodes = [n for k in pets for n in index.docstore.get_ref_doc_info(k).node_ids]
    by_nodes = delta.as_retriever(index, similarity_top_k=3, node_ids=pet_nodes)
    by_docs = delta.as_retriever(index, similarity_top_k=3, doc_ids=pets, alpha=0.5)
    for question, _ in QUESTIONS:
        want = [(n.node.node_id, n.score) for n in everything.retrieve(question)
                if n.node.node_id in pet_nodes]
        for retriever in (by_nodes, by_docs):
            got = [(n.node.node_id, n.score) for n in retriever.retrieve(question)]
            # the same nodes at the same scores, best first (tied nodes in either order)
            assert dict(got) == pytest.approx(dict(want), abs=1e-6)
            assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        assert [(n.node.node_id, n.score) for n in asyncio.run(by_docs.aretrieve(question))] \
            == [(n.node.node_id, n.score) for n in by_docs.retrieve(question)]
    with pytest.raises(InputError, match="no document 'unicorns'"):
        delta.as_retriever(index, doc_ids=["unicorns"])


def test_llama_arguments_it_cannot_honour_are_refused():
    index = small_index()
    delta = fitted(index)
    with pytest.raises(InputError, match="vector_store_query_mode"):
        delta.as_retriever(index, vector_store_query_mode="hybrid")
    with pytest.raises(InputError, match="search option"):
        delta.as_retriever(index, vector_store_kwargs={"ef": 10})


def test_llama_query_engine_answers_from_the_nudged_retrieval():
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    index = small_index()
    retriever = fitted(index).as_retriever(index, similarity_top_k=2)
    # MockLLM without max_tokens echoes its prompt: the answer shows the context it was given
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    for question, _ in QUESTIONS:
        response = engine.query(question)
        sources = [n.node.node_id for n in response.source_nodes]
        assert sources == [n.node.node_id for n in retriever.retrieve(question)]
        assert DOCS[sources[0]][0] in str(response)
    hits = sum(next(iter(rel)) == engine.query(q).source_nodes[0].node.node_id
               for q, rel in QUESTIONS)
    assert hits >= 8


# -- LangChain -------------------------------------------------------------------------------

class EchoLLM(LLM):
    """A deterministic local LLM: it answers with the context lines of its prompt."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _call(self, prompt: str, stop=None, run_manager=None, **kwargs) -> str:
        return "\n".join(line for line in prompt.splitlines() if line.startswith("- "))


def test_langchain_call_options_override_the_retrievers():
    store = small_store()
    delta = fitted(store)
    retriever = delta.as_retriever(store, k=3)
    assert len(retriever.invoke("what plays fetch")) == 3
    assert len(retriever.invoke("what plays fetch", k=1)) == 1
    assert len(retriever.invoke("what plays fetch")) == 3  # one call only
    pets = retriever.invoke("what needs yeast", filter=lambda d: d.metadata["kind"] == "pet")
    assert {d.id for d in pets} == {"cats", "dogs"}
    # as VectorStoreRetriever takes them: in search_kwargs
    kw = delta.as_retriever(store, search_kwargs={"k": 2, "filter":
                                                  lambda d: d.metadata["kind"] == "wild"})
    assert kw.k == 2 and {d.id for d in kw.invoke("pets")} == {"fish", "birds"}
    assert {d.id for d in kw.invoke("pets", filter=None, k=8)} == set(DOCS)
    with pytest.raises(InputError, match="given twice"):
        delta.as_retriever(store, k=3, search_kwargs={"k": 2})
    with pytest.raises(InputError, match="search option"):
        retriever.invoke("pets", where_document={"$contains": "x"})
    with pytest.raises(InputError, match="k=0"):
        retriever.invoke("pets", k=0)


def test_langchain_lcel_chain_batch_and_abatch_equal_invoke():
    from langchain_core.prompts import PromptTemplate

    store = small_store()
    retriever = fitted(store).as_retriever(store, k=2)
    prompt = PromptTemplate.from_template("Context:\n{context}\nQuestion: {question}\n")

    def context(docs):
        return "\n".join(f"- {d.page_content}" for d in docs)

    chain = ({"context": retriever | RunnableLambda(context),
              "question": RunnableLambda(lambda q: q)} | prompt | EchoLLM())
    questions = [q for q, _ in QUESTIONS]
    answers = [chain.invoke(q) for q in questions]
    for q, answer in zip(questions, answers):
        assert answer == context(retriever.invoke(q))
    assert chain.batch(questions) == answers
    assert asyncio.run(chain.abatch(questions)) == answers
    docs = [retriever.invoke(q) for q in questions]
    assert retriever.batch(questions) == docs
    assert asyncio.run(retriever.abatch(questions)) == docs
    assert sum(d[0].id in rel for d, (_, rel) in zip(docs, QUESTIONS)) >= 8
