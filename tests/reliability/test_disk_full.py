"""A full disk in the middle of a write: the error names the path being written, the old
copy stays whole, and no temporary copy is left behind.

Two ways to fill a disk, so that one always runs:

- a real one: a 1 MiB tmpfs mounted for the test (``mount -t tmpfs``; needs root, or the
  test is skipped saying why), where the write fails with ENOSPC as on a full disk;
- a file-size limit (``RLIMIT_FSIZE``) in a forked child, which any user can set: writes past
  it fail with EFBIG, through the same code paths.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from nudge_rag import NudgeDelta
from nudge_rag.errors import NudgeError, WriteError

from .helpers import make_delta, same_delta, siblings, snapshot


@pytest.fixture
def small_tmpfs():
    """A freshly mounted 1 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE test covers this case")
    where = Path(tempfile.mkdtemp(prefix="nudge-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "the RLIMIT_FSIZE test covers this case")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def test_a_delta_on_a_full_tmpfs(small_tmpfs):
    path = small_tmpfs / "delta"
    old = make_delta(0)
    old.save(path)
    big = make_delta(1, n=3000, dim=64)  # about 4.6 MB: more than the disk holds
    with pytest.raises(WriteError) as exc:
        big.save(path, overwrite=True)
    assert str(path) in str(exc.value) and "space" in str(exc.value).lower()
    assert same_delta(NudgeDelta.load(path), old)
    assert siblings(path) == []


def test_an_index_on_a_full_tmpfs(small_tmpfs):
    from nudge_rag.cli.indexes import save_index

    from .writers import index_pair

    old, new = index_pair("llama-index")
    path = small_tmpfs / "index"
    save_index(old, "llama-index", path)
    before = snapshot(path)
    filler = small_tmpfs / "filler"
    with open(filler, "wb", buffering=0) as fh:  # leave less room than a second copy needs
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(WriteError, match=str(path)):
        save_index(new, "llama-index", path)
    assert snapshot(path) == before and siblings(path) == []


def _in_child_with_file_size_limit(limit: int, work) -> tuple[int, str]:
    """Run ``work()`` in a forked child whose files may not grow past ``limit`` bytes:
    ``(exit status, what it reported)``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        code = 0
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            work()
            message = "finished"
        except NudgeError as exc:
            message = f"{type(exc).__name__}: {exc}"
            code = 1
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"RAW {type(exc).__name__}: {exc}"
            code = 2
        os.write(write_fd, message.encode())
        os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


def test_a_delta_past_the_file_size_limit(tmp_path):
    path = tmp_path / "delta"
    old = make_delta(0)
    old.save(path)
    big = make_delta(1, n=3000, dim=64)
    code, said = _in_child_with_file_size_limit(
        256 * 1024, lambda: big.save(path, overwrite=True))
    assert code == 1, said
    assert said.startswith("WriteError") and str(path) in said
    assert same_delta(NudgeDelta.load(path), old)
    assert siblings(path) == []


@pytest.mark.parametrize("kind", ["llama-index", "langchain", "faiss"])
def test_an_index_past_the_file_size_limit(tmp_path, kind):
    from nudge_rag.cli.indexes import save_index

    from .writers import index_pair, index_path

    old, new = index_pair(kind)
    path = index_path(tmp_path, kind)
    save_index(old, kind, path)
    before = snapshot(path)
    code, said = _in_child_with_file_size_limit(2048, lambda: save_index(new, kind, path))
    assert code == 1, said
    assert said.startswith("WriteError") and str(path) in said
    assert snapshot(path) == before and siblings(path) == []
