"""A demo interrupted while it saves (Ctrl-C, a full disk) and run again: nothing half-written
is left at --out, so the same command runs again as it was typed."""

from __future__ import annotations

from nudge_rag.delta import NudgeDelta

from .conftest import run
from .test_demo_folders import _folder


def test_a_demo_interrupted_while_saving_runs_again(tmp_path, capsys, monkeypatch):
    docs, out = _folder(tmp_path), tmp_path / "out"
    argv = ("demo", "--docs", docs, "--out", out, "--chunk-size", 32, "--max-chunks", 24,
            "--no-progress")

    def interrupted(self, path, overwrite=False):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(NudgeDelta, "save", interrupted)  # the index and questions are written
        assert run(*argv) == 130
    capsys.readouterr()
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))
    assert run(*argv) == 0, capsys.readouterr().err
    assert (out / "delta" / "delta.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == [
        "delta", "index", "questions.jsonl", "test.jsonl", "train.jsonl", "val.jsonl"]
