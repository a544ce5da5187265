"""Progress bars on stderr that count items (texts, bytes), and vanish when not wanted.

``tqdm`` is optional: without it, or with ``show=False``, the bar is a no-op object with the
same ``update`` / context-manager surface, so callers never branch.
"""

from __future__ import annotations

import sys


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int | None, desc: str, show: bool, unit: str = "text", **kw):
    """A tqdm bar of ``total`` ``unit``s (a context manager), or a silent stand-in."""
    if not show:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, **kw)
