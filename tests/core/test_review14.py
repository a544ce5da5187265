"""Review of the γ search's memory work (released products, shared unit records and keys,
bounded score-bound blocks): inputs the authors did not choose."""

import numpy as np
import pytest

from nudge_rag import NudgeM, NudgeN

from ..conftest import clustered_problem


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
