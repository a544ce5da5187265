"""Small real database stores for the tests, each reached through one framework, plus client
wrappers that count the vectors the database sends back.

``PAIRS`` holds every store × framework pair the crash and concurrency tests cover, each with
a way to build it where it lives (a folder, or a table on a PostgreSQL server), to open it
again as a fresh client (or another process) sees it, and to persist what lives in memory."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


_FRESH = itertools.count(1)


def fresh_problem() -> Problem:
    """``problem()`` with ids no other call in this process got (pgvector through LangChain
    keeps every collection in one table, where an id names one record)."""
    return problem(id_offset=1_000_000 * next(_FRESH))


class _CountingClient:
    """A client wrapper that counts the vectors it returns and can be told to fail."""

    def __init__(self, inner):
        self._inner = inner
        self.vectors_read = 0
        #: method name -> the exception it raises instead of running
        self.fail_on: dict[str, Exception] = {}

    def __getattr__(self, name):
        if name in self.fail_on:
            raise self.fail_on[name]
        return getattr(self._inner, name)


class CountingCollection(_CountingClient):
    """A chromadb Collection that counts the vectors it returns."""

    def get(self, *args, **kwargs):
        if "get" in self.fail_on:
            raise self.fail_on["get"]
        got = self._inner.get(*args, **kwargs)
        if got.get("embeddings") is not None:
            self.vectors_read += len(got["embeddings"])
        return got


class CountingQdrant(_CountingClient):
    """A QdrantClient that counts the vectors it returns."""

    def __getattr__(self, name):
        attr = super().__getattr__(name)
        if name not in ("retrieve", "scroll", "query_points", "query_batch_points"):
            return attr

        def counted(*args, **kwargs):
            out = attr(*args, **kwargs)
            for pts in _point_lists(out):
                self.vectors_read += sum(p.vector is not None for p in pts)
            return out

        return counted


class CountingMilvus(_CountingClient):
    """A pymilvus MilvusClient that counts the vectors it returns (rows of ``get`` and
    ``query``, hits of ``search``, that carry a list of floats)."""

    def __getattr__(self, name):
        attr = super().__getattr__(name)
        if name not in ("get", "query", "search"):
            return attr

        def counted(*args, **kwargs):
            out = attr(*args, **kwargs)
            rows = [h.get("entity", h) for hits in out for h in hits] if name == "search" \
                else out
            self.vectors_read += sum(any(_is_vector(v) for v in dict(r).values()) for r in rows)
            return out

        return counted


def _is_vector(value) -> bool:
    return isinstance(value, (list, np.ndarray)) and len(value) > 1 and \
        isinstance(value[0], (float, np.floating))


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
    from llama_index.vector_stores.chroma import ChromaVectorStore

    _, col = chroma_collection(path, p, space)
    store = ChromaVectorStore(chroma_collection=col)
    index = _llama_index(store, p)
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
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import models

    client = _qdrant_client(path, persistent)
    store = QdrantVectorStore(collection_name="docs", client=client, dense_config=models
                              .VectorParams(size=p.dim, distance=models.Distance(distance)))
    index = _llama_index(store, p)
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


def milvus_uri(path) -> str:
    """A milvus-lite database: a folder named ``*.db`` (the client starts the engine in this
    process the first time it opens one)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return str(Path(path) / "milvus.db")


#: an HNSW index, as a production collection would have
MILVUS_INDEX = {"index_type": "HNSW", "M": 16, "efConstruction": 64}


def _milvus_llama_store(path, metric: str = "cosine", dim: int = DIM):
    from llama_index.vector_stores.milvus import MilvusVectorStore

    return MilvusVectorStore(uri=milvus_uri(path), collection_name="docs", dim=dim,
                             similarity_metric=metric, index_config=dict(MILVUS_INDEX),
                             search_config={"ef": 32}, use_async_client=False)


def milvus_llama(path, p: Problem, metric: str = "cosine"):
    store = _milvus_llama_store(path, metric, p.dim)
    index = _llama_index(store, p)
    counter = CountingMilvus(store._milvusclient)
    store._milvusclient = counter
    return index, counter


def _milvus_langchain_store(path, metric: str = "COSINE", dim: int = DIM):
    from langchain_milvus import Milvus

    index = {"index_type": "HNSW", "metric_type": metric,
             "params": {k: v for k, v in MILVUS_INDEX.items() if k != "index_type"}}
    return Milvus(_embedding("langchain", dim), collection_name="docs",
                  connection_args={"uri": milvus_uri(path)}, index_params=index,
                  search_params={"metric_type": metric, "params": {"ef": 32}})


def milvus_langchain(path, p: Problem, metric: str = "COSINE"):
    store = _milvus_langchain_store(path, metric, p.dim)
    store.add_embeddings([p.text(r) for r in range(len(p.ids))], [v.tolist() for v in p.docs],
                         metadatas=[{"parity": r % 2} for r in range(len(p.ids))], ids=p.ids)
    counter = CountingMilvus(store._milvus_client)
    store._milvus_client = counter
    return store, counter


BUILDERS = {"chroma-llama": chroma_llama, "chroma-langchain": chroma_langchain,
            "qdrant-llama": qdrant_llama, "qdrant-langchain": qdrant_langchain,
            "milvus-llama": milvus_llama, "milvus-langchain": milvus_langchain}
PACKAGES = {"chroma-llama": ("chromadb", "llama_index.vector_stores.chroma"),
            "chroma-langchain": ("chromadb", "langchain_chroma"),
            "qdrant-llama": ("qdrant_client", "llama_index.vector_stores.qdrant"),
            "qdrant-langchain": ("qdrant_client", "langchain_qdrant"),
            "milvus-llama": ("milvus_lite", "llama_index.vector_stores.milvus"),
            "milvus-langchain": ("milvus_lite", "langchain_milvus")}


# -- every store × framework pair, where it lives ------------------------------------------------

@dataclass(frozen=True)
class Place:
    """Where a test store lives: folder ``dir`` (Chroma, Qdrant local mode, milvus-lite, a
    persisted FAISS index), or table/collection ``name`` on the PostgreSQL server at ``uri``
    (pgvector)."""

    dir: str = ""
    uri: str = ""
    name: str = "docs"


def _embedding(framework: str, dim: int = DIM):
    from tests.fakes import CountingLangChainEmbeddings, CountingLlamaEmbedding

    if framework == "llama":
        return CountingLlamaEmbedding(dim=dim)
    return CountingLangChainEmbeddings(dim=dim)


def _nodes(p: Problem):
    from llama_index.core.schema import TextNode

    return [TextNode(id_=i, text=p.text(r), embedding=p.docs[r].tolist(),
                     metadata={"parity": r % 2}) for r, i in enumerate(p.ids)]


def _llama_index(vector_store, p: Problem | None = None):
    """A LlamaIndex index over ``vector_store``: built from ``p``, or over what it holds."""
    from llama_index.core import StorageContext, VectorStoreIndex

    if p is None:
        return VectorStoreIndex.from_vector_store(vector_store, embed_model=_embedding("llama"))
    return VectorStoreIndex(_nodes(p), storage_context=StorageContext.from_defaults(
        vector_store=vector_store), embed_model=_embedding("llama", p.dim))


def _chroma_client(place: Place):
    import chromadb
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # read the folder as it is now, not a cached copy
    return chromadb.PersistentClient(path=place.dir)


def open_chroma_llama(place: Place):
    from llama_index.vector_stores.chroma import ChromaVectorStore

    collection = _chroma_client(place).get_collection("docs")
    return _llama_index(ChromaVectorStore(chroma_collection=collection))


def open_chroma_langchain(place: Place):
    from langchain_chroma import Chroma

    return Chroma(collection_name="docs", client=_chroma_client(place),
                  embedding_function=_embedding("langchain"))


@contextmanager
def unsynced_qdrant():
    """Qdrant's local mode commits each point on its own and SQLite syncs every commit to the
    disk (about 40 ms here: 12 s to build 300 points). Collections opened in this block skip
    the sync. The crash tests lose nothing by it: a killed process loses no write the OS has
    taken, only a machine crash would. Their child processes never run this."""
    try:
        from qdrant_client.local.persistence import CollectionPersistence
    except ImportError:
        CollectionPersistence = None
    real = getattr(CollectionPersistence, "_ensure_table", None)
    if real is None:  # another client version: leave it as it is
        yield
        return

    def ensure_table(self):
        self.storage.execute("PRAGMA synchronous=OFF")
        real(self)

    CollectionPersistence._ensure_table = ensure_table
    try:
        yield
    finally:
        CollectionPersistence._ensure_table = real


def _qdrant_local(place: Place):
    from qdrant_client import QdrantClient

    return QdrantClient(path=place.dir)


def open_qdrant_llama(place: Place):
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    return _llama_index(QdrantVectorStore(collection_name="docs", client=_qdrant_local(place)))


def open_qdrant_langchain(place: Place):
    from langchain_qdrant import QdrantVectorStore

    return QdrantVectorStore(client=_qdrant_local(place), collection_name="docs",
                             embedding=_embedding("langchain"))


def close_qdrant(obj) -> None:
    """Local mode admits one client per folder: close this one before another opens it."""
    client = obj.vector_store.client if hasattr(obj, "vector_store") else obj.client
    getattr(client, "_inner", client).close()


def open_milvus_llama(place: Place):
    store = _milvus_llama_store(place.dir)
    # milvus-lite reopens a folder with its collections released; LlamaIndex's store does not
    # load them (langchain-milvus does), and neither searches until they are
    store.client.load_collection("docs")
    return _llama_index(store)


def open_milvus_langchain(place: Place):
    return _milvus_langchain_store(place.dir)


def close_milvus(obj) -> None:
    """milvus-lite runs its engine in the process that opened the folder and locks the folder
    until it stops: stop it, so that another process may open it. (One milvus-lite folder is
    open at a time in the tests that hand a store between processes.)"""
    from milvus_lite.server_manager import server_manager_instance

    from nudge_rag.stores import adapt

    client = adapt(obj).client
    getattr(client, "_inner", client).close()
    server_manager_instance.release_all()


def pg_uri(place: Place, driver: str) -> str:
    return place.uri.replace("postgresql://", f"postgresql+{driver}://", 1)


def _pg_llama_store(place: Place, dim: int = DIM):
    from llama_index.vector_stores.postgres import PGVectorStore

    return PGVectorStore(connection_string=pg_uri(place, "psycopg2"),
                         async_connection_string=pg_uri(place, "asyncpg"),
                         table_name=place.name, embed_dim=dim,
                         hnsw_kwargs={"hnsw_m": 16, "hnsw_ef_construction": 64,
                                      "hnsw_ef_search": 100,
                                      "hnsw_dist_method": "vector_cosine_ops"})


def pg_llama(place: Place, p: Problem):
    return _llama_index(_pg_llama_store(place, p.dim), p)


def open_pg_llama(place: Place):
    return _llama_index(_pg_llama_store(place))


def open_pg_langchain(place: Place, dim: int = DIM):
    from langchain_postgres import PGVector

    return PGVector(_embedding("langchain", dim), collection_name=place.name,
                    connection=pg_uri(place, "psycopg"), embedding_length=dim, use_jsonb=True)


def pg_langchain(place: Place, p: Problem):
    """A collection of LangChain's one shared table: ids must differ between collections."""
    from sqlalchemy import text

    store = open_pg_langchain(place, p.dim)
    store.add_embeddings([p.text(r) for r in range(len(p.ids))], [v.tolist() for v in p.docs],
                         metadatas=[{"parity": r % 2} for r in range(len(p.ids))], ids=p.ids)
    with store._engine.begin() as conn:
        conn.execute(text("CREATE INDEX IF NOT EXISTS lc_hnsw ON langchain_pg_embedding "
                          "USING hnsw (embedding vector_cosine_ops)"))
    return store


def close_pg(obj) -> None:
    from nudge_rag.stores import adapt

    adapt(obj).engine.dispose()


def faiss_index(kind: str, p: Problem):
    """An empty FAISS index: ``flat``, ``hnsw`` or a trained ``ivf``."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatL2(p.dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(p.dim, 16)
        index.hnsw.efSearch = 128
        return index
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(p.dim), p.dim, 4)
    index.train(p.docs)
    index.nprobe = 4  # every list: exact, so searches can be compared exactly
    return index


def faiss_langchain(kind: str, p: Problem):
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS

    store = FAISS(_embedding("langchain"), faiss_index(kind, p), InMemoryDocstore(), {})
    store.add_embeddings([(p.text(r), p.docs[r].tolist()) for r in range(len(p.ids))],
                         metadatas=[{"parity": r % 2} for r in range(len(p.ids))], ids=p.ids)
    return store


def faiss_llama(kind: str, p: Problem):
    from llama_index.vector_stores.faiss import FaissVectorStore

    return _llama_index(FaissVectorStore(faiss_index=faiss_index(kind, p)), p)


def open_faiss_llama(place: Place):
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.vector_stores.faiss import FaissVectorStore

    storage = StorageContext.from_defaults(
        vector_store=FaissVectorStore.from_persist_dir(place.dir), persist_dir=place.dir)
    return load_index_from_storage(storage, embed_model=_embedding("llama"))


def open_faiss_langchain(place: Place):
    from langchain_community.vectorstores import FAISS

    return FAISS.load_local(place.dir, _embedding("langchain"),
                            allow_dangerous_deserialization=True)


def persist_faiss(obj, place: Place) -> None:
    """FAISS lives in the process's memory; nudge-rag's own writer (what ``nudge-rag apply
    --inplace`` runs) puts it on disk: into a sibling folder, then swapped in for the old one."""
    from nudge_rag.cli.indexes import save_index

    kind = "llama-index" if type(obj).__module__.startswith("llama_index") else "faiss"
    save_index(obj, kind, Path(place.dir))


def _nothing(*args) -> None:
    """Databases keep every write where they live, and most clients need no closing."""


@dataclass(frozen=True)
class Pair:
    """One store reached through one framework: ``build(place, problem)`` makes it (kept
    where it lives), ``open(place)`` opens it as a fresh client or process sees it."""

    packages: tuple[str, ...]
    build: Callable
    open: Callable
    persist: Callable = _nothing  # (obj, place): write what lives in memory where it lives
    close: Callable = _nothing  # (obj): let another client or process open it


def _in_folder(builder, **options):
    """A ``BUILDERS`` builder as a ``Pair.build``."""

    def build(place: Place, p: Problem):
        return builder(Path(place.dir), p, **options)[0]

    return build


def _faiss(kind: str, builder):
    def build(place: Place, p: Problem):
        obj = builder(kind, p)
        persist_faiss(obj, place)
        return obj

    return build


_FAISS_LLAMA = ("faiss", "llama_index.vector_stores.faiss")
_FAISS_LANGCHAIN = ("faiss", "langchain_community")
PAIRS = {
    "chroma-llama": Pair(PACKAGES["chroma-llama"], _in_folder(chroma_llama),
                         open_chroma_llama),
    "chroma-langchain": Pair(PACKAGES["chroma-langchain"], _in_folder(chroma_langchain),
                             open_chroma_langchain),
    "qdrant-llama": Pair(PACKAGES["qdrant-llama"],
                         _in_folder(qdrant_llama, persistent=True), open_qdrant_llama,
                         close=close_qdrant),
    "qdrant-langchain": Pair(PACKAGES["qdrant-langchain"],
                             _in_folder(qdrant_langchain, persistent=True),
                             open_qdrant_langchain, close=close_qdrant),
    "milvus-llama": Pair(PACKAGES["milvus-llama"], _in_folder(milvus_llama), open_milvus_llama,
                         close=close_milvus),
    "milvus-langchain": Pair(PACKAGES["milvus-langchain"], _in_folder(milvus_langchain),
                             open_milvus_langchain, close=close_milvus),
    "pgvector-llama": Pair(("pgserver", "llama_index.vector_stores.postgres"), pg_llama,
                           open_pg_llama, close=close_pg),
    "pgvector-langchain": Pair(("pgserver", "langchain_postgres"), pg_langchain,
                               open_pg_langchain, close=close_pg),
    **{f"faiss-{kind}-llama": Pair(_FAISS_LLAMA, _faiss(kind, faiss_llama), open_faiss_llama,
                                   persist=persist_faiss) for kind in ("hnsw", "ivf")},
    **{f"faiss-{kind}-langchain": Pair(_FAISS_LANGCHAIN, _faiss(kind, faiss_langchain),
                                       open_faiss_langchain, persist=persist_faiss)
       for kind in ("hnsw", "ivf")},
}


def build_and_fit(pair: Pair, where: Place):
    """Build ``pair`` at ``where`` over a fresh problem (skipping when its packages are
    missing) and fit a delta on it: ``(obj, problem, delta)``. The delta keeps no query
    memory: the tests hold the overlay to the applied store, which cannot have one (the
    memory's own tests are in ``test_memory.py``)."""
    import pytest

    from nudge_rag import EmbeddingFinetuner

    for module in pair.packages:
        pytest.importorskip(module)
    prob = fresh_problem()
    with unsynced_qdrant():
        obj = pair.build(where, prob)
        delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train,
                                                                               prob.val)
    return obj, prob, delta


# -- what the crash and concurrency tests check ----------------------------------------------------

def old_or_new(now, old, new):
    """Which rows equal their old vector and which their new one, up to one float32 rounding
    (cosine collections renormalise what is written)."""
    is_old = np.abs(now - old).max(axis=1) <= 2e-7
    is_new = np.abs(now - new).max(axis=1) <= 1e-6
    return is_old, is_new


def check_whole(vectors, before, delta, ids) -> int:
    """Every record holds its original or its nudged vector; returns how many are nudged."""
    row = {i: r for r, i in enumerate(ids)}
    moved = np.array([row[i] for i in delta.ids])
    others = np.setdiff1d(np.arange(len(ids)), moved)
    np.testing.assert_allclose(vectors[others], before[others], rtol=0, atol=2e-7)
    is_old, is_new = old_or_new(vectors[moved], before[moved], delta.vectors)
    assert np.all(is_old | is_new), "a record was half-written"
    return int(is_new.sum())


def check_store(obj, before, delta, ids) -> int:
    """Compares EVERY vector: each record is there once and whole, and the store's own search
    (its index, not only its storage) finds each moved record by the vector it now holds.
    Returns how many moved records hold the nudged vector."""
    from nudge_rag.stores import adapt

    adapter = adapt(obj)
    found, vectors = adapter.fetch(ids)
    assert found == list(ids), "a record was lost"
    assert adapter.count() == len(ids), "a record was lost or duplicated"
    nudged = check_whole(vectors, before, delta, ids)
    row = {i: r for r, i in enumerate(ids)}
    hits, _ = adapter.search(vectors[[row[i] for i in delta.ids]], 1)
    assert [h[:1] for h in hits] == [[i] for i in delta.ids], "the index disagrees"
    return nudged


def native_search(obj, query, k: int) -> list:
    """The framework's own search, as an application reads the store."""
    vector = [float(x) for x in query]
    if type(obj).__module__.startswith("llama_index"):
        from llama_index.core import QueryBundle

        return obj.as_retriever(similarity_top_k=k).retrieve(
            QueryBundle(query_str="", embedding=vector))
    return obj.similarity_search_by_vector(vector, k=k)


def overlay_hits(obj, delta, query, k: int = 10, filters=None) -> tuple[list, list]:
    """The overlay's top-``k`` ids and scores for one query."""
    from nudge_rag.overlay import Overlay

    hits = Overlay(obj, delta).search(query, k, filters)
    return [h.id for h in hits], [h.score for h in hits]


def check_applied(obj, prob, delta, before, queries, overlaid) -> None:
    """After an in-place apply: unmoved records keep ``before``, moved ones hold the delta's
    vectors, and the store's own search equals what the overlay gave before the apply."""
    from nudge_rag.stores import adapt

    after = adapt(obj).fetch(prob.ids)[1]
    row = {i: r for r, i in enumerate(prob.ids)}
    moved = [row[i] for i in delta.ids]
    still = np.setdiff1d(np.arange(len(prob.ids)), moved)
    np.testing.assert_array_equal(after[still], before[still])
    np.testing.assert_allclose(after[moved], delta.vectors, atol=1e-6)
    for q, (ids, scores) in zip(queries, overlaid):
        want_ids, want_scores = adapt(obj).query(q, 10)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def check_apply_and_revert(obj, prob, delta) -> None:
    """An in-place apply: the store's own search then equals what the overlay gave before it
    (``check_applied``); a revert restores every vector exactly."""
    from nudge_rag.stores import adapt

    adapter = adapt(obj)
    before = adapter.fetch(prob.ids)[1]
    queries = np.array([q for q, _ in prob.val[:10]])
    overlaid = [overlay_hits(obj, delta, q, 10) for q in queries]
    delta.apply(obj, inplace=True)
    check_applied(obj, prob, delta, before, queries, overlaid)
    delta.revert(obj)
    np.testing.assert_array_equal(adapter.fetch(prob.ids)[1], before)
