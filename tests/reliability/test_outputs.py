"""Issue 11, data loss 1: saving over something that is not ours deletes nothing.

The rule, the same for ``NudgeDelta.save`` and every command: an output path that does not
exist (or is an empty folder) is written; one that holds what this writer writes (a delta, an
index of the same kind, an earlier demo's folder) is replaced only with ``overwrite=True`` /
``--overwrite``; anything else is refused with an error naming it, and left as it was.
"""

from __future__ import annotations

import json

import pytest

from nudge_rag import NudgeDelta
from nudge_rag.errors import InputError

from .helpers import make_delta, one_line_error, run, same_delta, snapshot


@pytest.fixture
def someones_folder(tmp_path):
    """A folder of the user's own: an index and notes, nothing of nudge-rag's."""
    folder = tmp_path / "project"
    (folder / "index").mkdir(parents=True)
    (folder / "index" / "docstore.json").write_text('{"docs": 1}')
    (folder / "notes.md").write_text("my notes")
    return folder


def test_save_refuses_a_folder_that_is_not_a_delta(someones_folder):
    before = snapshot(someones_folder)
    for overwrite in (False, True):
        with pytest.raises(InputError, match="is not a nudge-rag delta") as exc:
            make_delta().save(someones_folder, overwrite=overwrite)
        assert str(someones_folder) in str(exc.value)
        assert snapshot(someones_folder) == before


def test_save_refuses_a_file(tmp_path):
    target = tmp_path / "questions.jsonl"
    target.write_text('{"question": "q", "relevant": ["a"]}\n')
    with pytest.raises(InputError, match="is a file"):
        make_delta().save(target, overwrite=True)
    assert target.read_text().startswith('{"question"')


def test_save_replaces_a_delta_only_when_asked(tmp_path):
    path = tmp_path / "delta"
    old, new = make_delta(0), make_delta(1)
    old.save(path)
    with pytest.raises(InputError, match="overwrite=True"):
        new.save(path)
    assert same_delta(NudgeDelta.load(path), old)
    new.save(path, overwrite=True)
    assert same_delta(NudgeDelta.load(path), new)


def test_save_refuses_a_delta_folder_holding_other_files(tmp_path):
    path = tmp_path / "delta"
    make_delta(0).save(path)
    (path / "notes.txt").write_text("why this delta")
    with pytest.raises(InputError, match="notes.txt"):
        make_delta(1).save(path, overwrite=True)
    assert (path / "notes.txt").read_text() == "why this delta"


def test_save_into_an_empty_folder(tmp_path):
    path = tmp_path / "delta"
    path.mkdir()
    make_delta().save(path)
    assert same_delta(NudgeDelta.load(path), make_delta())


# -- the command line --------------------------------------------------------------------------
def test_fit_refuses_a_folder_that_is_not_a_delta(work, someones_folder, capsys):
    before = snapshot(someones_folder)
    assert run("fit", work / "index", work / "train.jsonl", "-o", someones_folder,
               "--no-progress") == 1
    one_line_error(capsys, str(someones_folder), "not a nudge-rag delta")
    assert snapshot(someones_folder) == before


def test_fit_refuses_a_file(work, capsys):
    target = work / "test.jsonl"
    before = target.read_bytes()
    assert run("fit", work / "index", work / "train.jsonl", "-o", target, "--overwrite",
               "--no-progress") == 1
    one_line_error(capsys, str(target), "is a file")
    assert target.read_bytes() == before


def test_fit_replaces_a_delta_with_overwrite(work, capsys):
    old = snapshot(work / "delta")
    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "delta",
               "--gamma", "0.05", "--no-progress") == 1
    one_line_error(capsys, str(work / "delta"), "--overwrite")
    assert snapshot(work / "delta") == old
    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "delta",
               "--gamma", "0.05", "--overwrite", "--no-progress") == 0
    assert NudgeDelta.load(work / "delta").gamma == 0.05


def test_demo_refuses_a_folder_that_is_not_a_demo(someones_folder, capsys):
    before = snapshot(someones_folder)
    for extra in ([], ["--overwrite"]):
        assert run("demo", "--out", someones_folder, "--max-chunks", 12, "--per-chunk", 2,
                   "--no-progress", *extra) == 1
        one_line_error(capsys, str(someones_folder), "not an earlier demo")
        assert snapshot(someones_folder) == before


def test_demo_replaces_an_earlier_demo_with_overwrite(work, capsys):
    old = snapshot(work / "delta")
    assert run("demo", "--out", work, "--max-chunks", 12, "--per-chunk", 2,
               "--no-progress") == 1
    one_line_error(capsys, str(work), "--overwrite")
    assert snapshot(work / "delta") == old
    assert run("demo", "--out", work, "--max-chunks", 12, "--per-chunk", 2, "--no-progress",
               "--overwrite") == 0
    assert snapshot(work / "delta") != old
    assert json.loads((work / "delta" / "delta.json").read_text())["format"] == \
        "nudge-rag-delta"


def test_apply_output_follows_the_same_rule(work, someones_folder, capsys):
    before = snapshot(someones_folder)
    assert run("apply", work / "index", work / "delta", "-o", someones_folder,
               "--overwrite") == 1
    one_line_error(capsys, str(someones_folder), "not a llama-index index")
    assert snapshot(someones_folder) == before
    out = work / "index-nudged"
    assert run("apply", work / "index", work / "delta", "-o", out) == 0
    assert run("apply", work / "index", work / "delta", "-o", out) == 1
    one_line_error(capsys, str(out), "--overwrite")
    assert run("apply", work / "index", work / "delta", "-o", out, "--overwrite") == 0


def test_a_questions_file_never_replaces_a_folder(work, capsys):
    """``-o`` of a questions command that names a folder: refused, the folder kept."""
    from nudge_rag.questions import QuestionSet

    before = snapshot(work / "index")
    with pytest.raises(InputError, match="is a folder"):
        QuestionSet.from_jsonl(work / "test.jsonl").to_jsonl(work / "index")
    assert snapshot(work / "index") == before
    assert run("questions", "generate", work / "index", "-o", work / "index") == 1
    one_line_error(capsys, str(work / "index"))
    assert snapshot(work / "index") == before
