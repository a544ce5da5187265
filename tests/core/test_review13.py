"""Review of issue 13 on arrays: parameters and inputs the authors did not choose."""

import numpy as np
import pytest

from nudge_rag import InputError, NudgeM, NudgeN

from ..conftest import clustered_problem


@pytest.fixture(scope="module")
def problem():
    return clustered_problem(3, n=120, d=8, n_train=40, n_val=10)


@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
@pytest.mark.parametrize("seed", ["x", 1.5, -1, True])
def test_bad_seed_is_an_input_error_naming_seed(problem, cls, seed):
    # the seed draws the folds: a bad one must be refused as the other parameters are, not
    # reach numpy's SeedSequence as a TypeError / ValueError
    docs, tq, tr, vq, vr = problem
    with pytest.raises(InputError, match="seed"):
        cls(seed=seed).fit(docs, tq, tr, vq, vr)


@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
@pytest.mark.parametrize("value", ["no", "False", 1, None])
def test_non_bool_nudge_ft_compat_is_refused(problem, cls, value):
    # nudge_ft_compat="no" is truthy: it silently switched to nudge-ft's protocol
    docs, tq, tr, vq, vr = problem
    with pytest.raises(InputError, match="nudge_ft_compat"):
        cls(nudge_ft_compat=value).fit(docs, tq, tr, vq, vr)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_top_k_refuses_non_finite_queries(problem, bad):
    # a NaN query used to come back as rows -1 and scores -inf, as if the corpus were empty
    docs, tq, tr, vq, vr = problem
    est = NudgeN().fit(docs, tq, tr, vq, vr)
    queries = vq[:2].copy()
    queries[1, 3] = bad
    with pytest.raises(InputError, match="queries row 1"):
        est.top_k(docs, queries, k=5)


@pytest.mark.parametrize("cls", [NudgeN, NudgeM])
def test_alpha_without_memory_is_refused(problem, cls):
    # memory=False with alpha=0.9 silently fitted without memory: the alpha was dropped
    docs, tq, tr, vq, vr = problem
    with pytest.raises(InputError, match="alpha"):
        cls(memory=False, alpha=0.9).fit(docs, tq, tr, vq, vr)
    assert cls(memory=False, alpha=0.0).fit(docs, tq, tr, vq, vr).alpha_ == 0


@pytest.mark.parametrize("groups", [["a", None] * 20, [1, "1"] * 20, [(0, 1), 2.5] * 20])
def test_groups_of_mixed_labels_are_grouped(problem, groups):
    # any hashable label names a group; a None among strings crashed np.unique with TypeError
    docs, tq, tr, vq, vr = problem
    est = NudgeN(folds=2).fit(docs, tq, tr, vq, vr, groups=groups)
    same = NudgeN(folds=2).fit(docs, tq, tr, vq, vr, groups=[i % 2 for i in range(40)])
    assert est.gamma_ == same.gamma_ and est.alpha_ == same.alpha_


def test_unhashable_groups_are_an_input_error(problem):
    docs, tq, tr, vq, vr = problem
    with pytest.raises(InputError, match="groups"):
        NudgeN().fit(docs, tq, tr, vq, vr, groups=[{"a": i % 5} for i in range(40)])


@pytest.mark.parametrize("bad", [{"skip_opposed": "no"}, {"skip_opposed": 1},
                                 {"refine": -1}, {"refine": "3"}, {"refine": 2.5},
                                 {"max_gamma": "0.4"}, {"grid_step": None}])
def test_nudge_n_grid_parameters_of_the_wrong_type_are_refused(problem, bad):
    # skip_opposed="no" turned skipping on; refine=-1 crashed in numpy, refine="3" was taken
    # as 3; a string max_gamma or a None grid_step crashed with TypeError
    docs, tq, tr, vq, vr = problem
    with pytest.raises(InputError, match=next(iter(bad))):
        NudgeN(selection="validation", **bad).fit(docs, tq, tr, vq, vr)
