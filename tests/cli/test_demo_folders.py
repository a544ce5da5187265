"""``nudge-rag demo --docs`` on the folders new users point it at: files that are not UTF-8,
tool folders inside a project (``.venv``, ``.git``), symbolic links. Only the reading and
chunking runs here; the whole demo is in test_demo.py."""

from __future__ import annotations

import pytest

from nudge_rag.cli.demo import folder_docs
from nudge_rag.errors import InputError

NOTE = "Bread rises because yeast turns sugar into carbon dioxide inside the dough.\n"


def test_a_file_that_is_not_utf8_is_named_not_dropped_silently(tmp_path, capsys):
    (tmp_path / "ok.md").write_text(NOTE, encoding="utf-8")
    (tmp_path / "menu.txt").write_bytes("Crème brûlée: custard under caramel.\n".encode("cp1252"))
    docs = folder_docs(tmp_path)
    assert [name for name, _ in docs] == ["ok.md"]
    err = capsys.readouterr().err
    assert "skipped 1 file, not UTF-8: menu.txt" in err


def test_a_folder_of_only_undecodable_files_says_so(tmp_path):
    (tmp_path / "data.txt").write_bytes(bytes(range(128, 256)) * 20)
    with pytest.raises(InputError, match=r"no readable text.*not UTF-8: data\.txt"):
        folder_docs(tmp_path)


def test_hidden_folders_of_tools_are_not_the_users_documents(tmp_path):
    # `nudge-rag demo --docs .` in a project: .venv holds thousands of LICENSE.txt files
    (tmp_path / "notes.md").write_text(NOTE, encoding="utf-8")
    for hidden in (".venv/lib/pkg", ".git", ".ipynb_checkpoints"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "LICENSE.txt").write_text("Permission is granted.\n")
    (tmp_path / ".draft.md").write_text(NOTE, encoding="utf-8")
    assert [name for name, _ in folder_docs(tmp_path)] == ["notes.md"]


def test_linked_folders_are_named_not_followed(tmp_path, capsys):
    # a link may lead out of the folder (a home directory, /) or back into a loop
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "glossary.md").write_text(NOTE, encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "intro.md").write_text(NOTE, encoding="utf-8")
    (docs / "glossary").symlink_to(shared, target_is_directory=True)
    (docs / "sub" / "up").symlink_to(docs, target_is_directory=True)  # a loop
    (docs / "gone.md").symlink_to(tmp_path / "nowhere.md")  # a broken link
    (docs / "linked.md").symlink_to(shared / "glossary.md")  # a linked file is a file
    assert [name for name, _ in folder_docs(docs)] == ["intro.md", "linked.md"]
    err = capsys.readouterr().err
    assert "skipped 2 linked folders, not followed: glossary, sub/up" in err
    assert "as --docs" in err


# -- the default cap of a large folder, stated before any embedding -----------------------------
def _folder(tmp_path, files: int = 6):
    docs = tmp_path / "docs"
    docs.mkdir()
    for k in range(files):
        sentences = [f"Report {k} line {i}: pump {i} moved {i * k + 3} litres of water an hour."
                     for i in range(12)]
        (docs / f"r{k}.md").write_text(" ".join(sentences), encoding="utf-8")
    return docs


def _from_corpus_line(out: str) -> list[str]:
    # LlamaIndex's splitter prints a note about metadata length at tiny chunk sizes
    lines = out.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("[1/6] corpus"))
    return lines[first:]


def _parse(*argv):
    from nudge_rag.cli import build_parser

    return build_parser().parse_args(["demo", *map(str, argv)])


def test_a_folder_over_the_default_cap_says_what_it_skips_and_how_to_lift_it(
        tmp_path, capsys, monkeypatch):
    from nudge_rag.cli import demo

    docs = _folder(tmp_path)
    everything = demo.load_corpus(_parse("--docs", docs, "--chunk-size", 32), show=False)
    capsys.readouterr()
    monkeypatch.setattr(demo, "DOCS_CHUNKS", 5)
    nodes = demo.load_corpus(_parse("--docs", docs, "--chunk-size", 32), show=False)
    first, second = _from_corpus_line(capsys.readouterr().out)
    total = len(everything)
    assert len(nodes) == 5 < total
    assert f"indexed 5 of {total} chunks, about 1 min on a 2-core CPU" in first
    assert second.strip().startswith(f"{total - 5} chunks skipped")
    assert "capped at 5 chunks by default" in second and "--max-chunks all" in second
    # spread over the corpus, not the first files only
    assert {n.metadata["source"] for n in nodes} >= {"r0.md", "r5.md"}
    # lifted: every chunk, and no cap line
    lifted = demo.load_corpus(_parse("--docs", docs, "--chunk-size", 32, "--max-chunks", "all"),
                              show=False)
    assert len(lifted) == total
    assert len(_from_corpus_line(capsys.readouterr().out)) == 1


@pytest.mark.parametrize("value", ["0", "-2", "lots", "2.5"])
def test_max_chunks_takes_a_count_or_all(value, capsys):
    with pytest.raises(SystemExit):
        _parse("--max-chunks", value)
    assert "neither a count of at least 1 nor 'all'" in capsys.readouterr().err
    assert _parse("--max-chunks", "ALL").max_chunks == "all"
    assert _parse("--max-chunks", "7").max_chunks == 7


def test_the_demo_indexes_what_its_first_line_says(tmp_path, capsys, monkeypatch):
    from nudge_rag.cli import demo

    from .conftest import run

    monkeypatch.setattr(demo, "DOCS_CHUNKS", 20)
    out = tmp_path / "out"
    assert run("demo", "--docs", _folder(tmp_path), "--out", out, "--chunk-size", 32,
               "--per-chunk", 4, "--no-progress") == 0
    printed = _from_corpus_line(capsys.readouterr().out)
    assert "indexed 20 of " in printed[0] and "chunks skipped" in printed[1]
    assert len(_chunk_ids(out)) == 20


def _chunk_ids(out):
    from nudge_rag.cli.indexes import load_index

    return [i for i, _ in load_index(out / "index").chunks()]


def test_default_chunks_fit_the_models_input_so_no_text_goes_unembedded():
    # --chunk-size counted LlamaIndex's tokenizer, not the model's: 237 of the 522 Python-docs
    # chunks ran past all-MiniLM-L6-v2's 256 tokens (one to 1,114), and the model cut them
    from nudge_rag.cli import demo
    from nudge_rag.local import sentence_transformer

    st = sentence_transformer(None)
    args = _parse()
    nodes = demo.chunk(demo.python_docs(), args.chunk_size, model=args.model)
    lengths = [len(st.tokenizer(n.get_content())["input_ids"]) for n in nodes]
    assert len(nodes) > 400 and max(lengths) <= st.max_seq_length


def test_a_chunk_size_too_small_for_the_file_names_is_our_error(tmp_path, capsys):
    from .conftest import run

    assert run("demo", "--docs", _folder(tmp_path), "--out", tmp_path / "o", "--chunk-size", 4,
               "--no-progress") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's loading bar
    assert err.startswith("nudge-rag demo: error: ")
    assert "ValueError" not in err and "--debug" not in err
    assert "--chunk-size 4 is too small" in err and "at least" in err
    assert not (tmp_path / "o").exists()


def test_a_file_given_as_docs_points_at_its_folder(tmp_path):
    (tmp_path / "notes.md").write_text(NOTE, encoding="utf-8")
    with pytest.raises(InputError, match=rf"is a file.*--docs {tmp_path}"):
        folder_docs(tmp_path / "notes.md")
    with pytest.raises(InputError, match="does not exist"):
        folder_docs(tmp_path / "nowhere")
