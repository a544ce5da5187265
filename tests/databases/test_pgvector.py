"""pgvector on a real PostgreSQL server (pgserver, Unix socket) with an HNSW index, through
LlamaIndex's PGVectorStore and langchain-postgres' PGVector."""

from __future__ import annotations

import numpy as np
import pytest

from tests.databases.builders import PAIRS, Place, pg_langchain, pg_llama, problem

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
    from nudge_rag.overlay import Overlay
    from nudge_rag.stores.pgvector import PgVectorAdapter

    kind, obj = built
    counters = []
    real_init = PgVectorAdapter.__init__

    def counting_init(self, engine, *args, **kwargs):
        counters.append(CountingEngine(engine))
        real_init(self, counters[-1], *args, **kwargs)

    monkeypatch.setattr(PgVectorAdapter, "__init__", counting_init)
    delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
    assert sum(c.vectors_read for c in counters) == len(delta.ids)
    monkeypatch.undo()

    adapter = _adapter(obj)
    before = adapter.fetch(prob.ids)[1]
    queries = np.array([q for q, _ in prob.val[:10]])
    overlaid = [Overlay(obj, delta).search(q, 10) for q in queries]
    delta.apply(obj, inplace=True)
    after = adapter.fetch(prob.ids)[1]
    row = {i: r for r, i in enumerate(prob.ids)}
    moved = [row[i] for i in delta.ids]
    still = np.setdiff1d(np.arange(len(prob.ids)), moved)
    np.testing.assert_array_equal(after[still], before[still])
    np.testing.assert_allclose(after[moved], delta.vectors, atol=1e-6)
    for q, (ids, scores) in zip(queries, overlaid):
        want_ids, want_scores = adapter.query(q, 10)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    delta.revert(obj)
    np.testing.assert_array_equal(adapter.fetch(prob.ids)[1], before)


def test_overlay_retriever(built, prob):
    from nudge_rag import EmbeddingFinetuner

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
    if kind == "llama":
        texts = [h.node.get_content() for h in
                 delta.as_retriever(obj, similarity_top_k=4).retrieve("document parity")]
    else:
        texts = [d.page_content for d in delta.as_retriever(obj, k=4).invoke("document")]
    assert len(texts) == 4 and all(t.startswith("document ") for t in texts)


def test_failed_write_rolls_back_everything(built, prob):
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.errors import StoreError

    kind, obj = built
    delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
    adapter = _adapter(obj)
    before = adapter.fetch(prob.ids)[1]
    bad = delta.vectors.copy()
    bad[-1, 0] = np.nan  # pgvector refuses NaN: the last UPDATE fails
    delta.vectors = bad
    with pytest.raises(StoreError, match="writing nudged vectors"):
        delta.apply(obj, inplace=True)
    np.testing.assert_array_equal(adapter.fetch(prob.ids)[1], before)  # the first ones too


def test_connection_refused(tmp_path):
    pytest.importorskip("psycopg2")
    from sqlalchemy import create_engine

    from nudge_rag.errors import StoreError
    from nudge_rag.stores.pgvector import PgVectorAdapter

    engine = create_engine(f"postgresql+psycopg2://postgres:@/postgres?host={tmp_path}")
    adapter = PgVectorAdapter(engine, "docs", "id", "embedding", "cosine")
    with pytest.raises(StoreError, match="running and reachable"):
        adapter.count()
