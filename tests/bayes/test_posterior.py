"""NUTS against the exact quadrature posterior, diagnostics, empirical Bayes vs BLUP/PEV,
posterior prediction."""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pymc as pm
import pytest

import bayeslmm
from bayeslmm.bayes import (
    empirical_bayes,
    marginal_grm,
    posterior_h2_quadrature,
    posterior_predictive,
    sample,
)
from bayeslmm.errors import InputError, SamplingWarning

from helpers import simulate

# Priors under which the quadrature is exact: beta flat, Vp inverse gamma (integrated
# analytically), any prior on h2.
CONJ = {"h2": "Beta(1, 1)", "Vp": "InverseGamma(1, 1)", "beta": "Flat()"}


def _h2_stats(idata):
    s = azs.summary(idata, var_names=["h2"], kind="all", fmt="wide")
    return float(s.loc["h2", "mean"]), float(s.loc["h2", "mcse_mean"]), float(s.loc["h2", "sd"])


# ------------------------------------------------------------------ quadrature
def test_quadrature_is_exp_reml_profile(sim300):
    """With Jeffreys on Vp and a flat h2 prior, the density is exp(REML profile) (task note)."""
    y, K, X, Z, fit = sim300
    q = posterior_h2_quadrature(fit, priors={"h2": "Beta(1, 1)", "Vp": "Jeffreys()"})
    ll = fit.model.profile(q.h2.values, reml=True).loglik
    ref = np.exp(ll - ll.max())
    ref /= np.sum(ref * np.gradient(q.h2.values))
    np.testing.assert_allclose(q.density.values, ref, rtol=1e-8, atol=1e-12)
    assert q.attrs["method"] == "1-D conjugate"
    assert q["hdi"][0] < fit.h2 < q["hdi"][1]
    assert float(q["quantiles"].sel(quantile=0.5)) == pytest.approx(fit.h2, abs=0.05)


def test_quadrature_2d_grid_equals_conjugate(sim300):
    """The numerical (h2, log Vp) integration reproduces the analytic one."""
    y, K, X, Z, fit = sim300
    q1 = posterior_h2_quadrature(fit, priors=CONJ)
    q2 = posterior_h2_quadrature(fit, priors={**CONJ, "Vp": pm.InverseGamma.dist(1.0, 1.0)})
    assert q2.attrs["method"] == "2-D grid"
    assert float(q2["mean"]) == pytest.approx(float(q1["mean"]), abs=1e-5)
    assert float(q2["sd"]) == pytest.approx(float(q1["sd"]), rel=1e-3)
    with pytest.raises(InputError, match="flat"):
        posterior_h2_quadrature(fit, priors={"beta": "Normal(0, 1)"})


# ------------------------------------------------------------------ NUTS vs quadrature
def test_nuts_matches_quadrature_simulated(sim300):
    y, K, X, Z, fit = sim300
    q = posterior_h2_quadrature(fit, priors=CONJ)
    idata = sample(marginal_grm(y, fit.decomposition, X, priors=CONJ), draws=1000, chains=2,
                   seed=5, progressbar=False)
    mean, mcse, _ = _h2_stats(idata)
    print(f"\nsimulated N=300: NUTS h2 {mean:.4f} (mcse {mcse:.4f}), quadrature "
          f"{float(q['mean']):.4f}")
    assert abs(mean - float(q["mean"])) < max(0.01, 3 * mcse)
    assert idata["posterior"].attrs["n_divergences"] == 0


def test_nuts_matches_quadrature_non_conjugate(sim300):
    """Independent half-normal priors on the two variances: 2-D grid vs NUTS."""
    y, K, X, Z, fit = sim300
    pri = {"sigma_g2": "HalfNormal(1)", "sigma_e2": "HalfNormal(1)", "beta": "Flat()"}
    q = posterior_h2_quadrature(fit, priors=pri)
    idata = sample(marginal_grm(y, fit.decomposition, X, priors=pri), draws=1000, chains=2,
                   seed=6, progressbar=False)
    mean, mcse, _ = _h2_stats(idata)
    print(f"\nnon-conjugate: NUTS h2 {mean:.4f} (mcse {mcse:.4f}), grid {float(q['mean']):.4f}")
    assert abs(mean - float(q["mean"])) < max(0.01, 3 * mcse)


@pytest.mark.slow
def test_nuts_matches_quadrature_mouse(mouse):
    """GEMMA mouse example, phenotype 1 (N = 1410): NUTS vs quadrature, posterior vs REML."""
    y, K = mouse
    fit = bayeslmm.reml(y, K)
    q = posterior_h2_quadrature(fit, priors=CONJ)
    idata = sample(marginal_grm(y, fit.decomposition, priors=CONJ), draws=1000, chains=2,
                   seed=7, progressbar=False)
    mean, mcse, sd = _h2_stats(idata)
    print(f"\nmouse N={len(y)}: REML h2 {fit.h2:.4f}, NUTS {mean:.4f} (mcse {mcse:.4f}, sd "
          f"{sd:.4f}), quadrature {float(q['mean']):.4f} (sd {float(q['sd']):.4f})")
    assert abs(mean - float(q["mean"])) < max(0.01, 3 * mcse)
    # N large: the posterior mean is close to the REML estimate.
    assert abs(float(q["mean"]) - fit.h2) < 0.2 * float(q["sd"])
    assert idata["posterior"].attrs["n_divergences"] == 0


# h2 = 0.98 used to diverge: a centred GRM leaves the intercept in K's null space, whose
# scale sigma_e2 = (1 - h2) Vp makes a funnel; beta is now sampled non-centred on its
# conditional posterior (marginal_grm's beta_param="conditional", the default).
@pytest.mark.parametrize("h2", [0.02, 0.5, 0.98])
def test_no_divergences_default_priors(h2):
    y, K, X, Z, g = simulate(N=500, P=1000, h2=h2, seed=21)
    fit = bayeslmm.reml(y, K, X)
    idata = sample(marginal_grm(y, fit.decomposition, X), draws=500, chains=2, seed=1,
                   progressbar=False)
    n_div = idata["posterior"].attrs["n_divergences"]
    print(f"\nh2={h2}: divergences {n_div}, posterior mean "
          f"{float(idata['posterior']['h2'].mean()):.3f}, REML {fit.h2:.3f}")
    assert n_div == 0


# ------------------------------------------------------------------ layout, reproducibility
def test_sample_layout_reproducible_and_pymc_sampler(small):
    y, K, X, Z, g = small
    m = marginal_grm(y, K, X)
    a = sample(m, draws=200, tune=300, chains=2, seed=42, progressbar=False, check=False,
               log_likelihood=True)
    b = sample(m, draws=200, tune=300, chains=2, seed=42, progressbar=False, check=False)
    np.testing.assert_array_equal(a["posterior"]["h2"].values, b["posterior"]["h2"].values)
    for grp in ("posterior", "sample_stats", "log_likelihood", "log_prior", "observed_data"):
        assert grp in a.children, grp
    # log_likelihood is opt-in, as in pm.sample (N values per draw, O(N r) each)
    assert "log_likelihood" not in b.children and "log_prior" in b.children
    post = a["posterior"]
    for name in ("h2", "Vp", "sigma_g2", "sigma_e2", "beta"):
        assert name in post
    assert list(post["beta"].coords["covariate"].values) == ["intercept", "x1"]
    assert set(a["log_prior"].data_vars) == {"h2", "Vp", "beta"}
    # power-scaling sensitivity works on the stored groups (the follow-up issue's need)
    ps = azs.psense(a, var_names=["h2"], group="prior")
    assert np.isfinite(float(ps["h2"]))
    c = sample(m, draws=100, tune=200, chains=2, seed=1, sampler="pymc", progressbar=False,
               check=False, log_likelihood=True)
    assert c["posterior"].attrs["sampler"] == "pymc" and "log_likelihood" in c.children
    with pytest.raises(InputError):
        sample(m, sampler="stan")


def test_sampling_warning_on_short_chains(small):
    y, K, X, Z, g = small
    with pytest.warns(SamplingWarning, match="ESS"):
        sample(marginal_grm(y, K, X), draws=20, tune=20, chains=2, seed=0, progressbar=False)


# ------------------------------------------------------------------ empirical Bayes
def _dense_blup(fit):
    y, X, K = fit.data.y, fit.data.X, fit.decomposition.kernel()
    sg, se = fit.sigma_g2, fit.sigma_e2
    V = sg * K + se * np.eye(len(y))
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    G = sg * K
    return G @ P @ y, np.diag(G - G @ P @ G), G - G @ P @ G


def test_empirical_bayes_exact_equals_blup_pev(sim300):
    y, K, X, Z, fit = sim300
    eb = empirical_bayes(fit, draws=1000, chains=4, seed=3, full_cov=True)
    assert eb.sampled is None  # the exact path is the default; NUTS is opt-in (mcmc=True)
    g, pev, cov = _dense_blup(fit)
    err_g = np.max(np.abs(eb.blup.values - g))
    err_pev = np.max(np.abs(eb.pev.values - pev))
    err_cov = np.max(np.abs(eb.exact["exact"]["g_cov"].values - cov))
    print(f"\nEB exact vs dense: max |g| err {err_g:.2e}, |pev| err {err_pev:.2e}, "
          f"|cov| err {err_cov:.2e}")
    assert err_g < 1e-8 and err_pev < 1e-8 and err_cov < 1e-8
    blup_fn = getattr(fit, "blup", None)
    if blup_fn is not None:
        try:
            ds = blup_fn()
        except NotImplementedError:  # pragma: no cover - another engineer's module
            ds = None
        if ds is not None:
            print(f"vs fit.blup(): g {np.max(np.abs(eb.blup.values - ds['g'].values)):.2e}, "
                  f"pev {np.max(np.abs(eb.pev.values - ds['pev'].values)):.2e}")
            np.testing.assert_allclose(eb.blup.values, ds["g"].values, atol=1e-8)
            np.testing.assert_allclose(eb.pev.values, ds["pev"].values, atol=1e-8)
    # The i.i.d. draws have that mean and variance (Monte Carlo, 4000 draws).
    draws = eb.exact["posterior"]["g"].values.reshape(-1, len(y))
    z = (draws.mean(0) - g) / np.sqrt(pev / draws.shape[0])
    assert np.max(np.abs(z)) < 5
    np.testing.assert_allclose(draws.var(0), pev, rtol=0.15)
    assert eb.exact["posterior"]["g"].dims == ("chain", "draw", "sample")


def test_empirical_bayes_mcmc_matches_blup(sim300):
    y, K, X, Z, fit = sim300
    eb = empirical_bayes(fit, draws=500, chains=2, seed=4, mcmc=True)
    post = eb.sampled["posterior"]
    assert float(post["h2"].mean()) == pytest.approx(fit.h2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcse = azs.mcse(eb.sampled, var_names=["g"])["g"].values
    z = (post["g"].mean(("chain", "draw")).values - eb.blup.values) / mcse
    print(f"\nEB MCMC vs BLUP: max |z| = {np.max(np.abs(z)):.2f}, max |diff| = "
          f"{np.max(np.abs(post['g'].mean(('chain', 'draw')).values - eb.blup.values)):.4f}")
    assert np.max(np.abs(z)) < 5
    assert eb.sampled["posterior"].attrs["n_divergences"] == 0
    # Held-out prediction with the conditional normal (notes eq. 62) vs a dense formula.
    test, train = np.arange(280, 300), np.arange(280)
    fit_tr = bayeslmm.reml(y[train], K[np.ix_(train, train)], X[train])
    m = marginal_grm(y[train], fit_tr.decomposition, X[train], latent=False,
                     fixed={"sigma_g2": fit_tr.sigma_g2, "sigma_e2": fit_tr.sigma_e2},
                     priors={"beta": "Flat()"})
    idata = sample(m, draws=500, chains=2, seed=2, progressbar=False)
    K21 = K[np.ix_(test, train)]
    pp = posterior_predictive(idata, m, K_new=K21, K_new_diag=np.diag(K)[test],
                              X_new=X[test], seed=0)
    beta_bar = idata["posterior"]["beta"].mean(("chain", "draw")).values
    sg, se = fit_tr.sigma_g2, fit_tr.sigma_e2
    V = sg * K[np.ix_(train, train)] + se * np.eye(len(train))
    ref = sg * K21 @ np.linalg.solve(V, y[train] - X[train] @ beta_bar)
    got = pp["predictions"]["g"].mean(("chain", "draw")).values
    sd_pred = pp["predictions"]["g"].std(("chain", "draw")).values
    assert np.max(np.abs(got - ref) / (sd_pred / np.sqrt(1000))) < 5
    rep = posterior_predictive(idata, m, seed=0)["posterior_predictive"]["y"]
    assert rep.shape == (2, 500, len(train))
