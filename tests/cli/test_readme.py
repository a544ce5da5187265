"""Every Python snippet of the README runs as written, from the folder a user runs it in:
after ``nudge-rag demo`` (the index snippet) and ``nudge-rag datasets get scifact`` (the data
snippet, here from the local copy: tests never download)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nudge_rag.datasets import CACHE_ENV

from ..conftest import dataset_dir

ROOT = Path(__file__).resolve().parents[2]


def snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _snippet(word: str) -> str:
    found = [s for s in snippets() if word in s]
    assert len(found) == 1, word
    return found[0]


def test_every_snippet_is_covered():
    assert len(snippets()) == 2


def test_index_snippet_runs_after_the_demo(demo_dir, tmp_path, monkeypatch, capsys):
    shutil.copytree(demo_dir, tmp_path / "nudge-demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(_snippet("load_index_from_storage"), "README.md", "exec"), {})
    assert "gamma" in capsys.readouterr().out
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "nudge-demo")
    assert len(made) == 1 and (tmp_path / made[0] / "delta.json").is_file()
    # run in the repository (the README's next command is its test command), a folder named
    # like a package makes ruff take it for first-party code: `nudge/` failed `ruff check .`
    # on benchmarks/methods.py (`from nudge import ...`, the reference package nudge-ft)
    assert not made[0].isidentifier(), made


@pytest.mark.slow
def test_data_snippet_runs_after_datasets_get(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    (cache / "datasets" / "scifact").symlink_to(dataset_dir("scifact"))
    monkeypatch.setenv(CACHE_ENV, str(cache))
    monkeypatch.chdir(tmp_path)
    exec(compile(_snippet("fetch("), "README.md", "exec"), {})
    gamma, moved, before, after = capsys.readouterr().out.split()
    assert int(moved) > 0 and float(after) > float(before)
