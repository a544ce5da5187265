"""Readers querying while an in-place apply runs, on every store × framework pair, see each
record's old or new vector, and never an error.

Each reader thread loops: it adapts the store afresh (as a retriever built now would), reads
the moved records' vectors by id, searches through nudge-rag, and searches through the
framework's own API. Chroma and Qdrant are written in batches of 4 records, so readers see
records change between batches; pgvector writes in one transaction, so readers see all old,
then all new. A FAISS write is over in milliseconds, so there the writer applies and reverts
many times while the readers run: each write builds a new index and swaps it in, and a reader
keeps the whole index it started with.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.databases.builders import (
    PAIRS,
    build_and_fit,
    check_store,
    native_search,
    old_or_new,
)

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


@pytest.mark.parametrize("name", list(PAIRS))
def test_readers_during_apply(name, place, monkeypatch):
    import nudge_rag.stores.database as database
    from nudge_rag.stores import adapt

    obj, prob, delta = build_and_fit(PAIRS[name], place(name))
    before = adapt(obj).fetch(prob.ids)[1]
    old = adapt(obj).fetch(delta.ids)[1]
    monkeypatch.setattr(database, "BATCH", 4)  # many small writes to read between
    rewrite_for = 1.5 if name.startswith("faiss") else 0  # seconds of apply + revert first
    queries = np.array([q for q, _ in prob.val[:5]])
    errors: list[BaseException] = []
    reads: list[tuple[float, float]] = []  # when each read started and ended
    first, stop = threading.Event(), threading.Event()

    def read():
        try:
            while not stop.is_set():
                started = time.perf_counter()
                reader = adapt(obj)
                found, now = reader.fetch(delta.ids)
                assert found == delta.ids
                assert np.all(np.logical_or(*old_or_new(now, old, delta.vectors))), \
                    "a reader saw a half-written record"
                ids, scores = reader.search(queries, 10)
                assert all(len(i) == 10 for i in ids) and np.isfinite(scores).all()
                assert len(native_search(obj, queries[0], 10)) == 10
                reads.append((started, time.perf_counter()))
                first.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            first.set()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert first.wait(60)
        began = time.perf_counter()
        while time.perf_counter() - began < rewrite_for:
            delta.apply(obj, inplace=True)
            delta.revert(obj)
        delta.apply(obj, inplace=True)
        ended = time.perf_counter()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    if errors:
        raise errors[0]
    assert any(s < ended and e > began for s, e in reads), "no read overlapped the apply"
    assert check_store(obj, before, delta, prob.ids) == len(delta)
