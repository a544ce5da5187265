"""The benchmark's own ruler: metrics against pytrec_eval and the engine, closed forms of the
γ curves against the engine and nudge-ft, and the Adaptor's starting point."""

from __future__ import annotations

import contextlib
import importlib.util
import io

import numpy as np
import pytest

from benchmarks.evaluate import evaluate, top_k
from benchmarks.gamma_curve import nudge_m_rows, nudge_n_rows, summed_questions


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _problem(seed=0, n_docs=60, n_q=25, dim=8, graded=True):
    rng = np.random.default_rng(seed)
    docs = _unit(rng.normal(size=(n_docs, dim))).astype(np.float32)
    questions = rng.normal(size=(n_q, dim)).astype(np.float32)
    rel = []
    for _ in range(n_q):
        rows = rng.choice(n_docs, size=rng.integers(1, 6), replace=False)
        rel.append({int(r): float(rng.integers(1, 4)) if graded else 1.0 for r in rows})
    return docs, questions, rel


def _brute_force(questions, docs, rel, k=10):
    scores = questions @ docs.T
    ndcg, r1, rk = [], [], []
    for i, labels in enumerate(rel):
        order = np.argsort(-scores[i], kind="stable")
        gains = np.array([labels.get(int(r), 0.0) for r in order[:k]])
        disc = 1 / np.log2(np.arange(2, k + 2))
        ideal = np.sort(list(labels.values()))[::-1][:k]
        ndcg.append((gains * disc[:len(gains)]).sum() / (ideal * disc[:len(ideal)]).sum())
        r1.append(float(int(order[0]) in labels))
        rk.append(sum(int(r) in labels for r in order[:k]) / min(len(labels), k))
    return {"ndcg@10": np.mean(ndcg), "recall@1": np.mean(r1), "recall@10": np.mean(rk)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_a_brute_force_reading_of_the_definitions(seed):
    docs, questions, rel = _problem(seed)
    got = evaluate(questions, docs, rel)
    want = _brute_force(questions, docs, rel)
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-12), name


@pytest.mark.skipif(importlib.util.find_spec("pytrec_eval") is None,
                    reason="pytrec-eval-terrier not installed (dev extra)")
def test_ndcg_matches_pytrec_eval_with_grades():
    import pytrec_eval

    docs, questions, rel = _problem(3)
    scores = questions @ docs.T
    run = {str(i): {str(j): float(scores[i, j]) for j in range(len(docs))}
           for i in range(len(questions))}
    qrels = {str(i): {str(r): int(g) for r, g in labels.items()} for i, labels in enumerate(rel)}
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(run)
    expected = np.mean([v["ndcg_cut_10"] for v in trec.values()])
    assert evaluate(questions, docs, rel)["ndcg@10"] == pytest.approx(expected, abs=1e-9)


def test_metrics_match_the_engine_when_it_exists():
    metrics = pytest.importorskip("nudge_rag.core.metrics")
    docs, questions, rel = _problem(4)
    ranked = top_k(questions, docs, 10)
    engine = metrics.evaluate_topk(ranked, rel, ("ndcg@10", "recall@1", "recall@10"),
                                   n_rows=len(docs))
    ours = evaluate(questions, docs, rel)
    for name, value in engine.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


def test_top_k_is_best_first_by_inner_product():
    docs, questions, _ = _problem(5)
    docs = docs * np.linspace(0.5, 2.0, len(docs))[:, None]   # not unit-norm, like NUDGE-M
    ranked = top_k(questions, docs, 7)
    full = np.argsort(-(questions @ docs.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ranked, full)


def test_nudge_n_closed_form_stays_on_the_sphere_and_inside_the_cap():
    docs, questions, rel = _problem(6)
    rows, g = summed_questions(questions, [list(r) for r in rel])
    for gamma in (0.0, 0.1, 0.3, 1.0, 3.9):
        moved = nudge_n_rows(docs[rows], g, gamma)
        np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-6)
        assert (((moved - docs[rows]) ** 2).sum(axis=1) <= gamma + 1e-6).all()


def test_closed_forms_match_the_engine_at_a_fixed_gamma():
    nudge_rag = pytest.importorskip("nudge_rag")
    try:
        estimators = {"N": nudge_rag.NudgeN, "M": nudge_rag.NudgeM}
    except AttributeError:
        pytest.skip("engine (nudge_rag.core.estimators) not on this branch")
    docs, questions, rel = _problem(7)
    rows, g = summed_questions(questions, rel)
    for variant, cls in estimators.items():
        est = cls(gamma=0.3).fit(docs, questions, rel)
        new = est.transform(docs)
        ours = (nudge_n_rows(docs[rows], g, 0.3) if variant == "N"
                else nudge_m_rows(docs[rows], g, 0.3))
        np.testing.assert_allclose(new[rows], ours, atol=1e-5, err_msg=variant)


@pytest.mark.skipif(importlib.util.find_spec("nudge") is None or
                    importlib.util.find_spec("torch") is None,
                    reason="nudge-ft (bench extra) not installed")
def test_closed_forms_match_nudge_ft_at_a_fixed_gamma():
    from nudge import NUDGEM, NUDGEN

    docs, questions, rel = _problem(8)
    lists = [list(r) for r in rel]
    train = {"q_embs": questions, "q_ans_indx": lists}
    rows, g = summed_questions(questions, lists)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_n = NUDGEN().finetune_embeddings(docs, train, train, gamma=0.3)
        ref_m = NUDGEM().finetune_embeddings(docs, train, train, gamma=0.3)
    np.testing.assert_allclose(ref_n[rows], nudge_n_rows(docs[rows], g, 0.3, skip_opposed=True),
                               atol=1e-5)
    np.testing.assert_allclose(ref_m[rows], nudge_m_rows(docs[rows], g, 0.3), atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_adaptor_starts_at_the_identity_and_keeps_the_best_map():
    from benchmarks.adaptor import AdaptorConfig, fit_adaptor

    docs, questions, rel = _problem(9, n_q=40)
    train, val = [list(r) for r in rel[:30]], rel[30:]
    untouched = fit_adaptor(docs, questions[:30], train, questions[30:], val,
                            AdaptorConfig(max_steps=0))
    np.testing.assert_array_equal(untouched.matrix, np.eye(docs.shape[1]))
    trained = fit_adaptor(docs, questions[:30], train, questions[30:], val,
                          AdaptorConfig(max_steps=30, eval_every=5))
    assert trained.best_val_hit1 == max(score for _, score in trained.history)
    assert trained.best_val_hit1 >= untouched.best_val_hit1
