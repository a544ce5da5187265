"""No import circles inside the package: walk every import in ``nudge_rag`` and look for a
module that, through its imports, comes back to itself. Lower layers never import upper ones.

An import counts wherever it is written: at the top of a module, inside a function (it runs
the moment the function does), and as a module name in a string that ``importlib`` resolves
at run time (the package's lazy table of public names, the store registry's
``"module:factory"`` entries)."""

from __future__ import annotations

import ast
from pathlib import Path

import nudge_rag

ROOT = Path(nudge_rag.__file__).parent


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _named_in_strings(node: ast.Constant, package: str, known: set[str]) -> set[str]:
    """Modules a string names for ``importlib``: a full dotted name (``"pkg.mod"``), or a
    ``"mod:attribute"`` entry resolved inside ``package``."""
    text = node.value
    if "." in text and text in known:
        return {text}
    if text.count(":") == 1 and f"{package}.{text.split(':')[0]}" in known:
        return {f"{package}.{text.split(':')[0]}"}
    return set()


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
            submodules = {f"{base}.{a.name}" for a in node.names} & known  # ``from . import x``
            found |= submodules
            if len(submodules) < len(node.names):  # names read from ``base`` itself
                found.add(base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= _named_in_strings(node, package, known)
    return {m for m in found if m in known and m != name}


def _graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {_module(p, root): p for p in root.rglob("*.py")}
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
    assert "nudge_rag.delta" in graph["nudge_rag"]  # the lazy table of public names
    assert "nudge_rag.stores.milvus" in graph["nudge_rag.stores.registry"]  # "milvus:..."
    # every subpackage is walked
    subpackages = {p.parent for p in ROOT.rglob("__init__.py")}
    assert {_module(p / "__init__.py", ROOT) for p in subpackages} <= set(graph)
    assert len(subpackages) >= 6


def test_the_circle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root / "pkg"


def test_a_circle_planted_in_a_package_is_found(tmp_path):
    # a subpackage module that imports an upper one inside a function body closes a circle
    # with that module's top-level import of it
    pkg = _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/upper.py": "from .sub.lower import helper\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/lower.py": "def helper():\n    from ..upper import helper as h\n    return h\n",
        "pkg/sub/leaf.py": "import pkg.sub.lower\n",
    })
    circles = _circles(_graph(pkg))
    assert ["pkg.sub.lower", "pkg.upper", "pkg.sub.lower"] in circles
    assert not any("pkg.sub.leaf" in c for c in circles)
    # a lazy table of module names counts too
    (pkg / "sub" / "lower.py").write_text('LAZY = {"helper": "pkg.upper"}\n', encoding="utf-8")
    assert ["pkg.upper", "pkg.sub.lower", "pkg.upper"] in _circles(_graph(pkg))
    (pkg / "sub" / "lower.py").write_text("def helper():\n    return 1\n", encoding="utf-8")
    assert _circles(_graph(pkg)) == []


def test_no_import_circle_anywhere_in_the_package():
    # questions/ (io <-> question_set <-> split) and stores/ (faiss_ann <-> langchain) had
    # circles, and the lazy public names with the modules that read the version; every
    # layer is held to it now
    circles = _circles(_graph())
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
