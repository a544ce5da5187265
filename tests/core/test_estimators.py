"""NudgeM / NudgeN on arrays: γ search against brute force, properties, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag import InputError, NotFittedError, NudgeM, NudgeN
from nudge_rag.core import topk as topk_module
from nudge_rag.core.metrics import evaluate_topk
from nudge_rag.core.topk import topk_scan

from ..conftest import clustered_problem

#: the paper's protocol: γ chosen on the validation questions alone, no refit, no memory
PAPER = {"selection": "validation", "refit": False, "memory": False}


def brute_metric(est_cls, gamma, docs, tq, tr, vq, vr, metric, **kw):
    """Validation metric at a fixed γ, by materialising the corpus and a full search."""
    est = est_cls(gamma=gamma, **{**PAPER, **kw}).fit(docs, tq, tr)
    new = est.transform(docs)
    _, rows = topk_scan(new, vq, 20)
    return evaluate_topk(rows, vr, (metric,), n_rows=len(docs))[metric]


@pytest.mark.parametrize("metric", ["ndcg@10", "hit@1", "recall@5", "mrr@10"])
@pytest.mark.parametrize("seed", [0, 1])
def test_nudge_m_gamma_is_never_beaten_by_a_dense_grid(metric, seed):
    docs, tq, tr, vq, vr = clustered_problem(seed, multi=seed == 1)
    est = NudgeM(metric=metric, **PAPER).fit(docs, tq, tr, vq, vr)
    chosen = brute_metric(NudgeM, est.gamma_, docs, tq, tr, vq, vr, metric)
    assert chosen == pytest.approx(est.report_["after"][metric], abs=1e-12)
    grid = np.r_[np.linspace(0, 2, 201), [3, 5, 10]]
    best_grid = max(brute_metric(NudgeM, g, docs, tq, tr, vq, vr, metric) for g in grid)
    assert best_grid <= chosen + 1e-12
    assert chosen >= est.report_["before"][metric] - 1e-12


@pytest.mark.parametrize("metric", ["ndcg@10", "hit@1", "mrr@5"])
def test_nudge_n_report_matches_brute_force_and_beats_its_grid(metric):
    docs, tq, tr, vq, vr = clustered_problem(3, multi=True)
    est = NudgeN(metric=metric, **PAPER).fit(docs, tq, tr, vq, vr)
    for key, gamma in (("after", est.gamma_), ("before", 0.0)):
        brute = brute_metric(NudgeN, gamma, docs, tq, tr, vq, vr, metric)
        assert est.report_[key][metric] == pytest.approx(brute, abs=1e-12)
    grid_best = max(brute_metric(NudgeN, g, docs, tq, tr, vq, vr, metric)
                    for g in np.arange(0, 0.49, 0.02))
    assert est.report_["after"][metric] >= grid_best - 1e-12
    # the search curve holds what was tried, the chosen γ among them
    assert est.gamma_ in est.search_.curve_gamma


def test_nudge_helps_on_a_realistic_problem():
    docs, tq, tr, vq, vr = clustered_problem(5)
    for cls in (NudgeM, NudgeN):
        est = cls(**PAPER).fit(docs, tq, tr, vq, vr)
        assert est.gamma_ > 0
        assert est.report_["after"]["ndcg@10"] > est.report_["before"]["ndcg@10"] + 0.05
        # the default moves records or remembers questions (or both), and gains too
        est = cls().fit(docs, tq, tr, vq, vr)
        assert est.gamma_ > 0 or est.alpha_ > 0
        assert est.report_["after"]["ndcg@10"] > est.report_["before"]["ndcg@10"] + 0.05


def test_ties_go_to_zero_when_nothing_helps():
    # validation questions whose answers no training question names cannot improve
    docs, tq, tr, vq, vr = clustered_problem(6)
    named = {r for rel in tr for r in rel}
    free = [r for r in range(len(docs)) if r not in named][: len(vq)]
    vq = docs[free] + 0.01
    vr = [[r] for r in free]
    est = NudgeN().fit(docs, tq, tr, vq, vr)
    m = NudgeM().fit(docs, tq, tr, vq, vr)
    assert est.report_["after"]["ndcg@10"] >= est.report_["before"]["ndcg@10"]
    assert m.report_["after"]["ndcg@10"] >= m.report_["before"]["ndcg@10"]
    assert est.gamma_ == 0.0 or est.report_["after"]["ndcg@10"] > est.report_["before"][
        "ndcg@10"]


# -- properties ----------------------------------------------------------------------------

problems = st.builds(clustered_problem, seed=st.integers(0, 10_000), n=st.integers(30, 80),
                     d=st.integers(3, 8), n_train=st.integers(5, 30), n_val=st.integers(3, 10),
                     multi=st.booleans())


@settings(max_examples=25, deadline=None)
@given(problems, st.sampled_from([NudgeM, NudgeN]))
def test_records_without_questions_never_move(problem, cls):
    docs, tq, tr, vq, vr = problem
    est = cls().fit(docs, tq, tr, vq, vr)
    out = est.transform(docs)
    named = sorted({r for rel in tr + vr for r in rel})  # the refit: every labelled question
    assert list(est.rows_) == named
    still = np.setdiff1d(np.arange(len(docs)), est.rows_)
    np.testing.assert_allclose(out[still], docs[still] / np.linalg.norm(docs[still], axis=1,
                                                                         keepdims=True))


@settings(max_examples=25, deadline=None)
@given(problems, st.sampled_from([NudgeM, NudgeN]))
def test_gamma_zero_is_the_identity(problem, cls):
    docs, tq, tr, _, _ = problem
    out = cls(gamma=0.0).fit(docs * 3.0, tq, tr).transform(docs * 3.0)
    np.testing.assert_allclose(out, docs, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(problems)
def test_nudge_n_output_is_unit_norm(problem):
    docs, tq, tr, vq, vr = problem
    out = NudgeN().fit(docs, tq, tr, vq, vr).transform(docs)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(problems, st.floats(0.01, 100))
def test_scaling_questions_leaves_nudge_n_unchanged(problem, factor):
    docs, tq, tr, vq, vr = problem
    a = NudgeN().fit(docs, tq, tr, vq, vr)
    b = NudgeN().fit(docs, tq * factor, tr, vq * factor, vr)
    assert a.gamma_ == b.gamma_
    np.testing.assert_allclose(a.vectors_, b.vectors_, atol=1e-6)


# -- inputs --------------------------------------------------------------------------------

def test_dtypes_and_norms_mix_freely():
    docs, tq, tr, vq, vr = clustered_problem(8)
    ref = NudgeN().fit(docs, tq, tr, vq, vr)
    mixed = NudgeN().fit((docs * 7).astype(np.float16), tq.astype(np.float32), tr,
                         vq.astype(np.float64), vr)
    assert mixed.gamma_ == pytest.approx(ref.gamma_)
    np.testing.assert_allclose(mixed.vectors_, ref.vectors_, atol=2e-3)
    out = mixed.transform(docs.astype(np.float32))
    assert out.dtype == np.float32


def test_graded_dict_relevance_and_duplicate_rows():
    docs, tq, tr, vq, vr = clustered_problem(9, multi=True)
    as_lists = [list(r) + list(r)[:1] for r in tr]  # a repeated row counts once
    a = NudgeN(gamma=0.2).fit(docs, tq, as_lists)
    b = NudgeN(gamma=0.2).fit(docs, tq, [{r: 1.0 for r in rel} for rel in tr])
    np.testing.assert_array_equal(a.rows_, b.rows_)
    np.testing.assert_allclose(a.vectors_, b.vectors_)
    # grade ≤ 0 means "not relevant"
    c = NudgeN(gamma=0.2).fit(docs, tq, [{**rel, 0: 0.0} for rel in tr])
    assert (0 in c.rows_) == any(0 in rel for rel in tr)


def test_blocked_scan_equals_single_block(monkeypatch):
    docs, tq, tr, vq, vr = clustered_problem(10, n=3000)
    whole = NudgeN().fit(docs, tq, tr, vq, vr)
    monkeypatch.setattr(topk_module, "_SCORE_BUDGET", 1)  # 1024-row blocks
    blocked = NudgeN().fit(docs, tq, tr, vq, vr)
    assert blocked.gamma_ == whole.gamma_
    assert blocked.report_ == whole.report_


def test_torch_backend_gives_the_same_top_k():
    pytest.importorskip("torch")
    docs, _, _, vq, _ = clustered_problem(11, n=2500)
    exclude = np.zeros(len(docs), dtype=bool)
    exclude[::7] = True
    scale = 1.0 / np.linalg.norm(docs, axis=1)
    s1, r1 = topk_scan(docs, vq, 10, row_scale=scale, exclude=exclude)
    s2, r2 = topk_module._topk_scan_torch(docs, vq, 10, scale, exclude, "cpu")
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2, atol=1e-12)


def test_top_k_larger_than_candidates_is_padded():
    docs = np.eye(3)
    s, r = topk_scan(docs, np.ones((2, 3)), 5, exclude=np.array([True, False, False]))
    assert r.tolist() == [[1, 2, -1, -1, -1]] * 2 or r.tolist() == [[2, 1, -1, -1, -1]] * 2
    assert np.all(np.isinf(s[:, 2:]))


def test_cuda_without_a_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    docs, tq, tr, vq, vr = clustered_problem(12)
    with pytest.raises(InputError, match="device='cpu'"):
        NudgeN(device="cuda").fit(docs, tq, tr, vq, vr)


def test_get_set_params_and_repr():
    est = NudgeN(metric="hit@1")
    assert est.get_params()["metric"] == "hit@1"
    assert est.set_params(gamma=0.1) is est and est.gamma == 0.1
    assert "NudgeN(" in repr(est)
    with pytest.raises(InputError, match="no parameter"):
        est.set_params(beta=1)


def test_fit_twice_replaces_the_first_fit():
    docs, tq, tr, vq, vr = clustered_problem(13)
    est = NudgeN().fit(docs, tq, tr, vq, vr)
    est.fit(docs, tq[:10], tr[:10], vq, vr)
    # the refit moves the records that the training and validation questions name
    assert set(est.rows_) == {r for rel in tr[:10] + vr for r in rel}
    est.set_params(refit=False).fit(docs, tq[:10], tr[:10], vq, vr)
    assert set(est.rows_) == {r for rel in tr[:10] for r in rel}


@pytest.mark.parametrize("case, pattern", [
    ("wrong_ndim", "doc_emb must be 2-D"),
    ("dim_mismatch", "train_q has dimension"),
    ("nan", "NaN or inf"),
    ("zero_doc", "zero norm"),
    ("zero_question", "val_q row 0 has zero norm"),
    ("row_out_of_range", "outside 0"),
    ("empty_train", "train_q is empty"),
    ("empty_val", "val_q is empty"),
    ("val_without_answer", r"val_rel\[1\] has no relevant record"),
    ("unknown_metric", "metric='precision@3'"),
    ("rel_length", "one relevance entry per question"),
    ("no_val", "val_q and val_rel are needed"),
    ("bad_grade", "not a number"),
    ("negative_gamma", "gamma=-1"),
    ("strings", "must hold real numbers"),
])
def test_bad_input_names_the_argument_and_the_fix(case, pattern):
    docs, tq, tr, vq, vr = clustered_problem(14)
    kw = {}
    if case == "wrong_ndim":
        docs = docs[0]
    elif case == "dim_mismatch":
        tq = tq[:, :5]
    elif case == "nan":
        docs = docs.copy()
        docs[3, 2] = np.nan
    elif case == "zero_doc":
        docs = docs.copy()
        docs[4] = 0
    elif case == "zero_question":
        vq = vq.copy()
        vq[0] = 0
    elif case == "row_out_of_range":
        tr = [[len(docs) + 5]] + tr[1:]
    elif case == "empty_train":
        tq, tr = tq[:0], []
    elif case == "empty_val":
        vq, vr = vq[:0], []
    elif case == "val_without_answer":
        vr = [vr[0], []] + vr[2:]
    elif case == "unknown_metric":
        kw["metric"] = "precision@3"
    elif case == "rel_length":
        tr = tr[:-1]
    elif case == "no_val":
        vq = vr = None
        kw["selection"] = "validation"
    elif case == "bad_grade":
        tr = [{0: "high"}] + tr[1:]
    elif case == "negative_gamma":
        kw["gamma"] = -1
    elif case == "strings":
        docs = np.array([["a", "b"]])
    with pytest.raises(InputError, match=pattern):
        NudgeN(**kw).fit(docs, tq, tr, vq, vr)


def test_transform_before_fit_and_on_the_wrong_records():
    docs, tq, tr, vq, vr = clustered_problem(15)
    with pytest.raises(NotFittedError, match="fit"):
        NudgeN().transform(docs)
    est = NudgeN().fit(docs, tq, tr, vq, vr)
    with pytest.raises(InputError, match="dimension"):
        est.transform(docs[:, :4])
    with pytest.raises(InputError, match="rows"):
        est.transform(docs[:5])


def test_inputs_are_not_mutated():
    docs, tq, tr, vq, vr = clustered_problem(16)
    copies = [docs.copy(), tq.copy(), vq.copy()]
    rel_copy = [dict(r) for r in tr]
    NudgeM().fit(docs, tq, tr, vq, vr).transform(docs)
    for a, b in zip(copies, (docs, tq, vq)):
        np.testing.assert_array_equal(a, b)
    assert rel_copy == tr
