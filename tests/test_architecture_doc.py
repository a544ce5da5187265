"""Issue 16: docs/architecture.md tells a newcomer where a change belongs, so it must name
every module the package has, and the list of supported stores in ``stores/__init__.py``
must follow the registry."""

from __future__ import annotations

import re
from pathlib import Path

import nudge_rag
from nudge_rag.stores import registry

ROOT = Path(nudge_rag.__file__).parent
PAGE = ROOT.parent / "docs" / "architecture.md"


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _covered(module: Path, rows: list[str]) -> bool:
    """A row names ``module`` by its file name (beside its folder, for a subpackage's
    module), or names the module's whole folder."""
    rel = module.relative_to(ROOT)
    if len(rel.parts) == 1:
        return any(f"`{rel.name}`" in row for row in rows)
    folder = f"{rel.parts[0]}/"
    return any(f"`{folder}`" in row or (folder in row and re.search(rf"[`/]{rel.name}`", row))
               for row in rows)


def test_the_architecture_page_names_every_module():
    rows = _rows(PAGE.read_text(encoding="utf-8"))
    modules = [p for p in sorted(ROOT.rglob("*.py"))
               if p.name not in ("__init__.py", "__main__.py")]
    missing = [str(p.relative_to(ROOT)) for p in modules if not _covered(p, rows)]
    assert not missing, f"docs/architecture.md does not say what these modules do: {missing}"
    assert len(modules) > 50


def test_the_coverage_check_sees_a_missing_module(tmp_path):
    rows = ["| core | `core/metrics.py` | metrics |", "| | `datasets/` | readers |"]
    assert _covered(ROOT / "core" / "metrics.py", rows)
    assert _covered(ROOT / "datasets" / "beir.py", rows)  # its whole folder is named
    assert not _covered(ROOT / "core" / "topk.py", rows)
    assert not _covered(ROOT / "finetuner.py", rows)


def test_the_supported_stores_follow_the_registry():
    doc = nudge_rag.stores.__doc__
    for key in registry.ADAPTERS:
        name = key.rsplit(".", 1)[1]
        assert name in registry.SUPPORTED, name  # the message of an unsupported store
        assert f"``{name}``" in doc, name  # the package's own docstring
