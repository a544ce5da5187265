"""Errors raised by nudge-rag.

Every error names the argument at fault and how to fix it. They subclass the builtin that
plain Python code would expect (``ValueError``), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

import numbers


class NudgeError(Exception):
    """Base class of every error nudge-rag raises on purpose."""


class InputError(NudgeError, ValueError):
    """An argument has the wrong shape, type or content."""


class NotFittedError(NudgeError, AttributeError):
    """A method that needs a fitted estimator or delta was called before ``fit``."""


class StoreError(NudgeError, RuntimeError):
    """A vector store refused an operation, or holds something nudge-rag cannot use."""


class MismatchError(InputError):
    """A delta, store or question set belongs to another index, model or dimension."""


class WriteError(NudgeError, OSError):
    """Writing a file or folder failed (a full disk, a missing folder, no permission). The
    message names the path; whatever was there before is left as it was."""


class DownloadError(NudgeError, OSError):
    """A download failed, stopped early, or did not match its published checksum."""


def positive_whole(value, name: str) -> int:
    """``value`` as an ``int`` if it is a whole number of at least 1 (numpy's integers
    included, ``True`` not), else an :class:`InputError` naming ``name``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise InputError(f"{name}={value!r} must be a positive whole number")
