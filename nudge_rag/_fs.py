"""Writing files and folders so that nothing is ever lost.

- :func:`check_output`: the one rule for output paths. A path that does not exist, or an empty
  folder, is written; one that holds what the writer writes is replaced only when asked; any
  other is refused, naming it.
- :func:`staged`: a new copy is written beside the target (``.NAME.tmp-PID-HEX``), flushed to
  disk, and swapped in with one atomic step, so that at every instant the target holds the old
  copy or the new one, whole. Folders are swapped with ``renameat2(RENAME_EXCHANGE)`` (Linux);
  where that is missing, the old folder is moved aside (``.NAME.old-PID-HEX``) and the new one
  renamed in, which leaves a moment with nothing at the path (:func:`interrupted_copies` finds
  what such a moment left). Files are replaced with ``os.replace``, atomic everywhere.
- Copies that a killed writer left beside a target are removed by the next write to it (only
  those of processes that are gone).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import platform
import re
import shutil
import sys
import uuid
from functools import cache
from pathlib import Path

from ._readers import check_path
from .errors import InputError, NudgeError, WriteError

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
#: renameat2's system call number where glibc is too old to export it
_SYSCALL = {"x86_64": 316, "aarch64": 276}
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}
#: a temporary copy's name adds about 25 bytes to its target's; longer target names are
#: shortened in it, so that any name the filesystem takes (most end at 255 bytes) works
_LONGEST = 200


# -- the output rule --------------------------------------------------------------------------
def check_output(path, what: str, problem_with, overwrite: bool,
                 flag: str = "overwrite=True") -> None:
    """Refuse to write ``what`` at ``path`` when something else is there.

    ``problem_with(path)`` says why an existing (non-empty) path is not ``what`` (``None``
    when it is); such a path is replaced only with ``overwrite``."""
    check_path(path)
    path = Path(path)
    if not os.path.lexists(path):
        _check_interrupted(path, flag, overwrite)
        return
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; write {what} to the path it points to "
                         f"({os.path.realpath(path)}) or to a new path")
    if path.is_dir() and not any(os.scandir(path)):
        return
    problem = problem_with(path)
    if problem is not None:
        raise InputError(f"{path} {problem}; nothing was written there. Choose another path, "
                         "or move it away first")
    if not overwrite:
        raise InputError(f"{path} already holds {what}; pass {flag} to replace it")


def _check_interrupted(path: Path, flag: str, overwrite: bool) -> None:
    """A path that an interrupted fallback swap left missing: its previous copy waits beside
    it (``.NAME.old-``), and is replaced only as the path itself would be."""
    pattern = _pattern(path.name)
    old = [p for p in interrupted_copies(path) if pattern.fullmatch(p.name).group(1) == "old"]
    if old and not overwrite:
        raise InputError(f"{path} does not exist, but {old[0]} beside it holds its previous "
                         f"copy (a write was interrupted); rename it back to {path.name}, or "
                         f"pass {flag} to replace it")


def listing(path: Path, limit: int = 4) -> str:
    """A few names from a folder, for error messages."""
    names = sorted(os.listdir(path))
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- staging and swapping ----------------------------------------------------------------------
def _stem(name: str) -> str:
    """``name`` as the temporary copies beside it carry it: a long one is cut, with a hash
    of the whole to keep apart names that start alike."""
    raw = os.fsencode(name)
    if len(raw) <= _LONGEST:
        return name
    return f"{name[:40]}~{hashlib.sha256(raw).hexdigest()[:12]}"


def sibling(target: Path, kind: str) -> Path:
    """A fresh temporary name beside ``target`` that says which process made it."""
    return (target.parent
            / f".{_stem(target.name)}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pattern(name: str) -> re.Pattern:
    # pid-less names are what nudge-rag 0.1 left behind
    return re.compile(rf"\.{re.escape(_stem(name))}\.(tmp|old)-(?:(\d+)-)?[0-9a-f]{{8}}")


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_copies(target: Path) -> list[Path]:
    """Copies beside ``target`` left by writers that are gone: ``.old-`` ones (the previous
    copy, moved aside) first."""
    target = Path(target)
    pattern = _pattern(target.name)
    try:
        entries = sorted(os.scandir(target.parent), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and (match.group(2) is None or not _alive(int(match.group(2)))):
            found.append((match.group(1) != "old", Path(entry.path)))
    return [p for _, p in sorted(found, key=lambda f: f[0])]


def remove_path(path) -> None:
    """Remove a file, link or folder; nothing if it is absent. Best effort, like the
    clean-ups it serves: a failure here must not hide the error being handled."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # absent, or its folder is a file
            path.unlink()


@cache
def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                       ctypes.c_uint]
        return fn
    number = _SYSCALL.get(platform.machine())
    if number is None:
        return None
    return lambda *args: libc.syscall(number, *args)


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step; ``False`` where the kernel or the filesystem
    cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _place_new(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, which was not there when the write began: refuse, never
    replace, what another process put there meanwhile (atomically where renameat2 can)."""
    fn = _renameat2()
    if fn is not None:
        if fn(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(target),
              _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise _appeared(target)
        if err not in _UNSUPPORTED:
            raise OSError(err, os.strerror(err), str(target))
    if os.path.lexists(target):
        raise _appeared(target)
    os.rename(new, target)


def _appeared(target: Path) -> InputError:
    return InputError(f"{target} appeared while this write ran (another process wrote it); "
                      "it was left as it is: check it, then write again (with overwrite to "
                      "replace it)")


def exchange_supported(folder) -> bool:
    """Whether folders in ``folder`` can be swapped atomically."""
    a, b = sibling(Path(folder) / "probe", "tmp"), sibling(Path(folder) / "probe", "tmp")
    try:
        a.mkdir()
        b.mkdir()
        return _exchange(a, b)
    finally:
        remove_path(a)
        remove_path(b)


def _rename_aside(target: Path, old: Path) -> None:
    os.rename(target, old)


def _publish(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``: atomically, except for the folder-over-folder fallback."""
    if not target.is_dir() or target.is_symlink():
        os.replace(new, target)
        return
    if not new.is_dir():  # never swap a folder out for a file
        raise InputError(f"{target} is a folder; write the file to a path inside it or "
                         "beside it")
    if _exchange(new, target):
        remove_path(new)  # now the old copy
        return
    old = sibling(target, "old")
    _rename_aside(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    remove_path(old)


def _fsync(path: Path, directory: bool = False) -> None:
    # Windows flushes only what is open for writing
    mode = os.O_RDONLY if os.name == "posix" else os.O_RDWR
    fd = os.open(path, mode | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(path: Path) -> None:
    """Flush every file and folder under ``path`` to disk."""
    if not path.is_dir():
        _fsync(path)
        return
    for root, _, files in os.walk(path):
        for name in files:
            _fsync(Path(root) / name)
        if os.name == "posix":
            with contextlib.suppress(OSError):  # some filesystems cannot flush a folder
                _fsync(Path(root), directory=True)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(src, dst)


def make_backup(target: Path, backup: Path) -> None:
    """A whole copy of ``target`` at ``backup`` (hard links where possible: the writers never
    change a file in place), which appears there in one step."""
    if os.path.lexists(backup):
        raise InputError(f"backup {backup} already exists; move it away or choose another path")
    tmp = sibling(backup, "tmp")
    try:
        if target.is_dir():
            shutil.copytree(target, tmp, copy_function=_link_or_copy)
        else:
            _link_or_copy(target, tmp)
        sync_tree(tmp)
        os.rename(tmp, backup)
    except OSError as exc:
        remove_path(tmp)
        raise WriteError(f"cannot write the backup {backup}: {_reason(exc)}; {target} was "
                         "left as it was") from exc
    except BaseException:
        remove_path(tmp)
        raise


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


@contextlib.contextmanager
def staged(target, backup=None):
    """Yield a temporary path beside ``target`` to write the new copy into; when the block
    ends, flush it and swap it in (keeping the old copy at ``backup`` first, if given). If the
    block fails, the temporary copy is removed and ``target`` is as it was; an ``OSError`` (a
    full disk, say) becomes a :class:`WriteError` naming ``target``."""
    target = Path(target)
    tmp = sibling(target, "tmp")
    made_backup = published = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in interrupted_copies(target):
            remove_path(stale)
        existed = os.path.lexists(target)
        yield tmp
        if not os.path.lexists(tmp):
            raise WriteError(f"nothing was written for {target}")
        sync_tree(tmp)
        if backup is not None and os.path.lexists(target):
            make_backup(target, Path(backup))
            made_backup = True
        if existed:
            _publish(tmp, target)
        else:
            _place_new(tmp, target)
        published = True
        if os.name == "posix":
            with contextlib.suppress(OSError):  # some filesystems cannot flush a folder
                _fsync(target.parent, directory=True)
    except BaseException as exc:
        remove_path(tmp)
        if made_backup and not published:
            remove_path(backup)
        if isinstance(exc, OSError) and not isinstance(exc, NudgeError):
            raise WriteError(f"cannot write {target}: {_reason(exc)}; what was at {target} was "
                             "left as it was") from exc
        raise
