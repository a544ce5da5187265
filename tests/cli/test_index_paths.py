"""INDEX arguments a new user gets nearly right: the demo's folder instead of its index, a file
inside a LlamaIndex persist dir, the delta in the index's place. Each error says which path
to pass instead, in one line, before anything is loaded."""

from __future__ import annotations

import pytest

from .conftest import run


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("command", ["eval", "apply"])
def test_the_demo_folder_points_at_its_index(demo_dir, tmp_path, capsys, command):
    extra = ["-o", tmp_path / "o"] if command == "apply" else [demo_dir / "test.jsonl"]
    assert run(command, demo_dir, demo_dir / "delta", *extra) == 1
    assert f"Did you mean {demo_dir / 'index'}?" in _error(capsys)


def test_a_file_of_a_persist_dir_points_at_its_folder(demo_dir, tmp_path, capsys):
    assert run("questions", "generate", demo_dir / "index" / "docstore.json",
               "-o", tmp_path / "q.jsonl") == 1
    assert f"Did you mean {demo_dir / 'index'}?" in _error(capsys)
    assert not (tmp_path / "q.jsonl").exists()


def test_a_delta_in_the_index_place_says_the_order(demo_dir, tmp_path, capsys):
    assert run("fit", demo_dir / "delta", demo_dir / "train.jsonl", "-o", tmp_path / "d") == 1
    err = _error(capsys)
    assert "is a delta" in err and "the index comes first" in err
