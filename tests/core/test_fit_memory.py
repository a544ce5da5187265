"""What a fit holds at once. The γ search scores held-out questions against the moved records
through their products (questions × moved records, four float64 arrays per held-out set);
cross-validation has one set per fold beside the validation set, so holding every set's
products at once made the default fit's memory grow with (training + validation questions) ×
moved records: 1.5 GB beside a 5,000-question fit (issue 14's store benchmark). Once a set's
pruned candidates carry what the search needs, its dense products are dropped."""

import tracemalloc

import numpy as np

from nudge_rag import NudgeN
from nudge_rag.core.gamma_search import ValidationProblem

from ..conftest import clustered_problem


def search_peak(monkeypatch, docs, tq, tr, vq, vr, cls=NudgeN, params=None):
    """The fitted estimator and the traced peak (bytes) of its γ search beyond what was
    held when the search began (the corpus scan before it has a fixed budget of its own)."""
    search, peaks = cls._search, []

    def traced(self, pool, alphas):
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        try:
            return search(self, pool, alphas)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            tracemalloc.stop()

    with monkeypatch.context() as patch:
        patch.setattr(cls, "_search", traced)
        est = cls(**(params or {})).fit(docs, tq, tr, vq, vr)
    return est, peaks[0]


def test_a_cross_validated_fit_holds_one_held_out_sets_products_at_a_time(monkeypatch):
    # every question names its own record: 1,500 records move, and the validation set and
    # each of the five folds hold 300 questions, 300 × 1,500 × 4 × 8 B = 14.4 MB of products
    docs, tq, tr, vq, vr = clustered_problem(3, n=4000, d=24, n_train=1500, n_val=300)
    tr = [{i: 1.0} for i in range(1500)]
    tq = docs[:1500] + 0.3 * np.random.default_rng(4).standard_normal((1500, 24))
    vr = [{i: 1.0} for i in range(0, 1500, 5)]
    vq = docs[:1500:5] + 0.3 * np.random.default_rng(5).standard_normal((300, 24))
    est, peak = search_peak(monkeypatch, docs, tq, tr, vq, vr)
    monkeypatch.setattr(ValidationProblem, "release_products", lambda self: None)
    kept, peak_kept = search_peak(monkeypatch, docs, tq, tr, vq, vr)

    one_set = 300 * 1500 * 4 * 8
    assert peak_kept > 6 * one_set  # all six sets' products at once, as before
    assert peak < 3 * one_set, f"{peak / 2**20:.1f} MB, {peak_kept / 2**20:.1f} MB kept"
    # dropping and recomputing products changes nothing the fit chooses or returns
    assert (est.gamma_, est.alpha_) == (kept.gamma_, kept.alpha_)
    assert est.report_ == kept.report_
    np.testing.assert_array_equal(est.search_.curve_value, kept.search_.curve_value)
    np.testing.assert_array_equal(est.transform(docs), kept.transform(docs))
