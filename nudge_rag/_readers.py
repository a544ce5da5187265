"""Reading files that people hand over: text that must be UTF-8, and JSON that Python's parser
may refuse in ways of its own (nesting deeper than its recursion limit, integers longer than
its digit limit). Every failure is an :class:`InputError` naming the file and the line."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .errors import InputError

_BOM = "\ufeff"
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)(?=.)", re.DOTALL)  # after a \r that ends a line


def _not_utf8(where: str, exc: UnicodeDecodeError, column: int) -> InputError:
    bad = exc.object[exc.start:exc.start + 1].hex()
    return InputError(f"{where}: not UTF-8 (byte 0x{bad} at column {column}); save the file "
                      "as UTF-8")


def check_path(path) -> None:
    """Refuse a path that no filesystem can hold (a NUL character), as Python's own calls
    would with a bare ``ValueError``."""
    if "\x00" in os.fsdecode(path):
        raise InputError(f"{os.fsdecode(path)!r} holds a NUL character, which no path may "
                         "hold; choose another path")


def read_text(path) -> str:
    """The whole file, decoded as UTF-8 (a leading byte-order mark is dropped)."""
    check_path(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _not_utf8(f"{path}:{line}", exc, column) from None
    return text[1:] if text.startswith(_BOM) else text


def text_lines(path):
    """``(line number, line)`` for every line of a UTF-8 text file, split where universal
    newlines split (``\\n``, ``\\r\\n``, a lone ``\\r``) and with their endings kept, as the
    csv module wants them."""
    check_path(path)
    lineno = 0
    with open(path, "rb") as fh:
        for chunk in fh:
            for raw in _LONE_CR.split(chunk):
                lineno += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _not_utf8(f"{path}:{lineno}", exc, exc.start + 1) from None
                if lineno == 1 and line.startswith(_BOM):
                    line = line[1:]
                yield lineno, line


def parse_json(text: str, where: str, fix: str = "fix the file"):
    """``json.loads(text)``, with every way it can fail turned into an :class:`InputError`
    that names ``where`` and says ``fix``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise InputError(f"{where}: not valid JSON ({exc.msg} at {at}); {fix}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to read; {fix}") from None
    except ValueError as exc:  # an integer beyond Python's digit limit, and the like
        reason = str(exc).split(";")[0]
        raise InputError(f"{where}: JSON that cannot be read ({reason}); {fix}") from None


def read_json(path, fix: str = "fix the file"):
    """A whole JSON file."""
    return parse_json(read_text(path), str(path), fix)


def jsonl(path, fix: str = "fix or remove that line"):
    """``(line number, "path:line", value)`` for every non-blank line of a JSONL file."""
    for lineno, line in text_lines(path):
        if line.strip():
            where = f"{path}:{lineno}"
            yield lineno, where, parse_json(line, where, fix)
