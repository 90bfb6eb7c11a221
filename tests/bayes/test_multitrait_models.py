"""Two-trait PyMC model: its log-density is the restricted likelihood; NUTS sanity."""

import numpy as np
import pytensor
import pytest

import bayeslmm
from bayeslmm.bayes.models.multitrait import multitrait_marginal
from bayeslmm.estimation.multitrait import multitrait_reml
from bayeslmm.likelihood.multitrait import MultiTraitSpectral

from helpers import simulate_two


def _givens(model, Sg, Se):
    vp = np.diag(Sg) + np.diag(Se)
    rg = Sg[0, 1] / np.sqrt(Sg[0, 0] * Sg[1, 1])
    re = Se[0, 1] / np.sqrt(Se[0, 0] * Se[1, 1])
    return {model["h2"]: np.diag(Sg) / vp, model["Vp"]: vp, model["r_g_unit"]: (rg + 1) / 2,
            model["r_e_unit"]: (re + 1) / 2}


@pytest.mark.parametrize("intercept_only", [False, True])
@pytest.mark.parametrize("rank", ["full", "low"])
def test_potential_is_the_restricted_likelihood(rank, intercept_only):
    Y, K, X, _ = simulate_two(N=120, seed=7)
    if intercept_only:  # the closed-form 2 x 2 path
        X = np.ones((120, 1))
    if rank == "low":
        Z = np.random.default_rng(1).standard_normal((120, 25))
        dec = bayeslmm.decompose_genotypes(Z)
    else:
        dec = bayeslmm.decompose(K)
    model = multitrait_marginal(Y, dec, X)
    ref = MultiTraitSpectral(dec, Y, X)
    rvs = list(_givens(model, np.eye(2), np.eye(2)))
    # Compiled once, without C (the graph is small; C compilation would dominate the test).
    fn = pytensor.function(rvs, [model.potentials[0], model["Sigma_g"], model["Sigma_e"]],
                           mode="FAST_COMPILE")
    rng = np.random.default_rng(2)
    for _ in range(3):
        A, B = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
        Sg, Se = A @ A.T + 0.05 * np.eye(2), B @ B.T + 0.05 * np.eye(2)
        value, G, E = fn(*_givens(model, Sg, Se).values())
        assert float(value) == pytest.approx(ref.loglik(Sg, Se, reml=True), rel=1e-10)
        np.testing.assert_allclose(G, Sg, rtol=1e-12)
        np.testing.assert_allclose(E, Se, rtol=1e-12)


def test_empirical_bayes_counterpart_holds_the_reml_values():
    Y, K, X, _ = simulate_two(N=120, seed=7)
    fit = multitrait_reml(Y, K, X, tests=False)
    model = multitrait_marginal(Y, fit.model.dec, X, fixed={
        "Sigma_g": fit.Sigma_g.values, "Sigma_e": fit.Sigma_e.values})
    assert not model.free_RVs
    fn = pytensor.function([], [model["r_g"], model["h2"], model.potentials[0]],
                           mode="FAST_COMPILE")
    rg, h2, ll = fn()
    assert float(rg) == pytest.approx(fit.r_g, rel=1e-12)
    np.testing.assert_allclose(h2, fit.h2.values, rtol=1e-12)
    assert float(ll) == pytest.approx(fit.loglik, rel=1e-10)


def test_bad_input():
    Y, K, X, _ = simulate_two(N=60, seed=7)
    with pytest.raises(bayeslmm.InputError, match="two traits"):
        multitrait_marginal(np.column_stack([Y, Y[:, 0] ** 2]), K, X)
    with pytest.raises(bayeslmm.InputError, match="eta"):
        multitrait_marginal(Y, K, X, eta=0)
    with pytest.raises(bayeslmm.InputError, match="unknown prior"):
        multitrait_marginal(Y, K, X, priors={"rg": "Uniform(-1, 1)"})


# NUTS on this model is exercised once, through the command line, in
# tests/test_cli_multitrait.py::test_sample_two_traits_writes_posterior_and_plot (compiling the
# model dominates the cost of a run, so one run serves both checks).
