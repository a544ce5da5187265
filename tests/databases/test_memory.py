"""The query memory through every store × framework pair, on real SciFact vectors
(projected to 16 dimensions for LangChain's pgvector, whose table dimension is fixed once per
process).

A part of SciFact (the records some question names, plus others) is put in each store; the
delta is fitted through it with the defaults (cross-validated choice, refit, memory). The
overlay retriever must then rank exactly as ``top_k`` ranks the arrays (the same function
``NudgeN.top_k`` runs, given the delta's records and memory): ids and scores, in the store's
own units. A record that ranks by its memory and is then deleted through the framework never
comes back, and the ranking is the exact one without it.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from nudge_rag.core.topk import nudged_top_k
from nudge_rag.overlay import native_of_inner
from tests.databases.builders import DIM, Place, Problem, unsynced_qdrant
from tests.databases.test_deletions import (
    ALL_PAIRS,
    BROKEN_DELETE,
    CANNOT_DELETE,
    _retriever,
    delete,
    retrieve,
)

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

K = 10
N_TRAIN, N_VAL, N_TEST, N_OTHER = 300, 60, 40, 300
_OFFSET = iter(range(10**7, 10**9, 10**6))  # fresh ids per store (pgvector shares a table)


@pytest.fixture(scope="module")
def part(scifact_split):
    """Questions and the SciFact records they name, plus ``N_OTHER`` others, in doc order."""
    sp = scifact_split
    rng = np.random.default_rng(0)
    rels = {"train": sp.train_rel[:N_TRAIN], "val": sp.val_rel[:N_VAL],
            "test": sp.test_rel[:N_TEST]}
    named = sorted({r for rel in rels.values() for rr in rel for r in rr})
    others = rng.choice(np.setdiff1d(np.arange(len(sp.doc_ids)), named), N_OTHER,
                        replace=False)
    rows = np.sort(np.r_[named, others])
    vectors = {"train": sp.train_q[:N_TRAIN], "val": sp.val_q[:N_VAL],
               "test": sp.test_q[:N_TEST]}
    return np.asarray(sp.doc_emb, dtype=np.float32)[rows], rows, rels, vectors


def scifact_problem(part) -> Problem:
    docs, rows, rels, vectors = part
    offset = next(_OFFSET)
    ids = [str(uuid.UUID(int=offset + int(r))) for r in rows]
    at = {int(r): i for r, i in zip(rows, ids)}

    def named(name):
        return [(q, {at[r]: g for r, g in rr.items()})
                for q, rr in zip(vectors[name], rels[name])]

    return Problem(docs, ids, named("train"), named("val"))


def exact_top_k(prob: Problem, delta, queries, k: int = K, gone=()):
    """What ``top_k`` ranks on the arrays (records ``gone`` deleted): ids and the scores
    in the store's units."""
    keep = np.array([i not in set(gone) for i in prob.ids])
    ids = [i for i, kept in zip(prob.ids, keep) if kept]
    docs = np.asarray(prob.docs, dtype=np.float64)[keep]
    # the array in id order: records tie by row as the overlay ties them by id
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    ids, docs = [ids[o] for o in order], docs[order]
    at = {i: r for r, i in enumerate(ids)}
    held = [p for p, i in enumerate(delta.ids) if i in at]
    memory = delta.query_memory()
    if memory is not None:  # its links, moved to the array's rows; a deleted record's dropped
        col = np.full(len(delta.ids), -1)
        col[held] = np.arange(len(held))
        live = col[memory.col] >= 0
        memory = type(memory)(memory.keys, memory.key[live], col[memory.col][live], len(held))
    rows = np.array([at[delta.ids[p]] for p in held], dtype=np.int64)
    q = np.asarray(queries, dtype=np.float64)
    top, scores = nudged_top_k(docs, np.linalg.norm(docs, axis=1), q, k, rows,
                               delta.vectors[held], memory, delta.alpha)
    return [([ids[r] for r in rr], native_of_inner(delta.similarity, qq, ss))
            for rr, ss, qq in zip(top, scores, q)]


def pg_place(request, name: str) -> Place:
    """A database of its own on the session's server: LangChain keeps every collection in one
    table whose vectors have one dimension, the other tests' 16."""
    from sqlalchemy import create_engine, text

    server = request.getfixturevalue("server")
    db = f"memory_{name.replace('-', '_')}"
    server.psql(f"CREATE DATABASE {db};")
    uri = server.get_uri(db)
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    engine.dispose()
    return Place(uri=uri, name="docs")


def projected(part, dim: int = DIM):
    """``part`` with every vector projected onto ``dim`` fixed orthonormal directions and
    made unit again: langchain-postgres fixes its table's dimension once per process, at the
    other tests' 16."""
    docs, rows, rels, vectors = part
    basis = np.linalg.qr(np.random.default_rng(7).standard_normal((docs.shape[1], dim)))[0]

    def down(x):
        y = np.asarray(x, dtype=np.float64) @ basis
        return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)

    return down(docs), rows, rels, {k: down(v) for k, v in vectors.items()}


def build(name, place, part, request):
    """``(store, problem, delta, test question vectors)`` of ``name`` over ``part``."""
    from nudge_rag import EmbeddingFinetuner

    pair = ALL_PAIRS[name]
    for module in pair.packages:
        pytest.importorskip(module)
    if name == "pgvector-langchain":
        part = projected(part)
    prob = scifact_problem(part)
    where = pg_place(request, name) if name.startswith("pgvector") else place(name)
    with unsynced_qdrant():
        obj = pair.build(where, prob)
        delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
    assert delta.n_memory > 0 and delta.alpha > 0
    return obj, prob, delta, part[3]["test"]


def _same(got, want):
    for (ids, scores), (want_ids, want_scores) in zip(got, want):
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, rtol=0, atol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALL_PAIRS))
def test_overlay_with_memory_equals_top_k_and_forgets_deleted_records(name, place, part,
                                                                       request):
    obj, prob, delta, queries = build(name, place, part, request)
    with unsynced_qdrant():
        retriever = _retriever(obj, delta)
        got = [retrieve(retriever, q) for q in queries]
        _same([([i for i, _ in g], [s for _, s in g]) for g in got],
              exact_top_k(prob, delta, queries))
        # a record that ranks by its memory alone (its nudged score is lower)
        plain = exact_top_k(prob, _without_memory(delta), queries)
        lifted = [i for (ids, _), (p, _) in zip(exact_top_k(prob, delta, queries), plain)
                  for i in ids if i not in p]
        assert lifted, "the memory lifts no record into any top 10"
        if name in BROKEN_DELETE or name in CANNOT_DELETE:
            pytest.skip("the framework cannot delete a record of this store")
        gone = lifted[:3]
        delete(obj, gone)
        after = [retrieve(retriever, q) for q in queries]
        assert not {i for g in after for i, _ in g} & set(gone)
        _same([([i for i, _ in g], [s for _, s in g]) for g in after],
              exact_top_k(prob, delta, queries, gone=gone))


def _without_memory(delta):
    import copy

    out = copy.copy(delta)
    out.alpha = 0.0
    return out


def _odd_filter(name):
    if name == "simple-llama":
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        return MetadataFilters(filters=[MetadataFilter(key="parity", value=1)])
    return lambda doc: doc.metadata["parity"] == 1


@pytest.mark.parametrize("name", ["simple-llama", "inmemory-langchain"])
def test_filters_apply_to_remembered_records(name, place, part, request):
    """A filter admits remembered records as it admits moved ones: the filtered ranking is
    ``top_k`` over the records the filter admits."""
    from tests.databases.builders import overlay_hits

    obj, prob, delta, queries = build(name, place, part, request)
    queries = queries[:20]
    even = [i for r, i in enumerate(prob.ids) if r % 2 == 0]
    got = [overlay_hits(obj, delta, q, K, _odd_filter(name)) for q in queries]
    _same(got, exact_top_k(prob, delta, queries, gone=even))
