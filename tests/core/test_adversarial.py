"""Problem shapes chosen to break the γ search, checked against brute force.

Brute force here means: transform the corpus with the fitted γ, score every record for every
validation question with numpy, rank each relevant record (ties in its favour, as the engine
counts them) and compute the metric from those ranks. Nothing below reuses the engine's
ranking or metric code.
"""

import numpy as np
import pytest

from nudge_rag import NudgeM
from nudge_rag.core.gamma_search import sweep_linear

from .test_evaluation_paths import build

#: the paper's protocol, whose exact sweep these problems attack
PAPER = {"selection": "validation", "refit": False, "memory": False}


# -- brute force ---------------------------------------------------------------------------
def brute_metric(vectors, val_q, val_rel, metric):
    """``metric`` of ``val_q`` over ``vectors`` (every record scored, inner product)."""
    name, k = metric.split("@")
    k = int(k)
    scores = np.asarray(val_q, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    values = []
    for qi, rel in enumerate(val_rel):
        rel = rel if isinstance(rel, dict) else dict.fromkeys(rel, 1.0)
        ranks = {r: 1 + int(np.sum(scores[qi] > scores[qi, r])) for r in rel}
        hits = [r for r in rel if ranks[r] <= k]
        if name == "ndcg":
            ideal = sorted(rel.values(), reverse=True)[:k]
            idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
            values.append(sum(rel[r] / np.log2(ranks[r] + 1) for r in hits) / idcg)
        elif name == "recall":
            values.append(len(hits) / min(len(rel), k))
        elif name == "hit":
            values.append(float(bool(hits)))
        else:  # mrr
            values.append(1.0 / min(ranks[r] for r in hits) if hits else 0.0)
    return float(np.mean(values))


# -- many score lines meeting at one γ -------------------------------------------------------
def star(seed, n_up=3, n_down=3, unmoved=0):
    """One validation question ``e1`` whose relevant record ``r`` scores ``0.5 γ``; rivals
    score ``a + b γ`` with ``a + b = 0.5``, so every line meets r's at γ = 1 exactly: rivals
    with ``b < 0.5`` fall below r there, those with ``b > 0.5`` rise above it (``unmoved``
    more rivals stay at 0.5). r is first at γ = 1 itself and on no interval around it; the
    computed crossings of the different lines differ in the last bits."""
    rng = np.random.default_rng(seed)
    d = 4

    def unit(a):  # a unit vector whose product with e1 is a
        v = rng.standard_normal(d)
        v[0] = 0.0
        return a * np.eye(d)[0] + np.sqrt(1.0 - a * a) * v / np.linalg.norm(v)

    slopes = np.r_[rng.uniform(-0.4, 0.45, n_up), rng.uniform(0.55, 0.95, n_down)]
    docs = np.array([unit(0.0), *(unit(0.5 - b) for b in slopes), *[unit(0.5)] * unmoved])
    # each moved record has one training question of its own, which sets its direction Ĝ
    train_q = np.array([unit(0.5), *(unit(b) for b in slopes)])
    return docs, train_q, [[i] for i in range(len(train_q))], np.eye(d)[:1], [[0]]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("metric", ["hit@1", "mrr@3"])
def test_lines_meeting_at_one_gamma_make_no_interval(seed, metric):
    """Crossings of one γ computed a few bits apart used to leave a sliver between them
    where r counted as first: the sweep chose that γ (the tie point), reported a gain the
    transformed vectors do not have, or not, depending on rounding."""
    problem = star(seed, unmoved=seed % 2)
    est = NudgeM(metric=metric, **PAPER).fit(*problem)
    assert est.gamma_ == 0.0
    assert est.report_["after"][metric] == est.report_["before"][metric] == 0.0
    docs, *_, val_q, val_rel = problem
    assert brute_metric(est.transform(docs), val_q, val_rel, metric) == 0.0
    vp = build(problem)
    for filtered, budget in ((False, 10**9), (False, 0), (True, 0)):
        assert sweep_linear(vp, metric, filter_lines=filtered, event_budget=budget).gamma == 0


@pytest.mark.parametrize("seed", range(6))
def test_a_real_interval_beats_a_tie_point(seed):
    """The star's tie point next to a real gain of the same size: a second question whose
    record overtakes its rival for good at γ = 1.598. The sweep must pick a γ on that real
    interval (the tie point used to win as the smaller γ), and what it reports is what the
    transformed vectors score."""
    docs, train_q, train_rel, val_q, val_rel = star(seed)
    pad = np.zeros((len(docs), 3))
    docs, train_q = np.c_[docs, pad], np.c_[train_q, pad[:len(train_q)]]
    e4, e5, e6 = np.eye(7)[4:]
    # question e4: record s scores 0.2 + 0.5 γ (moved along g), rival t stays at 0.999
    s, t, g = 0.2 * e4 + np.sqrt(0.96) * e5, 0.999 * e4 + np.sqrt(1 - 0.999**2) * e6, \
        0.5 * e4 + np.sqrt(0.75) * e6
    docs = np.r_[docs, [s, t]]
    train_q, train_rel = np.r_[train_q, [g]], [*train_rel, [len(docs) - 2]]
    val_q, val_rel = np.r_[np.c_[val_q, np.zeros((1, 3))], [e4]], [*val_rel, [len(docs) - 2]]
    est = NudgeM(metric="hit@1", **PAPER).fit(docs, train_q, train_rel, val_q, val_rel)
    assert est.gamma_ == pytest.approx(1.5 * 0.799 / 0.5)  # the open end: 1.5 × its start
    assert est.report_["after"]["hit@1"] == 0.5
    assert brute_metric(est.transform(docs), val_q, val_rel, "hit@1") == 0.5
