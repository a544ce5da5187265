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


# -- paths a hostile user picks (review of issue 11) ---------------------------------------------
def test_save_under_a_file_names_the_path(tmp_path, capsys):
    """A parent that is a file: the error is nudge-rag's, about the path asked for (the
    clean-up of the temporary copy used to raise NotADirectoryError over it)."""
    from nudge_rag.errors import WriteError

    (tmp_path / "notes.txt").write_text("mine")
    target = tmp_path / "notes.txt" / "delta"
    with pytest.raises(WriteError, match="notes.txt/delta"):
        make_delta().save(target)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_save_under_a_name_as_long_as_the_filesystem_allows(tmp_path):
    """A 250-byte name is a valid name: the temporary copy beside it must not make the
    write fail (it used to, with a raw 'File name too long' about the copy)."""
    target = tmp_path / ("n" * 250)
    make_delta().save(target)
    assert same_delta(NudgeDelta.load(target), make_delta())
    make_delta(1).save(target, overwrite=True)
    assert same_delta(NudgeDelta.load(target), make_delta(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_backup_inside_the_index_is_refused(work, capsys):
    """``apply --inplace --backup INDEX/bak`` used to put the backup inside the folder that the
    swap then removes, and print "original kept at INDEX/bak" over a backup that was gone."""
    before = snapshot(work / "index")
    assert run("apply", work / "index", work / "delta", "--inplace", "--backup",
               work / "index" / "bak") == 1
    one_line_error(capsys, str(work / "index" / "bak"), "inside")
    assert snapshot(work / "index") == before


@pytest.mark.parametrize("where", ["index", "index/nudged"])
def test_apply_output_never_lands_on_its_input(work, capsys, where):
    """``-o`` promises an untouched input: naming the input index (with --overwrite), or a
    folder inside it, is refused and points to --inplace."""
    before = snapshot(work / "index")
    assert run("apply", work / "index", work / "delta", "-o", work / where,
               "--overwrite") == 1
    one_line_error(capsys, str(work / where), "--inplace")
    assert snapshot(work / "index") == before


# -- question files: the same rule (review of issue 11) -------------------------------------------
LOG_ROW = '{"query": "how do I stop a loop early", "clicked_ids": ["%s"]}\n'


def test_question_writers_refuse_what_is_not_theirs(tmp_path):
    """``to_jsonl`` and ``to_llama_dataset`` used to replace any file at all (a docstore, a
    delta.json, notes) without a word."""
    from nudge_rag.questions import QuestionSet

    qs = QuestionSet.from_pairs([("what purrs", {"cats": 1}), ("what barks", {"dogs": 1})])
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    for write in (qs.to_jsonl, qs.to_llama_dataset):
        for overwrite in (False, True):
            with pytest.raises(InputError, match="not a questions file") as exc:
                write(notes, overwrite=overwrite)
            assert str(notes) in str(exc.value)
    assert notes.read_text() == "my notes"
    path = tmp_path / "q.jsonl"
    qs.to_jsonl(path)
    with pytest.raises(InputError, match="overwrite=True"):
        qs[:1].to_jsonl(path)
    assert len(QuestionSet.from_jsonl(path)) == 2
    qs[:1].to_jsonl(path, overwrite=True)
    assert len(QuestionSet.from_jsonl(path)) == 1
    ds = tmp_path / "ds.json"
    qs.to_llama_dataset(ds)
    with pytest.raises(InputError, match="overwrite=True"):
        qs.to_llama_dataset(ds)
    qs.to_llama_dataset(ds, overwrite=True)


def test_question_commands_refuse_what_is_not_theirs(work, capsys):
    """``questions import-logs -o INDEX/docstore.json`` used to replace the index's docstore
    with one question and exit 0; ``questions generate`` likewise."""
    log = work / "log.jsonl"
    first = json.loads((work / "train.jsonl").read_text().splitlines()[0])
    log.write_text(LOG_ROW % next(iter(first["relevant"])))
    docstore, delta_json = work / "index" / "docstore.json", work / "delta" / "delta.json"
    before = snapshot(work)
    for target in (docstore, delta_json):
        for extra in ([], ["--overwrite"]):
            assert run("questions", "import-logs", log, "-o", target, *extra) == 1
            one_line_error(capsys, str(target), "not a questions file")
            assert run("questions", "generate", work / "index", "-o", target, *extra) == 1
            one_line_error(capsys, str(target), "not a questions file")
    assert snapshot(work) == before
    questions = work / "test.jsonl"
    assert run("questions", "import-logs", log, "-o", questions) == 1
    one_line_error(capsys, str(questions), "--overwrite")
    assert snapshot(work) == before
    assert run("questions", "import-logs", log, "-o", questions, "--overwrite") == 0
    assert len(questions.read_text().splitlines()) == 1


def test_inplace_on_a_symlinked_index_names_the_link(work, capsys):
    """``apply --inplace LINK`` (a link to the index): refused before any work, naming the
    link and its target. It used to copy a backup, then fail with "cannot write LINK: Not a
    directory"."""
    link = work / "current"
    link.symlink_to(work / "index")
    before = snapshot(work / "index")
    for command in (("apply", link, work / "delta", "--inplace"),
                    ("revert", link, work / "delta")):
        assert run(*command) == 1
        one_line_error(capsys, str(link), "symbolic link", str(work / "index"))
    assert snapshot(work / "index") == before and link.is_symlink()
    assert not (work / "current.bak").exists()


def test_demo_refuses_a_folder_whose_parts_are_not_a_demos(work, tmp_path, capsys):
    """A folder holding a delta and someone's FAISS index under ``index``: the names of a
    demo's output, but not its contents. ``demo --out --overwrite`` used to replace that
    index with its own."""
    import shutil

    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(work / "delta", folder / "delta")
    (folder / "index").mkdir()
    (folder / "index" / "index.faiss").write_bytes(b"their faiss index")
    (folder / "index" / "index.pkl").write_bytes(b"their docstore")
    (folder / "test.jsonl").write_text("their notes, not questions\n")
    before = snapshot(folder)
    assert run("demo", "--out", folder, "--max-chunks", 12, "--per-chunk", 2, "--no-progress",
               "--overwrite") == 1
    one_line_error(capsys, str(folder), "not an earlier demo")
    assert snapshot(folder) == before
