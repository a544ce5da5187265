"""Issue 13 on arrays: cross-validated choice of (γ, α), the refit, the query memory and
``top_k``, and the warm/cold split of a retrieval run."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag import InputError, NudgeM, NudgeN
from nudge_rag.core.metrics import evaluate_topk, warm_cold_report
from nudge_rag.core.topk import topk_scan

from ..conftest import clustered_problem
from .test_evaluation_paths import dense_problem

PAPER = {"selection": "validation", "refit": False, "memory": False}


def brute_top_k(est, docs, queries, k):
    """Every record scored in full: the nudged corpus of ``transform``, and for each moved
    record the better of that and ``alpha_`` times its best remembered question."""
    q = np.asarray(queries, dtype=np.float64)
    scores = q @ est.transform(docs).astype(np.float64).T
    mem = est.memory_
    if est.alpha_ > 0 and len(mem):
        dots = q @ mem.keys.T
        for col in np.unique(mem.col):
            best = dots[:, mem.key[mem.col == col]].max(axis=1)
            row = est.rows_[col]
            scores[:, row] = np.maximum(scores[:, row], est.alpha_ * best)
    return scores


def check_top_k(est, docs, queries, k):
    rows, scores = est.top_k(docs, queries, k)
    full = brute_top_k(est, docs, queries, k)
    kk = min(k, len(docs))
    for i in range(len(queries)):
        # the scores are the records' scores, best first
        np.testing.assert_allclose(scores[i, :kk], full[i, rows[i, :kk]], atol=1e-9)
        assert np.all(np.diff(scores[i, :kk]) <= 1e-12)
        # nothing left out scores above the k-th
        left = np.setdiff1d(np.arange(len(docs)), rows[i, :kk])
        if len(left):
            assert full[i, left].max() <= scores[i, kk - 1] + 1e-9
        # records that tie exactly come by row
        same = np.diff(scores[i, :kk]) == 0
        assert np.all(np.diff(rows[i, :kk])[same] > 0)
    assert np.all(rows[:, kk:] == -1) and np.all(scores[:, kk:] == -np.inf)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), memory=st.booleans(), k=st.sampled_from([1, 5, 40]),
       dup=st.booleans())
def test_top_k_equals_brute_force(seed, memory, k, dup):
    rng = np.random.default_rng(seed)
    docs, tq, tr, vq, vr = clustered_problem(seed % 50, n=30, d=6, n_train=24, n_val=8,
                                             multi=True)
    if dup:  # duplicate records and a repeated question: scores that tie exactly
        docs = np.concatenate([docs, docs[:3]])
        tq = np.concatenate([tq, tq[:2]])
        tr = tr + [{len(docs) - 1: 1.0, len(docs) - 2: 1.0}, tr[1]]
    est = NudgeN(memory=memory, folds=3, seed=int(rng.integers(5))).fit(docs, tq, tr, vq, vr)
    queries = np.concatenate([vq, tq[:4] + 0.01 * rng.standard_normal((4, tq.shape[1]))])
    check_top_k(est, docs, queries, k)


def test_memory_ties_go_to_the_lower_row():
    docs, tq, tr, vq, vr = clustered_problem(3, n=60, d=8, n_train=30, n_val=10)
    # one training question names three records: a question close to it ties them all
    tr = [{5: 1.0, 17: 1.0, 40: 1.0}] + tr[1:]
    est = NudgeN(gamma=0.0, alpha=1.0, refit=False, selection="validation").fit(
        docs, tq, tr, vq, vr)
    rows, scores = est.top_k(docs, tq[:1], 3)
    assert rows[0].tolist() == [5, 17, 40]
    assert scores[0, 0] == scores[0, 1] == scores[0, 2]


def test_without_memory_top_k_ranks_the_transformed_corpus():
    docs, tq, tr, vq, vr = clustered_problem(4)
    for est in (NudgeN(memory=False).fit(docs, tq, tr, vq, vr),
                NudgeM(memory=False).fit(docs, tq, tr, vq, vr),
                NudgeN(**PAPER).fit(docs, tq, tr, vq, vr)):
        assert est.alpha_ == 0 and len(est.memory_) == 0
        rows, scores = est.top_k(docs, vq, 10)
        want_s, want_r = topk_scan(est.transform(docs).astype(np.float64), vq, 10)
        np.testing.assert_array_equal(rows, want_r)
        np.testing.assert_allclose(scores, want_s, atol=1e-9)


@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
@pytest.mark.parametrize("problem", ["sparse", "dense"])
def test_the_validation_estimate_is_what_top_k_retrieves(cls, problem):
    # memory scores tie (every record a key names shares its score): the estimate must rank
    # them as top_k does, or it flatters memory
    docs, tq, tr, vq, vr = (clustered_problem(6, multi=True) if problem == "sparse" else
                            dense_problem(4, n_topics=4, per_topic=30, d=12, n_train=100,
                                          n_val=30))
    est = cls(selection="validation", refit=False).fit(docs, tq, tr, vq, vr)
    rows, _ = est.top_k(docs, vq, 10)
    got = evaluate_topk(rows, vr, ("ndcg@10",), n_rows=len(docs))["ndcg@10"]
    assert est.report_["after"]["ndcg@10"] == pytest.approx(got, abs=1e-12)


def test_default_fit_refits_remembers_and_reports_the_cross_validated_estimate():
    docs, tq, tr, vq, vr = clustered_problem(8, multi=True)
    est = NudgeN().fit(docs, tq, tr, vq, vr)
    report = est.report_
    assert report["selection"] == "cv" and report["estimate"] == "cross-validated"
    assert report["refit"] and report["folds"] == 5
    assert report["n_questions"] == len(tq) + len(vq)  # every question held out once
    assert report["warm"]["n_questions"] + report["cold"]["n_questions"] == len(tq) + len(vq)
    assert set(report["validation"]) == {"before", "after"}
    assert set(est.rows_) == {r for rel in tr + vr for r in rel}
    assert report["n_memory_questions"] == (len(tq) + len(vq) if est.alpha_ > 0 else 0)
    assert report["after"]["ndcg@10"] >= report["before"]["ndcg@10"]
    off = NudgeN(memory=False).fit(docs, tq, tr, vq, vr)
    assert off.alpha_ == 0 and off.report_["n_memory_questions"] == 0


def test_cross_validation_without_validation_questions():
    docs, tq, tr, _, _ = clustered_problem(9)
    for cls in (NudgeN, NudgeM):
        est = cls().fit(docs, tq, tr)
        assert est.report_["n_val_questions"] == 0 and "validation" not in est.report_
        assert est.report_["n_questions"] == len(tq)
        assert est.report_["after"]["ndcg@10"] > est.report_["before"]["ndcg@10"]


@pytest.mark.parametrize("n_val", [1, 2, 3])
def test_tiny_validation_sets(n_val):
    docs, tq, tr, vq, vr = clustered_problem(10)
    for kw in ({}, {"selection": "validation"}, PAPER):
        est = NudgeN(**kw).fit(docs, tq, tr, vq[:n_val], vr[:n_val])
        assert est.report_["n_val_questions"] == n_val
        rows, _ = est.top_k(docs, vq, 10)
        assert rows.shape == (len(vq), 10)


def test_many_relevant_records_per_question():
    docs, tq, tr, vq, vr = dense_problem(6, n_topics=4, per_topic=30, d=12, n_train=80,
                                         n_val=20, rel=(15, 30))
    for cls in (NudgeN, NudgeM):
        est = cls().fit(docs, tq, tr, vq, vr)
        check_top_k(est, docs, vq, 10)
        assert est.report_["after"]["ndcg@10"] <= 1.0


def test_groups_keep_repeated_questions_in_one_fold():
    docs, tq, tr, vq, vr = clustered_problem(11)
    # every training question asked twice: with groups the copies share a fold
    tq2, tr2 = np.concatenate([tq, tq]), tr + tr
    groups = np.r_[np.arange(len(tq)), np.arange(len(tq))]
    by_groups = NudgeN().fit(docs, tq2, tr2, vq, vr, groups=groups)
    by_cosine = NudgeN().fit(docs, tq2, tr2, vq, vr)  # the same grouping, found by cosine
    assert (by_groups.gamma_, by_groups.alpha_) == (by_cosine.gamma_, by_cosine.alpha_)
    assert by_groups.report_ == by_cosine.report_


def test_fit_transform_takes_the_groups_fit_takes():
    docs, tq, tr, vq, vr = clustered_problem(12)
    # copies in different groups land in different folds: each fold's copy leaks its twin's
    # answer, and the folds then see a gain that a grouped choice does not
    tq2, tr2 = np.concatenate([tq, tq]), tr + tr
    split = np.arange(2 * len(tq))
    nudged = NudgeN().fit_transform(docs, tq2, tr2, vq, vr, groups=split)
    want = NudgeN().fit(docs, tq2, tr2, vq, vr, groups=split)
    np.testing.assert_array_equal(nudged, want.transform(docs))
    grouped = NudgeN().fit(docs, tq2, tr2, vq, vr, groups=np.r_[split[:len(tq)], split[:len(tq)]])
    assert want.report_["after"]["ndcg@10"] > grouped.report_["after"]["ndcg@10"]


@pytest.mark.parametrize("param, value, pattern", [
    ("selection", "both", "selection='both'"),
    ("folds", 1, "folds=1"),
    ("folds", 2.5, "folds=2.5"),
    ("folds", True, "folds=True"),
    ("refit", "yes", "refit='yes'"),
    ("memory", 1, "memory=1"),
    ("alpha", -0.5, "alpha=-0.5"),
    ("alpha", float("nan"), "alpha=nan"),
])
def test_bad_parameters_name_the_argument(param, value, pattern):
    docs, tq, tr, vq, vr = clustered_problem(12)
    with pytest.raises(InputError, match=pattern):
        NudgeN(**{param: value}).fit(docs, tq, tr, vq, vr)


def test_few_training_questions_get_fewer_folds():
    docs, tq, tr, vq, vr = clustered_problem(12)
    # three distinct questions: three folds rather than an error
    assert NudgeN().fit(docs, tq[:3], tr[:3], vq, vr).report_["folds"] == 3
    # the same question three times is one group: no fold can hold it out alone, so the
    # validation questions choose by themselves, and without them nothing can
    same = np.repeat(tq[:1], 3, axis=0)
    est = NudgeN().fit(docs, same, tr[:1] * 3, vq, vr)
    assert est.report_["folds"] == 0 and est.report_["estimate"] == "validation"
    with pytest.raises(InputError, match="no held-out questions"):
        NudgeN().fit(docs, same, tr[:1] * 3)
    with pytest.raises(InputError, match="groups"):
        NudgeN().fit(docs, tq, tr, vq, vr, groups=[0, 1])


def test_warm_cold_report_splits_the_questions():
    top = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    rel = [[0], [9], [7, 12]]
    out = warm_cold_report(top, rel, named_rows=[0, 12], n_rows=13)
    assert out["warm"]["n_questions"] == 2 and out["cold"]["n_questions"] == 1
    assert out["cold"]["ndcg@10"] == 0.0
    assert out["all"]["ndcg@10"] == pytest.approx(
        evaluate_topk(top, rel, ("ndcg@10",), n_rows=13)["ndcg@10"])
    w = evaluate_topk(top[[0, 2]], [rel[0], rel[2]], ("ndcg@10",), n_rows=13)["ndcg@10"]
    assert out["warm"]["ndcg@10"] == pytest.approx(w)
    none = warm_cold_report(top, rel, named_rows=[], n_rows=13)
    assert none["warm"] == {"n_questions": 0, "ndcg@10": None}
