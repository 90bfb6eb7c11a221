"""The hand-written, numba-compiled log-density of the two-trait model against PyMC's own
log-density of the same model (value, gradient, stored values), a dense NT x NT reference and
finite differences; the posterior it gives against the one sampled through PyMC's graph."""

from __future__ import annotations

import logging

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

import bayeslmm
from bayeslmm.bayes import sample
from bayeslmm.bayes.compiled.multitrait import compile_multitrait, supported
from bayeslmm.bayes.compiled.shell import evaluate, expand
from bayeslmm.bayes.model_info import model_info
from bayeslmm.bayes.models.multitrait import multitrait_marginal
from bayeslmm.likelihood.multitrait import dense_multitrait_loglik

from helpers import simulate_two

N = 60

# (priors, LKJ eta, data set): every compiled prior family on Vp and both on h2 (the Vp
# families' code is shared with the one-kernel density, where each is tested fast too).
SPECS = [
    (None, 1.0, "M1-full"),  # h2 ~ Beta(1, 1), Vp_t ~ HalfNormal(2.5 var y_t): per trait
    pytest.param(None, 1.0, "M3-low", marks=pytest.mark.slow),
    ({"h2": "Beta(2, 5)", "Vp": "InverseGamma(2, 1)"}, 2.0, "M3-low"),
    ({"h2": "Uniform(0.1, 0.9)", "Vp": "Jeffreys()"}, 0.5, "M1-full"),
    pytest.param({"h2": "Beta(0.5, 0.5)", "Vp": "LogNormal(0.3, 1.5)"}, 1.0, "M3-low",
                 marks=pytest.mark.slow),
    pytest.param({"h2": "Uniform(0, 1)", "Vp": "HalfStudentT(3, 2)"}, 4.0, "M1-full",
                 marks=pytest.mark.slow),
    pytest.param({"Vp": "HalfCauchy(1)"}, 1.0, "M3-low", marks=pytest.mark.slow),
    pytest.param({"Vp": "Gamma(2, 1)"}, 1.5, "M1-full", marks=pytest.mark.slow),
    pytest.param({"Vp": "Exponential(0.5)"}, 1.0, "M3-low", marks=pytest.mark.slow),
    pytest.param({"Vp": "HalfFlat()"}, 1.0, "M1-full", marks=pytest.mark.slow),
    pytest.param({"Vp": "HalfNormal(2)"}, 0.8, "M3-low", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def datasets():
    """Two data sets: an intercept with a full-rank K, and three covariates with a rank-24
    K (a complement of 36 dimensions); K dense for the reference."""
    Y, K, _, _ = simulate_two(N=N, seed=7)
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((N, 24))
    low = bayeslmm.decompose_genotypes(Z)
    X3 = np.column_stack([np.ones(N), rng.standard_normal((N, 2))])
    return {"M1-full": (Y, bayeslmm.decompose(K), np.ones((N, 1))),
            "M3-low": (Y, low, X3)}


def _pymc_functions(model):
    """PyMC's log-density of the model (transforms' Jacobians included) and its gradient."""
    lp = model.logp()
    grads = pt.grad(lp, model.value_vars)
    return pytensor.function(model.value_vars, [lp, *grads], mode="FAST_COMPILE")


def _split(x):
    return [x[0:2], x[2:4], x[4], x[5]]


def _dense_reference(model, Y, dec, X, x) -> float:
    """Log-density at the unconstrained x from scratch: the NT x NT REML likelihood, scipy's
    prior densities and the Jacobians of PyMC's transforms written out."""
    info = model_info(model)
    K = (dec.U * dec.S) @ dec.U.T
    p = info.h2_prior
    lo, hi = (p.params["lower"], p.params["upper"]) if p.family == "Uniform" else (0.0, 1.0)
    s = special.expit(x[0:2])
    h2 = lo + (hi - lo) * s
    Vp = np.exp(x[2:4])
    u = special.expit(x[4:6])
    r = 2 * u - 1
    lp = float(np.sum(p.logpdf(h2)) + np.sum(np.log((hi - lo) * s * (1 - s))))
    lp += sum(float(q.logpdf(v)) for q, v in zip(info.Vp_priors, Vp, strict=True))
    lp += float(np.sum(x[2:4]))
    lp += float(np.sum(stats.beta.logpdf(u, info.eta, info.eta)) + np.sum(np.log(u * (1 - u))))
    sg, se = np.sqrt(h2 * Vp), np.sqrt((1 - h2) * Vp)
    Sg = np.outer(sg, sg) * np.array([[1, r[0]], [r[0], 1]])
    Se = np.outer(se, se) * np.array([[1, r[1]], [r[1], 1]])
    return lp + dense_multitrait_loglik(Y, X, K, Sg, Se, reml=True)


@pytest.mark.parametrize(("spec", "eta", "which"), SPECS)
def test_logp_and_gradient_equal_references(datasets, spec, eta, which):
    """Gradient against PyMC's; value against the dense reference (absolute) and against
    PyMC's (differences between points: PyMC's Beta and HalfStudentT normalising constants
    are ~5e-8 off scipy's, see test_marginal_logp.py)."""
    Y, dec, X = datasets[which]
    model = multitrait_marginal(Y, dec, X, priors=spec, eta=eta)
    assert supported(model) is None
    compiled = compile_multitrait(model)
    fn = _pymc_functions(model)
    rng = np.random.default_rng(1)
    points = [rng.normal(scale=1.2, size=6) + [0, 0, 0.3, 0.3, 0, 0] for _ in range(4)]
    ours = [evaluate(compiled, x) for x in points]
    ref = [fn(*_split(x)) for x in points]
    for x, (lp, g), r in zip(points, ours, ref, strict=True):
        g_ref = np.concatenate([np.ravel(a) for a in r[1:]])
        np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-9)
        assert lp == pytest.approx(_dense_reference(model, Y, dec, X, x), rel=1e-10, abs=1e-8)
    np.testing.assert_allclose([a[0] - ours[0][0] for a in ours],
                               [float(b[0]) - float(ref[0][0]) for b in ref],
                               rtol=1e-10, atol=1e-9)
    if spec is None:  # Beta(1, 1) and HalfNormal: no normaliser differences, equal outright
        np.testing.assert_allclose([a[0] for a in ours], [float(b[0]) for b in ref],
                                   rtol=1e-12)


@pytest.mark.parametrize("which", ["M1-full", "M3-low"])
def test_gradient_equals_finite_differences(datasets, which):
    Y, dec, X = datasets[which]
    model = multitrait_marginal(Y, dec, X, priors={"h2": "Beta(2, 2)", "Vp": "Gamma(2, 1)"},
                                eta=1.5)
    compiled = compile_multitrait(model)
    rng = np.random.default_rng(5)
    h = 1e-5
    for _ in range(3):
        x = rng.normal(size=6)
        _, g = evaluate(compiled, x)
        fd = np.array([(evaluate(compiled, x + h * e)[0] - evaluate(compiled, x - h * e)[0])
                       / (2 * h) for e in np.eye(6)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)


def test_stored_values_equal_pymc(datasets):
    """What the sampler stores (free values in both spaces, r_g, r_e, Sigma_g, Sigma_e)
    equals PyMC's values at the same point, name by name and in PyMC's order."""
    Y, dec, X = datasets["M3-low"]
    model = multitrait_marginal(Y, dec, X, priors={"h2": "Uniform(0.1, 0.9)"}, eta=2.0)
    compiled = compile_multitrait(model)
    uv = model.unobserved_value_vars
    fn = pytensor.function(model.value_vars, uv, mode="FAST_COMPILE",
                           on_unused_input="ignore")
    rng = np.random.default_rng(6)
    for _ in range(3):
        x = rng.normal(size=6)
        ours = expand(compiled, x)
        assert list(ours) == [v.name for v in uv]
        for v, val in zip(uv, fn(*_split(x)), strict=True):
            np.testing.assert_allclose(ours[v.name], val, rtol=1e-12, atol=1e-14,
                                       err_msg=v.name)


def test_extreme_points_are_finite_or_rejected(datasets):
    """h2 and r at the edges of their ranges: a finite value and gradient, or a rejected
    step (non-finite value), never an error."""
    Y, dec, X = datasets["M1-full"]
    compiled = compile_multitrait(multitrait_marginal(Y, dec, X))
    for x in ([30.0, -30.0, 0.0, 0.0, 25.0, -25.0], [0.0, 0.0, -30.0, 30.0, 0.0, 0.0]):
        lp, g = evaluate(compiled, np.array(x))
        assert np.isfinite(lp) and np.all(np.isfinite(g))
    lp, _ = evaluate(compiled, np.array([800.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    assert not np.isfinite(lp)


def test_unsupported_models_fall_back_with_a_reason(datasets, caplog):
    from bayeslmm.bayes.sampling import _hand_compiled

    Y, dec, X = datasets["M1-full"]
    fit_like = {"Sigma_g": np.eye(2), "Sigma_e": np.eye(2)}
    cases = {
        "fixed": multitrait_marginal(Y, dec, X, fixed=fit_like),
        "custom Vp": multitrait_marginal(Y, dec, X, priors={"Vp": pm.HalfNormal.dist(2.0)}),
        "custom h2": multitrait_marginal(Y, dec, X, priors={"h2": pm.Beta.dist(2.0, 2.0)}),
    }
    extra = multitrait_marginal(Y, dec, X)
    with extra:
        pm.Normal("extra", 0, 1)
    cases["extra variable"] = extra
    for what, model in cases.items():
        reason = supported(model)
        assert reason is not None, what
        assert compile_multitrait(model) is None, what
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bayeslmm.bayes.sampling"):
            assert _hand_compiled(model) is None
        assert reason in caplog.text, what
    assert "extra" in supported(extra)
    # The other direction: the default model is compiled, and nothing is logged.
    model = multitrait_marginal(Y, dec, X)
    assert supported(model) is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bayeslmm.bayes.sampling"):
        assert _hand_compiled(model) is not None
    assert "PyMC's graph" not in caplog.text
    # A one-trait model is not this module's.
    one = bayeslmm.bayes.marginal_grm(Y[:, 0], dec, X)
    assert "two-trait" in supported(one)


def test_bad_prior_support_is_an_input_error(datasets):
    Y, dec, X = datasets["M1-full"]
    with pytest.raises(bayeslmm.InputError, match="h2"):
        multitrait_marginal(Y, dec, X, priors={"h2": "HalfNormal(1)"})
    with pytest.raises(bayeslmm.InputError, match="Vp"):
        multitrait_marginal(Y, dec, X, priors={"Vp": "Beta(2, 2)"})


@pytest.mark.slow
def test_posterior_equals_pymc_graph():
    """Same model, two compilations: the posteriors of h2, Vp, r_g and r_e agree within Monte
    Carlo error, and the two DataTrees have the same groups, variables, dims and coords."""
    import arviz_stats as azs

    Y, K, X, _ = simulate_two(N=200, seed=9)
    model = multitrait_marginal(Y, bayeslmm.decompose(K), X)
    fast = sample(model, draws=1000, chains=4, seed=3, progressbar=False)
    slow = sample(model, draws=1000, chains=4, seed=4, progressbar=False, compiled_logp=False)
    assert set(fast.children) == set(slow.children)
    for group in fast.children:
        a, b = fast[group].to_dataset(), slow[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            assert a[name].dims == b[name].dims, (group, name)
        for name in a.coords:
            np.testing.assert_array_equal(a[name].values, b[name].values)
    names = ["h2", "Vp", "r_g", "r_e"]
    sf = azs.summary(fast, var_names=names, kind="all", fmt="wide")
    ss = azs.summary(slow, var_names=names, kind="all", fmt="wide")
    for row in sf.index:
        se = np.hypot(sf.loc[row, "mcse_mean"], ss.loc[row, "mcse_mean"])
        assert abs(sf.loc[row, "mean"] - ss.loc[row, "mean"]) < 4 * se, row
        assert sf.loc[row, "sd"] == pytest.approx(ss.loc[row, "sd"], rel=0.1), row
    assert fast["posterior"].attrs["n_divergences"] == 0
