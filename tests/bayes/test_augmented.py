"""The augmented (Albert-Chib, parameter-expanded, collapsed) sampler of the threshold model.

Evidence:
* closed forms: the working-scale integral against Gamma functions (B = 0) and scipy's
  adaptive quadrature (B != 0); the exact scale draws' first two moments against the same
  integrals; truncated-normal draws against scipy.stats.truncnorm, and finite in the far
  tails where inversion in the probability scale returns inf;
* brute force: for a group kernel the likelihood factorises over groups into 1-D integrals
  (Gauss-Hermite), so the exact posterior on a 2-D grid is computed here from the model's
  definition, for the options the fixed-prevalence test of test_threshold.py does not cover:
  a free intercept (its Normal prior), a covariate, a Beta(2, 5) prior on h2, a prior on
  the prevalence;
* dispatch, both directions: the models it covers are sampled by it, the others go to NUTS
  (or are refused, with the reason, under ``method="augmented"``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from bayeslmm.bayes import sample
from bayeslmm.bayes.augmented.draws import (
    draw_scale,
    log_scale_integral,
    truncated_normal_sign,
)
from bayeslmm.bayes.augmented.threshold import sample_augmented
from bayeslmm.bayes.models.threshold import threshold
from bayeslmm.errors import InputError


# ------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("n,a,B", [(10, 3.0, 0.0), (10, 3.0, 2.0), (500, 400.0, -30.0),
                                   (500, 600.0, 50.0), (2002, 1500.0, 0.0)])
def test_scale_integral_and_draws(n, a, B):
    got = log_scale_integral(n, np.array([a]), np.array([B]))[0]
    x = (B + np.sqrt(B * B + 4 * a * n)) / (2 * a)
    f0 = n * np.log(x) - 0.5 * a * x * x + B * x
    val, _ = integrate.quad(lambda u: np.exp(n * u - 0.5 * a * np.exp(2 * u)
                                             + B * np.exp(u) - f0),
                            np.log(x) - 6, np.log(x) + 6, limit=200, epsabs=0, epsrel=1e-12)
    assert got == pytest.approx(f0 + np.log(val), abs=1e-9)
    if B == 0:  # int alpha^(n-1) exp(-a alpha^2 / 2) = Gamma(n/2) 2^(n/2-1) a^(-n/2)
        closed = special.gammaln(n / 2) + (n / 2 - 1) * np.log(2) - n / 2 * np.log(a)
        assert got == pytest.approx(closed, abs=1e-9)
    draws = draw_scale(n, np.full(100_000, a), np.full(100_000, B), np.random.default_rng(1))
    assert np.all(draws > 0)
    for k in (1, 2):  # E alpha^k = I(n + k) / I(n)
        ref = np.exp(log_scale_integral(n + k, np.array([a]), np.array([B]))[0] - got)
        se = np.std(draws**k) / np.sqrt(draws.size)
        assert abs(np.mean(draws**k) - ref) < 4.5 * se


def test_truncated_normal_sides_and_tails():
    rng = np.random.default_rng(0)
    for eta in (-1.5, 0.3, 2.0):
        for case in (True, False):
            d = truncated_normal_sign(np.full(20_000, eta), np.full(20_000, case), rng)
            lo, hi = ((-eta, np.inf) if case else (-np.inf, -eta))
            ref = stats.truncnorm(lo, hi, loc=eta)
            assert stats.kstest(d, ref.cdf).pvalue > 1e-3
            assert np.all(d > 0) if case else np.all(d <= 0)
    # far tails: a case with eta = -40 sits just above 0 (mean 1/40 above), not at NaN/inf
    far = truncated_normal_sign(np.full(5000, -40.0), np.ones(5000, bool), rng)
    assert np.all(np.isfinite(far)) and np.all(far > 0)
    assert np.mean(far) == pytest.approx(1 / 40, rel=0.05)
    near = truncated_normal_sign(np.full(5000, 40.0), np.zeros(5000, bool), rng)
    assert np.all(np.isfinite(near)) and np.all(near <= 0)


# ------------------------------------------------------------------ brute force
def _groups(n_groups=20, size=4, h2=0.5, mu=-0.5, b=0.0, seed=5):
    rng = np.random.default_rng(seed)
    grp = np.repeat(np.arange(n_groups), size)
    Zg = (grp[:, None] == np.arange(n_groups)[None, :]).astype(float)
    sg = h2 / (1 - h2)
    x = rng.standard_normal(grp.size)
    liab = mu + b * x + Zg @ rng.normal(0, np.sqrt(sg), n_groups) + rng.standard_normal(
        grp.size)
    return (liab > 0).astype(float), Zg @ Zg.T, grp, x


def _group_loglik(y, grp, eta_fixed, sg, n_nodes=40):
    """log p(y | fixed part, sigma_g2) summed over groups: the group effect integrated by
    Gauss-Hermite. eta_fixed (..., N) broadcast against sg (...); when it is the same for
    every sample (no covariate) each group needs only its number of cases."""
    z, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / np.sqrt(2 * np.pi)
    s = np.where(y == 1, 1.0, -1.0)
    if eta_fixed.shape[-1] == 1:
        eta = eta_fixed + np.sqrt(sg)[..., None] * z
        up, down = special.log_ndtr(eta), special.log_ndtr(-eta)
        total = 0.0
        for k in np.unique(grp):
            cases = int(y[grp == k].sum())
            ll = cases * up + (int(np.sum(grp == k)) - cases) * down
            total = total + special.logsumexp(ll, b=w, axis=-1)
        return total
    total = 0.0
    for k in np.unique(grp):
        idx = grp == k
        eta = eta_fixed[..., idx, None] + np.sqrt(sg)[..., None, None] * z  # (..., n_k, nodes)
        ll = special.log_ndtr(s[idx, None] * eta).sum(axis=-2)
        total = total + special.logsumexp(ll, b=w, axis=-1)
    return total


def _moments(grid_h2, logpost):
    p = np.exp(logpost - logpost.max())
    p /= p.sum()
    ph = p.sum(axis=1)
    mean = float(np.sum(grid_h2 * ph))
    return mean, float(np.sqrt(np.sum((grid_h2 - mean) ** 2 * ph))), p


def _check(idata, mean, sd, name="h2"):
    import arviz_stats as azs

    draws = idata["posterior"][name]
    mcse = float(azs.mcse(idata, var_names=[name])[name])
    post = idata["posterior"]
    assert post.attrs["sampler"] == "augmented" and post.attrs["max_rhat"] < 1.01
    assert abs(float(draws.mean()) - mean) < 4 * mcse, (float(draws.mean()), mean, mcse)
    assert float(draws.std()) == pytest.approx(sd, rel=0.1)


def test_free_intercept_matches_brute_force():
    """mu ~ Normal(0, 1) (the default, on the liability's mean), h2 ~ Beta(1, 1); N = 200
    (50 groups of 4)."""
    y, K, grp, _ = _groups(n_groups=50, seed=5)
    h = (np.arange(300) + 0.5) / 300
    mu = np.linspace(-3.0, 2.0, 301)
    sg = (h / (1 - h))[:, None] * np.ones_like(mu)
    lp = _group_loglik(y, grp, np.broadcast_to(mu[None, :, None], sg.shape + (1,)),
                       sg) + stats.norm.logpdf(mu)[None, :]
    mean, sd, p = _moments(h, lp)
    assert abs(sd - 0.2887) > 0.03  # informed by the data, not the prior
    mu_mean = float(np.sum(p.sum(axis=0) * mu))
    mu_sd = float(np.sqrt(np.sum(p.sum(axis=0) * (mu - mu_mean) ** 2)))
    idata = sample(threshold(y, K), draws=500, tune=200, chains=4, seed=3,
                   progressbar=False)
    _check(idata, mean, sd)
    _check(idata, mu_mean, mu_sd, "intercept")


def test_covariate_and_prior_match_brute_force():
    """Prevalence 0.3 places the threshold; one covariate (beta_x ~ Normal(0, 1 / sd(x)));
    h2 ~ Beta(2, 5)."""
    y, K, grp, x = _groups(mu=-0.6, b=0.8, seed=8)
    X = np.column_stack([np.ones_like(x), x])
    xc = x - x.mean()
    h = (np.arange(150) + 0.5) / 150
    b = np.linspace(-1.0, 3.0, 101)
    sg = (h / (1 - h))[:, None] * np.ones_like(b)
    mu = stats.norm.ppf(0.3) * np.sqrt(1 + sg)
    eta = mu[..., None] + b[None, :, None] * xc
    lp = (_group_loglik(y, grp, eta, sg) + stats.norm.logpdf(b, 0, 1 / xc.std())[None, :]
          + stats.beta.logpdf(h, 2, 5)[:, None])
    mean, sd, p = _moments(h, lp)
    b_mean = float(np.sum(p.sum(axis=0) * b))
    b_sd = float(np.sqrt(np.sum(p.sum(axis=0) * (b - b_mean) ** 2)))
    m = threshold(y, K, X, prevalence=0.3, priors={"h2": "Beta(2, 5)"})
    idata = sample(m, draws=500, tune=200, chains=4, seed=2, progressbar=False)
    _check(idata, mean, sd)
    idata["posterior"]["b"] = idata["posterior"]["beta_x"].isel(covariate_x=0)
    _check(idata, b_mean, b_sd, "b")
    # the intercept on the uncentred covariates: mu - beta_x mean(x)
    post = idata["posterior"]
    np.testing.assert_allclose(post["beta"].isel(covariate=0),
                               post["intercept"] - post["b"] * x.mean(), rtol=1e-12)


def test_prevalence_prior_matches_brute_force():
    """prevalence ~ Beta(6, 14) (mean 0.3): the threshold Phi^-1(K) sqrt(1 + sigma_g2) moves
    with K, drawn by its own step."""
    y, K, grp, _ = _groups(mu=-0.5, seed=11)
    h = (np.arange(200) + 0.5) / 200
    k = (np.arange(150) + 0.5) / 150
    sg = (h / (1 - h))[:, None] * np.ones_like(k)
    mu = stats.norm.ppf(k)[None, :] * np.sqrt(1 + sg)
    lp = _group_loglik(y, grp, mu[..., None], sg) + stats.beta.logpdf(k, 6, 14)[None, :]
    mean, sd, p = _moments(h, lp)
    k_mean = float(np.sum(p.sum(axis=0) * k))
    k_sd = float(np.sqrt(np.sum(p.sum(axis=0) * (k - k_mean) ** 2)))
    m = threshold(y, K, prevalence="Beta(6, 14)")
    idata = sample(m, draws=500, tune=200, chains=4, seed=5, progressbar=False)
    _check(idata, mean, sd)
    _check(idata, k_mean, k_sd, "prevalence")
    assert "prevalence" in idata["log_prior"]


# ------------------------------------------------------------------ dispatch
def test_dispatch_both_directions(caplog):
    y, K, _, _ = _groups(n_groups=6, seed=1)
    probit = threshold(y, K, prevalence=0.2)
    import warnings

    from bayeslmm.errors import SamplingWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)  # check=False: 20 draws, no warning
        idata = sample(probit, draws=20, tune=10, chains=2, seed=1, progressbar=False,
                       check=False, log_likelihood=True)
    with pytest.warns(SamplingWarning, match="bulk ESS"):  # ... and with the check, one
        sample(probit, draws=20, tune=10, chains=2, seed=1, progressbar=False)
    post = idata["posterior"]
    assert post.attrs["sampler"] == "augmented"
    assert set(post.data_vars) >= {"h2", "sigma_g2", "intercept", "beta", "g"}
    assert idata["log_likelihood"]["y"].shape == (2, 20, y.size)
    assert "h2" in idata["log_prior"]
    # same seed, same draws; another seed, other draws
    again = sample(probit, draws=20, tune=10, chains=2, seed=1, progressbar=False,
                   check=False, log_likelihood=True)
    np.testing.assert_array_equal(again["posterior"]["h2"], post["h2"])
    other = sample(probit, draws=20, tune=10, chains=2, seed=2, progressbar=False, check=False)
    assert not np.array_equal(other["posterior"]["h2"], post["h2"])
    # models it does not cover: None (NUTS samples them), or a clear refusal
    logit = threshold(y, K, link="logit")
    with caplog.at_level("INFO"):
        assert sample_augmented(logit, draws=5, tune=5, chains=1) is None
    assert "link 'logit'" in caplog.text
    cauchy = threshold(y, K, priors={"intercept": "Cauchy(0, 1)"})
    assert sample_augmented(cauchy, draws=5) is None
    with pytest.raises(InputError, match="prior Cauchy.* on the intercept"):
        sample_augmented(cauchy, method="augmented")
    with pytest.raises(InputError, match="does not cover this model: link 'logit'"):
        sample_augmented(logit, method="augmented")
    assert sample_augmented(probit, method="nuts") is None
    with pytest.raises(InputError, match="method must be one of"):
        sample_augmented(probit, method="gibbs")
    with pytest.raises(InputError, match="thin must be a positive integer"):
        sample_augmented(probit, thin=0)
