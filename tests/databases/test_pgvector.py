"""pgvector on a real PostgreSQL server (pgserver, Unix socket) with an HNSW index, through
LlamaIndex's PGVectorStore and langchain-postgres' PGVector."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import (
    PAIRS,
    Place,
    check_apply_and_revert,
    overlay_hits,
    pg_langchain,
    pg_llama,
    problem,
)
from tests.databases.copies import check_copy

pytest.importorskip("pgserver")
pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def prob():
    return problem()


class CountingEngine:
    """An SQLAlchemy engine whose results count the vectors they carry (rows whose last
    column is a vector's text)."""

    def __init__(self, engine):
        self._engine = engine
        self.vectors_read = 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def connect(self):
        outer = self
        conn = self._engine.connect()

        class Counted:
            def __enter__(self):
                conn.__enter__()
                return self

            def __exit__(self, *exc):
                return conn.__exit__(*exc)

            def execute(self, *args, **kwargs):
                result = conn.execute(*args, **kwargs)
                rows = result.fetchall()
                outer.vectors_read += sum(1 for r in rows if r and isinstance(r[-1], str)
                                          and r[-1].startswith("["))
                return _Rows(rows)

        return Counted()


class _Rows:
    def __init__(self, rows):
        self._rows = rows

    def fetchall(self):
        return self._rows


BUILD = {"llama": pg_llama, "langchain": pg_langchain}


@pytest.fixture(scope="module", params=sorted(BUILD))
def built(request, server, prob):
    """One store per framework for the module: every test leaves it as it found it."""
    for module in PAIRS[f"pgvector-{request.param}"].packages:
        pytest.importorskip(module)
    where = Place(uri=server.get_uri(), name=f"docs_{request.param}")
    return request.param, BUILD[request.param](where, prob)


def _adapter(obj):
    from nudge_rag.stores import adapt

    return adapt(obj)


def test_fit_apply_revert_overlay(built, prob, monkeypatch):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores.pgvector import PgVectorAdapter

    kind, obj = built
    counters = []
    real_init = PgVectorAdapter.__init__

    def counting_init(self, engine, *args, **kwargs):
        counters.append(CountingEngine(engine))
        real_init(self, counters[-1], *args, **kwargs)

    monkeypatch.setattr(PgVectorAdapter, "__init__", counting_init)
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    assert sum(c.vectors_read for c in counters) == len(delta.ids)
    monkeypatch.undo()
    check_apply_and_revert(obj, prob, delta)


def test_overlay_retriever(built, prob):
    from nudge_rag import EmbeddingFinetuner

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    if kind == "llama":
        texts = [h.node.get_content() for h in
                 delta.as_retriever(obj, similarity_top_k=4).retrieve("document parity")]
    else:
        texts = [d.page_content for d in delta.as_retriever(obj, k=4).invoke("document")]
    assert len(texts) == 4 and all(t.startswith("document ") for t in texts)


def _nan_reaches_the_database(monkeypatch):
    """The delta refuses NaN itself, before writing anything (issue 11); these tests switch
    that check off, so that NaN reaches pgvector and makes its last UPDATE fail."""
    monkeypatch.setattr("nudge_rag.delta.check_finite", lambda *args: None)


def test_failed_write_rolls_back_everything(built, prob, monkeypatch):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.errors import InputError, StoreError

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    adapter = _adapter(obj)
    before = adapter.fetch(prob.ids)[1]
    bad = delta.vectors.copy()
    bad[-1, 0] = np.nan  # pgvector refuses NaN: the last UPDATE fails
    delta.vectors = bad
    with pytest.raises(InputError, match="NaN"):  # nudge-rag refuses it first
        delta.apply(obj, inplace=True)
    _nan_reaches_the_database(monkeypatch)
    with pytest.raises(StoreError, match="writing nudged vectors"):
        delta.apply(obj, inplace=True)
    np.testing.assert_array_equal(adapter.fetch(prob.ids)[1], before)  # the first ones too


def _scalar(obj, sql, **params):
    from sqlalchemy import text

    with _adapter(obj).engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_copy(built, prob):
    """A copy through each framework: the shared checks, then the copy works as a store of
    its own (new records land in it alone) and owns what it needs."""
    from nudge_rag import EmbeddingFinetuner

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    copy = check_copy(obj, delta, prob)
    extra = "00000000-0000-0000-0000-00000000ffff"
    if kind == "llama":
        from llama_index.core.schema import TextNode

        # its own id sequence, numbering on after the copied rows, so the source stays
        # droppable on its own
        assert _scalar(copy, "SELECT pg_get_serial_sequence('data_docs_llama_nudged', 'id')"
                       ) == "public.data_docs_llama_nudged_id_seq"
        copy.insert_nodes([TextNode(id_=extra, text="added", embedding=prob.docs[0].tolist())])
        assert _scalar(copy, "SELECT id FROM data_docs_llama_nudged WHERE node_id = :i",
                       i=extra) == 1 + _scalar(obj, "SELECT max(id) FROM data_docs_llama")
    else:
        # a schema with both of LangChain's tables, tied by the foreign key that deletes a
        # collection's rows with it
        assert _scalar(copy, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
                       "conrelid = 'docs_langchain_nudged.langchain_pg_embedding'::regclass"
                       ) == 1
        copy.add_embeddings(["added"], [prob.docs[0].tolist()], ids=[extra])
    assert _adapter(copy).existing([extra]) == [extra]
    assert _adapter(obj).existing([extra]) == []
    assert _adapter(copy).count() == _adapter(obj).count() + 1


def test_failed_copy_leaves_no_table(built, prob, monkeypatch):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.errors import StoreError

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    before = _adapter(obj).fetch(prob.ids)[1]
    delta.vectors[-1, 0] = np.nan  # pgvector refuses NaN: the copy's last UPDATE fails
    _nan_reaches_the_database(monkeypatch)
    with pytest.raises(StoreError, match="copying into .*docs_fault"):
        delta.apply(obj, copy_name="docs_fault")
    # the table (LlamaIndex) or schema (LangChain) was created and filled in the same
    # transaction, and went with it
    assert _scalar(obj, "SELECT to_regclass('data_docs_fault') IS NULL AND NOT EXISTS "
                   "(SELECT 1 FROM pg_namespace WHERE nspname = 'docs_fault')")
    np.testing.assert_array_equal(_adapter(obj).fetch(prob.ids)[1], before)


def test_connection_refused(tmp_path):
    pytest.importorskip("psycopg2")
    from sqlalchemy import create_engine

    from nudge_rag.errors import StoreError
    from nudge_rag.stores.pgvector import PgVectorAdapter

    engine = create_engine(f"postgresql+psycopg2://postgres:@/postgres?host={tmp_path}")
    adapter = PgVectorAdapter(engine, "docs", "id", "embedding", "cosine")
    with pytest.raises(StoreError, match="running and reachable"):
        adapter.count()


def _odd_filter(kind):
    """Metadata filter ``parity == 1`` in the framework's own filter language."""
    if kind == "llama":
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        return MetadataFilters(filters=[MetadataFilter(key="parity", value=1)])
    return {"parity": {"$eq": 1}}


def test_filtered_overlay_equals_the_filtered_applied_store(built, prob):
    from nudge_rag import EmbeddingFinetuner

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    adapter = _adapter(obj)
    odd = {i for r, i in enumerate(prob.ids) if r % 2}
    filters = _odd_filter(kind)
    assert set(adapter.filter_ids(delta.ids, filters)) == set(delta.ids) & odd
    queries = np.array([q for q, _ in prob.val[:8]])
    overlaid = [overlay_hits(obj, delta, q, 10, filters) for q in queries]
    delta.apply(obj, inplace=True)
    try:
        for q, (ids, scores) in zip(queries, overlaid):
            assert len(ids) == 10 and set(ids) <= odd
            want_ids, want_scores = adapter.query(q, 10, filters)
            assert ids == want_ids
            np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    finally:
        delta.revert(obj)


def test_filtered_retrievers_return_only_admitted_records(built, prob):
    from nudge_rag import EmbeddingFinetuner

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    if kind == "llama":
        hits = delta.as_retriever(obj, similarity_top_k=6,
                                  filters=_odd_filter(kind)).retrieve("document parity")
        metas = [h.node.metadata for h in hits]
    else:
        metas = [d.metadata for d in delta.as_retriever(
            obj, k=6, filter=_odd_filter(kind)).invoke("document parity")]
    assert len(metas) == 6 and all(m["parity"] == 1 for m in metas)


def test_async_search_awaits_the_async_engine(built, prob, monkeypatch):
    """LlamaIndex's PGVectorStore holds an asyncpg engine: an async search awaits it and never
    touches the blocking engine; a second event loop falls back to a worker thread."""
    import asyncio

    kind, obj = built
    adapter = _adapter(obj)
    if kind != "llama":
        assert adapter.async_engine is None  # built without async_mode: the thread path
        return
    queries = [q for q, _ in prob.val[:3]]
    want = [adapter.query(q, 10) for q in queries]

    def no_blocking_engine(*args, **kwargs):
        raise AssertionError("the async path used the blocking engine")

    async def both():
        with monkeypatch.context() as m:
            m.setattr(adapter.engine, "connect", no_blocking_engine)
            return await asyncio.gather(*(adapter.aquery(q, 10) for q in queries))

    for (ids, scores), (want_ids, want_scores) in zip(asyncio.run(both()), want):
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-6)
    ids, _ = asyncio.run(adapter.aquery(queries[0], 10))  # another loop: a thread, no error
    assert ids == want[0][0]
