"""Smoke test of the dense-label benchmark on Cranfield: nudge-rag, nudge-ft and the engine
of a given commit in one process (the old engine is loaded from git, here HEAD's own core)."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from nudge_rag.datasets import data_root

ROOT = data_root()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ROOT is None or not (ROOT / "cranfield" / "embeddings").is_dir(),
                       reason="shared Cranfield data with cached embeddings not found"),
    pytest.mark.skipif(importlib.util.find_spec("nudge") is None,
                       reason="nudge-ft is not installed (pip install nudge-rag[bench])"),
]


def test_dense_label_benchmark_runs_and_the_old_engine_agrees(capsys):
    from benchmarks import baseline_engine, dense_labels

    try:
        subprocess.run(["git", "-C", str(baseline_engine.ROOT), "rev-parse", "HEAD"],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the old engine cannot be extracted")
    dense_labels.main(["--problems", "cranfield", "--rounds", "1", "--baseline-ref", "HEAD",
                       "--data", str(ROOT)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| cranfield |")]
    assert len(rows) == 3  # NUDGE-N, NUDGE-M, and the sweep's facts
    assert all("| yes |" in row for row in rows[:2])  # same γ and test NDCG as HEAD's engine
    assert "metric-changing" in rows[2]
    # every timing was measured: a unit of work the engine stopped calling would show as nan
    assert "nan" not in out.lower()
