"""Issue 16: no function in ``nudge_rag/`` is longer than 60 lines. A function that does
several jobs is split along them; this test names the ones that grew past the limit."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import nudge_rag

ROOT = Path(nudge_rag.__file__).parent
LIMIT = 60


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length)`` of every function (methods, nested and async
    ones too) longer than ``limit`` lines, counted from its first decorator to its last line,
    docstring and comments included."""
    found = []
    todo = [(ast.parse(source), "")]
    while todo:
        node, prefix = todo.pop()
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                length = child.end_lineno - first + 1
                if length > limit:
                    found.append((name[:-1], first, length))
            todo.append((child, name))
    return sorted(found, key=lambda f: f[1])


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines - 1))
    return f"{indent}def {name}():\n{body}{indent}    return x0\n"


def test_the_count_sees_every_kind_of_function():
    assert long_functions(_function("fits", 59)) == []  # 60 lines with its def line
    assert long_functions(_function("grown", 60)) == [("grown", 1, 61)]
    nested = "class Outer:\n    @staticmethod\n" + _function("method", 59, "    ")
    assert long_functions(nested) == [("Outer.method", 2, 61)]  # the decorator counts
    inner = "async def outer():\n" + textwrap.indent(_function("inner", 60), "    ") \
        + "    return inner\n"
    assert [f[0] for f in long_functions(inner)] == ["outer", "outer.inner"]


def test_no_function_in_the_package_is_longer_than_60_lines():
    found = [f"{path.relative_to(ROOT.parent)}:{line} {name} ({length} lines)"
             for path in sorted(ROOT.rglob("*.py"))
             for name, line, length in long_functions(path.read_text(encoding="utf-8"))]
    assert not found, "split these along their jobs: " + "; ".join(found)
