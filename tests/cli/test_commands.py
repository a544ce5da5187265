import errno
import json
import re

import pytest

from nudge_rag.cli import build_parser

from .conftest import refit_with_moves, run

COMMANDS = [[], ["demo"], ["questions"], ["questions", "generate"],
            ["questions", "import-logs"], ["fit"], ["eval"], ["apply"], ["revert"], ["inspect"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_everywhere(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: nudge-rag" in capsys.readouterr().out


def snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_generate_fit_eval_inspect(work, tmp_path, capsys):
    qs = tmp_path / "q.jsonl"
    assert run("questions", "generate", work / "index", "-o", qs, "--per-chunk", 3) == 0
    lines = qs.read_text().splitlines()
    assert len(lines) > 36 and "relevant" in json.loads(lines[0])
    assert run("fit", work / "index", work / "train.jsonl", "-o", tmp_path / "d",
               "--val", work / "val.jsonl", "--metric", "recall@10", "--no-progress") == 0
    assert run("fit", work / "index", work / "train.jsonl", "-o", tmp_path / "d2",
               "--val-fraction", "0.25", "--seed", "3", "--method", "nudge-n",
               "--no-progress") == 0
    out = capsys.readouterr().out
    assert "chosen by recall@10" in out and "delta written" in out
    assert run("eval", work / "index", tmp_path / "d", work / "test.jsonl", "--no-progress") == 0
    table = capsys.readouterr().out
    assert "original" in table and "nudged" in table and "ndcg@10" in table
    assert run("eval", work / "index", tmp_path / "d", work / "test.jsonl", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"before", "after", "gamma", "n_questions"}
    assert run("inspect", tmp_path / "d") == 0
    assert "records moved" in capsys.readouterr().out
    assert run("inspect", tmp_path / "d", "--json") == 0
    assert json.loads(capsys.readouterr().out)["method"] == "nudge-n"


def test_eval_matches_the_finetuner(work, capsys):
    from nudge_rag import EmbeddingFinetuner, NudgeDelta
    from nudge_rag.cli.indexes import load_index
    from nudge_rag.questions import QuestionSet

    assert run("eval", work / "index", work / "delta", work / "test.jsonl", "--json") == 0
    cli = json.loads(capsys.readouterr().out)
    index = load_index(work / "index").obj
    direct = EmbeddingFinetuner(index, show_progress=False).evaluate(
        QuestionSet.from_jsonl(work / "test.jsonl"), NudgeDelta.load(work / "delta"))
    assert cli["after"] == pytest.approx(direct["after"])
    assert cli["before"] == pytest.approx(direct["before"])


def test_apply_new_inplace_and_revert(work, tmp_path, capsys):
    refit_with_moves(work)
    before = snapshot(work / "index")
    assert run("apply", work / "index", work / "delta", "-o", tmp_path / "new") == 0
    assert snapshot(work / "index") == before
    assert (tmp_path / "new" / "docstore.json").is_file()
    assert snapshot(tmp_path / "new") != before
    assert run("apply", work / "index", work / "delta", "-o", tmp_path / "new") == 1
    assert "--overwrite" in capsys.readouterr().err

    assert run("apply", work / "index", work / "delta", "--inplace") == 0
    assert snapshot(work / "index.bak") == before
    assert snapshot(work / "index") != before
    assert run("revert", work / "index", work / "delta") == 0
    from nudge_rag.cli.indexes import load_index

    restored = load_index(work / "index").obj.vector_store.data.embedding_dict
    original = load_index(work / "index.bak").obj.vector_store.data.embedding_dict
    assert restored.keys() == original.keys()
    assert all(restored[k] == pytest.approx(original[k]) for k in original)
    # a second in-place apply refuses to overwrite the backup
    assert run("apply", work / "index", work / "delta", "--inplace") == 1
    assert "backup" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["langchain", "faiss"])
def test_langchain_and_faiss(kind, request, work, tmp_path, capsys):
    src = request.getfixturevalue("langchain_dump" if kind == "langchain" else "faiss_dir")
    extra = ["--allow-pickle"] if kind == "faiss" else []
    d = tmp_path / "d"
    assert run("fit", src, work / "train.jsonl", "-o", d, "--val", work / "val.jsonl",
               "--no-progress", *extra) == 0
    capsys.readouterr()
    assert run("eval", src, d, work / "test.jsonl", "--json", "--kind", kind, *extra) == 0
    after = json.loads(capsys.readouterr().out)["after"]
    assert run("eval", work / "index", work / "delta", work / "test.jsonl", "--json") == 0
    assert after == pytest.approx(json.loads(capsys.readouterr().out)["after"], abs=1e-6)
    new = tmp_path / ("new.json" if kind == "langchain" else "new")
    assert run("apply", src, d, "-o", new, *extra) == 0
    assert run("revert", new, d, *extra) == 0
    if kind == "faiss":
        assert run("inspect", d) == 0
        assert run("eval", src, d, work / "test.jsonl") == 1
        assert "--allow-pickle" in capsys.readouterr().err


def test_import_logs(work, tmp_path, capsys):
    from nudge_rag.cli.indexes import load_index

    ids = [i for i, _ in load_index(work / "index").chunks()]
    log = tmp_path / "log.jsonl"
    rows = [{"q": "how do I raise an exception", "hits": [ids[0], ids[1]], "click": [ids[0]],
             "vote": "up", "at": "2025-01-01T10:00:00"},
            {"q": "How do I raise an exception?", "hits": [ids[0]], "click": [ids[0]],
             "at": "2025-01-02T10:00:00"},
            {"q": "what is a generator", "hits": [ids[2]], "click": ["not-in-index"],
             "at": "2025-01-03T10:00:00"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "q.jsonl"
    assert run("questions", "import-logs", log, "-o", out, "--query-field", "q",
               "--shown-field", "hits", "--clicked-field", "click", "--feedback-field", "vote",
               "--timestamp-field", "at", "--index", work / "index") == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(got) == 1 and got[0]["relevant"] == {ids[0]: 2.0}
    assert "3 rows read" in capsys.readouterr().err


def test_generate_with_an_llm_flag(work, tmp_path, monkeypatch):
    import sys
    import types

    def llm(prompt):  # questions that name a word of their chunk (generic ones are refused)
        words = sorted(set(re.findall(r"[A-Za-z]{7,}", prompt.rsplit("Text:", 1)[-1])))
        return f"1. What does Python say about {words[0]}?\n2. How is {words[-1]} used?"

    fake = types.ModuleType("fake_llm_for_cli")
    fake.llm = llm
    monkeypatch.setitem(sys.modules, "fake_llm_for_cli", fake)
    out = tmp_path / "q.jsonl"
    assert run("questions", "generate", work / "index", "-o", out, "--llm",
               "fake_llm_for_cli:llm", "--no-progress") == 0
    assert out.read_text().count("\n") >= 2


# -- errors: one line, non-zero, no traceback ---------------------------------------------------
def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_missing_dir(work, capsys):
    assert run("eval", work / "nope", work / "delta", work / "test.jsonl") == 1
    one_line_error(capsys, "does not exist")


def test_wrong_kind(work, capsys):
    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "x", "--kind",
               "faiss") == 1
    one_line_error(capsys, "--kind faiss")


def test_questions_not_matching_the_index(work, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question number {i}",
                                       "relevant": [f"missing-{i}"]}) + "\n" for i in range(20)))
    assert run("fit", work / "index", bad, "-o", tmp_path / "d", "--no-progress") == 1
    one_line_error(capsys, "another index")


def test_delta_for_another_model(work, capsys):
    meta = work / "delta" / "delta.json"
    data = json.loads(meta.read_text())
    data["model"]["name"] = "some-other-model"
    meta.write_text(json.dumps(data))
    assert run("eval", work / "index", work / "delta", work / "test.jsonl") == 1
    one_line_error(capsys, "some-other-model")
    assert run("apply", work / "index", work / "delta", "-o", work / "new") == 1
    one_line_error(capsys, "model")
    assert not (work / "new").exists()


def test_unwritable_output(work, capsys):
    blocker = work / "a-file"
    blocker.write_text("x")
    assert run("apply", work / "index", work / "delta", "-o", blocker / "sub") == 1
    one_line_error(capsys, "a-file")


def test_disk_full_leaves_the_input_untouched(work, monkeypatch, capsys):
    from nudge_rag.cli import indexes

    refit_with_moves(work)
    before = snapshot(work / "index")

    def full(obj, kind, target):
        target.mkdir()
        (target / "partial").write_text("x")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(indexes, "_write", full)
    assert run("apply", work / "index", work / "delta", "--inplace") == 1
    one_line_error(capsys, "No space left on device")
    assert snapshot(work / "index") == before
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["index", "delta", "questions.jsonl", "train.jsonl", "val.jsonl", "test.jsonl"])


def test_corrupt_delta_and_debug(work, tmp_path, capsys):
    assert run("inspect", tmp_path) == 1
    one_line_error(capsys, "delta.json")
    with pytest.raises(Exception):  # noqa: B017 - --debug lets the error through
        run("--debug", "inspect", tmp_path)


def test_fit_flags_choose_the_protocol_and_the_memory(work, tmp_path, capsys):
    """Issue 13: the defaults cross-validate, refit and keep a query memory, which ``inspect``
    counts and ``apply`` says it cannot write; the flags give the paper's protocol."""
    default, paper = tmp_path / "default", tmp_path / "paper"
    assert run("fit", work / "index", work / "train.jsonl", "-o", default, "--val",
               work / "val.jsonl", "--folds", "4", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "cross-validated estimate" in out and "4 folds" in out
    assert "question vectors kept" in out and "apply() writes only the nudged records" in out
    assert run("inspect", default, "--json") == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["memory_questions"] > 0 and facts["report"]["refit"]
    assert facts["memory_questions"] == facts["report"]["n_train_questions"] + \
        facts["report"]["n_val_questions"]
    assert run("apply", work / "index", default, "-o", tmp_path / "new") == 0
    assert "query memory" in capsys.readouterr().out
    assert run("fit", work / "index", work / "train.jsonl", "-o", paper, "--selection",
               "validation", "--no-refit", "--no-memory", "--val-fraction", "0.2",
               "--no-progress") == 0
    out = capsys.readouterr().out
    assert "cross-validated" not in out and "none kept" in out
    assert run("inspect", paper, "--json") == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["memory_questions"] == 0 and facts["alpha"] == 0
    assert facts["report"]["estimate"] == "validation" and not facts["report"]["refit"]
    assert run("fit", work / "index", work / "train.jsonl", "-o", tmp_path / "x", "--folds",
               "1", "--no-progress") == 1
    assert "folds" in capsys.readouterr().err
