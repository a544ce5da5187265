"""A process killed (SIGKILL) in the middle of an in-place apply, on every store × framework
pair: afterwards every record is there once and whole, original or nudged, and a re-run of
``apply`` or ``revert`` finishes the job. Every vector is compared each time.

Where the kill lands, and what it leaves:

- Chroma, Qdrant (local mode, on disk), Milvus (milvus-lite, on disk): between two write
  batches. The batches already written
  hold the nudged vectors, the others the original ones.
- pgvector: after every UPDATE ran, before the one transaction commits. Nothing changed.
- FAISS lives in the process's memory, so a crash can only lose or tear what is on disk. The
  child loads the persisted index, applies, and persists it with nudge-rag's writer (a sibling
  folder renamed over the old one, as ``nudge-rag apply --inplace`` does). Killed after the
  in-memory apply, or while the new copy is being written, the folder on disk is the old
  index, whole. Killed right after the new copy was swapped in, it is the new one, whole:
  see ``test_killed_right_after_the_swap_of_a_faiss_persist``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.databases.builders import PAIRS, check_store, fresh_problem, unsynced_qdrant
from tests.databases.crash_child import kill_during_apply, start_server

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")

#: kill point -> how many moved records then hold the nudged vector
NUDGED_WHEN_KILLED = {"between-batches": 16, "before-commit": 0, "after-apply": 0,
                      "mid-persist": 0}
CASES = [(name, "between-batches") for name in PAIRS if name.split("-")[0] in
         ("chroma", "qdrant", "milvus")] + \
        [(name, "before-commit") for name in PAIRS if name.startswith("pgvector")] + \
        [(name, point) for name in PAIRS if name.startswith("faiss")
         for point in ("after-apply", "mid-persist")]


@pytest.fixture(scope="module", autouse=True)
def fork_server():
    start_server()  # usually started already, at collection (conftest.py)


@pytest.fixture(autouse=True)
def quick_qdrant():
    with unsynced_qdrant():  # this process only: the children write as users do
        yield


def _killed(name, kill_at, place, tmp_path):
    """Build the store, fit, and kill a child mid-apply: ``(pair, place, problem, delta,
    vectors before)``."""
    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.stores import adapt

    pair = PAIRS[name]
    for module in pair.packages:
        pytest.importorskip(module)
    prob = fresh_problem()
    where = place(name)
    obj = pair.build(where, prob)
    delta = EmbeddingFinetuner(obj, show_progress=False, memory=False).fit(prob.train, prob.val)
    assert len(delta) > 16  # more than the two batches written before a kill
    before = adapt(obj).fetch(prob.ids)[1]
    pair.close(obj)
    kill_during_apply(name, where, delta.save(tmp_path / "delta"), kill_at, tmp_path)
    return pair, where, prob, delta, before


@pytest.mark.parametrize(("name", "kill_at"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_killed_mid_apply_then_rerun(name, kill_at, place, tmp_path):
    pair, where, prob, delta, before = _killed(name, kill_at, place, tmp_path)
    runs = [(where, ("apply", "revert"))]
    if where.dir:  # revert from the killed state too, on a copy of it
        copy = replace(where, dir=str(tmp_path / "copy"))
        shutil.copytree(where.dir, copy.dir)
        runs.insert(0, (copy, ("revert",)))
    else:  # pgvector: the killed state is the original one; revert it, then apply
        runs = [(where, ("revert", "apply", "revert"))]
    for at, steps in runs:
        obj = pair.open(at)
        assert check_store(obj, before, delta, prob.ids) == NUDGED_WHEN_KILLED[kill_at]
        for step in steps:
            if step == "apply":
                delta.apply(obj, inplace=True)
            else:
                delta.revert(obj)
            pair.persist(obj, at)
            pair.close(obj)
            obj = pair.open(at)  # as the next process sees it
            want = len(delta) if step == "apply" else 0
            assert check_store(obj, before, delta, prob.ids) == want
        pair.close(obj)


@pytest.mark.parametrize("name", ["faiss-hnsw-llama", "faiss-ivf-langchain"])
def test_killed_right_after_the_swap_of_a_faiss_persist(name, place, tmp_path):
    """nudge-rag's writer (``nudge_rag.cli.indexes.save_index``) swaps the new folder in
    with one atomic exchange (renameat2), so no instant leaves the path without an index.
    Killed right after the swap, the path holds the new index, whole; the old one lies beside
    it as ``.NAME.tmp-PID-*`` until the next write to the path removes it."""
    from nudge_rag import _fs

    if not _fs.exchange_supported(tmp_path):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: the writer falls back to two renames")
    pair, where, prob, delta, before = _killed(name, "after-swap", place, tmp_path)
    folder = Path(where.dir)
    (old,) = folder.parent.glob(f".{folder.name}.tmp-*")
    for copy, want in ((folder, len(delta)), (old, 0)):
        obj = pair.open(replace(where, dir=str(copy)))
        assert check_store(obj, before, delta, prob.ids) == want
    obj = pair.open(where)  # the re-run finds the job done, and its write tidies up
    delta.apply(obj, inplace=True)
    assert check_store(obj, before, delta, prob.ids) == len(delta)
    pair.persist(obj, where)
    assert not list(folder.parent.glob(f".{folder.name}.*"))
