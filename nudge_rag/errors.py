"""Errors raised by nudge-rag.

Every error names the argument at fault and how to fix it. They subclass the builtin that
plain Python code would expect (``ValueError``), so existing ``except`` clauses keep working.
"""

from __future__ import annotations


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


class DownloadError(NudgeError, OSError):
    """A download failed, stopped early, or did not match its published checksum."""
