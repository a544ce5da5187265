"""The γ search's evaluation paths agree exactly, on sparse and dense labels.

Where few records move the engine counts competitors sparsely (NUDGE-N candidates) and sweeps
every crossing (NUDGE-M); where most move it counts densely, filters the lines a sweep must
cross and keeps only metric-changing events. Whichever it picks, the ranks, the curve and
the chosen γ must be the same; these tests force each path on problems of both shapes and
compare them with each other and with a plain full count.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag import NudgeM, NudgeN
from nudge_rag.core import candidates as candidates_module
from nudge_rag.core import crossings
from nudge_rag.core.array_parts import array_competition
from nudge_rag.core.candidates import NCandidates, TopCandidates
from nudge_rag.core.closed_form import Geometry, question_sums
from nudge_rag.core.gamma_search import ValidationProblem, search_grid, sweep_linear
from nudge_rag.core.method import Method
from nudge_rag.core.relevance import to_pairs
from nudge_rag.core.scores import scores_at

from ..conftest import clustered_problem


def dense_problem(seed=0, n_topics=5, per_topic=14, d=10, n_train=50, n_val=16, rel=(4, 12)):
    """Topic clusters; each question names 4-12 graded records of its topic (by a hidden
    'true' similarity), so nearly every record moves and ranks change a lot with γ."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, d))
    docs = np.repeat(centres, per_topic, axis=0) + 0.6 * rng.standard_normal(
        (n_topics * per_topic, d))
    truth = docs + 0.8 * rng.standard_normal(docs.shape)

    def ask(m):
        topic = rng.integers(n_topics, size=m)
        q = centres[topic] + 0.7 * rng.standard_normal((m, d))
        rels = []
        for i in range(m):
            size = int(rng.integers(rel[0], rel[1] + 1))
            best = np.argsort(-(truth @ q[i]))[:size]
            rels.append({int(r): 2.0 if j < size // 3 else 1.0 for j, r in enumerate(best)})
        return q, rels

    tq, tr = ask(n_train)
    vq, vr = ask(n_val)
    return docs, tq, tr, vq, vr


def build(problem, k=10, skip_opposed=False):
    """The ValidationProblem a fit searches, built from the engine's public parts."""
    docs, tq, tr, vq, vr = problem
    rows, sums = question_sums(tq, to_pairs(tr, len(tq), len(docs), "tr"))
    pairs = to_pairs(vr, len(vq), len(docs), "vr", require_each=True)
    competition, unmoved = array_competition(docs, np.linalg.norm(docs, axis=1), vq, pairs,
                                             rows, k)
    geometry = Geometry.build(docs[rows], sums, skip_opposed=skip_opposed)
    return ValidationProblem(vq, pairs, rows, geometry, competition, unmoved)


def full_count(vp: ValidationProblem, gamma: float, method: Method) -> np.ndarray:
    """Ranks by comparing every pair with every moved record: the plain definition (tied
    relevant records of a question ranked by row)."""
    s = scores_at(gamma, method, vp.geometry, vp.products(method))
    own = vp.own_scores(gamma, method)
    above = (s[vp.pairs.query] > own[:, None]).sum(1) + (vp.rivals > own[:, None]).sum(1)
    tied = [((own == own[p]) & (vp.pairs.query == vp.pairs.query[p])
             & (vp.pairs.row < vp.pairs.row[p])).sum() for p in range(len(own))]
    return np.minimum(1.0 + above + np.array(tied), vp.depth + 1.0)


shapes = st.one_of(
    st.builds(clustered_problem, seed=st.integers(0, 10_000), n=st.integers(40, 120),
              d=st.integers(3, 8), n_train=st.integers(10, 40), n_val=st.integers(4, 12),
              multi=st.booleans()),
    st.builds(dense_problem, seed=st.integers(0, 10_000), n_topics=st.integers(2, 6),
              per_topic=st.integers(8, 16), d=st.integers(4, 10)))


@settings(max_examples=30, deadline=None)
@given(shapes, st.lists(st.floats(0.0, 0.6), min_size=3, max_size=6), st.booleans())
def test_nudge_n_sparse_and_dense_counts_agree(problem, gammas, skip_opposed):
    vp = build(problem, skip_opposed=skip_opposed)
    per_pair = vp.n_candidates(0.6, budget=np.inf)  # never give up on candidates
    per_question = vp.top_candidates(0.6)  # None where it would prune too little
    assert per_pair is not None
    for g in [0.0, 0.6, *gammas]:
        dense = vp.ranks(g, Method.N)
        np.testing.assert_array_equal(vp.ranks(g, Method.N, per_pair), dense)
        if per_question is not None:
            np.testing.assert_array_equal(vp.ranks(g, Method.N, per_question), dense)
        np.testing.assert_array_equal(full_count(vp, g, Method.N), dense)


@settings(max_examples=30, deadline=None)
@given(shapes, st.lists(st.floats(0.0, 5.0), min_size=3, max_size=6))
def test_nudge_m_dense_count_is_the_full_count(problem, gammas):
    vp = build(problem)
    for g in [0.0, *gammas]:
        np.testing.assert_array_equal(vp.ranks(g, Method.M), full_count(vp, g, Method.M))


@settings(max_examples=30, deadline=None)
@given(shapes, st.sampled_from(["ndcg@10", "hit@1", "recall@5", "mrr@10"]), st.booleans())
def test_nudge_m_sweep_is_the_same_filtered_or_not(problem, metric, left_end):
    vp = build(problem)
    every = sweep_linear(vp, metric, left_end, filter_lines=False, event_budget=10**9)
    for filtered, budget in ((True, 10**9), (False, 0), (True, 0)):
        got = sweep_linear(vp, metric, left_end, filter_lines=filtered, event_budget=budget)
        assert got.gamma == every.gamma
        # the shorter curve keeps every step of the full one, at the same values
        at = np.searchsorted(every.curve_gamma, got.curve_gamma, side="right") - 1
        np.testing.assert_array_equal(every.curve_value[at], got.curve_value)
        assert got.curve_value.max() == every.curve_value.max()


@settings(max_examples=20, deadline=None)
@given(shapes, st.floats(0.0, 3.0))
def test_next_crossing_near_lines_equals_the_full_scan(problem, start):
    """Walk crossing by crossing from ``start``: the windowed search (finite bound) finds
    each next one exactly as the scan of every line does, rivals' crossings included."""
    lines = build(problem).lines()
    after = start
    for _ in range(40):
        first = crossings.next_crossing(lines, after)  # no bound: every line scanned
        if first is None:
            assert crossings.next_crossing(lines, after, after + 1.0) == after + 1.0
            return
        assert first > after
        # a bound just past it: found in the windows, not returned as the bound
        assert crossings.next_crossing(lines, after, first + 1e-9 * (1 + first)) == first
        assert crossings.next_crossing(lines, after, first + 0.5) == first
        assert crossings.next_crossing(lines, after, 0.5 * (after + first)) == 0.5 * (
            after + first)
        after = first


@settings(max_examples=30, deadline=None)
@given(shapes, st.sampled_from([1, 3, 10]), st.lists(st.floats(0.0, np.pi / 2 - 1e-6),
                                                   min_size=5, max_size=20))
def test_line_filter_keeps_every_line_that_reaches_the_top_k(problem, k, angles):
    lines = build(problem).lines()
    table = crossings.candidate_lines(lines, k)
    if table is None:
        return
    for gamma in np.tan(angles):
        # the k best moved lines at γ, ties included
        at = lines.q_e + gamma * lines.q_g
        kth = -np.partition(-at, k - 1, axis=1)[:, k - 1:k]
        assert table.keep[at >= kth].all()


@settings(max_examples=20, deadline=None)
@given(shapes, st.sampled_from(["ndcg@10", "recall@5"]))
def test_past_the_budget_only_metric_changing_events_stay(problem, metric):
    vp = build(problem)
    lines = vp.lines()
    every = crossings.crossing_events(lines, vp.scorer, metric, False, 10**9)
    assert every.complete
    for filtered, budget in ((False, 0), (True, 10**9)):
        kept = crossings.crossing_events(lines, vp.scorer, metric, filtered, budget)
        if kept.complete:  # the filter found nothing to prune
            continue
        assert np.count_nonzero(kept.delta) == np.count_nonzero(every.delta)
        if metric.startswith("ndcg"):  # every move within the top k changes NDCG
            assert np.all(kept.delta != 0)


def test_line_filter_prunes_dense_labels():
    vp = build(dense_problem(1, n_topics=4, per_topic=40, d=12, n_train=120, n_val=30))
    lines = vp.lines()
    table = crossings.candidate_lines(lines, 3)
    assert table is not None and table.count.mean() < 0.5 * lines.q_e.shape[1]


@pytest.mark.parametrize("paper", [False, True], ids=["default", "paper"])
@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
def test_estimators_give_the_same_fit_whichever_path_they_take(monkeypatch, cls, paper):
    # the default (memory, whose scores tie) and the paper's protocol alike
    kw = {"selection": "validation", "refit": False, "memory": False} if paper else {}
    problem = dense_problem(2, n_topics=4, per_topic=30, d=12, n_train=100, n_val=24)
    chosen = cls(**kw).fit(*problem)
    with monkeypatch.context() as m:  # the paths of sparse labels, forced
        m.setattr(candidates_module, "_CANDIDATE_COST", 1e-9)  # per-pair candidates, always
        m.setattr(crossings, "_FILTER_MIN_PAIRS_PER_QUESTION", np.inf)
        m.setattr(crossings, "EVENT_BUDGET", 10**9)
        sparse = cls(**kw).fit(*problem)
    with monkeypatch.context() as m:  # no pruning at all: every γ scored densely
        m.setattr(ValidationProblem, "cheapest_candidates",
                  lambda self, gamma_hi, alphas=(0.0, 0.0): None)
        dense = cls(**kw).fit(*problem)
    for other in (sparse, dense):
        assert chosen.gamma_ == other.gamma_
        assert chosen.report_ == other.report_
        np.testing.assert_array_equal(chosen.vectors_, other.vectors_)


def test_dense_labels_prune_per_question_and_sparse_labels_per_pair():
    dense = build(dense_problem(3, n_topics=6, per_topic=40, d=12, n_train=120, n_val=30,
                                rel=(20, 30)))
    assert dense.n_candidates(0.5) is None
    chosen = dense.cheapest_candidates(0.5)
    assert isinstance(chosen, TopCandidates)
    assert chosen.cols.shape[1] < 0.5 * dense.products(Method.N).q_e.shape[1]
    sparse = build(clustered_problem(3, n=600, d=16, n_train=200, n_val=60))
    chosen = sparse.cheapest_candidates(0.5)
    assert isinstance(chosen, NCandidates)
    assert len(chosen.pair) < 0.2 * sparse.products(Method.N).q_e.size


def test_per_question_candidates_keep_every_record_that_reaches_the_top():
    vp = build(dense_problem(5, n_topics=6, per_topic=30, d=12, n_train=120, n_val=30))
    top = vp.top_candidates(0.5)
    assert top is not None
    kept = np.zeros(vp.products(Method.N).q_e.shape, dtype=bool)
    rows = np.repeat(np.arange(len(top.cols)), top.cols.shape[1])
    kept[rows[top.cols.ravel() >= 0], top.cols.ravel()[top.cols.ravel() >= 0]] = True
    for g in np.linspace(0.0, 0.5, 26):
        s = scores_at(g, Method.N, vp.geometry, vp.products(Method.N))
        kth = -np.partition(-s, vp.depth - 1, axis=1)[:, vp.depth - 1:vp.depth]
        assert kept[s >= kth].all()


def test_grid_search_on_a_problem_equals_scoring_each_point():
    vp = build(dense_problem(4))
    grid = 0.05 * np.arange(8)
    result = search_grid(vp, "ndcg@10", grid, refine=2)
    for g, v in zip(result.curve_gamma, result.curve_value):
        assert v == vp.metric(g, Method.N, "ndcg@10")


# -- ties among a question's relevant records ----------------------------------------------------
def saturating_problem():
    """Two records named by one training question both land on its direction at γ ≥ 0.62 and
    then tie for the validation question that asks for both (as NUDGE-N does with records
    named by the same questions)."""
    docs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.2], [0.0, 0.3, 1.0]])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    tq = np.array([[0.72, 0.69, 0.05]])
    return docs, tq, [[0, 1]], tq.copy(), [[0, 1]]


def test_tied_relevant_records_hold_ranks_of_their_own():
    vp = build(saturating_problem())
    assert vp.geometry.n_saturated(0.8).all()
    ranks = vp.ranks(0.8, Method.N)
    np.testing.assert_array_equal(np.sort(ranks), [1.0, 2.0])
    assert vp.metric(0.8, Method.N, "ndcg@10") == pytest.approx(1.0)
    # the exact NUDGE-M sweep: records whose lines coincide (same direction, same questions)
    docs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    tq = np.array([[0.5, 0.8, 0.0]])
    vp = build((docs, tq, [[0, 1]], tq.copy(), [[0, 1]]))
    assert sweep_linear(vp, "ndcg@10").curve_value.max() <= 1.0 + 1e-12
    np.testing.assert_array_equal(np.sort(vp.ranks(0.7, Method.M)), [1.0, 2.0])


@settings(max_examples=30, deadline=None)
@given(shapes, st.sampled_from([Method.N, Method.M]), st.lists(st.floats(0.0, 4.0), min_size=2,
                                                               max_size=5))
def test_validation_metrics_never_exceed_their_ideal(problem, method, gammas):
    vp = build(problem)
    for g in gammas:
        ranks = vp.ranks(g, method)
        for metric in ("ndcg@10", "recall@10", "mrr@10"):
            assert vp.scorer.mean(ranks, metric) <= 1.0 + 1e-12
        # within the depth, no two relevant records of a question share a rank
        inside = ranks <= vp.depth
        keys = vp.pairs.query[inside] * (vp.depth + 2) + ranks[inside].astype(np.int64)
        assert len(np.unique(keys)) == len(keys)
    if method is Method.M:
        assert sweep_linear(vp, "ndcg@10").curve_value.max() <= 1.0 + 1e-12
