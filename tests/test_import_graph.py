"""No import circle inside ``nudge_rag``: lower modules never import upper ones.

The graph is read from the source (every ``import`` statement, including the lazy ones inside
functions, since a lazy import is still a dependency), not from ``sys.modules``. The implicit
import of a module's parent package is not an edge: every tool that draws import graphs
leaves it out, and it would put every package in a circle with its own ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nudge_rag"

# circles that another change is removing; each entry must still be a real circle (the test
# below fails when it is gone, so the exception cannot outlive the circle)
KNOWN_CIRCLES: list[set[str]] = [
    {"nudge_rag.stores.faiss_ann", "nudge_rag.stores.langchain"},  # issue 16.5, stores
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _in_type_checking(node: ast.AST, parents: dict) -> bool:
    """Imports under ``if TYPE_CHECKING:`` never run, so they are not dependencies."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if _in_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # "from pkg import mod" imports the submodule; "from pkg import name", pkg
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a module-level relative import, and a lazy one inside a function
    assert "nudge_rag.questions.question" in graph["nudge_rag.questions.question_set"]
    assert "nudge_rag.finetuner" in graph["nudge_rag.cli.fit_cmd"]
    assert "nudge_rag.errors" in graph["nudge_rag.questions.question"]


def test_circle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [{"a", "b", "c"}]


def test_no_import_circles():
    found = circles(import_graph())
    unexpected = [sorted(c) for c in found if c not in KNOWN_CIRCLES]
    assert not unexpected, f"import circles: {unexpected}; a lower module imports an upper one"


@pytest.mark.parametrize("circle", KNOWN_CIRCLES, ids=lambda c: " <-> ".join(sorted(c)))
def test_known_circles_are_still_real(circle):
    assert circle in circles(import_graph()), "this circle is gone: drop it from KNOWN_CIRCLES"
