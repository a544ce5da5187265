"""The engine on real data (cached all-MiniLM-L6-v2 embeddings, the paper's 70/10/20 split)."""

import contextlib
import io

import numpy as np
import pytest

from nudge_rag import NudgeM, NudgeN
from nudge_rag.core.metrics import evaluate_topk
from nudge_rag.core.topk import topk_scan

#: the paper's protocol: γ chosen on the validation questions alone, no refit, no memory
PAPER = {"selection": "validation", "refit": False, "memory": False}


def heldout_ndcg(split, docs):
    _, rows = topk_scan(docs, split.test_q, 10)
    return evaluate_topk(rows, split.test_rel, ("ndcg@10",), n_rows=len(docs))["ndcg@10"]


def fit_eval(est, split):
    est.fit(split.doc_emb, split.train_q, split.train_rel, split.val_q, split.val_rel)
    return heldout_ndcg(split, est.transform(split.doc_emb))


# (γ, test NDCG@10) of the engine before the dense-label paths (commit f73073a, seed 0 split):
# the cost-based choice of evaluation must change neither
FIGURES = {
    ("scifact", "N"): (0.312, 0.8504363337897802),
    ("scifact", "M"): (0.2757847286904508, 0.8180359338047323),
    ("scifact", "N compat"): (0.32, 0.8504363337897802),
    ("scifact", "M compat"): (0.18181222138518907, 0.7906106843325984),
    ("cranfield", "N"): (0.16999999999999998, 0.4558850400655769),
    ("cranfield", "M"): (0.023602192458793796, 0.4037129517393827),
    ("cranfield", "N compat"): (0.18, 0.45409858975724615),
    ("cranfield", "M compat"): (0.16661318407247502, 0.43100051689179786),
}


@pytest.mark.parametrize("dataset, variant", sorted(FIGURES))
def test_gamma_and_test_ndcg_are_unchanged(request, dataset, variant):
    split = request.getfixturevalue(f"{dataset}_split")
    cls = NudgeN if variant.startswith("N") else NudgeM
    est = cls(**PAPER, nudge_ft_compat=variant.endswith("compat"))
    ndcg = fit_eval(est, split)
    gamma, expected = FIGURES[(dataset, variant)]
    assert est.gamma_ == pytest.approx(gamma, rel=1e-9)
    assert ndcg == pytest.approx(expected, abs=1e-6)


def test_scifact_figures(scifact_split):
    s = scifact_split
    assert len(s.train_rel) + len(s.val_rel) + len(s.test_rel) == 1109
    assert heldout_ndcg(s, s.doc_emb) == pytest.approx(0.629, abs=1e-3)
    assert fit_eval(NudgeN(**PAPER), s) >= 0.845
    assert fit_eval(NudgeM(**PAPER), s) >= 0.785


def test_cranfield_figures(cranfield_split):
    s = cranfield_split
    base = heldout_ndcg(s, s.doc_emb)
    assert base == pytest.approx(0.397, abs=1e-3)
    n = fit_eval(NudgeN(**PAPER), s)
    m = fit_eval(NudgeM(**PAPER), s)
    assert n >= 0.450
    assert m >= base and n >= base


@pytest.mark.parametrize("metric", ["ndcg@10", "recall@10", "mrr@10", "hit@1"])
def test_validation_never_gets_worse(cranfield_split, metric):
    s = cranfield_split
    for cls in (NudgeM, NudgeN):
        est = cls(metric=metric).fit(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel)
        assert est.report_["after"][metric] >= est.report_["before"][metric]


def test_matches_nudge_ft_on_scifact(scifact_split):
    """nudge-ft 0.1.2 (the paper's code) and our compatibility mode agree."""
    nudge = pytest.importorskip("nudge", reason="nudge-ft is not installed (bench extra)")
    s = scifact_split
    train = {"q_embs": s.train_q, "q_ans_indx": [sorted(r) for r in s.train_rel]}
    val = {"q_embs": s.val_q, "q_ans_indx": [sorted(r) for r in s.val_rel]}
    with contextlib.redirect_stdout(io.StringIO()):  # nudge-ft prints progress
        ref_m = nudge.NUDGEM(device="cpu").finetune_embeddings(s.doc_emb, train, val)
        ref_n = nudge.NUDGEN(device="cpu").finetune_embeddings(s.doc_emb, train, val)
    m = NudgeM(nudge_ft_compat=True).fit(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel)
    row = m.rows_[0]
    e_hat = s.doc_emb[row] / np.linalg.norm(s.doc_emb[row])
    assert m.gamma_ == pytest.approx(np.linalg.norm(ref_m[row] - e_hat), rel=1e-4)
    assert np.abs(m.transform(s.doc_emb) - ref_m).max() <= 1e-5
    n = NudgeN(nudge_ft_compat=True).fit(s.doc_emb, s.train_q, s.train_rel, s.val_q, s.val_rel)
    assert np.abs(n.transform(s.doc_emb) - ref_n).max() <= 1e-5


def default_top_k_ndcg(est, split):
    est.fit(split.doc_emb, split.train_q, split.train_rel, split.val_q, split.val_rel)
    rows, _ = est.top_k(split.doc_emb, split.test_q, 10)
    return evaluate_topk(rows, split.test_rel, ("ndcg@10",), n_rows=len(split.doc_emb))[
        "ndcg@10"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset, floor", [("scifact", 0.865), ("cranfield", 0.425)])
def test_defaults_beat_the_paper_protocol(request, dataset, floor):
    """Issue 13's defaults (cross-validated γ and α, refit, query memory) on the seed-0 paper
    split: above the issue's floor, never below the paper's protocol by more than 0.005,
    and above no change."""
    split = request.getfixturevalue(f"{dataset}_split")
    default = default_top_k_ndcg(NudgeN(), split)
    paper = FIGURES[(dataset, "N")][1]
    assert default >= floor
    assert default >= paper - 0.005
    assert default > heldout_ndcg(split, split.doc_emb)
