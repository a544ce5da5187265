"""Fixtures of the reliability suite: a small real project for the command line."""

from __future__ import annotations

import shutil

import pytest

from .helpers import run


@pytest.fixture(scope="session")
def project(demo_dir, tmp_path_factory):
    """A small real demo run (offline model): index, questions and delta to build on. Its
    validation questions are all answered at rank 1 already, so the demo chooses γ = 0; the
    delta is fitted again here with a fixed γ, so that records move (and with the questions
    embedded by ``fit`` itself, so that it records the model's probe)."""
    out = tmp_path_factory.mktemp("project") / "run"
    shutil.copytree(demo_dir, out)
    assert run("fit", out / "index", out / "train.jsonl", "-o", out / "delta", "--gamma", 0.2,
               "--overwrite", "--no-progress") == 0
    return out


@pytest.fixture
def work(project, tmp_path):
    """A private copy of the tiny project, free to change."""
    dst = tmp_path / "run"
    shutil.copytree(project, dst)
    return dst
