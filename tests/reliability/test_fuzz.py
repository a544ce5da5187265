"""Every reader, fed what hypothesis makes up (broken lines, wrong types, bytes that are not
UTF-8, truncated and bit-flipped files), either reads it or raises nudge-rag's own error:
never a raw ``KeyError``, ``UnicodeDecodeError``, ``RecursionError`` or the like."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nudge_rag import NudgeDelta
from nudge_rag.errors import NudgeError
from nudge_rag.questions import QuestionSet, import_logs

from .helpers import make_delta
from .tampering import write_raw_arrays

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=12), st.sampled_from(["a", "b", "cats", "", "nan"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "id", "x", "0"]) | st.text(max_size=5), inner,
                    max_size=4)), max_leaves=12)
question_keys = st.sampled_from(["id", "_id", "question", "text", "query", "relevant",
                                 "embedding", "metadata", "clicked", "shown", "feedback",
                                 "timestamp", "extra"])
rows = st.dictionaries(question_keys, json_values, max_size=6)
raw_lines = st.one_of(
    rows.map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
    st.sampled_from([b"{", b"[[[[", b'{"relevant": [1e999]}', b'{"question": "\xff"}',
                     b"9" * 5000, b"[" * 3000 + b"]" * 3000, b'{"question": "x\\ud800"}']),
)


@contextlib.contextmanager
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="nudge-fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def only_our_errors(read, *args, **kwargs):
    try:
        return read(*args, **kwargs)
    except NudgeError:
        return None


@FUZZ
@given(lines=st.lists(raw_lines, min_size=1, max_size=6))
def test_question_files(lines):
    with scratch() as folder:
        path = folder / "q.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        got = only_our_errors(QuestionSet.from_jsonl, path)
        if got is not None:
            assert len(got) >= 1 and all(q.relevant for q in got)


@FUZZ
@given(lines=st.lists(raw_lines, min_size=1, max_size=6))
def test_jsonl_logs(lines):
    with scratch() as folder:
        path = folder / "log.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        only_our_errors(import_logs, path)


csv_cells = st.one_of(st.text(max_size=10), st.sampled_from(['"', '""', ",", "\n", "a|b", "\r"]))


@FUZZ
@given(header=st.lists(st.sampled_from(["query", "clicked", "shown", "feedback", "x", ""]),
                       min_size=1, max_size=4),
       cells=st.lists(st.lists(csv_cells, max_size=5), max_size=5),
       junk=st.binary(max_size=8))
def test_csv_logs(header, cells, junk):
    with scratch() as folder:
        path = folder / "log.csv"
        text = ",".join(header) + "\n" + "\n".join(",".join(r) for r in cells)
        path.write_bytes(text.encode("utf-8", "surrogatepass") + junk)
        only_our_errors(import_logs, path)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(["queries", "corpus", "relevant_docs", "mode"]),
                            json_values, max_size=4))
def test_llama_datasets(data):
    with scratch() as folder:
        path = folder / "ds.json"
        path.write_text(json.dumps(data))
        only_our_errors(QuestionSet.from_llama_dataset, path)
        only_our_errors(QuestionSet.from_llama_dataset, data)


# -- deltas ------------------------------------------------------------------------------------
META_KEYS = ["format", "version", "ids", "method", "gamma", "metric", "similarity", "dim",
             "model", "questions", "report", "arrays_sha256", "nudge_rag"]
meta_edits = st.lists(st.tuples(st.sampled_from(META_KEYS),
                                st.one_of(st.just("<drop>"), json_values)), max_size=3)


@FUZZ
@given(edits=meta_edits, whole=st.one_of(st.none(), st.binary(max_size=60), json_values))
def test_delta_json(edits, whole):
    with scratch() as folder:
        path = make_delta().save(folder / "d")
        meta = json.loads((path / "delta.json").read_text())
        for key, value in edits:
            if value == "<drop>":
                meta.pop(key, None)
            else:
                meta[key] = value
        if whole is None:
            (path / "delta.json").write_text(json.dumps(meta))
        elif isinstance(whole, bytes):
            (path / "delta.json").write_bytes(whole)
        else:
            (path / "delta.json").write_text(json.dumps(whole))
        got = only_our_errors(NudgeDelta.load, path)
        if got is not None:
            assert np.isfinite(got.vectors).all() and len(got.counts) == len(got.ids)
            use_loaded(got)


def use_loaded(delta) -> None:
    """What the commands do with a loaded delta: show it, and check a store's model."""
    from nudge_rag.embedding import model_mismatch

    repr(delta)
    delta.report()
    model_mismatch(delta.model, None, delta.dim)


NESTED_KEYS = ["model.name", "model.dim", "model.probe", "model.class", "report.before",
               "report.after", "report.n_train_questions", "report.n_val_questions"]
numbers_or_json = st.one_of(json_values, st.lists(st.floats(), max_size=16),
                            st.dictionaries(st.sampled_from(["ndcg@10", "mrr@10"]),
                                            st.one_of(st.floats(), scalars), max_size=2))


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(NESTED_KEYS), numbers_or_json), max_size=4))
def test_delta_json_model_and_report(edits):
    """Fields inside ``model`` and ``report``: load refuses them with our error, or the
    loaded delta can be shown and compared (review of issue 11)."""
    with scratch() as folder:
        path = make_delta().save(folder / "d")
        meta = json.loads((path / "delta.json").read_text())
        for key, value in edits:
            part, name = key.split(".")
            meta[part][name] = value
        (path / "delta.json").write_text(json.dumps(meta))
        got = only_our_errors(NudgeDelta.load, path)
        if got is not None:
            use_loaded(got)


arrays_names = st.sampled_from(["vectors", "original", "sums", "counts", "other"])
def _filled(shape, dtype, fill):
    with np.errstate(invalid="ignore", over="ignore"):  # nan or 1e30 cast to integers
        return np.full(shape, fill).astype(dtype)


array_values = st.one_of(
    st.builds(lambda shape, dtype, fill: _filled(shape, dtype, fill),
              st.lists(st.integers(0, 13), min_size=0, max_size=3).map(tuple),
              st.sampled_from(["f4", "f8", "i8", "u1", "bool", "U3", "c16"]),
              st.sampled_from([0, 1, -1, 1e30, np.nan, np.inf])),
)


@FUZZ
@given(replace=st.dictionaries(arrays_names, st.one_of(st.none(), array_values), max_size=3),
       cut=st.one_of(st.none(), st.floats(0, 1)), flip=st.one_of(st.none(), st.integers(0)),
       fix=st.booleans())
def test_delta_arrays(replace, cut, flip, fix):
    with scratch() as folder:
        path = make_delta().save(folder / "d")
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        for name, value in replace.items():
            if value is None:
                arrays.pop(name, None)
            else:
                arrays[name] = value
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = bytearray(buf.getvalue())
        if cut is not None:
            data = data[:int(len(data) * cut)]
        if flip is not None and data:
            data[flip % len(data)] ^= 0xFF
        write_raw_arrays(path, bytes(data), fix_checksum=fix)
        got = only_our_errors(NudgeDelta.load, path)
        if got is not None:
            assert np.isfinite(got.vectors).all() and got.vectors.shape == (12, 8)


# -- persisted indexes ---------------------------------------------------------------------------
records = st.dictionaries(st.sampled_from(["id", "vector", "text", "metadata", "x"]),
                          st.one_of(json_values, st.lists(st.floats(), max_size=4)), max_size=5)


@FUZZ
@given(store=st.one_of(json_values, st.dictionaries(st.text(max_size=4), records, max_size=4)))
def test_langchain_dumps(store):
    pytest.importorskip("langchain_core")
    from nudge_rag.cli.indexes import load_index

    with scratch() as folder:
        path = folder / "store.json"
        path.write_text(json.dumps(store))
        got = only_our_errors(load_index, path, kind="langchain")
        if got is not None:
            from nudge_rag.stores import adapt

            adapter = adapt(got.obj)
            ids = [i for i, _ in got.chunks()]
            found, vectors = adapter.fetch(ids)
            assert found == ids and np.isfinite(np.asarray(vectors, dtype=float)).all()


@pytest.fixture(scope="module")
def faiss_folder(tmp_path_factory):
    pytest.importorskip("faiss")
    pytest.importorskip("langchain_community")
    from nudge_rag.cli.indexes import save_index

    from .writers import index_pair

    obj, _ = index_pair("faiss")
    path = tmp_path_factory.mktemp("faiss") / "index"
    save_index(obj, "faiss", path)
    return path


@FUZZ
@given(name=st.sampled_from(["index.faiss", "index.pkl"]), cut=st.floats(0, 1),
       flip=st.one_of(st.none(), st.integers(0, 200)))
def test_faiss_folders(faiss_folder, name, cut, flip):
    """Truncated files, and flipped bytes in the FAISS index file's header and rows (never in
    the pickle, whose flipped bytes could name any importable callable)."""
    from nudge_rag.cli.indexes import load_index

    assume(not (name == "index.pkl" and flip is not None))
    with scratch() as folder:
        path = folder / "index"
        shutil.copytree(faiss_folder, path)
        data = bytearray((path / name).read_bytes())
        data = data[:int(len(data) * cut)] if flip is None else data
        if flip is not None:
            data[flip % len(data)] ^= 0xFF
        (path / name).write_bytes(bytes(data))
        got = only_our_errors(load_index, path, kind="faiss", allow_pickle=True)
        if got is not None:
            ids = [i for i, _ in got.chunks()]
            assert len(ids) == got.obj.index.ntotal


# -- BEIR folders (review of issue 11) ------------------------------------------------------------
tsv_cells = st.one_of(st.text(max_size=6),
                      st.sampled_from(["1", "0", "-1", "inf", "nan", "1e400", "2", '"', "\x00",
                                       "x" * 140_000]))
tsv_lines = st.lists(st.lists(tsv_cells, max_size=4).map("\t".join), max_size=5)
beir_rows = st.one_of(
    raw_lines,
    st.dictionaries(st.sampled_from(["_id", "title", "text", "metadata"]), json_values,
                    max_size=4).map(lambda d: json.dumps(d).encode()))


@FUZZ
@given(queries=st.lists(beir_rows, max_size=4), corpus=st.lists(beir_rows, max_size=3),
       qrels=tsv_lines, header=st.booleans(), split=st.sampled_from([None, "test", "all"]))
def test_beir_folders(queries, corpus, qrels, header, split):
    """``QuestionSet.from_beir`` and ``datasets.load_beir`` on made-up folders: rows without
    ``_id`` or not objects, qrels cells past the csv module's field limit, missing splits."""
    from nudge_rag.datasets import load_beir

    with scratch() as folder:
        (folder / "qrels").mkdir()
        (folder / "queries.jsonl").write_bytes(b"\n".join(queries) + b"\n")
        (folder / "corpus.jsonl").write_bytes(b"\n".join(corpus) + b"\n")
        text = ("query-id\tcorpus-id\tscore\n" if header else "") + "\n".join(qrels)
        (folder / "qrels" / "test.tsv").write_text(text, encoding="utf-8",
                                                    errors="surrogatepass")
        got = only_our_errors(QuestionSet.from_beir, folder, splits=split)
        if got is not None:
            assert all(q.relevant for q in got)
        data = only_our_errors(load_beir, folder, None if split is None else (split,))
        if data is not None:
            assert all(isinstance(k, str) for k in data.corpus)
