"""No import circles inside the package: walk every ``import`` in ``nudge_rag`` (those inside
functions too, since they run the moment the function does) and look for a module that,
through its imports, comes back to itself. Lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import nudge_rag

ROOT = Path(nudge_rag.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package's modules that ``path`` (module ``name``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # ``from . import x``
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path back to its start for every module that lies on a circle."""
    found = []
    for start in sorted(graph):
        seen, todo = {start: [start]}, [start]
        while todo:
            here = todo.pop()
            for there in sorted(graph[here]):
                if there == start:
                    found.append(seen[here] + [start])
                    todo = []
                    break
                if there not in seen:
                    seen[there] = seen[here] + [there]
                    todo.append(there)
    return found


def test_the_walk_sees_imports():
    graph = _graph()
    assert "nudge_rag.stores.base" in graph["nudge_rag.stores.registry"]
    assert "nudge_rag.stores.faiss_index" in graph["nudge_rag.stores.langchain_faiss"]
    assert "nudge_rag.questions.question" in graph["nudge_rag.questions.question_set"]
    assert "nudge_rag.finetuner" in graph["nudge_rag.cli.fit_cmd"]  # imported inside a function


def test_the_circle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]


def test_no_import_circle_anywhere_in_the_package():
    # questions/ (io <-> question_set <-> split) and stores/ (faiss_ann <-> langchain) had
    # circles; every layer is held to it now
    circles = _circles(_graph())
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
