"""The several-kernel marginal model: its log-density against scipy's dense MvNormal, its
gradient against finite differences, k = 1 against the one-kernel compiled density and
posterior, and the grid and importance-sampling posteriors against brute-force integration
over (sigma_1, sigma_2, sigma_e2) (independent of the ray decomposition both use)."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayeslmm.bayes import marginal_grm, sample
from bayeslmm.bayes.models.multikernel import density_of, marginal_multikernel
from bayeslmm.bayes.multikernel import sampling as mks
from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.bayes.priors import default_priors
from bayeslmm.data import prepare
from bayeslmm.errors import InputError, SamplingWarning

from helpers import simulate, two_kernels

PRIORS = [
    None,
    {"sigma_g2": "InverseGamma(2, 1)", "sigma_e2": "HalfCauchy(1)", "beta": "Normal(0, 3)"},
    {"sigma_g2": "HalfStudentT(3, 1)", "sigma_e2": "LogNormal(-0.5, 1)"},
    {"sigma_g2": "Gamma(2, 3)", "sigma_e2": "Exponential(1.5)"},
]


@pytest.mark.parametrize("spec", PRIORS)
@pytest.mark.parametrize("dirichlet", [None, [2.0, 1.0, 3.0]])
def test_logp_equals_scipy_mvnormal_and_gradient_equals_finite_differences(spec, dirichlet):
    y, K1, K2, X = two_kernels(80)
    data = prepare(y, [K1, K2], X)
    if dirichlet is not None:
        spec = {"beta": "Normal(0, 3)"} if spec is None else {"beta": spec.get("beta",
                                                                              "Normal(0, 2)")}
    else:  # a proper beta prior: the reference integrates it (flat beta, the default, is
        # REML's likelihood: test_flat_beta_gives_the_restricted_likelihood)
        spec = {**(spec or {}), "beta": (spec or {}).get("beta", "Normal(0, 2)")}
    pri = default_priors(spec, data.y, data.X, kind="lmm-variances")
    d = MultiKernelDensity.of(data, pri, dirichlet=dirichlet)
    for t in (np.log([0.3, 0.2, 0.6]), np.log([1.5, 0.01, 0.2])):
        s = np.exp(t)
        V = s[0] * K1 + s[1] * K2 + s[2] * np.eye(80)
        # beta ~ N(m0, diag(1 / lam)) integrated out: y ~ N(X m0, V + X diag(1/lam) X').
        ref = stats.multivariate_normal(X @ d.m0, V + X @ np.diag(1 / d.lam) @ X.T).logpdf(y)
        if dirichlet is None:
            ref += sum(float(p.logpdf(si)) for p, si in zip(d.priors, s, strict=True))
        else:
            Vp = s.sum()
            ref += (d.vp_prior.logpdf(Vp) + stats.dirichlet(dirichlet).logpdf(s / Vp)
                    - 2 * np.log(Vp))  # |d(Vp, pi_1, pi_2) / d sigma| = Vp^-2
        ref += t.sum()  # log transform
        lp, g = d.logp_grad(t)
        assert lp == pytest.approx(ref, abs=1e-9, rel=0)
        assert d.logp(t) == pytest.approx(lp, abs=1e-10, rel=0)
        h = 1e-6
        fd = np.array([(d.logp(t + e) - d.logp(t - e)) / (2 * h) for e in np.eye(3) * h])
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5)


def test_flat_beta_gives_the_restricted_likelihood():
    """With beta flat the density's likelihood is REML's (notes 4.3.2), up to a constant."""
    from bayeslmm.estimation.reml import reml

    y, K1, K2, X = two_kernels(80)
    data = prepare(y, [K1, K2], X)
    d = MultiKernelDensity.of(data, default_priors({"beta": "Flat()"}, data.y, data.X,
                                                    kind="lmm-variances"))
    fit = reml(y, [K1, K2], X)
    assert fit.converged and fit.boundary is None
    s = np.asarray(fit.sigma2, dtype=float)
    # REML (AI algorithm, bayeslmm.reml) maximises it: the gradient vanishes there ...
    h = 1e-6
    grad = [(d.loglik(s + e) - d.loglik(s - e)) / (2 * h) for e in np.eye(3) * h]
    np.testing.assert_allclose(grad, 0.0, atol=1e-3)
    # ... and it is the restricted log-likelihood, whose convention (notes 4.3.2) adds
    # log|X'X| / 2 (invariance to the scale of X).
    assert d.loglik(s) + 0.5 * np.linalg.slogdet(X.T @ X)[1] == pytest.approx(fit.loglik,
                                                                                abs=1e-8)


def test_one_kernel_equals_the_compiled_one_kernel_density():
    """k = 1: this density is the one-kernel model's at z = 0 plus (M/2) log 2 pi (z
    integrated out), to 1e-9, for the same priors."""
    from bayeslmm.bayes.compiled.marginal import compile_marginal, evaluate

    y, K, X, Z, g = simulate(N=60, P=150, h2=0.5, seed=2)
    spec = {"sigma_g2": "HalfCauchy(1)", "sigma_e2": "InverseGamma(2, 1)"}
    model = marginal_grm(y, K, X, priors=spec)
    compiled = compile_marginal(model)
    data = prepare(y, [K], X)
    d = MultiKernelDensity.of(data, default_priors(spec, data.y, data.X,
                                                   kind="lmm-variances"))
    for t in (np.array([-0.5, 0.1]), np.array([0.7, -1.2])):
        x = np.concatenate([t, np.zeros(X.shape[1])])
        lp1, g1 = evaluate(compiled, x)
        lp, gr = d.logp_grad(t)
        assert lp == pytest.approx(lp1 + 0.5 * X.shape[1] * np.log(2 * np.pi), abs=1e-9)
        np.testing.assert_allclose(gr, g1[:2], rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("method", ["grid", "importance"])
def test_one_kernel_posterior_reproduces_todays_one_kernel_posterior(method):
    y, K, X, Z, g = simulate(N=150, P=300, h2=0.5, seed=5)
    spec = {"sigma_g2": "HalfNormal(2)", "sigma_e2": "HalfNormal(2)"}
    one = sample(marginal_grm(y, K, X, priors=spec), draws=1000, chains=2, seed=1,
                 progressbar=False)
    assert one["posterior"].attrs["model_kind"] == "marginal"  # today's one-kernel path
    data = prepare(y, [K], X)
    d = MultiKernelDensity.of(data, default_priors(spec, data.y, data.X,
                                                   kind="lmm-variances"))
    mk = mks.sample_multikernel(d, draws=1000, chains=2, seed=2, progressbar=False,
                                method=method)
    post = mk["posterior"]
    assert post.attrs["method"] == method
    if method == "grid":  # k = 1: a one-dimensional grid, a few dozen factorisations
        assert len(post.attrs["grid_shape"]) == 1 and post.attrs["n_cholesky"] < 60
    for name, a, b in (("h2", one["posterior"]["h2"].values.ravel(),
                        post["h2"].values[..., 0].ravel()),
                       ("sigma_e2", one["posterior"]["sigma_e2"].values.ravel(),
                        post["sigma_e2"].values.ravel()),
                       ("beta", one["posterior"]["beta"].values[..., 0].ravel(),
                        post["beta"].values[..., 0].ravel())):
        ess = min(one["posterior"].attrs["min_ess_bulk"], post.attrs["min_ess_bulk"])
        mcse = np.std(a) * np.sqrt(2.0 / ess)
        assert abs(a.mean() - b.mean()) < 4 * mcse, name
        assert np.std(b) == pytest.approx(np.std(a), rel=0.15), name


def _grid_posterior(d: MultiKernelDensity, mode, cov, n: int = 18, width: float = 5.0):
    """Posterior moments of h2_j by brute force: the density on a regular grid in
    t = log(sigma) covering the mode +- width SDs on each axis (trapezoid = sum: the
    density vanishes at the edges)."""
    sd = np.sqrt(np.diag(cov))
    axes = [np.linspace(m - width * s, m + width * s, n) for m, s in zip(mode, sd,
                                                                           strict=True)]
    T = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    lp = np.array([d.logp(t) for t in T])
    w = np.exp(lp - lp.max())
    w /= w.sum()
    s = np.exp(T)
    h2 = s[:, :2] / s.sum(1, keepdims=True)
    m = w @ h2
    return m, np.sqrt(w @ (h2 - m) ** 2), w @ h2.sum(1)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["grid", "importance"])
@pytest.mark.parametrize("dirichlet", [None, [2.0, 1.0, 3.0]])
def test_importance_posterior_matches_grid_integration(method, dirichlet):
    """Both fast paths (the u-grid with its spline, importance sampling in u) against a
    brute-force 18^3 grid over t = log(sigma_1, sigma_2, sigma_e2) that evaluates the dense
    density directly; independent priors and a Dirichlet prior on the proportions."""
    y, K1, K2, X = two_kernels(150, seed=4)
    data = prepare(y, [K1, K2], X)
    d = MultiKernelDensity.of(data, default_priors(None, data.y, data.X,
                                                   kind="lmm-variances"), dirichlet=dirichlet)
    out = mks.sample_multikernel(d, draws=1000, chains=4, seed=3, progressbar=False,
                                 method=method)
    post = out["posterior"]
    assert post.attrs["method"] == method
    if method == "importance":
        assert post.attrs["pareto_k"] < mks.PARETO_K_MAX
    else:
        assert post.attrs["grid_check_logp"] < 0.02 and post.attrs["n_cholesky"] < 400
    mean, sd, total, mean2 = _brute_force_reference(None if dirichlet is None
                                                    else tuple(dirichlet))
    h2 = post["h2"].values.reshape(-1, 2)
    ess = post.attrs["min_ess_bulk"]
    mcse = sd / np.sqrt(ess)
    np.testing.assert_array_less(np.abs(h2.mean(0) - mean), 4 * mcse)
    np.testing.assert_allclose(h2.std(0), sd, rtol=0.1)
    assert abs(post["h2_total"].values.mean() - total) < 4 * np.std(h2.sum(1)) / np.sqrt(ess)
    # The other direction: the same check against the posterior of other data (fresh noise,
    # same kernels) fails by far.
    assert np.max(np.abs(h2.mean(0) - mean2)) > 10 * np.max(mcse)


@functools.lru_cache(maxsize=4)
def _brute_force_reference(dirichlet):
    """Brute-force moments for the test above (computed once per prior): h2 mean, SD and
    h2_total's mean of the data, and h2's mean for other data (fresh noise)."""
    y, K1, K2, X = two_kernels(150, seed=4)
    d = MultiKernelDensity.of(prepare(y, [K1, K2], X), default_priors(
        None, y, X, kind="lmm-variances"), dirichlet=dirichlet)
    mean, sd, total = _grid_posterior(d, *mks.find_mode(d))
    y2 = np.random.default_rng(0).standard_normal(150)
    d2 = MultiKernelDensity.of(prepare(y2, [K1, K2], X), default_priors(
        None, y2, X, kind="lmm-variances"), dirichlet=dirichlet)
    mean2, _, _ = _grid_posterior(d2, *mks.find_mode(d2), n=10)
    return mean, sd, total, mean2


@pytest.mark.slow
def test_nuts_fallback_when_pareto_k_fails_agrees_with_the_grid(monkeypatch):
    """N = 60 and 6 groups (a posterior far from Gaussian in log-variances). When the grid's
    check fails, the sampler warns and importance-samples; when PSIS k-hat fails too (both
    forced here: they pass on this data) it warns and runs NUTS on the same density; NUTS
    then agrees with brute-force integration."""
    monkeypatch.setattr(mks, "PARETO_K_MAX", -np.inf)
    monkeypatch.setattr(mks, "CHECK_TOL", {"logp": -1.0, "loglik": -1.0, "beta": -1.0})
    y, K1, K2, X = two_kernels(60, seed=7, groups=6)
    data = prepare(y, [K1, K2], X)
    d = MultiKernelDensity.of(data, default_priors(None, data.y, data.X,
                                                   kind="lmm-variances"))
    with pytest.warns(SamplingWarning) as record:
        out = mks.sample_multikernel(d, draws=200, tune=200, chains=2, seed=1,
                                     progressbar=False)
    messages = [str(r.message) for r in record]
    assert any("interpolant disagrees" in m for m in messages)
    assert any("k-hat" in m for m in messages)
    post = out["posterior"]
    assert post.attrs["method"] == "nuts"
    assert np.isfinite(post.attrs["pareto_k"]) and np.isfinite(post.attrs["grid_check_logp"])
    assert post.attrs["grid_spacing"] == pytest.approx(mks.SPACING / 2)  # refined once
    assert post.attrs["n_divergences"] == 0
    mean, sd, _ = _grid_posterior(d, np.array(post.attrs["mode_log_sigma"]),
                                  np.diag([1.0, 4.0, 0.2]), n=24, width=4.0)
    h2 = post["h2"].values.reshape(-1, 2)
    np.testing.assert_array_less(np.abs(h2.mean(0) - mean),
                                 4 * sd / np.sqrt(post.attrs["min_ess_bulk"]))
    with pytest.raises(InputError, match="importance sampling is unreliable"):
        mks.sample_multikernel(d, draws=100, chains=1, method="importance",
                               progressbar=False)
    with pytest.raises(InputError, match="grid posterior is unreliable"):
        mks.sample_multikernel(d, draws=100, chains=1, method="grid", progressbar=False)


def test_sample_routes_several_kernels_to_the_fast_path():
    y, K1, K2, X = two_kernels(100, seed=2)
    # half-normal variances: the grid's check passes (the default Dirichlet on the shares of
    # Vp, spiky at a zero share, is checked below to take a fast path too)
    model = marginal_grm(y, [K1, K2], X, component_names=["grm", "group"],
                         priors={"sigma_g2": "HalfNormal(2)", "sigma_e2": "HalfNormal(2)"})
    idata = sample(model, draws=250, chains=2, seed=1, progressbar=False, log_likelihood=True)
    post = idata["posterior"]
    assert post.attrs["method"] == "grid"
    default = marginal_grm(y, [K1, K2], X, component_names=["grm", "group"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # a grid check just missed
        fast = sample(default, draws=100, chains=2, seed=1, progressbar=False)
    assert fast["posterior"].attrs["method"] in ("grid", "importance")
    assert list(post["h2"].component.values) == ["grm", "group"]
    for group in ("log_likelihood", "log_prior", "observed_data", "grid"):
        assert group in idata.children
    imp = sample(model, draws=250, chains=2, seed=1, progressbar=False, method="importance",
                 log_likelihood=True)
    assert "importance" in imp.children
    # The stored log-likelihood is log N(y | X beta, V) of each draw: exactly for importance
    # sampling (each proposal's own factorisation), to the checked accuracy of the
    # interpolated pieces for the grid.
    for tree, tol in ((imp, 1e-8), (idata, post.attrs["grid_check_loglik"] + 0.01)):
        for d in range(3):
            s = tree["posterior"].isel(chain=0, draw=d)
            V = (float(s["sigma_g2"][0]) * K1 + float(s["sigma_g2"][1]) * K2
                 + float(s["sigma_e2"]) * np.eye(100))
            ref = stats.multivariate_normal(X @ s["beta"].values, V).logpdf(y)
            ll = float(tree["log_likelihood"]["y"].isel(chain=0, draw=d))
            assert ll == pytest.approx(ref, abs=tol)
    assert post.attrs["grid_check_loglik"] < 0.05
    # Same model object, Dirichlet on the proportions: a different prior, same machinery.
    m2 = marginal_multikernel(y, [K1, K2], X, dirichlet=1.0)
    assert density_of(m2).dirichlet.tolist() == [1.0, 1.0, 1.0]


def test_bad_inputs_are_one_line_errors():
    y, K1, K2, X = two_kernels(40)
    data = prepare(y, [K1, K2], X)
    pri = default_priors(None, data.y, data.X, kind="lmm-variances")
    with pytest.raises(InputError, match="Dirichlet concentrations must be positive"):
        MultiKernelDensity.of(data, pri, dirichlet=[1.0, -1.0, 1.0])
    with pytest.raises(InputError, match="method must be"):
        mks.sample_multikernel(MultiKernelDensity.of(data, pri), method="gibbs")
    with pytest.raises(InputError, match="for one or two kernels"):
        mks.sample_multikernel(MultiKernelDensity.of(prepare(y, [K1, K2, K1 + K2], X), pri),
                               method="grid")
    with pytest.raises(InputError, match="not covered by the several-kernel"):
        MultiKernelDensity.of(data, default_priors({"sigma_g2": pm.HalfNormal.dist(1.0)},
                                                   data.y, data.X, kind="lmm-variances"))
    with pytest.raises(InputError, match="give a prior on Vp"):
        marginal_multikernel(y, [K1, K2], X, dirichlet=1.0, priors={"sigma_e2": "HalfNormal(1)"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="not a several-kernel model"):
            density_of(marginal_grm(y, K1, X))


@pytest.mark.parametrize("second", ["groups", "snps"])
@pytest.mark.parametrize("dirichlet", [None, 1.5])
def test_low_rank_route_equals_the_dense_density(second, dirichlet):
    """GRM + a group kernel (rank 15) or a GRM from 20 SNPs (rank 20): Woodbury over the
    stacked factors gives the dense Cholesky's density to 1e-9."""
    from bayeslmm.bayes.multikernel.lowrank import LowRankDensity, low_rank_factor

    y, K1, K2, X = two_kernels(90, seed=3)
    if second == "snps":
        Zs = np.random.default_rng(1).standard_normal((90, 20))
        K2 = Zs @ Zs.T / 20
    data = prepare(y, [K2, K1], X)  # the low-rank kernel first: base found by rank
    dense = MultiKernelDensity.of(data, default_priors(None, data.y, data.X,
                                                       kind="lmm-variances"),
                                  dirichlet=dirichlet)
    low = LowRankDensity.try_from(dense)
    assert low is not None and low.base == 1 and low.blocks == ((15,) if second == "groups"
                                                                else (20,))
    for t in (np.log([0.3, 0.2, 0.6]), np.log([0.01, 2.0, 0.1])):
        assert low.logp(t) == pytest.approx(dense.logp(t), abs=1e-9)
        lp1, mu1, L1, ll1 = low.logp_beta(t)
        lp2, mu2, L2, ll2 = dense.logp_beta(t)
        np.testing.assert_allclose(mu1, mu2, rtol=1e-9)
        assert ll1 == pytest.approx(ll2, abs=1e-9)
        np.testing.assert_allclose(low.logp_grad(t)[1], dense.logp_grad(t)[1], rtol=1e-5,
                                   atol=1e-5)
        # the ray pieces (the grid's and importance sampler's unit of work) agree too
        u = t[:2] - t[2]
        for a, b in zip(low.ray(u), dense.ray(u), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    # Two full-rank kernels: no low-rank form (the dense route is used).
    assert low_rank_factor(K1, 45) is None
    pri = default_priors(None, data.y, data.X, kind="lmm-variances")
    full = MultiKernelDensity.of(prepare(y, [K1, K1 + np.eye(90)], X), pri)
    assert LowRankDensity.try_from(full) is None
