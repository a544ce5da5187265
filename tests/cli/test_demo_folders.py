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
    assert "menu.txt" in err and "UTF-8" in err and "skipped 1 file" in err


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


def test_symlinked_folders_are_read_once_and_loops_end(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "glossary.md").write_text(NOTE, encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "intro.md").write_text(NOTE, encoding="utf-8")
    (docs / "glossary").symlink_to(shared, target_is_directory=True)
    (docs / "sub" / "up").symlink_to(docs, target_is_directory=True)  # a loop
    (docs / "gone.md").symlink_to(tmp_path / "nowhere.md")  # a broken link
    assert [name for name, _ in folder_docs(docs)] == ["glossary/glossary.md", "intro.md"]
