import numpy as np
import pytest

from nudge_rag.core.metrics import evaluate_topk, parse_metric
from nudge_rag.errors import InputError

pytrec_eval = pytest.importorskip("pytrec_eval")


def random_run(seed, n_q=60, n_docs=50, k=20, graded=True):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_q, n_docs))
    topk = np.argsort(-scores, axis=1)[:, :k]
    rel = []
    for _ in range(n_q):
        m = int(rng.integers(1, 15))
        rows = rng.choice(n_docs, size=m, replace=False)
        rel.append({int(r): float(rng.integers(1, 4)) if graded else 1.0 for r in rows})
    return scores, topk, rel


def trec(scores, topk, rel, measures):
    qrel = {f"q{i}": {f"d{r}": int(g) for r, g in rr.items()} for i, rr in enumerate(rel)}
    run = {f"q{i}": {f"d{r}": float(scores[i, r]) for r in topk[i]} for i in range(len(topk))}
    return pytrec_eval.RelevanceEvaluator(qrel, measures).evaluate(run)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_ndcg_matches_pytrec_eval_graded(seed, k):
    scores, topk, rel = random_run(seed)
    ours = evaluate_topk(topk, rel, (f"ndcg@{k}",), n_rows=scores.shape[1])[f"ndcg@{k}"]
    res = trec(scores, topk, rel, {f"ndcg_cut.{k}"})
    ref = np.mean([v[f"ndcg_cut_{k}"] for v in res.values()])
    assert ours == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_recall_hit_mrr_match_pytrec_eval(seed, k):
    scores, topk, rel = random_run(seed, graded=False)
    got = evaluate_topk(topk, rel, (f"recall@{k}", f"hit@{k}", f"mrr@{k}"),
                        n_rows=scores.shape[1])
    res = trec(scores, topk[:, :k], rel, {f"recall.{k}", f"success.{k}", "recip_rank"})
    # trec_eval's recall divides by |Y|; the paper's by min(|Y|, k)
    recall = np.mean([res[f"q{i}"][f"recall_{k}"] * len(rel[i]) / min(len(rel[i]), k)
                      for i in range(len(rel))])
    assert got[f"recall@{k}"] == pytest.approx(recall, abs=1e-9)
    assert got[f"hit@{k}"] == pytest.approx(np.mean([v[f"success_{k}"] for v in res.values()]))
    assert got[f"mrr@{k}"] == pytest.approx(np.mean([v["recip_rank"] for v in res.values()]))


def test_recall_at_1_is_hit_at_1():
    scores, topk, rel = random_run(7)
    got = evaluate_topk(topk, rel, ("recall@1", "hit@1"), n_rows=scores.shape[1])
    assert got["recall@1"] == got["hit@1"]


@pytest.mark.parametrize("bad", ["ndcg", "precision@10", "ndcg@0", "ndcg@-1", 10, None])
def test_unknown_metric_is_rejected_with_the_valid_forms(bad):
    with pytest.raises(InputError, match="metric"):
        parse_metric(bad)


def test_metric_parsing_is_case_and_space_tolerant():
    assert parse_metric(" NDCG @ 10 ") == ("ndcg", 10)
