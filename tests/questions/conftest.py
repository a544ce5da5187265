"""Shared fixtures: the real BEIR folders (tests skip, saying why, when they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge_rag.datasets import load_beir
from tests.conftest import dataset_dir


def _dataset(name: str) -> Path:
    return dataset_dir(name)


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
