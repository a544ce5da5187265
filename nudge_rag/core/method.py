"""The one method type: which NUDGE variant a fit runs.

Its value is the name users write (``method="nudge-n"``) and the name a saved delta stores, so
the same object travels from the CLI and the finetuner through the engine into the delta and
back from disk, with no translation on the way. It is a ``str``: comparisons with the plain
names, JSON and printing all see ``"nudge-n"`` / ``"nudge-m"``.
"""

from __future__ import annotations

from enum import Enum

from ..errors import InputError


class Method(str, Enum):
    """``N``: NUDGE-N (unit-norm output, safe for every store); ``M``: NUDGE-M (output not
    unit-norm, inner-product stores only)."""

    N = "nudge-n"
    M = "nudge-m"

    # print and format as the plain name, as users write it
    __str__ = str.__str__
    __format__ = str.__format__

    def __repr__(self) -> str:
        return repr(self.value)

    @classmethod
    def parse(cls, value, name: str = "method") -> Method:
        """``value`` as a :class:`Method` (a member, or its name in any case); anything else
        is an :class:`InputError` naming ``name``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        raise InputError(f"{name}={value!r} is unknown; use 'nudge-n' (default) or 'nudge-m'")
