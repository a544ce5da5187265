"""The one rule for what a command may write over (docs/cli.md, "Outputs").

An output path that does not exist, or an empty folder, is written. One that holds what the
command writes (a delta for ``fit``, an index of the same kind for ``apply -o``, an earlier
demo's folder for ``demo``) is replaced only with ``--overwrite``. Anything else is refused
with an error naming it, and nothing is written there."""

from __future__ import annotations

import os
from pathlib import Path

from .._fs import check_output, listing
from ..delta_format import check_delta_output, delta_problem
from ..errors import InputError

#: what ``nudge-rag demo`` writes, and what the commands it suggests add beside it
DEMO_PARTS = ("index", "delta", "questions.jsonl", "train.jsonl", "val.jsonl", "test.jsonl")
DEMO_EXTRAS = ("index-nudged", "index.bak")


def check_delta_out(path, overwrite: bool) -> None:
    check_delta_output(path, overwrite, "--overwrite")


def check_index_out(path, kind: str, overwrite: bool) -> None:
    from .indexes import detect_kind

    def problem(p: Path) -> str | None:
        try:
            found = detect_kind(p)
        except InputError:
            found = None
        if found == kind:
            return None
        what = f"a {found} index" if found else (f"it holds {listing(p)}" if p.is_dir()
                                                 else "a file of another kind")
        return f"is not a {kind} index ({what})"

    check_output(path, f"a {kind} index", problem, overwrite, "--overwrite")


def demo_problem(path: Path) -> str | None:
    """Why ``path`` is not the folder of an earlier ``nudge-rag demo`` (``None`` if it is)."""
    if not path.is_dir():
        return "is a file, not an earlier demo output"
    names = [n for n in os.listdir(path) if not n.startswith(".")]
    strangers = sorted(set(names) - set(DEMO_PARTS) - set(DEMO_EXTRAS))
    if strangers or "delta" not in names or delta_problem(path / "delta") is not None \
            or _foreign_part(path, names):
        return f"is not an earlier demo output (it holds {listing(path)})"
    return None


def _foreign_part(path: Path, names) -> bool:
    """Whether a part that the demo would replace holds something else than the demo wrote
    there: an index of another kind, or a file that is not questions."""
    from ..questions.io import check_questions_output
    from .indexes import detect_kind

    try:
        if "index" in names and detect_kind(path / "index") != "llama-index":
            return True
        for name in set(names) & {p for p in DEMO_PARTS if p.endswith(".jsonl")}:
            check_questions_output(path / name, overwrite=True)
    except InputError:
        return True
    return False


def check_demo_out(path, overwrite: bool) -> None:
    check_output(path, "an earlier demo output", demo_problem, overwrite, "--overwrite")
