"""GEMMA's per-SNP tests against a dense brute force: the REML/ML log-likelihoods with
lambda re-fitted per SNP written out with V = lambda K + I formed and inverted, their maxima
over a dense grid, and the GLS Wald statistic (evidence kind: brute force)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import bayeslmm
from bayeslmm.association import assoc, one_test
from bayeslmm.association.per_snp import gemma_basis, per_snp_block
from bayeslmm.covariance.per_column import gemma_kernel

from helpers import simulate


def dense(y, V_design, K, lam, reml):
    """GEMMA's f_REML / f_ML at lambda, from V = lambda K + I formed densely."""
    n, k = V_design.shape
    V = lam * K + np.eye(n)
    Vi = np.linalg.inv(V)
    A = V_design.T @ Vi @ V_design
    P = Vi - Vi @ V_design @ np.linalg.solve(A, V_design.T @ Vi)
    Pyy = y @ P @ y
    logdetV = np.linalg.slogdet(V)[1]
    if reml:
        df = n - k
        return (0.5 * df * (np.log(df) - np.log(2 * np.pi) - 1) - 0.5 * logdetV
                - 0.5 * (np.linalg.slogdet(A)[1] - np.linalg.slogdet(V_design.T @ V_design)[1])
                - 0.5 * df * np.log(Pyy))
    Pw = Vi - Vi @ V_design @ np.linalg.solve(A, V_design.T @ Vi)
    return 0.5 * n * (np.log(n) - np.log(2 * np.pi) - 1) - 0.5 * logdetV \
        - 0.5 * n * np.log(y @ Pw @ y)


@pytest.fixture(scope="module")
def problem():
    # (at N = 120 with 300 SNPs the ML lambda runs to GEMMA's bound 1e5 for every SNP: the
    # centred kernel's null direction lies in span(X), so the ML likelihood grows as
    # 1/2 log lambda; these data have an interior maximum)
    y, K, X, Z, _ = simulate(N=200, P=150, h2=0.6, M=2, seed=8)
    rng = np.random.default_rng(9)
    G = rng.binomial(2, 0.3, (200, 6)).astype(float)
    y = y + 0.4 * (G[:, 0] - G[:, 0].mean())  # one associated SNP
    return y, K, X, G


def test_lambda_and_loglik_equal_the_dense_maximum(problem):
    y, K, X, G = problem
    Kc = gemma_kernel(K)[1] @ np.diag(gemma_kernel(K)[0]) @ gemma_kernel(K)[1].T
    basis = gemma_basis(K, y, X)
    out = per_snp_block(basis, G, ["wald", "lrt"])
    grid = np.exp(np.linspace(np.log(1e-5), np.log(1e5), 3001))
    for j in range(G.shape[1]):
        V = np.column_stack([X, G[:, j]])
        for test, reml in (("wald", True), ("lrt", False)):
            lam, f = out[test]["lam"][j], out[test]["logl"][j]
            assert 1e-5 < lam < 1e5  # an interior maximum (see the fixture)
            # the log-likelihood at our lambda, written out densely
            assert f == pytest.approx(dense(y, V, Kc, lam, reml), rel=1e-10)
            # and no point of a fine grid is higher
            best = max(dense(y, V, Kc, g, reml) for g in grid[::10])
            assert f >= best - 1e-9
    # the null ML fit likewise
    assert basis.logl_mle_null == pytest.approx(dense(y, X, Kc, basis.l_mle_null, False),
                                                rel=1e-10)


def test_wald_is_the_gls_f_test_at_the_refitted_lambda(problem):
    y, K, X, G = problem
    d, U = gemma_kernel(K)
    Kc = (U * d) @ U.T
    basis = gemma_basis(K, y, X)
    out = per_snp_block(basis, G, ["wald", "score"])["wald"]
    n, c = X.shape
    for j in range(G.shape[1]):
        V = np.column_stack([X, G[:, j]])
        Vi = np.linalg.inv(out["lam"][j] * Kc + np.eye(n))
        A = V.T @ Vi @ V
        b = np.linalg.solve(A, V.T @ Vi @ y)
        r = y - V @ b
        tau = (n - c - 1) / (r @ Vi @ r)
        se = np.sqrt(np.linalg.inv(A)[-1, -1] / tau)
        assert out["beta"][j] == pytest.approx(b[-1], rel=1e-8)
        assert out["se"][j] == pytest.approx(se, rel=1e-8)
        assert out["p"][j] == pytest.approx(stats.f.sf((b[-1] / se) ** 2, 1, n - c - 1),
                                            rel=1e-6)
    assert out["p"][0] < 1e-3 < np.median(out["p"])  # the associated SNP, both directions


def test_invariances_and_loco(problem):
    """Scaling y or K, or adding to y anything in span(X), changes no p-value; samples in
    another order give the same result; LOCO tests each chromosome on its own fit."""
    y, K, X, G = problem
    fit = bayeslmm.reml(y, K, X)
    base = assoc(fit, G, ["wald", "lrt", "score"])
    for y2, K2 in ((3.0 * y + X @ [5.0, -2.0], K), (y, 4.0 * K)):
        other = assoc(bayeslmm.reml(y2, K2, X), G, ["wald", "lrt", "score"])
        np.testing.assert_allclose(other["p"], base["p"], rtol=1e-5)
    perm = np.random.default_rng(1).permutation(len(y))
    permuted = assoc(bayeslmm.reml(y[perm], K[np.ix_(perm, perm)], X[perm]), G[perm], "wald")
    np.testing.assert_allclose(permuted["p"], one_test(base, "wald")["p"], rtol=1e-6)
    chrom = np.array(["1", "1", "1", "2", "2", "2"])
    fits = {"1": bayeslmm.reml(y, K + 0.1 * np.eye(len(y)), X),
            "2": bayeslmm.reml(y, K + 0.2 * np.eye(len(y)), X)}
    loco = assoc(None, G, "wald", loco=fits, chrom=chrom)
    alone = assoc(fits["2"], G[:, 3:], "wald")
    np.testing.assert_allclose(loco["p"].values[3:], alone["p"].values, rtol=1e-10)


@pytest.mark.parametrize("P", [150, 400])  # a low-rank kernel (decomposed again), a full one
def test_wald_alone_equals_wald_on_gemmas_centred_kernel(P):
    """The Wald test alone runs on the REML fit's own decomposition of the uncentred K (its
    REML lambda is invariant to centring with the intercept in X); with an ML test beside it
    on GEMMA's centred kernel, decomposed again. Both must give the same numbers, GEMMA's
    pve (trace of the centred kernel) included; the ML null fit is only there with ML tests."""
    y, K, X, _, _ = simulate(N=200, P=P, h2=0.6, M=2, seed=3)
    G = np.random.default_rng(4).binomial(2, 0.3, (200, 8)).astype(float)
    y = y + 0.5 * (G[:, 1] - G[:, 1].mean())
    fit = bayeslmm.reml(y, K, X)
    alone = assoc(fit, G, "wald")
    together = one_test(assoc(fit, G, ["wald", "lrt"]), "wald")
    for v in ("beta", "se", "p", "lambda", "logl_H1"):
        np.testing.assert_allclose(alone[v], together[v], rtol=1e-6, err_msg=v)
    assert alone.attrs["pve_gemma"] == pytest.approx(together.attrs["pve_gemma"], rel=1e-9)
    assert np.isfinite(together.attrs["lambda_mle_null"])
    reused = P == 400  # rank N - 1: the complement (the intercept's direction) is added
    assert np.isnan(alone.attrs["lambda_mle_null"]) == reused
