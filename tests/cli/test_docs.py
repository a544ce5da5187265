import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install mkdocs "
                                         "'mkdocstrings[python]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed")
    # build from a copy so that a broken page is reported, never half-written into the repo
    src = tmp_path / "src"
    shutil.copytree(ROOT / "docs", src / "docs")
    shutil.copy(ROOT / "mkdocs.yml", src / "mkdocs.yml")
    shutil.copytree(ROOT / "nudge_rag", src / "nudge_rag")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-d", str(tmp_path / "site")], cwd=src, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_readme_links_resolve():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target
