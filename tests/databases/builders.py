"""Small real database stores for the tests, each reached through one framework, plus client
wrappers that count the vectors the database sends back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from tests.conftest import clustered_problem

DIM = 16


@dataclass
class Problem:
    docs: np.ndarray
    ids: list[str]
    train: list
    val: list

    @property
    def dim(self) -> int:
        return int(self.docs.shape[1])

    def text(self, i: int) -> str:
        return f"document {i} parity {i % 2}"


def problem(seed: int = 3, dim: int = DIM, id_offset: int = 0) -> Problem:
    docs, tq, tr, vq, vr = clustered_problem(seed=seed, n=300, d=dim, n_train=90, n_val=30)
    ids = [str(uuid.UUID(int=id_offset + i + 1)) for i in range(len(docs))]

    def named(qs, rel):
        return [(q, {ids[r]: g for r, g in rr.items()}) for q, rr in zip(qs, rel)]

    return Problem(docs.astype(np.float32), ids, named(tq, tr), named(vq, vr))


class CountingCollection:
    """A chromadb Collection that counts the vectors it returns."""

    def __init__(self, inner):
        self._inner = inner
        self.vectors_read = 0
        #: method name -> the exception it raises instead of running
        self.fail_on: dict[str, Exception] = {}

    def __getattr__(self, name):
        if name in self.fail_on:
            raise self.fail_on[name]
        return getattr(self._inner, name)

    def get(self, *args, **kwargs):
        if "get" in self.fail_on:
            raise self.fail_on["get"]
        got = self._inner.get(*args, **kwargs)
        if got.get("embeddings") is not None:
            self.vectors_read += len(got["embeddings"])
        return got


class CountingQdrant:
    """A QdrantClient that counts the vectors it returns."""

    def __init__(self, inner):
        self._inner = inner
        self.vectors_read = 0
        #: method name -> the exception it raises instead of running
        self.fail_on: dict[str, Exception] = {}

    def __getattr__(self, name):
        if name in self.fail_on:
            raise self.fail_on[name]
        attr = getattr(self._inner, name)
        if name not in ("retrieve", "scroll", "query_points", "query_batch_points"):
            return attr

        def counted(*args, **kwargs):
            out = attr(*args, **kwargs)
            for pts in _point_lists(out):
                self.vectors_read += sum(p.vector is not None for p in pts)
            return out

        return counted


def _point_lists(out):
    if isinstance(out, tuple):  # scroll
        return [out[0]]
    if isinstance(out, list) and out and hasattr(out[0], "points"):
        return [r.points for r in out]
    if hasattr(out, "points"):
        return [out.points]
    return [out]


# -- builders: (framework object, counting client) -------------------------------------------

def chroma_collection(path, p: Problem, space: str = "cosine", name: str = "docs"):
    import chromadb

    client = chromadb.PersistentClient(path=str(path))
    col = client.get_or_create_collection(name, metadata={"hnsw:space": space})
    return client, col


def chroma_llama(path, p: Problem, space: str = "cosine"):
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from tests.fakes import CountingLlamaEmbedding

    _, col = chroma_collection(path, p, space)
    store = ChromaVectorStore(chroma_collection=col)
    nodes = [TextNode(id_=i, text=p.text(r), embedding=p.docs[r].tolist(),
                      metadata={"parity": r % 2}) for r, i in enumerate(p.ids)]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(
        vector_store=store), embed_model=CountingLlamaEmbedding(dim=p.dim))
    counter = CountingCollection(store._collection)
    store._collection = counter
    return index, counter


def chroma_langchain(path, p: Problem, space: str = "cosine"):
    from langchain_chroma import Chroma

    from tests.fakes import CountingLangChainEmbeddings

    client, col = chroma_collection(path, p, space)
    col.add(ids=p.ids, embeddings=p.docs, documents=[p.text(r) for r in range(len(p.ids))],
            metadatas=[{"parity": r % 2} for r in range(len(p.ids))])
    store = Chroma(collection_name="docs", client=client,
                   embedding_function=CountingLangChainEmbeddings(dim=p.dim))
    counter = CountingCollection(store._collection)
    store._chroma_collection = counter
    return store, counter


def _qdrant_client(path, persistent: bool):
    from qdrant_client import QdrantClient

    # local mode on disk commits every point to SQLite: in memory unless a test needs the disk
    return QdrantClient(path=str(path)) if persistent else QdrantClient(location=":memory:")


def qdrant_llama(path, p: Problem, distance: str = "Cosine", persistent: bool = False):
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import models

    from tests.fakes import CountingLlamaEmbedding

    client = _qdrant_client(path, persistent)
    store = QdrantVectorStore(collection_name="docs", client=client, dense_config=models
                              .VectorParams(size=p.dim, distance=models.Distance(distance)))
    nodes = [TextNode(id_=i, text=p.text(r), embedding=p.docs[r].tolist(),
                      metadata={"parity": r % 2}) for r, i in enumerate(p.ids)]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(
        vector_store=store), embed_model=CountingLlamaEmbedding(dim=p.dim))
    counter = CountingQdrant(store._client)
    store._client = counter
    return index, counter


def qdrant_langchain(path, p: Problem, distance: str = "Cosine", persistent: bool = False):
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import models

    from tests.fakes import CountingLangChainEmbeddings

    client = _qdrant_client(path, persistent)
    client.create_collection("docs", vectors_config=models.VectorParams(
        size=p.dim, distance=models.Distance(distance)))
    client.upsert("docs", points=[
        models.PointStruct(id=i, vector=p.docs[r].tolist(),
                           payload={"page_content": p.text(r), "metadata": {"parity": r % 2}})
        for r, i in enumerate(p.ids)])
    store = QdrantVectorStore(client=client, collection_name="docs",
                              embedding=CountingLangChainEmbeddings(dim=p.dim))
    counter = CountingQdrant(store._client)
    store._client = counter
    return store, counter


BUILDERS = {"chroma-llama": chroma_llama, "chroma-langchain": chroma_langchain,
            "qdrant-llama": qdrant_llama, "qdrant-langchain": qdrant_langchain}
PACKAGES = {"chroma-llama": ("chromadb", "llama_index.vector_stores.chroma"),
            "chroma-langchain": ("chromadb", "langchain_chroma"),
            "qdrant-llama": ("qdrant_client", "llama_index.vector_stores.qdrant"),
            "qdrant-langchain": ("qdrant_client", "langchain_qdrant")}
