"""NUTS posterior of r_g against brute-force numerical integration on a tiny data set.

NUTS runs on the hand-written log-density (:mod:`bayeslmm.bayes.compiled.multitrait`, what
``sample`` uses by default); tests/bayes/test_multitrait_logp.py ties that density to PyMC's.

The reference integrates the posterior over all six variance parameters (h2_1, h2_2, Vp_1,
Vp_2, r_g, r_e) by importance sampling, independently of MCMC and of PyMC: 400,000 points
from a heavy-tailed (multivariate t, 4 df) proposal in the unconstrained coordinates (logit
h2, log Vp, atanh r), each weighted by prior x restricted likelihood x Jacobian / proposal.
The likelihood there is a vectorised closed form for two traits and an intercept, itself
checked against the dense NT x NT reference.
"""

import numpy as np
import pytest
from scipy import special, stats

import bayeslmm
from bayeslmm.bayes.compiled.multitrait import supported
from bayeslmm.bayes.models.multitrait import multitrait_marginal
from bayeslmm.likelihood.multitrait import dense_multitrait_loglik

from helpers import simulate_two

LOG2PI = np.log(2 * np.pi)


def _batch_restricted_loglik(Sg, Se, s, y1, y2, q, N):
    """Restricted log-likelihood (notes 4.3.2, Kronecker V) for a batch of (Sg, Se) (G, 2, 2);
    intercept only (q = U'1/sqrt(N), y = U'(Y - mean)), full-rank K."""
    d11 = s * Sg[:, 0, 0, None] + Se[:, 0, 0, None]
    d22 = s * Sg[:, 1, 1, None] + Se[:, 1, 1, None]
    d12 = s * Sg[:, 0, 1, None] + Se[:, 0, 1, None]
    det = d11 * d22 - d12**2
    i11, i22, i12 = d22 / det, d11 / det, -d12 / det
    quad = (i11 * y1**2 + 2 * i12 * y1 * y2 + i22 * y2**2).sum(1)
    q2 = q**2
    a11, a22, a12 = (i11 * q2).sum(1), (i22 * q2).sum(1), (i12 * q2).sum(1)
    b1 = ((i11 * y1 + i12 * y2) * q).sum(1)
    b2 = ((i12 * y1 + i22 * y2) * q).sum(1)
    detA = a11 * a22 - a12**2
    bAb = (a22 * b1**2 - 2 * a12 * b1 * b2 + a11 * b2**2) / detA
    return -0.5 * ((N - 1) * 2 * LOG2PI + np.log(det).sum(1) + quad - bAb + np.log(detA))


def _covariances(h2, Vp, rg, re):
    sdg, sde = np.sqrt(h2 * Vp), np.sqrt((1 - h2) * Vp)
    Sg = np.empty((h2.shape[0], 2, 2))
    Se = np.empty_like(Sg)
    Sg[:, 0, 0], Sg[:, 1, 1] = sdg[:, 0] ** 2, sdg[:, 1] ** 2
    Sg[:, 0, 1] = Sg[:, 1, 0] = rg * sdg[:, 0] * sdg[:, 1]
    Se[:, 0, 0], Se[:, 1, 1] = sde[:, 0] ** 2, sde[:, 1] ** 2
    Se[:, 0, 1] = Se[:, 1, 0] = re * sde[:, 0] * sde[:, 1]
    return Sg, Se


def _log_posterior(t, s, UY, q, N, vy, eta):
    """Log posterior density (up to a constant) at rows t = (logit h2, log Vp, atanh r_g,
    atanh r_e) (G, 6): restricted likelihood x prior x Jacobian of the transform."""
    h2, Vp = special.expit(t[:, :2]), np.exp(t[:, 2:4])
    rg, re = np.tanh(t[:, 4]), np.tanh(t[:, 5])
    Sg, Se = _covariances(h2, Vp, rg, re)
    ll = _batch_restricted_loglik(Sg, Se, s, UY[:, 0], UY[:, 1], q, N)
    # log(1 - tanh(x)^2) and log(h (1 - h)), h = expit(a), written to stay finite in the tails.
    l1r = 2 * (np.log(2) - np.abs(t[:, 4:6]) - np.log1p(np.exp(-2 * np.abs(t[:, 4:6]))))
    lh = -np.abs(t[:, :2]) - 2 * np.log1p(np.exp(-np.abs(t[:, :2])))
    lp = (stats.halfnorm.logpdf(Vp, scale=2.5 * vy).sum(1)  # Beta(1, 1) on h2: 0
          + (eta - 1) * l1r.sum(1))
    jac = lh.sum(1) + t[:, 2:4].sum(1) + l1r.sum(1)
    out = ll + lp + jac
    return np.where(np.isfinite(out), out, -np.inf)


def _reference_posterior(Y, dec, vy, eta=1.0, n=400_000, seed=0):
    """Importance-sampling integration of the posterior: a multivariate t (4 df) proposal at
    the mode of the transformed posterior, scaled by 1.5 x its Laplace covariance. Returns
    the self-normalised weights and the r_g of each point."""
    from scipy import optimize

    N = Y.shape[0]
    q = dec.U.T @ np.full(N, 1 / np.sqrt(N))
    UY = dec.U.T @ (Y - Y.mean(0))

    def f(t):
        return _log_posterior(np.atleast_2d(t), dec.S, UY, q, N, vy, eta)

    t0 = np.array([0.0, 0.0, *np.log(vy), 0.0, 0.0])
    mode = optimize.minimize(lambda t: -f(t)[0], t0, method="BFGS").x
    h = 1e-3
    E = np.eye(6) * h
    H = np.array([[(f(mode + E[i] + E[j]) - f(mode + E[i] - E[j]) - f(mode - E[i] + E[j])
                    + f(mode - E[i] - E[j]))[0] / (4 * h * h) for j in range(6)]
                  for i in range(6)])
    prop = stats.multivariate_t(loc=mode, shape=1.5 * np.linalg.inv(-H), df=4, seed=seed)
    pts = prop.rvs(n)
    logw = np.concatenate([f(pts[k:k + 50_000]) for k in range(0, n, 50_000)])
    logw -= prop.logpdf(pts)
    w = np.exp(logw - logw.max())
    return w / w.sum(), np.tanh(pts[:, 4])


def _wquantile(x, w, p):
    o = np.argsort(x)
    c = np.cumsum(w[o])
    return np.interp(p, c, x[o])


@pytest.fixture(scope="module")
def tiny():
    Y, K, X, _ = simulate_two(N=40, P=80, h2=(0.5, 0.5), rg=0.7, seed=21)
    dec = bayeslmm.decompose(K)
    vy = np.var(Y - Y.mean(0), axis=0, ddof=1)
    return Y, K, dec, vy


def test_batch_likelihood_equals_dense(tiny):
    Y, K, dec, _ = tiny
    rng = np.random.default_rng(0)
    h2, Vp = rng.uniform(0.1, 0.9, (3, 2)), rng.uniform(0.5, 3, (3, 2))
    Sg, Se = _covariances(h2, Vp, rng.uniform(-0.9, 0.9, 3), rng.uniform(-0.9, 0.9, 3))
    N = Y.shape[0]
    q = dec.U.T @ np.full(N, 1 / np.sqrt(N))
    UY = dec.U.T @ (Y - Y.mean(0))
    ours = _batch_restricted_loglik(Sg, Se, dec.S, UY[:, 0], UY[:, 1], q, N)
    ref = [dense_multitrait_loglik(Y, np.ones((N, 1)), K, a, b)
           for a, b in zip(Sg, Se, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9)


@pytest.mark.slow
def test_nuts_rg_equals_numerical_integration(tiny):
    import arviz_stats as azs

    Y, K, dec, vy = tiny
    w, rg_pts = _reference_posterior(Y, dec, vy)
    # A good proposal: many effective points and no single point dominating the integral.
    assert 1 / np.sum(w**2) > 50_000 and w.max() < 1e-3
    model = multitrait_marginal(Y, dec)
    assert supported(model) is None  # sampled through the hand-written log-density
    idata = bayeslmm.sample(model, draws=1000, tune=1000, chains=4, seed=2,
                            progressbar=False, log_prior=False, target_accept=0.9)
    rg = idata["posterior"]["r_g"].values.ravel()
    ess = float(azs.ess(idata, var_names=["r_g"], method="bulk")["r_g"])
    mcse = rg.std() / np.sqrt(ess)
    ref_mean = float(np.sum(w * rg_pts))
    assert abs(rg.mean() - ref_mean) < 4 * mcse
    for p in (0.1, 0.5, 0.9):
        # quantile MCSE ~ sqrt(p(1-p)/ESS) / density; 4 of them, density >= sd-scaled 0.25
        tol = 4 * np.sqrt(p * (1 - p) / ess) * rg.std() / 0.25
        assert abs(np.quantile(rg, p) - _wquantile(rg_pts, w, p)) < tol
    # The comparison can fail: a different LKJ shape moves the reference beyond it.
    w8, rg8 = _reference_posterior(Y, dec, vy, eta=8.0, n=100_000)
    assert abs(rg.mean() - float(np.sum(w8 * rg8))) > 4 * mcse
