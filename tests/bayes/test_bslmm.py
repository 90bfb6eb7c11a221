"""BSLMM (bayes/sparse/bslmm.py): the sampler against exhaustive enumeration and quadrature.

Evidence (docs/sparse-priors.md, "BSLMM", "What it is checked against"): on P = 4 SNPs the
posterior over the 2^P inclusion vectors is computed exactly from dense matrices, each
vector's marginal likelihood with beta, u, tau and the intercept integrated out
(|Sigma_g|^-1/2 (y2'Sigma_g^-1 y2)^-(N-M)/2 on the contrasts y2 = Q_2'y of
scipy.linalg.null_space, Sigma_g = lambda K2 + sigma_a2 Z_g Z_g' + I), with the
hyperparameters fixed and with h, rho and log pi integrated over GEMMA's uniform priors by
Gauss-Legendre quadrature; with pi -> 0 the (h, rho) posterior is the LMM's REML likelihood
on a grid. Agreement within 4 Monte Carlo SE (batch means).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import linalg

from bayeslmm import registry
from bayeslmm.bayes.sparse.bslmm import bslmm
from bayeslmm.errors import InputError

N, P = 40, 4


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    G = rng.binomial(2, [0.2, 0.3, 0.4, 0.5], size=(N, P)).astype(float)
    G[:, 1] = np.where(rng.random(N) < 0.7, G[:, 0], G[:, 1])  # SNPs 0 and 1 in LD
    y = 1.0 + 0.5 * G[:, 0] + 0.3 * G[:, 3] + rng.standard_normal(N)
    return y, G


def _pieces(y, G):
    Q2 = linalg.null_space(np.ones((1, N)))
    y2, Z2 = Q2.T @ y, Q2.T @ G
    K2 = Z2 @ Z2.T / P
    return y2, Z2, K2, np.trace(K2) / N


def _log_marginals(y2, Z2, K2, lam, sa):
    """log p(y | gamma, lambda, sigma_a2) (tau, beta integrated) and E(beta | gamma, y), for
    every gamma; lam, sa of shape (k,) (a batch of hyperparameters). Sigma_g by Woodbury
    around H = lambda K2 + I (K2's eigenvectors, numpy's eigh)."""
    n = y2.size
    s, V = np.linalg.eigh(K2)
    hi = 1.0 / (1.0 + lam[:, None] * s)  # H^-1's eigenvalues, (k, n)
    yv, Zv = V.T @ y2, V.T @ Z2
    yHy = hi @ yv**2
    logdet_H = -np.log(hi).sum(1)
    out = []
    for mask in itertools.product([0, 1], repeat=P):
        idx = np.flatnonzero(mask)
        mean = np.zeros((lam.size, P))
        ll = -0.5 * logdet_H - 0.5 * n * np.log(yHy)
        if idx.size:
            A = Zv[:, idx]
            AHA = np.einsum("ia,ki,ib->kab", A, hi, A)
            b = np.einsum("ia,ki,i->ka", A, hi, yv)
            C = AHA + np.eye(idx.size) / sa[:, None, None]
            m = np.linalg.solve(C, b[..., None])[..., 0]
            # |Sigma_g| = |H| |I + sa A'H^-1 A|; y'Sigma_g^-1 y = y'H^-1 y - b'C^-1 b
            _, ld = np.linalg.slogdet(np.eye(idx.size) + sa[:, None, None] * AHA)
            ll = -0.5 * (logdet_H + ld) - 0.5 * n * np.log(yHy - np.einsum("ka,ka->k", b, m))
            mean[:, idx] = m
        out.append((np.array(mask, float), ll, mean))
    return out


def _sigmas(h, rho, pi, trG):
    return h * (1 - rho) / (trG * (1 - h)), h * rho / (trG * (1 - h) * pi * P)


def _within(est, mcse, exact, k=4.0):
    assert np.all(np.abs(est - exact) <= k * mcse), (est, exact, mcse)


def _batch_se(x, nb=20):
    x = np.asarray(x)
    b = x.reshape(x.shape[0], nb, -1).mean(axis=2).ravel()
    return x.mean(), b.std(ddof=1) / np.sqrt(b.size)


def test_pips_equal_enumeration_with_hyperparameters_fixed(problem):
    y, G = problem
    h, rho, pi = 0.4, 0.7, 0.3
    y2, Z2, K2, trG = _pieces(y, G)
    lam, sa = _sigmas(h, rho, pi, trG)
    models = _log_marginals(y2, Z2, K2, np.array([lam]), np.array([sa]))
    lp = np.array([ll[0] + m.sum() * np.log(pi) + (P - m.sum()) * np.log1p(-pi)
                   for m, ll, _ in models])
    w = np.exp(lp - lp.max())
    w /= w.sum()
    pip = sum(wi * m for wi, (m, _, _) in zip(w, models, strict=True))
    eff = sum(wi * mean[0] for wi, (_, _, mean) in zip(w, models, strict=True))
    assert 0.1 < pip.min() and pip.max() < 0.99  # a test with teeth
    tree = bslmm(y, G, h=h, rho=rho, pi=pi, draws=6000, tune=200, chains=4, seed=3,
                 check=False)
    s = tree["snp_summary"]
    _within(s["pip"].values, s["pip_mcse"].values, pip)
    _within(s["effect_mean"].values, s["effect_mcse"].values, eff)
    # and the check can fail: the enumeration at another pi is far outside
    lp_bad = np.array([ll[0] + m.sum() * np.log(0.05) + (P - m.sum()) * np.log1p(-0.05)
                       for m, ll, _ in models])
    wb = np.exp(lp_bad - lp_bad.max())
    pip_bad = sum(wi * m for wi, (m, _, _) in zip(wb / wb.sum(), models, strict=True))
    assert np.any(np.abs(s["pip"].values - pip_bad) > 4 * s["pip_mcse"].values)


def test_pips_and_hyperparameters_integrated_over_gemmas_priors(problem):
    y, G = problem
    y2, Z2, K2, trG = _pieces(y, G)
    lo = np.log(1.0 / P)
    x, wq = np.polynomial.legendre.leggauss(14)
    u, wu = (x + 1) / 2, wq / 2  # (0, 1)
    H, R, L = np.meshgrid(u, u, lo * (1 - u), indexing="ij")  # log pi on (log 1/P, 0)
    W = np.einsum("i,j,k->ijk", wu, wu, wu).ravel()
    h, rho, pi = H.ravel(), R.ravel(), np.exp(L.ravel())
    lam, sa = _sigmas(h, rho, pi, trG)
    models = _log_marginals(y2, Z2, K2, lam, sa)
    lp = np.array([ll + m.sum() * np.log(pi) + (P - m.sum()) * np.log1p(-pi)
                   for m, ll, _ in models]) + np.log(W)  # (2^P, grid)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    pip = sum(w[i].sum() * m for i, (m, _, _) in enumerate(models))
    e_h, e_rho, e_pi = (w.sum(0) @ v for v in (h, rho, pi))
    tree = bslmm(y, G, draws=8000, tune=1000, chains=4, seed=5, check=False)
    s, post = tree["snp_summary"], tree["posterior"]
    _within(s["pip"].values, s["pip_mcse"].values, pip)
    for name, exact in (("h", e_h), ("rho", e_rho), ("pi", e_pi)):
        est, se = _batch_se(post[name].values)
        _within(est, se, exact)


def test_pi_to_zero_is_the_lmm(problem):
    """pi fixed at 1e-9: no SNP enters, and (h, rho) follow the REML likelihood of
    lambda = h (1 - rho) / (trace_G (1 - h)) under their uniform priors (2-D quadrature)."""
    y, G = problem
    y2, Z2, K2, trG = _pieces(y, G)
    s, V = np.linalg.eigh(K2)
    yr2 = (V.T @ y2) ** 2
    x, wq = np.polynomial.legendre.leggauss(60)
    u, wu = (x + 1) / 2, wq / 2
    H, R = (a.ravel() for a in np.meshgrid(u, u, indexing="ij"))
    lam = H * (1 - R) / (trG * (1 - H))
    d = 1 + lam[:, None] * s
    lp = -0.5 * np.log(d).sum(1) - 0.5 * y2.size * np.log((yr2 / d).sum(1)) \
        + np.log(np.outer(wu, wu).ravel())
    w = np.exp(lp - lp.max())
    w /= w.sum()
    tree = bslmm(y, G, pi=1e-9, draws=4000, tune=500, chains=4, seed=11, check=False)
    post = tree["posterior"]
    assert post["n_gamma"].values.max() == 0
    for name, v in (("h", H), ("rho", R)):
        est, se = _batch_se(post[name].values)
        _within(est, se, w @ v)


def test_causal_snps_high_and_null_snps_low():
    rng = np.random.default_rng(2)
    n, p = 300, 150
    G = rng.binomial(2, rng.uniform(0.1, 0.5, p), size=(n, p)).astype(float)
    Gc = G - G.mean(0)
    causal = [5, 60, 120]
    y = Gc[:, causal] @ [0.8, -0.7, 0.7] + Gc @ rng.normal(0, 0.02, p) \
        + rng.standard_normal(n)
    tree = bslmm(y, G, draws=600, tune=300, chains=2, seed=4, check=False)
    pip = tree["snp_summary"]["pip"].values
    null = np.delete(pip, causal)
    assert pip[causal].min() > 0.9
    assert null.max() < 0.5 and np.median(null) < 0.1


def test_registered_and_refusals(problem):
    y, G = problem
    assert registry.model_family("bslmm").build is bslmm
    with pytest.raises(InputError, match="rho fixed"):
        bslmm(y, G, rho=1.5)
    with pytest.raises(InputError, match="draws"):
        bslmm(y, G, draws=0)
    with pytest.raises(InputError, match="missing"):
        bslmm(y, np.where(G == 2, np.nan, G))
