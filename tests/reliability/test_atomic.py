"""Issue 11, data loss 3: a writer killed at any instant leaves the old or the new copy, whole.

Each writer (``NudgeDelta.save`` and the command line's index writer for LlamaIndex persist
dirs, LangChain dumps and FAISS folders) is SIGKILLed at random moments 300 times while it
writes two versions in turn; after each kill the path must load and equal one of them (see
``killing.py``). The temporary copies a kill leaves beside the path are removed by the next
write."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from nudge_rag import NudgeDelta, _fs
from nudge_rag.cli.indexes import save_index
from nudge_rag.errors import InputError

from .helpers import make_delta, siblings, snapshot
from .killing import kill_at_every_step, run_small
from .writers import KINDS, delta_state, index_pair, index_path

KILLS = 300


def check_report(report):
    assert report.kills == KILLS
    assert report.seen["a"] and report.seen["b"], report  # kills landed before and after swaps
    assert report.finished_writes > 0, report
    assert report.leftovers_max <= 3, report  # every write removes what earlier kills left
    assert report.leftovers_after == 0, report


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["delta", *KINDS])
def test_killed_300_times(writer, tmp_path):
    """``NudgeDelta.save`` and the index writer of each layout, killed 300 times at random."""
    if writer != "delta":
        index_pair(writer)  # skips here when the framework is not installed
    check_report(run_small("loop", writer, tmp_path, KILLS))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_inplace_apply_with_backup_killed(kind, tmp_path):
    """Killed while ``apply --inplace`` writes, 100 times: the index is the old or the new
    one, and the backup is either not there yet or the old index, whole: never a half copy,
    and never missing once the index has changed."""
    index_pair(kind)
    report = run_small("backup", kind, tmp_path, 100, seed=1)
    assert report.kills == 100
    assert len(report.outcomes) >= 2, report  # kills before and after the swap


def test_delta_save_killed_after_every_step(tmp_path):
    """Deterministic companion of the random loop: a child dies right after its 1st, 2nd,
    ... filesystem call, until one finishes; after each death the path loads and equals the
    old or the new delta (the random loop can miss a window of a few microseconds)."""
    path = tmp_path / "delta"
    old, new = make_delta(0), make_delta(1)
    old.save(path)
    allowed = [delta_state_of(old, tmp_path / "a"), delta_state_of(new, tmp_path / "b")]
    steps = kill_at_every_step(path, lambda: new.save(path, overwrite=True), delta_state,
                               allowed)
    assert steps > 3
    assert delta_state(path) == allowed[1]


@pytest.mark.parametrize("kind", KINDS)
def test_index_save_killed_after_every_step(kind, tmp_path):
    old, new = index_pair(kind)
    path = index_path(tmp_path, kind)
    refs = []
    for obj, name in ((old, "a"), (new, "b")):
        (tmp_path / name).mkdir()
        save_index(obj, kind, tmp_path / name / path.name)
        refs.append(snapshot(tmp_path / name / path.name))
    save_index(old, kind, path)
    kill_at_every_step(path, lambda: save_index(new, kind, path), snapshot, refs)
    assert snapshot(path) == refs[1]


def test_a_kill_between_staging_and_cleanup_is_cleaned_by_the_next_save(tmp_path):
    """What a killed writer leaves (temporary copies named after a process that is gone)
    is removed by the next save; copies of a live writer are left alone."""
    path = tmp_path / "delta"
    make_delta(0).save(path)
    dead = _dead_pid()
    stale = [tmp_path / f".delta.tmp-{dead}-0123abcd", tmp_path / f".delta.old-{dead}-4567ef01",
             tmp_path / ".delta.tmp-89abcdef"]  # the name older versions used
    for p in stale:
        p.mkdir()
        (p / "arrays.npz").write_bytes(b"partial")
    alive = tmp_path / f".delta.tmp-{os.getpid()}-fedcba98"
    alive.mkdir()
    mine = tmp_path / ".delta-notes"
    mine.write_text("not a writer's copy")
    make_delta(1).save(path, overwrite=True)
    assert siblings(path) == [alive.name]
    assert mine.read_text() == "not a writer's copy"


def test_without_an_atomic_exchange_the_fallback_still_writes(tmp_path, monkeypatch):
    """On a filesystem without RENAME_EXCHANGE the writer moves the old copy aside first; a
    kill between its two renames leaves the path empty, and ``load`` then names the sibling
    that holds the previous delta, whole. The next save with overwrite=True removes it."""
    monkeypatch.setattr(_fs, "_exchange", lambda a, b: False)
    path = tmp_path / "delta"
    make_delta(0).save(path)
    make_delta(1).save(path, overwrite=True)
    assert delta_state(path) == delta_state_of(make_delta(1), tmp_path / "ref")
    assert siblings(path) == []

    def die_between(src, dst):  # the first rename happened, the second never will
        os.rename(src, dst)
        os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            _fs._rename_aside = die_between
            make_delta(2).save(path, overwrite=True)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    with pytest.raises(InputError, match=r"\.delta\.old-") as exc:
        NudgeDelta.load(path)
    assert "rename it back" in str(exc.value)
    # that sibling is the previous delta, whole (after an in-place apply without a backup,
    # the only copy of the original vectors): a save without overwrite=True must not remove
    # it, as it would not replace the delta at the path (review of issue 11: it did)
    with pytest.raises(InputError, match=r"\.delta\.old-.*overwrite=True"):
        make_delta(3).save(path)
    assert any(".old-" in name for name in siblings(path))
    make_delta(3).save(path, overwrite=True)
    assert siblings(path) == []


def delta_state_of(delta, path):
    delta.save(path)
    return delta_state(path)


def test_exchange_is_used_on_linux(tmp_path):
    if not _fs.exchange_supported(tmp_path):
        pytest.skip("this filesystem or kernel has no renameat2(RENAME_EXCHANGE)")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("b")
    assert _fs._exchange(a, b)
    assert a.read_text() == "b" and b.is_dir()


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_saved_arrays_reach_the_disk(tmp_path, monkeypatch):
    """Every file of a new copy and its folder are flushed (fsync) before it replaces the
    old one, so a power cut cannot leave a renamed but empty file."""
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    make_delta().save(tmp_path / "d")
    assert len(synced) >= 3  # two files and the folder
    assert np.isfinite(NudgeDelta.load(tmp_path / "d").vectors).all()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_path_another_writer_creates_meanwhile_is_not_replaced(tmp_path, kind):
    # two writers of one new path, neither asked to overwrite: the second replaced the first
    target = tmp_path / "out"
    with pytest.raises(InputError, match="appeared while this write ran"):
        with _fs.staged(target) as tmp:
            if kind == "file":
                tmp.write_text("mine")
                target.write_text("theirs")
            else:
                tmp.mkdir()
                (tmp / "a").write_text("mine")
                target.mkdir()
                (target / "a").write_text("theirs")
    held = target if kind == "file" else target / "a"
    assert held.read_text() == "theirs"
    assert siblings(target) == []  # our staged copy went away
