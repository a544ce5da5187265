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
  index, whole. Killed between the writer's two renames it is missing: see
  ``test_killed_between_the_renames_of_a_faiss_persist``.
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
    delta = EmbeddingFinetuner(obj, show_progress=False).fit(prob.train, prob.val)
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
def test_killed_between_the_renames_of_a_faiss_persist(name, place, tmp_path):
    """Documents a gap in nudge-rag's writer (``nudge_rag.cli.indexes.save_index``): it moves
    the old folder aside, then renames the new one into place. A kill between the two leaves
    no index at the path, though both copies lie whole beside it: the new one as
    ``.NAME.tmp-*``, the old one as ``.NAME.old-*`` (or the ``--backup`` path). A re-run
    cannot open the index until someone renames one of them back."""
    from nudge_rag.cli.indexes import load_index
    from nudge_rag.errors import InputError

    pair, where, prob, delta, before = _killed(name, "between-renames", place, tmp_path)
    folder = Path(where.dir)
    assert not folder.exists()
    with pytest.raises(InputError, match="does not exist"):  # what `nudge-rag apply` says
        load_index(folder)
    (new,) = folder.parent.glob(f".{folder.name}.tmp-*")
    (old,) = folder.parent.glob(f".{folder.name}.old-*")
    for copy, want in ((old, 0), (new, len(delta))):
        obj = pair.open(replace(where, dir=str(copy)))
        assert check_store(obj, before, delta, prob.ids) == want
    new.rename(folder)  # the recovery by hand: the re-run then finds the job done
    obj = pair.open(where)
    delta.apply(obj, inplace=True)
    assert check_store(obj, before, delta, prob.ids) == len(delta)
