"""Per-sample log-likelihood of the marginal model: the exact leave-one-out predictive
densities (Buerkner, Gabry & Vehtari 2021) against brute-force conditioning of the dense
multivariate normal, and PSIS-LOO preferring the true model of two nested ones."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.bayes import fixed_effects, marginal_grm, sample
from bayeslmm.bayes.loo import joint_loglik, marginal_loo_loglik
from bayeslmm.bayes.model_info import model_info
from bayeslmm.data import prepare
from bayeslmm.likelihood.single import dense_loglik

from helpers import simulate


def _posterior(rng, M, n_chain=2, n_draw=3):
    return xr.Dataset(
        {"sigma_g2": (("chain", "draw"), rng.uniform(0.2, 1.5, (n_chain, n_draw))),
         "sigma_e2": (("chain", "draw"), rng.uniform(0.2, 1.0, (n_chain, n_draw))),
         "beta": (("chain", "draw", "covariate"), rng.normal(0, 1, (n_chain, n_draw, M)))},
        coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw)})


def brute_force_loo(y, X, K, sg, se, beta):
    """log N(y_i | mu_i + V_i,-i V_-i,-i^-1 (y_-i - mu_-i), V_ii - V_i,-i V_-i,-i^-1 V_-i,i)
    by explicit conditioning, one sample at a time."""
    N = len(y)
    V = sg * K + se * np.eye(N)
    mu = X @ beta
    out = np.empty(N)
    for i in range(N):
        o = np.arange(N) != i
        w = np.linalg.solve(V[np.ix_(o, o)], V[o, i])
        m = mu[i] + w @ (y[o] - mu[o])
        v = V[i, i] - w @ V[o, i]
        out[i] = -0.5 * (np.log(2 * np.pi * v) + (y[i] - m) ** 2 / v)
    return out


@pytest.mark.parametrize("P", [200, 20])  # full-rank K, and low rank (the complement)
def test_loo_densities_equal_brute_force_conditioning(rng, P):
    y, K, X, Z, _ = simulate(N=60, P=P, h2=0.5, seed=2)
    data = prepare(y, None, X, component_names=[])
    if P < 60:
        dec = bayeslmm.decompose_genotypes(Z)  # rank 20: a 40-dimensional complement
    else:
        K = K + 0.05 * np.eye(60)  # a centred GRM has rank N - 1; make it full rank
        dec = bayeslmm.decompose(K)
    assert dec.full_rank == (P >= 60)
    post = _posterior(rng, X.shape[1])
    got = marginal_loo_loglik(post, data, dec)
    assert got.dims == ("chain", "draw", "sample") and got.shape == (2, 3, 60)
    joint = joint_loglik(post, data, dec)
    for c in range(2):
        for d in range(3):
            p = post.isel(chain=c, draw=d)
            sg, se, b = float(p.sigma_g2), float(p.sigma_e2), p.beta.values
            np.testing.assert_allclose(got.isel(chain=c, draw=d).values,
                                       brute_force_loo(y, X, K, sg, se, b), rtol=0, atol=1e-8)
            assert float(joint.isel(chain=c, draw=d)) == pytest.approx(
                dense_loglik(y, X, [K], sg, se, reml=False, beta=b), abs=1e-8)


def test_sample_stores_per_sample_loo_terms():
    y, K, X, *_ = simulate(N=60, P=200, h2=0.5, seed=2)
    model = marginal_grm(y, K, X)
    idata = sample(model, draws=200, tune=200, chains=2, seed=1, progressbar=False,
                   log_likelihood=True)
    ll = idata["log_likelihood"]
    assert list(ll.data_vars) == ["y"] and ll["y"].sizes["sample"] == 60
    info = model_info(model)
    np.testing.assert_allclose(
        ll["y"].values,
        marginal_loo_loglik(idata["posterior"].to_dataset(), info.data,
                            info.decomposition).values, rtol=1e-12)
    np.testing.assert_array_equal(idata["observed_data"]["y"].values, info.data.y)


@pytest.mark.slow
def test_loo_prefers_the_true_model_of_two_nested_ones():
    import arviz_stats

    def elpd(idata):
        res = arviz_stats.loo(idata, pointwise=True)
        return res.elpd_i.values.ravel()

    # Truth with a GRM (h2 = 0.6): loo prefers the GRM model over the linear model, clearly.
    y, K, X, *_ = simulate(N=200, P=400, h2=0.6, seed=8)
    with_grm = sample(marginal_grm(y, K, X), draws=500, tune=500, chains=2, seed=1,
                      progressbar=False, log_likelihood=True)
    without = sample(fixed_effects(y, X), draws=500, tune=500, chains=2, seed=1,
                     progressbar=False, log_likelihood=True)
    diff = elpd(with_grm) - elpd(without)
    assert diff.sum() > 2 * np.sqrt(diff.size * diff.var())  # elpd_diff > 2 SE
    # Truth without (h2 = 0): the extra kernel buys nothing; loo does not prefer it beyond
    # noise (the difference is within two standard errors, or favours the simpler model).
    y0, K0, X0, *_ = simulate(N=200, P=400, h2=0.0, seed=9)
    with_grm = sample(marginal_grm(y0, K0, X0), draws=500, tune=500, chains=2, seed=1,
                      progressbar=False, log_likelihood=True)
    without = sample(fixed_effects(y0, X0), draws=500, tune=500, chains=2, seed=1,
                     progressbar=False, log_likelihood=True)
    diff0 = elpd(with_grm) - elpd(without)
    assert diff0.sum() < 2 * np.sqrt(diff0.size * diff0.var())


def test_marginal_grm_without_a_kernel_names_the_model_without_one():
    """The LOO comparison's second model is fixed_effects (docs/real-data.md): the error for
    a missing kernel says so, and fixed_effects builds on the same data."""
    from bayeslmm.errors import InputError

    y = np.random.default_rng(0).normal(size=20)
    with pytest.raises(InputError, match=r"fixed_effects\(y, X\)"):
        marginal_grm(y, None)
    assert "y" in fixed_effects(y).named_vars
