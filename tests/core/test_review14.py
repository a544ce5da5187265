"""Review of the γ search's memory work (released products, shared unit records and keys,
bounded score-bound blocks): inputs the authors did not choose."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag import NudgeM, NudgeN
from nudge_rag.core.gamma_search import ValidationProblem

from ..conftest import clustered_problem
from .test_fit_memory import search_peak


@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
@pytest.mark.parametrize("metric", ["ndcg@10", "recall@5"])
def test_a_fold_whose_questions_name_nothing_scores_zero(cls, metric):
    # training questions may name nothing (only a fit on none of them is refused); when a
    # whole fold is such questions (a group of them, or the draw of the folds) its held-out
    # set has questions and no relevant pair, and numpy's bincount of no pairs is an
    # integer array: NDCG and recall raised a casting error from np.divide
    docs, tq, tr, vq, vr = clustered_problem(7, n=200, d=8, n_train=50, n_val=15)
    tr = [{} if i < 10 else r for i, r in enumerate(tr)]
    groups = [0 if i < 10 else 1 + i % 4 for i in range(len(tr))]
    est = cls(metric=metric).fit(docs, tq, tr, vq, vr, groups=groups)
    # the fold of unlabelled questions counts, as a question that no record answers: zero
    assert est.report_["folds"] == 5
    assert est.report_["cold"]["n_questions"] >= 10
    assert est.report_["cold"]["after"][metric] < est.report_["warm"]["after"][metric]
    assert np.isfinite(est.gamma_)


def _own_records(n_train=600, n_val=120, extra=0):
    """Every training question names its own record (600 move), validation questions ask
    again about every fifth; with ``extra`` each question also names that many records at
    random (dense labels: then no pruning pays and the search scores densely)."""
    docs, *_ = clustered_problem(3, n=2000, d=16, n_train=0, n_val=0)
    rng = np.random.default_rng(4)
    tq = docs[:n_train] + 0.3 * rng.standard_normal((n_train, 16))
    asked = np.arange(0, n_train, n_train // n_val)
    vq = docs[asked] + 0.3 * rng.standard_normal((n_val, 16))

    def rel(own):
        return {int(own): 1.0, **{int(j): 1.0 for j in rng.choice(n_train, extra)}}

    return docs, tq, [rel(i) for i in range(n_train)], vq, [rel(i) for i in asked]


@pytest.mark.parametrize(("cls", "params", "dense"),
                         [(NudgeM, {}, False), (NudgeN, {"memory": False}, True)])
def test_a_dense_cross_validated_search_holds_one_sets_products_at_a_time(monkeypatch, cls,
                                                                          params, dense):
    # NUDGE-M has no pruned count, and NUDGE-N scores densely where pruning does not pay
    # (forced here with ``dense``: on these labels it pays): each held-out set is then
    # scored densely at every grid point, and the validation set and the five folds all
    # kept their products (three float64 arrays of questions × moved records) until the
    # search ended, six sets at once
    docs, tq, tr, vq, vr = _own_records(extra=10 if dense else 0)
    if dense:
        monkeypatch.setattr(ValidationProblem, "cheapest_candidates", lambda *a, **k: None)
    est, peak = search_peak(monkeypatch, docs, tq, tr, vq, vr, cls, params)
    monkeypatch.setattr(ValidationProblem, "release_products", lambda self: None)
    kept, peak_kept = search_peak(monkeypatch, docs, tq, tr, vq, vr, cls, params)

    one_set = 120 * len(est.rows_) * 3 * 8
    assert peak_kept > 6 * one_set  # every set's products at once
    # one set's products, its dense blocks, and every question's value at each grid point
    assert peak < 3.5 * one_set, f"{peak / 2**20:.1f} MB, {peak_kept / 2**20:.1f} MB kept"
    assert (est.gamma_, est.alpha_) == (kept.gamma_, kept.alpha_)
    assert est.report_ == kept.report_
    np.testing.assert_array_equal(est.search_.curve_value, kept.search_.curve_value)
    np.testing.assert_array_equal(est.transform(docs), kept.transform(docs))


def _fit(cls, params, data, keep_products: bool):
    with pytest.MonkeyPatch.context() as patch:
        if keep_products:  # as before products were ever released
            patch.setattr(ValidationProblem, "release_products", lambda self: None)
        return cls(**params).fit(*data)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), cls=st.sampled_from([NudgeN, NudgeM]),
       selection=st.sampled_from(["cv", "validation"]), memory=st.booleans(),
       n_val=st.sampled_from([1, 2, 3, 12]), multi=st.booleans(),
       twins=st.booleans(), gamma=st.sampled_from([None, None, 0.3, 3.0]))
def test_released_products_change_no_fit(seed, cls, selection, memory, n_val, multi, twins,
                                         gamma):
    # dropping a held-out set's products and computing them again must give the fit that
    # keeping them gives, bit for bit: tiny validation sets, several relevant records per
    # question, duplicate records and questions (ties), a fixed γ beyond the grid
    docs, tq, tr, vq, vr = clustered_problem(seed, n=80, d=6, n_train=30, n_val=n_val,
                                             multi=multi)
    if twins:  # every record twice, every question asked twice
        docs[40:] = docs[:40]
        tq[15:] = tq[:15]
    params = {"selection": selection, "memory": memory, "gamma": gamma}
    data = (docs, tq, tr, vq, vr)
    est, kept = _fit(cls, params, data, False), _fit(cls, params, data, True)
    assert (est.gamma_, est.alpha_) == (kept.gamma_, kept.alpha_)
    assert est.report_ == kept.report_
    np.testing.assert_array_equal(est.vectors_, kept.vectors_)
    if est.search_ is not None:
        np.testing.assert_array_equal(est.search_.curve_value, kept.search_.curve_value)
