"""Readers querying while an in-place apply runs see each record's old or new vector, and
never an error."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.databases.builders import BUILDERS, PACKAGES, problem

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


@pytest.mark.parametrize("name", ["chroma-langchain", "qdrant-llama"])
def test_readers_during_apply(name, tmp_path, monkeypatch):
    for module in PACKAGES[name]:
        pytest.importorskip(module)
    import nudge_rag.stores.database as database
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    prob = problem()
    obj, _ = BUILDERS[name](tmp_path / "db", prob)
    delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
    reader = adapt(obj)
    _, old = reader.fetch(delta.ids)
    monkeypatch.setattr(database, "BATCH", 4)  # many small writes to read between
    errors: list[BaseException] = []
    seen_new = []
    stop = threading.Event()
    queries = np.array([q for q, _ in prob.val])

    def read():
        try:
            while not stop.is_set():
                found, now = reader.fetch(delta.ids)
                assert found == delta.ids
                is_old = np.abs(now - old).max(axis=1) <= 2e-7
                is_new = np.abs(now - delta.vectors).max(axis=1) <= 1e-6
                assert np.all(is_old | is_new), "a reader saw a half-written record"
                seen_new.append(int(is_new.sum()))
                ids, scores = reader.search(queries[:5], 10)
                assert all(len(i) == 10 for i in ids) and np.isfinite(scores).all()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        delta.apply(obj, inplace=True)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[0]
    assert seen_new  # the readers did read during the apply
    _, now = reader.fetch(delta.ids)
    np.testing.assert_allclose(now, delta.vectors, atol=1e-6)
