"""Issue 11, raw exceptions: every bad input listed there ends in nudge-rag's own error that
names the file, the line or field, and the fix (on the command line: one line, exit 1)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nudge_rag import EmbeddingFinetuner, NudgeDelta, NudgeM, NudgeN
from nudge_rag.errors import InputError
from nudge_rag.questions import QuestionSet, import_logs
from tests.conftest import clustered_problem

from .helpers import make_delta, one_line_error, run, siblings
from .tampering import edit_meta, read_arrays, write_arrays, write_raw_arrays

LATIN1 = "café".encode("latin-1")  # b"caf\xe9": not UTF-8


# -- question files and logs that are not UTF-8 ------------------------------------------------
def test_a_question_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"question": "ok", "relevant": ["a"]}\n{"question": "' + LATIN1
                     + b'", "relevant": ["a"]}\n')
    with pytest.raises(InputError, match=f"{path}:2.*UTF-8"):
        QuestionSet.from_jsonl(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_log_that_is_not_utf8(tmp_path, suffix):
    path = tmp_path / f"log{suffix}"
    if suffix == ".csv":
        path.write_bytes(b"query,clicked\nhello,a\n" + LATIN1 + b",b\n")
    else:
        path.write_bytes(b'{"query": "hello", "clicked": ["a"]}\n{"query": "' + LATIN1
                         + b'", "clicked": ["b"]}\n')
    with pytest.raises(InputError, match=f"{path}:[23].*UTF-8"):
        import_logs(path)


def test_a_llama_dataset_that_is_not_utf8(tmp_path):
    path = tmp_path / "ds.json"
    path.write_bytes(b'{"queries": {"q1": "' + LATIN1 + b'"}, "corpus": {}, '
                     b'"relevant_docs": {"q1": ["a"]}}')
    with pytest.raises(InputError, match=f"{path}.*UTF-8"):
        QuestionSet.from_llama_dataset(path)


def test_the_cli_names_a_question_file_that_is_not_utf8(work, capsys):
    bad = work / "bad.jsonl"
    bad.write_bytes((work / "train.jsonl").read_bytes() + b'{"question": "' + LATIN1 + b'"}\n')
    assert run("fit", work / "index", bad, "-o", work / "d", "--no-progress") == 1
    one_line_error(capsys, f"{bad}:", "UTF-8")
    log = work / "log.csv"
    log.write_bytes(b"query,clicked\n" + LATIN1 + b",x\n")
    assert run("questions", "import-logs", log, "-o", work / "q.jsonl") == 1
    one_line_error(capsys, f"{log}:2", "UTF-8")


# -- JSON that the parser cannot hold ------------------------------------------------------------
HUGE_INT = "9" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("text", [HUGE_INT, DEEP], ids=["5000-digits", "100k-deep"])
def test_json_beyond_the_parser(tmp_path, text):
    q = tmp_path / "q.jsonl"
    q.write_text(f'{{"question": "x", "relevant": {{"a": {text}}}}}\n'
                 if text is HUGE_INT else f'{{"question": "x", "relevant": {text}}}\n')
    with pytest.raises(InputError, match=f"{q}:1"):
        QuestionSet.from_jsonl(q)
    log = tmp_path / "log.jsonl"
    log.write_text(f'{{"query": "x", "clicked": {text}}}\n')
    with pytest.raises(InputError, match=f"{log}:1"):
        import_logs(log)
    ds = tmp_path / "ds.json"
    ds.write_text(f'{{"queries": {{"q": "x"}}, "relevant_docs": {{"q": {text}}}}}')
    with pytest.raises(InputError, match=str(ds)):
        QuestionSet.from_llama_dataset(ds)
    path = make_delta().save(tmp_path / "d")
    meta = (path / "delta.json").read_text()
    (path / "delta.json").write_text(meta.replace('"dim": 8', f'"dim": {text}'))
    with pytest.raises(InputError, match="delta.json"):
        NudgeDelta.load(path)
    pytest.importorskip("langchain_core")
    from nudge_rag.cli.indexes import load_index

    dump = tmp_path / "store.json"
    dump.write_text(f'{{"a": {{"id": "a", "vector": {text}, "text": "x", "metadata": {{}}}}}}')
    with pytest.raises(InputError, match=str(dump)):
        load_index(dump, kind="langchain")


# -- delta.json and arrays.npz ------------------------------------------------------------------
def _set(key, value):
    def edit(meta):
        meta[key] = value
        return meta
    return edit


def _drop(key):
    def edit(meta):
        del meta[key]
        return meta
    return edit


BAD_META = {
    "a list": (lambda meta: [meta], "JSON object"),
    "no ids": (_drop("ids"), "'ids'"),
    "no dim": (_drop("dim"), "'dim'"),
    "no method": (_drop("method"), "'method'"),
    "no model": (_drop("model"), "'model'"),
    "dim abc": (_set("dim", "abc"), "'dim'"),
    "dim true": (_set("dim", True), "'dim'"),
    "gamma nan": (_set("gamma", "nan"), "'gamma'"),
    "gamma -1": (_set("gamma", -1), "'gamma'"),
    "method rm -rf": (_set("method", "rm -rf"), "'method'"),
    "ids not a list": (_set("ids", "abc"), "'ids'"),
    "ids of dicts": (_set("ids", [{}] * 12), "'ids'"),
    "model a string": (_set("model", "x"), "'model'"),
    "report a list": (_set("report", []), "'report'"),
    "similarity": (_set("similarity", "hamming"), "'similarity'"),
    "metric": (_set("metric", "ndcg@0"), "'metric'"),
}


def _model(**fields):
    return _set("model", {"name": "all-MiniLM-L6-v2", "dim": 8, **fields})


def _report(**fields):
    return _set("report", {"n_train_questions": 30, **fields})


#: fields inside ``model`` and ``report`` that load let through, to end in a raw TypeError,
#: UFuncTypeError, KeyError or ValueError when apply/eval/inspect used them (review of #11)
BAD_NESTED = {
    "probe of text": (_model(probe="abcdefghijklmnop"), "'model'"),
    "probe a number": (_model(probe=5), "'model'"),
    "probe with a string": (_model(probe=[0.1] * 15 + ["x"]), "'model'"),
    "probe of lists": (_model(probe=[[0.1]] * 16), "'model'"),
    "name a list": (_model(name=["a"]), "'model'"),
    "dim a string": (_model(dim="abc"), "'model'"),
    "before a string": (_report(before="abc", after="abc"), "'report'"),
    "before holding text": (_report(before={"ndcg@10": "x"}, after={"ndcg@10": 0.5}),
                            "'report'"),
    "before holding null": (_report(before={"ndcg@10": None}, after={"ndcg@10": None}),
                            "'report'"),
    "after lacking a metric": (_report(before={"ndcg@10": 0.1}, after={"mrr@10": 0.5}),
                               "'report'"),
}


@pytest.mark.parametrize("case", [*BAD_META, *BAD_NESTED])
def test_a_malformed_delta_json(tmp_path, case, capsys):
    edit, field = {**BAD_META, **BAD_NESTED}[case]
    path = make_delta().save(tmp_path / "d")
    edit_meta(path, edit)
    with pytest.raises(InputError, match=field) as exc:
        NudgeDelta.load(path)
    assert str(path / "delta.json") in str(exc.value)
    assert run("inspect", path) == 1
    one_line_error(capsys, "delta.json")


def test_a_tampered_probe_is_refused_by_apply_and_eval(work, capsys):
    """On the real project: the commands that compare models say the delta is damaged."""
    edit_meta(work / "delta", _set("model", {"name": "all-MiniLM-L6-v2", "dim": 384,
                                             "probe": "abcdefghijklmnop"}))
    assert run("apply", work / "index", work / "delta", "-o", work / "out") == 1
    one_line_error(capsys, "delta.json", "'model'")
    assert run("eval", work / "index", work / "delta", work / "test.jsonl",
               "--no-progress") == 1
    one_line_error(capsys, "delta.json", "'model'")
    assert not (work / "out").exists()


@pytest.mark.parametrize("case", ["no counts", "short counts", "float counts", "3-d vectors"])
def test_a_malformed_npz(tmp_path, case):
    path = make_delta().save(tmp_path / "d")
    arrays = read_arrays(path)
    if case == "no counts":
        del arrays["counts"]
    elif case == "short counts":
        arrays["counts"] = arrays["counts"][:-1]
    elif case == "float counts":
        arrays["counts"] = arrays["counts"] + 0.5
    else:
        arrays["vectors"] = arrays["vectors"][None]
    write_arrays(path, arrays)
    with pytest.raises(InputError, match="arrays.npz"):
        NudgeDelta.load(path)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_a_truncated_npz_with_a_matching_checksum(tmp_path, keep):
    path = make_delta().save(tmp_path / "d")
    data = (path / "arrays.npz").read_bytes()
    write_raw_arrays(path, data[:int(len(data) * keep)])
    with pytest.raises(InputError, match="arrays.npz"):
        NudgeDelta.load(path)


def test_a_pickled_npz_is_refused(tmp_path):
    path = make_delta().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays["counts"] = np.array([{"x": 1}] * 12, dtype=object)
    write_arrays(path, arrays)
    with pytest.raises(InputError, match="arrays.npz"):
        NudgeDelta.load(path)


@pytest.mark.parametrize("name", ["delta.json", "arrays.npz"])
def test_symlinks_out_of_the_delta_folder_are_refused(tmp_path, name):
    path = make_delta().save(tmp_path / "d")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(path / name, outside / name)
    os.symlink(outside / name, path / name)
    with pytest.raises(InputError, match="symbolic link"):
        NudgeDelta.load(path)
    # a link that stays inside the folder is fine
    os.unlink(path / name)
    shutil.move(outside / name, path / f"real-{name}")
    os.symlink(f"real-{name}", path / name)
    NudgeDelta.load(path)


# -- LangChain dumps -----------------------------------------------------------------------------
WRONG_DUMPS = {
    "a list": [],
    "a number per record": {"a": 1},
    "no vector": {"a": {"id": "a", "text": "x", "metadata": {}}},
    "vector of text": {"a": {"id": "a", "vector": "abc", "text": "x", "metadata": {}}},
    "ragged vectors": {"a": {"id": "a", "vector": [0.1, 0.2], "text": "x", "metadata": {}},
                       "b": {"id": "b", "vector": [0.1], "text": "y", "metadata": {}}},
    "nan vector": {"a": {"id": "a", "vector": [float("nan"), 0.2], "text": "x",
                         "metadata": {}}},
    "no text": {"a": {"id": "a", "vector": [0.1, 0.2], "metadata": {}}},
}


@pytest.mark.parametrize("case", WRONG_DUMPS)
def test_a_langchain_dump_of_the_wrong_shape(tmp_path, case, capsys):
    pytest.importorskip("langchain_core")
    from nudge_rag.cli.indexes import load_index

    path = tmp_path / "store.json"
    path.write_text(json.dumps(WRONG_DUMPS[case]))
    with pytest.raises(InputError, match=str(path)):
        load_index(path, kind="langchain")
    assert run("inspect", path) == 1  # not a delta either
    capsys.readouterr()


# -- arguments -----------------------------------------------------------------------------------
@pytest.fixture
def tiny_index():
    pytest.importorskip("llama_index.core")
    from tests.integrations.test_llama_index import small_index

    return small_index()[0]


def test_a_nul_in_copy_name(tiny_index):
    from tests.small_corpus import QUESTIONS

    delta = EmbeddingFinetuner(tiny_index, gamma=0.3, show_progress=False).fit(QUESTIONS)
    with pytest.raises(InputError, match="copy_name"):
        delta.apply(tiny_index, copy_name="bad\x00name")


@pytest.mark.parametrize("bad", [[None], [["cats"]], [{"cats": 1}], [1.5]])
def test_relevance_that_is_not_ids(tiny_index, tmp_path, bad):
    with pytest.raises(InputError, match="relevan"):
        EmbeddingFinetuner(tiny_index, gamma=0.3, show_progress=False).fit(
            [("which pet purrs", bad)])
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "which pet purrs", "relevant": bad}) + "\n")
    with pytest.raises(InputError, match=f"{path}:1"):
        QuestionSet.from_jsonl(path)


def test_a_relevance_row_of_2_pow_63_is_reported_as_itself():
    docs, tq, tr, _, _ = clustered_problem(n=50, n_train=5)
    for big in (2**63, 2**64 + 1, -(2**63) - 1, 1e300):
        with pytest.raises(InputError, match="outside") as exc:
            NudgeN(gamma=0.1).fit(docs, tq, [[big]] + tr[1:])
        assert str(big) in str(exc.value) or repr(big) in str(exc.value)


@pytest.mark.parametrize("gamma", [np.int64(1), np.int32(0), np.float32(0.5), 1])
def test_numpy_integers_are_valid_gammas(gamma, tiny_index):
    from tests.small_corpus import QUESTIONS

    docs, tq, tr, _, _ = clustered_problem(n=60, n_train=20)
    NudgeM(gamma=gamma).fit(docs, tq, tr)
    NudgeN(gamma=gamma).fit(docs, tq, tr)
    delta = EmbeddingFinetuner(tiny_index, gamma=gamma, show_progress=False).fit(QUESTIONS)
    assert delta.gamma == float(gamma)


@pytest.mark.parametrize("gamma", [True, "1", np.nan, -0.5, np.complex128(1)])
def test_bad_gammas_are_refused(gamma):
    docs, tq, tr, _, _ = clustered_problem(n=60, n_train=20)
    with pytest.raises(InputError, match="gamma"):
        NudgeM(gamma=gamma).fit(docs, tq, tr)


# -- backups -----------------------------------------------------------------------------------
def test_a_backup_in_a_missing_folder(work, capsys):
    backup = work / "no-such-folder" / "index.bak"
    before = sorted(p.name for p in work.iterdir())
    assert run("apply", work / "index", work / "delta", "--inplace", "--backup", backup) == 1
    one_line_error(capsys, str(backup), "--backup")
    assert sorted(p.name for p in work.iterdir()) == before
    assert siblings(work / "index") == []


def test_a_backup_on_another_filesystem(work, capsys):
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(work).st_dev:
        pytest.skip("no second filesystem (/dev/shm) on this machine")
    backup = other / f"nudge-rag-test-{os.getpid()}" / "index.bak"
    backup.parent.mkdir()
    try:
        from .helpers import snapshot

        before = snapshot(work / "index")
        assert run("apply", work / "index", work / "delta", "--inplace", "--backup",
                   backup) == 0
        assert snapshot(backup) == before
        assert siblings(work / "index") == [] and siblings(backup) == []
    finally:
        shutil.rmtree(backup.parent, ignore_errors=True)


# -- command-line arguments (review of issue 11) --------------------------------------------------
@pytest.mark.parametrize("seed", [-1, "abc", 2.5])
def test_a_seed_numpy_cannot_take_is_refused(seed):
    """A negative seed used to end in numpy's raw "ValueError: expected non-negative integer"
    (``fit --seed -1``)."""
    from nudge_rag.questions import group_split

    qs = QuestionSet.from_pairs([(f"question {i}", {f"doc{i}": 1}) for i in range(10)])
    with pytest.raises(InputError, match="seed"):
        group_split(qs, seed=seed)
    group_split(qs, seed=2**70)  # any whole number ≥ 0 is a seed


def test_fit_names_a_negative_seed(work, capsys):
    assert run("fit", work / "index", work / "train.jsonl", "-o", work / "d", "--seed", -1,
               "--no-progress") == 1
    one_line_error(capsys, "seed=-1")
    assert not (work / "d").exists()


def test_eval_with_no_metric_is_refused(work, capsys):
    """``eval --metrics ,`` used to end in "TypeError: 'int' object is not iterable"."""
    assert run("eval", work / "index", work / "delta", work / "test.jsonl", "--metrics", ",",
               "--no-progress") == 1
    assert "TypeError" not in one_line_error(capsys, "--metrics")


def test_an_empty_list_separator_is_refused(tmp_path, capsys):
    """``import-logs --list-sep ''`` used to end in a raw "ValueError: empty separator"."""
    log = tmp_path / "log.csv"
    log.write_text("query,clicked_ids\nhow do I stop a loop,a|b\n")
    with pytest.raises(InputError, match="list_sep"):
        import_logs(log, list_sep="")
    assert run("questions", "import-logs", log, "-o", tmp_path / "q.jsonl", "--list-sep",
               "") == 1
    one_line_error(capsys, "list")


def test_counts_past_int64_are_refused_on_load(tmp_path):
    """uint64 counts of 2**64 - 1 used to load, and the next save wrote them as -1: a delta
    that load then refused."""
    path = make_delta().save(tmp_path / "d")
    arrays = read_arrays(path)
    arrays["counts"] = np.full(12, 2**64 - 1, dtype=np.uint64)
    write_arrays(path, arrays)
    with pytest.raises(InputError, match="'counts'") as exc:
        NudgeDelta.load(path)
    assert "arrays.npz" in str(exc.value)


def test_a_nul_in_a_path_is_refused(tmp_path):
    """A NUL character in a path (as in ``copy_name``): the writers and readers used to end in
    a raw "ValueError: embedded null byte"."""
    bad = str(tmp_path / "a\x00b")
    qs = QuestionSet.from_pairs([("what purrs", {"cats": 1})])
    for call in (lambda: make_delta().save(bad), lambda: qs.to_jsonl(bad),
                 lambda: QuestionSet.from_jsonl(bad)):
        with pytest.raises(InputError, match="NUL"):
            call()
    with pytest.raises(InputError, match="not a file"):  # this one already said so
        import_logs(bad + ".jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- a model path that is not there ----------------------------------------------------------------
@pytest.mark.parametrize("model", ["/nonexistent", "./no-model-here", "~/no-model-here",
                                   "models/a/missing"])
def test_a_model_folder_that_is_not_there_is_named(model):
    # sentence-transformers took these for hub names: "Repo id must use alphanumeric chars"
    pytest.importorskip("sentence_transformers")
    from nudge_rag.local import sentence_transformer

    with pytest.raises(InputError, match=f"model '{model}' is not a folder"):
        sentence_transformer(model)
