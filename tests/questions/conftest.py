"""Shared fixtures: the real BEIR folders (tests skip, saying why, when they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge_rag.datasets import data_root, load_beir


def _dataset(name: str) -> Path:
    root = data_root()
    if root is None or not (root / name / "queries.jsonl").is_file():
        pytest.skip(f"{name} data not found: set NUDGE_RAG_DATA to a folder holding {name}/ "
                    "in BEIR layout (see shared/data/README.md)")
    return root / name


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    return _dataset("scifact")


@pytest.fixture(scope="session")
def cranfield_dir() -> Path:
    return _dataset("cranfield")


@pytest.fixture(scope="session")
def cranfield(cranfield_dir):
    return load_beir(cranfield_dir)


@pytest.fixture(scope="session")
def scifact(scifact_dir):
    return load_beir(scifact_dir)
