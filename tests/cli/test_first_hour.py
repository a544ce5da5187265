"""What a new user trips on in the first hour (issue 15): a wrong INDEX argument, LlamaIndex's
stand-in embedding model, question files only the owner can read, bars that count batches,
and two different defaults for questions per chunk."""

from __future__ import annotations

import json
import os
import stat

import pytest

from nudge_rag.errors import InputError

from .conftest import run


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_questions_file_as_index_names_the_kinds_and_extras(work, tmp_path, capsys):
    # the README's environment: `nudge-rag fit test.jsonl ...` used to import langchain_core
    assert run("fit", work / "test.jsonl", work / "train.jsonl", "-o", tmp_path / "d") == 1
    err = _one_line(capsys)
    assert "looks like a questions file" in err
    assert "nudge-rag[llama-index]" in err and "nudge-rag[langchain]" in err
    assert "docstore.json" in err and "index.faiss" in err


def test_a_folder_that_is_no_index(work, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert run("fit", tmp_path / "notes", work / "train.jsonl", "-o", tmp_path / "d") == 1
    err = _one_line(capsys)
    assert "is not an index" in err and "nudge-rag[llama-index]" in err


def test_a_missing_framework_names_its_extra(langchain_dump, monkeypatch):
    import builtins

    from nudge_rag.cli.indexes import load_index

    real = builtins.__import__

    def no_langchain(name, *args, **kw):
        if name.startswith("langchain_core"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_langchain)
    with pytest.raises(InputError, match=r"is a langchain index.*pip install "
                                         r"'nudge-rag\[langchain\]'"):
        load_index(langchain_dump)


def test_llama_index_stand_in_model_says_what_to_pass(demo_dir):
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.core.embeddings import MockEmbedding

    from nudge_rag import EmbeddingFinetuner
    from nudge_rag.questions import QuestionSet

    # what `Settings.embed_model = None` gives: LlamaIndex's 1-d stand-in
    index = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(demo_dir / "index")),
        embed_model=MockEmbedding(embed_dim=1))
    qs = QuestionSet.from_jsonl(demo_dir / "train.jsonl")
    with pytest.raises(InputError, match=r"MockEmbedding.*embed_model=nudge_rag\.local\."
                                         r"llama_index_embedding\(\)"):
        EmbeddingFinetuner(index, show_progress=False).fit(qs)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_question_files_follow_the_umask(demo_dir, tmp_path, umask):
    from nudge_rag.questions import QuestionSet

    qs = QuestionSet.from_jsonl(demo_dir / "test.jsonl")
    old = os.umask(umask)
    try:
        qs.to_jsonl(tmp_path / "q.jsonl")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "q.jsonl").stat().st_mode) == 0o666 & ~umask
    assert len(QuestionSet.from_jsonl(tmp_path / "q.jsonl")) == len(qs)


def test_question_embedding_bar_counts_texts(monkeypatch):
    import numpy as np

    from nudge_rag import _progress
    from nudge_rag.embedding import embed_queries

    counted = []

    class Bar:
        def __init__(self, total, desc, show, **kw):
            counted.append(["total", total])

        def update(self, n=1):
            counted.append(["update", n])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    class Model:
        def embed_queries(self, batch):
            return np.ones((len(batch), 3))

    monkeypatch.setattr(_progress, "progress_bar", Bar)
    out = embed_queries(Model(), [f"q{i}" for i in range(150)], batch_size=64,
                        show_progress=True)
    assert out.shape == (150, 3)
    assert counted == [["total", 150], ["update", 64], ["update", 64], ["update", 22]]


def test_one_default_for_questions_per_chunk(demo_dir, tmp_path):
    from nudge_rag.cli import build_parser
    from nudge_rag.cli.questions_cmd import PER_CHUNK

    parser = build_parser()
    demo = parser.parse_args(["demo"])
    generate = parser.parse_args(["questions", "generate", "i", "-o", "q.jsonl"])
    assert demo.per_chunk == generate.per_chunk == PER_CHUNK
    assert run("questions", "generate", demo_dir / "index", "-o", tmp_path / "q.jsonl") == 0
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    per_chunk = {}
    for row in rows:
        for rid in row["relevant"]:
            per_chunk[rid] = per_chunk.get(rid, 0) + 1
    assert max(per_chunk.values()) == PER_CHUNK


def test_demo_says_before_embedding_what_it_will_index(tmp_path, capsys):
    from argparse import Namespace

    from nudge_rag.cli.demo import PYDOC_CHUNKS, load_corpus

    def args(**kw):
        base = dict(docs=None, max_chunks=None, chunk_size=256, model=None)
        return Namespace(**{**base, **kw})

    nodes = load_corpus(args(), show=False)  # the built-in corpus: a stated sample
    line = capsys.readouterr().out
    assert len(nodes) == PYDOC_CHUNKS and f"indexed {PYDOC_CHUNKS} of " in line
    assert "--max-chunks N for more" in line
    docs = tmp_path / "docs"
    docs.mkdir()
    for k in range(40):  # a folder of over a thousand small chunks: all of it, and how long
        sentences = [f"Section {k} sentence {i} says that item {i} weighs {i * k} grams."
                     for i in range(300)]
        (docs / f"f{k}.md").write_text(" ".join(sentences), encoding="utf-8")
    nodes = load_corpus(args(docs=docs, chunk_size=64), show=False)
    line = capsys.readouterr().out
    assert len(nodes) > 1000 and f"{len(nodes):,} chunks, all indexed; about " in line
    capped = load_corpus(args(docs=docs, chunk_size=64, max_chunks=100), show=False)
    assert len(capped) == 100
    assert f"indexed 100 of {len(nodes):,} chunks" in capsys.readouterr().out
