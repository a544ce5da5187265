"""LangChain's own standard retriever tests (``langchain-tests``' ``RetrieversIntegrationTests``,
the suite every LangChain partner package runs) against the nudged retriever, on every
LangChain store nudge-rag supports: InMemoryVectorStore, FAISS, Chroma, Qdrant, pgvector and
Milvus.

Each store holds the small corpus of ``tests/small_corpus.py`` under UUID ids (Qdrant takes no
other) and a delta fitted on its questions, so moved and unmoved documents compete. Vectors
have the database tests' dimension: langchain-postgres keeps every collection in one table,
whose vector column has the dimension its first collection gave it."""

from __future__ import annotations

import itertools
import uuid

import pytest

pytest.importorskip("langchain_tests")
pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from nudge_rag import EmbeddingFinetuner
from nudge_rag.integrations.langchain import NudgedRetriever
from tests.databases.builders import DIM
from tests.fakes import CountingLangChainEmbeddings
from tests.small_corpus import DOCS, QUESTIONS

_SESSION = itertools.count()


def corpus(tag: str):
    """The small corpus as Documents with ids unique to ``tag`` (pgvector keeps every
    collection in one table keyed by id), and its questions naming those ids."""
    ids = {key: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{key}")) for key in DOCS}
    docs = [Document(id=ids[key], page_content=text, metadata={"kind": kind})
            for key, (text, kind) in DOCS.items()]
    questions = [(q, {ids[key]: g for key, g in rel.items()}) for q, rel in QUESTIONS]
    return docs, questions


def inmemory(docs, place):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(CountingLangChainEmbeddings(dim=DIM))
    store.add_documents(docs)
    return store


def faiss(docs, place):
    pytest.importorskip("faiss")
    from langchain_community.vectorstores import FAISS

    return FAISS.from_documents(docs, CountingLangChainEmbeddings(dim=DIM))


def chroma(docs, place):
    pytest.importorskip("langchain_chroma")
    import chromadb
    from langchain_chroma import Chroma

    store = Chroma(collection_name="docs", client=chromadb.PersistentClient(path=place.dir),
                   embedding_function=CountingLangChainEmbeddings(dim=DIM),
                   collection_metadata={"hnsw:space": "cosine"})
    store.add_documents(docs)
    return store


def qdrant(docs, place):
    pytest.importorskip("langchain_qdrant")
    from langchain_qdrant import QdrantVectorStore

    return QdrantVectorStore.from_documents(docs, CountingLangChainEmbeddings(dim=DIM),
                                            location=":memory:", collection_name="docs")


def pgvector(docs, place):
    pytest.importorskip("langchain_postgres")
    from langchain_postgres import PGVector

    from tests.databases.builders import pg_uri

    store = PGVector(CountingLangChainEmbeddings(dim=DIM), collection_name=place.name,
                     connection=pg_uri(place, "psycopg"), use_jsonb=True)
    store.add_documents(docs)
    return store


def milvus(docs, place):
    pytest.importorskip("langchain_milvus")
    pytest.importorskip("milvus_lite")
    from langchain_milvus import Milvus

    from tests.databases.builders import milvus_uri

    store = Milvus(CountingLangChainEmbeddings(dim=DIM), collection_name="docs",
                   connection_args={"uri": milvus_uri(place.dir)},
                   index_params={"index_type": "HNSW", "metric_type": "COSINE",
                                 "params": {"M": 16, "efConstruction": 64}})
    store.add_documents(docs, ids=[d.id for d in docs])
    return store


class _NudgedStandardTests(RetrieversIntegrationTests):
    """The standard tests, on a store built by ``build`` (store name ``name``)."""

    name = ""
    build = staticmethod(inmemory)

    @pytest.fixture(autouse=True)
    def _fitted(self, place):
        docs, questions = corpus(f"{self.name}-{next(_SESSION)}")
        where = place(f"pgvector-{self.name}" if self.name == "pgvector" else self.name)
        store = type(self).build(docs, where)
        delta = EmbeddingFinetuner(store, gamma=0.3, show_progress=False).fit(questions)
        assert len(delta) > 0
        self._params = {"vectorstore": store, "delta": delta}

    @property
    def retriever_constructor(self) -> type[NudgedRetriever]:
        return NudgedRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return self._params

    @property
    def retriever_query_example(self) -> str:
        return "which pet makes a purring sound"


class TestInMemoryVectorStore(_NudgedStandardTests):
    name = "inmemory"
    build = staticmethod(inmemory)


class TestFAISS(_NudgedStandardTests):
    name = "faiss"
    build = staticmethod(faiss)


class TestChroma(_NudgedStandardTests):
    name = "chroma"
    build = staticmethod(chroma)


class TestQdrant(_NudgedStandardTests):
    name = "qdrant"
    build = staticmethod(qdrant)


class TestPGVector(_NudgedStandardTests):
    name = "pgvector"
    build = staticmethod(pgvector)


class TestMilvus(_NudgedStandardTests):
    name = "milvus"
    build = staticmethod(milvus)
