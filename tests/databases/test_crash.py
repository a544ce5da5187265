"""A process killed (SIGKILL) in the middle of an in-place apply leaves every record whole,
either original or nudged; a re-run of ``apply`` or ``revert`` finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.databases.builders import PACKAGES, chroma_langchain, problem, qdrant_langchain

pytest.importorskip("langchain_core")
ROOT = Path(__file__).resolve().parents[2]

# Applies the delta in batches of 8 records and kills itself after the second batch.
CHILD = textwrap.dedent("""
    import os, signal, sys
    import nudge_rag.stores.database as database
    from nudge_rag import NudgeDelta
    from tests.fakes import CountingLangChainEmbeddings

    path, delta_path, kind = sys.argv[1:4]
    database.BATCH = 8
    emb = CountingLangChainEmbeddings(dim=16)
    if kind == "chroma":
        import chromadb
        from langchain_chroma import Chroma
        store = Chroma(collection_name="docs", client=chromadb.PersistentClient(path=path),
                       embedding_function=emb)
        target, method = store._collection, "update"
    else:
        from langchain_qdrant import QdrantVectorStore
        from qdrant_client import QdrantClient
        store = QdrantVectorStore(client=QdrantClient(path=path), collection_name="docs",
                                  embedding=emb)
        target, method = store.client, "update_vectors"
    real = getattr(target, method)
    done = []

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        done.append(1)
        if len(done) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    object.__setattr__(target, method, write_then_die)
    NudgeDelta.load(delta_path).apply(store, inplace=True)
    print("apply finished without being killed")
""")


def _crash(path, delta, tmp_path, kind):
    delta_path = delta.save(tmp_path / "delta")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(delta_path), kind],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def _check_whole(vectors, before, delta, ids):
    """Every record holds its original or its nudged vector; returns how many are nudged."""
    row = {i: r for r, i in enumerate(ids)}
    moved = np.array([row[i] for i in delta.ids])
    others = np.setdiff1d(np.arange(len(ids)), moved)
    np.testing.assert_allclose(vectors[others], before[others], rtol=0, atol=2e-7)
    is_old = np.abs(vectors[moved] - before[moved]).max(axis=1) <= 2e-7
    is_new = np.abs(vectors[moved] - delta.vectors).max(axis=1) <= 1e-6
    assert np.all(is_old | is_new), "a record was half-written"
    return int(is_new.sum())


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_killed_mid_apply_then_rerun(kind, tmp_path):
    for module in PACKAGES[f"{kind}-langchain"]:
        pytest.importorskip(module)
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    prob = problem()
    path = tmp_path / "db"
    if kind == "chroma":
        store, _ = chroma_langchain(path, prob)
    else:
        store, _ = qdrant_langchain(path, prob, persistent=True)
    delta = EmbeddingFinetuner(store, show_progress=False).fit(prob.train, prob.val)
    assert len(delta) > 16  # more than the two batches written before the kill
    before = adapt(store).fetch(prob.ids)[1]
    if kind == "qdrant":
        store.client._inner.close()  # local mode: one process at a time

    _crash(path, delta, tmp_path, kind)

    store = _reopen(kind, path, store)
    count = len(adapt(store).fetch(prob.ids)[0])
    assert count == len(prob.ids)  # nothing lost or duplicated
    assert adapt(store).count() == len(prob.ids)
    nudged = _check_whole(adapt(store).fetch(prob.ids)[1], before, delta, prob.ids)
    assert nudged == 16  # exactly the two batches

    delta.apply(store, inplace=True)  # the re-run finishes the job
    assert _check_whole(adapt(store).fetch(prob.ids)[1], before, delta, prob.ids) == len(delta)
    delta.revert(store)
    assert _check_whole(adapt(store).fetch(prob.ids)[1], before, delta, prob.ids) == 0


def test_killed_mid_apply_then_revert(tmp_path):
    for module in PACKAGES["chroma-langchain"]:
        pytest.importorskip(module)
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    prob = problem()
    store, _ = chroma_langchain(tmp_path / "db", prob)
    delta = EmbeddingFinetuner(store, show_progress=False).fit(prob.train, prob.val)
    before = adapt(store).fetch(prob.ids)[1]
    _crash(tmp_path / "db", delta, tmp_path, "chroma")
    store = _reopen("chroma", tmp_path / "db", store)
    delta.revert(store)
    assert _check_whole(adapt(store).fetch(prob.ids)[1], before, delta, prob.ids) == 0


def _reopen(kind, path, old):
    """The store as a fresh client sees it (this process's client caches are dropped)."""
    if kind == "chroma":
        import chromadb
        from chromadb.api.client import SharedSystemClient
        from langchain_chroma import Chroma

        SharedSystemClient.clear_system_cache()
        return Chroma(collection_name="docs", client=chromadb.PersistentClient(path=str(path)),
                      embedding_function=old.embeddings)
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    return QdrantVectorStore(client=QdrantClient(path=str(path)), collection_name="docs",
                             embedding=old.embeddings)
