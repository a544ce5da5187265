"""Kill a writer at random moments, many times, and look at what it leaves.

A child forked from the test process (everything already imported, so it starts in a few
milliseconds) writes ``b``, ``a``, ``b``, ... over ``a`` until it is SIGKILLed after a random
delay, counted from its first write and spread over one and a half writes. After every
kill the path must hold ``a`` or ``b`` whole, as ``snapshot`` sees it. A pipe counts the
writes the children finished, so a test can tell that the kills landed inside writes and not
only between them.

The loops run in a small process of their own (``python -m tests.reliability.killing``) that
imports only what the writer needs: forking it is cheap, where forking a test process that
holds models and datasets costs tens of milliseconds and slows the children's first writes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class KillReport:
    kills: int = 0
    finished_writes: int = 0
    seen: dict = field(default_factory=lambda: {"a": 0, "b": 0})
    leftovers_max: int = 0
    leftovers_after: int = -1  # beside the path once a write finished after the last kill
    outcomes: list = field(default_factory=list)  # (index changed, backup there) seen


def _child(writes, done_fd: int, ready_fd: int, error_file: Path) -> None:
    try:
        os.write(ready_fd, b".")
        while True:
            for write in writes:  # the first one changes what the path holds
                write()
                os.write(done_fd, b".")
    except BaseException:  # noqa: BLE001 - handed to the parent through the file
        error_file.write_text(traceback.format_exc())
        os._exit(3)


def child_write_time(write) -> float:
    """Seconds a freshly forked child takes for ``write``: more than the parent takes, since
    the child's first touches of a large test process copy its memory pages."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        started = time.perf_counter()
        try:
            write()
        finally:
            os.write(write_fd, repr(time.perf_counter() - started).encode())
            os._exit(0)
    os.close(write_fd)
    said = os.read(read_fd, 64)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return float(said)


def kill_loop(path: Path, write_a, write_b, snapshot, kills: int = 300,
              seed: int = 0) -> KillReport:
    """Write ``a`` once, then kill ``kills`` children mid-loop; assert after each kill that
    ``snapshot(path)`` equals ``a``'s or ``b``'s."""
    rng = random.Random(seed)
    write_a()
    want_a = snapshot(path)
    write_b()
    want_b = snapshot(path)
    span = 1.5 * child_write_time(write_a)  # kills before, during and after the first swap
    assert want_a != want_b, "the two writes must differ to tell them apart"
    write_a()
    error_file = path.parent / f"kill-loop-error-{os.getpid()}.txt"
    report = KillReport()
    holds_b = False
    read_fd, write_fd = os.pipe()
    ready_r, ready_w = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        for n in range(kills):
            if n and n % 50 == 0:
                span = _recentred(span, report.seen)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                os.close(read_fd)
                # first the write the path does not hold yet: a kill after its swap must
                # show the other copy, or nothing would tell a swap from no swap
                _child((write_a, write_b) if holds_b else (write_b, write_a), write_fd,
                       ready_w, error_file)
            # the delay counts from the first write: a fork of a large test process can take
            # longer than a write, and kills before the child starts would test nothing
            os.read(ready_r, 1)
            time.sleep(rng.uniform(0.0, span))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            if error_file.exists():
                raise AssertionError(f"the writing child failed:\n{error_file.read_text()}")
            assert os.WIFSIGNALED(status), f"the child exited by itself ({status})"
            report.kills += 1
            got = snapshot(path)
            holds_b = got == want_b
            if got == want_a:
                report.seen["a"] += 1
            elif holds_b:
                report.seen["b"] += 1
            else:
                raise AssertionError(f"after kill {report.kills} {path} holds neither the old "
                                     f"nor the new copy: {_describe(got)}")
            leftovers = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]
            report.leftovers_max = max(report.leftovers_max, len(leftovers))
            try:
                report.finished_writes += len(os.read(read_fd, 1 << 16))
            except BlockingIOError:
                pass
    finally:
        for fd in (read_fd, write_fd, ready_r, ready_w):
            os.close(fd)
    return report


def _recentred(span: float, seen: dict) -> float:
    """The kill window, moved where one side has not been seen yet: on a loaded machine a
    child's writes can run far faster or slower than the calibrating one, and kills that all
    land on one side of the swap would test only half of it."""
    if not seen["a"]:  # every kill came after the first swap: kill sooner
        return span / 2
    if not seen["b"]:  # every kill came before it: wait longer
        return span * 2
    return span


def _describe(got) -> str:
    if got is None:
        return "nothing"
    if isinstance(got, dict):
        return f"files {sorted(got)}"
    return f"{len(got)} bytes"


#: the calls that change a filesystem, in the ``os`` module as writers reach them
STEPS = ("mkdir", "rename", "replace", "unlink", "rmdir", "fsync", "link", "symlink")


def _die_at_step(n: int) -> None:
    """Patch the ``os`` module of this (child) process so that it dies by SIGKILL right after
    its ``n``-th filesystem-changing call."""
    count = [0]

    def wrap(real):
        def step(*args, **kwargs):
            out = real(*args, **kwargs)
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return step

    for name in STEPS:
        setattr(os, name, wrap(getattr(os, name)))


def kill_at_every_step(path: Path, write, snapshot, allowed, limit: int = 400) -> int:
    """Run ``write`` in a child killed after its 1st, 2nd, ... filesystem call, until one
    finishes; after each kill ``snapshot(path)`` must be in ``allowed`` (a list).
    ``prepare()`` is not needed: each child starts from what the previous one left, as the
    next process would. Returns the number of steps."""
    for n in range(1, limit):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                _die_at_step(n)
                write()
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        got = snapshot(path)
        assert got in allowed, f"killed after step {n}, {path} holds {_describe(got)}"
        if os.WIFEXITED(status):
            assert os.WEXITSTATUS(status) == 0, f"the writer failed at step {n}"
            return n
    raise AssertionError(f"the writer did not finish within {limit} steps")


def kill_backup_loop(kind: str, folder: Path, kills: int = 100, seed: int = 1) -> KillReport:
    """Kill ``save_index(new, kind, path, backup=...)`` (what ``apply --inplace`` runs) at
    random moments, each time from the old index: the index must be old or new, the backup
    absent or the whole old index, and present once the index has changed."""
    from nudge_rag import _fs
    from nudge_rag.cli.indexes import save_index

    from .helpers import snapshot
    from .writers import index_pair, index_path

    old, new = index_pair(kind)
    path, pristine = index_path(folder, kind), folder / "pristine"
    pristine.mkdir()
    save_index(old, kind, pristine / path.name)
    want_old = snapshot(pristine / path.name)
    backup = folder / f"{path.name}.bak"
    save_index(new, kind, path)
    want_new = snapshot(path)
    copy = shutil.copytree if (pristine / path.name).is_dir() else shutil.copy2
    copy(pristine / path.name, folder / "probe")
    span = 2.0 * child_write_time(lambda: save_index(new, kind, folder / "probe",
                                                     backup=folder / "probe.bak"))
    rng = random.Random(seed)
    report = KillReport()
    for _ in range(kills):
        for p in (path, backup):
            _fs.remove_path(p)
        copy(pristine / path.name, path)
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.write(ready_w, b".")
                save_index(new, kind, path, backup=backup)
                time.sleep(60)
            finally:
                os._exit(1)
        os.read(ready_r, 1)  # the random delay counts from the start of the write
        os.close(ready_r)
        os.close(ready_w)
        time.sleep(rng.uniform(0, span))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        report.kills += 1
        now, kept = snapshot(path), snapshot(backup)
        assert now in (want_old, want_new), f"the index is neither old nor new: {_describe(now)}"
        assert kept in (None, want_old), f"the backup is not the old index: {_describe(kept)}"
        assert kept is not None or now == want_old, "the index changed before its backup existed"
        outcome = [now == want_new, kept is not None]
        if outcome not in report.outcomes:
            report.outcomes.append(outcome)
    return report


def run_small(mode: str, name: str, folder: Path, kills: int, seed: int = 0) -> KillReport:
    """Run a kill loop (``mode`` ``"loop"`` or ``"backup"``) in a small process of its own."""
    done = subprocess.run([sys.executable, "-m", "tests.reliability.killing", mode, name,
                           str(folder), str(kills), str(seed)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise AssertionError(f"the kill loop failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return KillReport(**json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str]) -> None:
    mode, name, folder, kills, seed = argv
    folder, kills, seed = Path(folder), int(kills), int(seed)
    if mode == "backup":
        report = kill_backup_loop(name, folder, kills, seed)
    else:
        from .writers import two_versions

        path, write_a, write_b, snapshot = two_versions(name, folder)
        report = kill_loop(path, write_a, write_b, snapshot, kills, seed)
        write_b()  # a finished write: it removes what the kills left beside the path
        report.leftovers_after = len([p for p in folder.iterdir()
                                      if p.name.startswith(f".{path.name}.")])
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main(sys.argv[1:])
