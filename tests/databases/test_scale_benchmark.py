"""Smoke test of ``benchmarks/databases.py`` at toy sizes: it builds pgvector HNSW tables,
fits in a separate process through the database only, and fits every size on the very same
questions (they ask about records every corpus shares)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pgserver")
pytest.importorskip("psycopg")
pytest.importorskip("pgvector")

ROOT = Path(__file__).resolve().parents[2]


def test_two_sizes_fit_on_the_same_questions(tmp_path):
    from benchmarks import synthetic

    small, large = synthetic.corpus(600, 32), synthetic.corpus(1500, 32)
    np.testing.assert_array_equal(small, large[:600])  # a larger corpus begins with a smaller

    keep = Path("/tmp") / f"nudge-pg-smoke-{tmp_path.name}"  # postgres cannot enter tmp_path
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "databases.py"), "600", "1500", "--dim",
         "32", "--train", "120", "--val", "30", "--keep", str(keep)],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True,
        text=True, timeout=300)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert [r["n"] for r in rows] == [600, 1500]
        for r in rows:
            assert r["moved"] == 120 and r["fit_s"] > 0 and 0 < r["peak_rss_mb"] < 1024
            assert r["ndcg10_after"] >= r["ndcg10_before"] - 1e-9
        with np.load(keep / "questions_600.npz") as a, np.load(keep / "questions_1500.npz") as b:
            for key in ("tq", "tr", "vq", "vr"):
                np.testing.assert_array_equal(a[key], b[key])
    finally:
        import shutil

        shutil.rmtree(keep, ignore_errors=True)
