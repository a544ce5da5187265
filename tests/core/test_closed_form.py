"""The closed forms against brute force: no feasible point beats ours."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nudge_rag.core.closed_form import Geometry, n_coefficients


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def random_case(seed, d=8, opposed=False):
    rng = np.random.default_rng(seed)
    e = unit(rng.standard_normal(d))
    g = rng.standard_normal(d) * rng.uniform(0.1, 5)
    if opposed and g @ e > 0:
        g = g - 2 * (g @ e) * e  # reflect so that G·ê < 0
    return e, g


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("gamma", [0.01, 0.1, 0.48, 1.5])
def test_nudge_n_beats_random_feasible_points(seed, gamma):
    e, g = random_case(seed, opposed=seed % 3 == 0)
    geo = Geometry.build(e[None], g[None], skip_opposed=False)
    ours = geo.n_vectors(gamma)[0]
    assert np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-12)
    assert np.sum((ours - e) ** 2) <= gamma + 1e-9
    rng = np.random.default_rng(seed + 1000)
    # random feasible points: unit vectors inside the cap ||x − ê||² ≤ γ
    cand = unit(e + rng.standard_normal((20000, len(e))) * rng.uniform(0, 1.5, (20000, 1)))
    cand = cand[np.sum((cand - e) ** 2, axis=1) <= gamma]
    assert len(cand) > 10
    assert np.max(cand @ g) <= ours @ g + 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_nudge_n_matches_scipy_constrained_optimiser(seed):
    scipy_opt = pytest.importorskip("scipy.optimize")
    e, g = random_case(seed, d=6)
    gamma = 0.3
    cons = [{"type": "eq", "fun": lambda x: x @ x - 1.0},
            {"type": "ineq", "fun": lambda x: gamma - np.sum((x - e) ** 2)}]
    res = scipy_opt.minimize(lambda x: -(g @ x), e, constraints=cons, method="SLSQP",
                             options={"ftol": 1e-12, "maxiter": 500})
    ours = Geometry.build(e[None], g[None], skip_opposed=False).n_vectors(gamma)[0]
    assert -res.fun <= ours @ g + 1e-7
    assert ours @ g == pytest.approx(-res.fun, abs=1e-5)


@pytest.mark.parametrize("seed", range(20))
def test_nudge_m_beats_random_feasible_steps(seed):
    e, g = random_case(seed)
    gamma = 0.25
    ours = Geometry.build(e[None], g[None], skip_opposed=False).m_vectors(gamma)[0] - e
    assert np.linalg.norm(ours) == pytest.approx(gamma)
    rng = np.random.default_rng(seed)
    steps = unit(rng.standard_normal((5000, len(e)))) * gamma * rng.uniform(0, 1, (5000, 1))
    assert np.max(steps @ g) <= ours @ g + 1e-12


def test_saturated_record_lands_on_its_target():
    e = unit(np.array([1.0, 0.1, 0.0]))
    g = np.array([1.0, 0.3, 0.0])
    geo = Geometry.build(e[None], g[None], skip_opposed=False)
    # the cap ||x − ê||² ≤ 0.48 contains Ĝ, which is then the optimum
    np.testing.assert_allclose(geo.n_vectors(0.48)[0], unit(g), atol=1e-12)


def test_parallel_zero_and_opposed_cases():
    e = np.eye(3)
    g = np.array([[2.0, 0, 0], [0, 0, 0], [0, 1.0, -0.1]])
    geo = Geometry.build(e, g, skip_opposed=False)
    out = geo.n_vectors(0.2)
    np.testing.assert_allclose(out[0], e[0])  # G ∥ ê: already optimal
    np.testing.assert_allclose(out[1], e[1])  # G = 0: nothing to move toward
    assert out[2] @ g[2] > e[2] @ g[2]  # opposed questions still pull the record
    skip = Geometry.build(e, g, skip_opposed=True).n_vectors(0.2)
    np.testing.assert_allclose(skip[2], e[2])  # nudge-ft leaves it alone
    np.testing.assert_allclose(geo.m_vectors(0.2)[1], e[1])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (5, 4), elements=st.floats(-3, 3)),
       arrays(np.float64, (5, 4), elements=st.floats(-3, 3)),
       st.floats(0, 4))
def test_nudge_n_is_unit_norm_and_inside_the_cap(vecs, sums, gamma):
    vecs = vecs[np.linalg.norm(vecs, axis=1) > 1e-3]
    sums = sums[: len(vecs)]
    if len(vecs) == 0:
        return
    geo = Geometry.build(vecs, sums, skip_opposed=False)
    out = geo.n_vectors(gamma)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-9)
    assert np.all(np.sum((out - geo.e_hat) ** 2, axis=1) <= gamma + 1e-9)
    # never worse than staying put
    assert np.all(np.einsum("ij,ij->i", out, sums) >= np.einsum("ij,ij->i", geo.e_hat, sums)
                  - 1e-9)


def test_coefficients_trace_the_cap_boundary():
    for gamma in np.linspace(0, 4, 9):
        a, b = n_coefficients(gamma)
        assert a * a + b * b == pytest.approx(1.0)
        assert (1 - a) ** 2 + b**2 == pytest.approx(gamma)


def test_tiny_question_sums_still_give_a_unit_direction():
    # squares of 3e-161 underflow; found by hypothesis (output norm 0.9994 before the fix)
    e = np.array([[0.0, 1.0, 1.0, 1.0]])
    geo = Geometry.build(e, np.full((1, 4), 3.0e-161), skip_opposed=False)
    np.testing.assert_allclose(np.linalg.norm(geo.g_hat, axis=1), 1.0)
    for gamma in (0.1, 1.0, 3.9):
        np.testing.assert_allclose(np.linalg.norm(geo.n_vectors(gamma), axis=1), 1.0)
