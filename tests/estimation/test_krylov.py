"""Matrix-free REML and posterior of h2 (block Lanczos + deflated SLQ) vs the exact eigen
path (evidence: closed form on an exhausted Krylov space; brute force on simulated
structured genotypes)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from simulated_plink import simulate_plink

import bayeslmm
from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov
from bayeslmm.covariance.lanczos import block_lanczos
from bayeslmm.errors import ConvergenceWarning, InputError
from bayeslmm.estimation.krylov import blup_krylov, fit_krylov, krylov_model
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import read_plink
from bayeslmm.likelihood.krylov import KrylovLMM
from bayeslmm.likelihood.single import SpectralLMM


class DenseOp:
    """A dense stand-in for the genotype operator (projected kernel)."""

    def __init__(self, K, X):
        self.K, self.N = K, K.shape[0]
        self.Q = np.linalg.qr(X)[0]

    def project(self, V):
        return V - self.Q @ (self.Q.T @ V)

    def matmat(self, V):
        return self.project(self.K @ self.project(V))

    def matmat_raw(self, V):
        return (self.K @ V,)

    def trace(self):
        Pm = np.eye(self.N) - self.Q @ self.Q.T
        return float(np.trace(Pm @ self.K @ Pm))


def curvature_se(model, h2, eps=1e-4):
    """SE of h2 from the curvature of a profile likelihood (the definition KrylovFit uses)."""
    lp = model.profile(np.array([h2 - eps, h2, h2 + eps])).loglik
    return float(1 / np.sqrt(-(lp[0] - 2 * lp[1] + lp[2]) / eps**2))


def _small(N=60, P=200, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = Z @ rng.normal(0, np.sqrt(0.5 / P), P) + rng.normal(0, np.sqrt(0.5), N) + X @ [1, 2]
    return K, X, y


def test_block_lanczos_exhausts_to_the_spectrum():
    """Run past the dimension: the Ritz values are K's eigenvalues, T = B'KB exactly."""
    K, X, _ = _small()
    A = K + np.eye(K.shape[0])
    V0 = np.random.default_rng(1).standard_normal((60, 4))
    lz = block_lanczos(lambda V: A @ V, V0, 40)
    assert lz.T.shape == (60, 60) and sum(lz.block_sizes) == 60
    np.testing.assert_allclose(lz.theta, np.linalg.eigvalsh(A), rtol=1e-10)
    assert lz.residual.max() < 1e-8


def test_exhausted_space_fully_deflated_is_the_exact_likelihood():
    """With the whole residual space spanned and deflated, SLQ has nothing stochastic left:
    the profile equals SpectralLMM's REML profile (closed form, notes 4.3.2)."""
    K, X, y = _small()
    lz = block_lanczos(DenseOp(K, X).matmat, DenseOp(K, X).project(
        np.column_stack([y, np.random.default_rng(2).choice([-1.0, 1.0], (60, 3))])), 30)
    model = KrylovLMM(lz, y, X, DenseOp(K, X).trace(), n_deflate=1000)
    exact = SpectralLMM(bayeslmm.decompose(K), y, X)
    h2 = np.linspace(0.02, 0.98, 25)
    np.testing.assert_allclose(model.profile(h2).loglik, exact.profile(h2).loglik,
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.profile(h2).Vp, exact.profile(h2).Vp, rtol=1e-10)
    fit = fit_krylov(model)
    ref = bayeslmm.reml(y, K, X)
    assert abs(fit.h2 - ref.h2) < 1e-6 and abs(fit.loglik - ref.loglik) < 1e-8
    assert fit.h2_mc_se < 1e-8
    assert abs(fit.h2_se - curvature_se(exact, ref.h2)) < 1e-5
    # the observed-information SE is near GCTA's AI-based one, not equal to it
    assert abs(fit.h2_se / ref.h2_se - 1) < 0.15
    # (the Krylov search stops at h2 = 1 - 1e-5, as the eigen path does for a singular K)
    np.testing.assert_allclose(fit.h2_ci, ref.h2_ci, atol=2e-5)
    assert fit.bse["h2"] == fit.h2_se and np.all(fit.bse > 0)


def test_blup_equals_dense_formula():
    """g = h2 K P_H y and residual = (1 - h2) P_H y (notes eq. 62-63, P_H the REML projector
    of H = h2 K + (1 - h2) I), dense, at the Krylov h2; and close to bayeslmm.blup."""
    K, X, y = _small()
    op = DenseOp(K, X)
    model = krylov_model(op, y, X, n_probes=5, n_steps=15, seed=0, n_deflate=1000)
    fit = fit_krylov(model)
    h = fit.h2
    Hi = np.linalg.inv(h * K + (1 - h) * np.eye(60))
    Py = Hi @ y - Hi @ X @ np.linalg.solve(X.T @ Hi @ X, X.T @ Hi @ y)
    b = blup_krylov(fit, op, samples=[str(i) for i in range(60)])
    np.testing.assert_allclose(b["g"], h * K @ Py, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b["residual"], (1 - h) * Py, rtol=0, atol=1e-9)
    ref = bayeslmm.blup(bayeslmm.reml(y, K, X))
    np.testing.assert_allclose(b["g"], ref["g"], atol=1e-6)


def test_few_probes_show_monte_carlo_error():
    """The reverse direction: with a small space and few probes the MC error is visible and
    reported, and the REML result agrees with the exact one within a few MC errors."""
    K, X, y = _small(N=300, P=600, seed=4)
    op = DenseOp(K, X)
    model = krylov_model(op, y, X, n_probes=6, n_steps=4, seed=3, n_batches=6)
    with pytest.warns(ConvergenceWarning, match="raise n_steps"):
        fit = fit_krylov(model)
    assert fit.yHy_change > 1e-6
    ref = bayeslmm.reml(y, K, X)
    assert fit.h2_mc_se > 1e-4 and fit.logdet_mc_se > 1e-3
    assert abs(fit.h2 - ref.h2) < 5 * fit.h2_mc_se + 1e-3


def test_bad_input():
    K, X, y = _small()
    with pytest.raises(InputError, match="probes"):
        krylov_model(DenseOp(K, X), y, X, n_probes=1)
    with pytest.raises(InputError, match="shape"):
        krylov_model(DenseOp(K, X), y[:10], X)
    with pytest.raises(InputError, match="REML"):
        krylov_model(DenseOp(K, X), y, X, n_probes=5, n_steps=2).profile(0.5, reml=False)


@pytest.fixture(scope="module")
def structured(tmp_path_factory):
    path = tmp_path_factory.mktemp("krylov") / "sim.bed"
    y, _ = simulate_plink(path, N=2000, P=3200, h2=0.4, seed=11)
    ds = read_plink(path)
    X = np.column_stack([np.ones(y.size), np.random.default_rng(5).standard_normal(y.size)])
    from bayeslmm.genotypes.kinship import grm

    fit = bayeslmm.reml(y, bayeslmm.decompose(np.asarray(grm(ds).K)), X)
    return ds, y, X, fit


@pytest.mark.slow
def test_structured_genotypes_match_exact(structured):
    """N = 2,000 with 3 populations and relatives, a Krylov space of 20 x 31 = 620 (under a
    third of N): REML |dh2| <= 0.003, posterior mean |d| <= 0.003, SD within 5%."""
    ds, y, X, ref = structured
    op = GenotypeOperator(ds, X=X, progress=False)
    model = krylov_model(op, y, X, n_probes=30, n_steps=20, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = fit_krylov(model)
    # 20 Lanczos products over the int8 cache; the trace rides along the first one
    assert op.stats.passes == 20 and op.stats.decode_passes == 1
    assert abs(fit.h2 - ref.h2) <= 0.003
    assert fit.h2_mc_se < 0.003 and fit.yHy_change < 1e-8
    assert abs(fit.h2_se / curvature_se(ref.model, ref.h2) - 1) < 0.05
    assert abs(fit.loglik - ref.loglik) < 1.0
    post = posterior_h2_krylov(model, n_grid=801)
    exact = bayeslmm.posterior_h2_quadrature(ref, n_grid=801)
    assert abs(float(post["mean"]) - float(exact["mean"])) <= 0.003
    assert abs(float(post["sd"]) / float(exact["sd"]) - 1) < 0.05
    assert post.attrs["mean_mc_se"] < 0.003 and post.attrs["mc_flag"] == 0
