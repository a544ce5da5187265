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
