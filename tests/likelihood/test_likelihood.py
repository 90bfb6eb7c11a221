"""Spectral log-likelihoods (notes eq. 48, 4.3.2) against the dense reference and closed forms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import bayeslmm
from bayeslmm.likelihood.single import SpectralLMM, dense_loglik

from helpers import simulate


@pytest.fixture(scope="module")
def model():
    y, K, X, Z, _ = simulate(N=120, P=200, seed=3)
    return SpectralLMM(bayeslmm.decompose(K), y, X), K


@settings(max_examples=25, deadline=None)
@given(sg=st.floats(1e-3, 10), se=st.floats(1e-3, 10), reml=st.booleans())
def test_spectral_equals_dense_at_random_parameters(model, sg, se, reml):
    m, K = model
    fast = m.loglik(sg, se, reml=reml)
    dense = dense_loglik(m.y, m.X, [K], [sg], se, reml=reml)
    assert fast == pytest.approx(dense, rel=1e-8)


def test_ml_at_a_given_beta_equals_mvnormal(model, rng):
    m, K = model
    beta = rng.normal(size=m.M)
    sg, se = 0.8, 0.3
    ref = stats.multivariate_normal(m.X @ beta, sg * K + se * np.eye(m.N)).logpdf(m.y)
    assert m.loglik(sg, se, reml=False, beta=beta) == pytest.approx(ref, rel=1e-10)


def test_low_rank_kernel_spectral_equals_dense(rng):
    N, P = 80, 25
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    y = X @ [1, 2] + Z @ rng.normal(0, 0.2, P) + rng.normal(size=N)
    m = SpectralLMM(bayeslmm.decompose_genotypes(Z), y, X)
    assert m.dec.rank == P
    for sg, se in [(0.5, 1.0), (3.0, 0.01)]:
        for reml in (True, False):
            assert m.loglik(sg, se, reml) == pytest.approx(
                dense_loglik(y, X, [K], [sg], se, reml), rel=1e-8)


def test_profile_is_the_likelihood_at_its_scale(model):
    m, _ = model
    h2 = np.array([0.0, 0.3, 0.9])
    for reml in (True, False):
        p = m.profile(h2, reml)
        for j, h in enumerate(h2):
            ll = m.loglik(h * p.Vp[j], (1 - h) * p.Vp[j], reml)
            assert p.loglik[j] == pytest.approx(ll, rel=1e-10)


def test_reml_scale_at_h2_zero_is_sample_variance_and_rss_over_n_minus_m(model):
    # Notes 4.1: intercept only -> S^2 with N - 1; notes 4.2: RSS / (N - M).
    m, _ = model
    m1 = SpectralLMM(m.dec, m.y, np.ones((m.N, 1)))
    assert m1.profile(0.0).Vp[0] == pytest.approx(np.var(m.y, ddof=1), rel=1e-12)
    fit = bayeslmm.ols(m.y, m.X)
    assert m.profile(0.0).Vp[0] == pytest.approx(fit.sigma2, rel=1e-12)
    assert m.profile(0.0, reml=False).Vp[0] == pytest.approx(fit.rss / m.N, rel=1e-12)
    # ...and the linear model's REML log-likelihood there equals its closed form.
    ll = -0.5 * (m.N - m.M) * (np.log(2 * np.pi * fit.sigma2) + 1)
    assert m.profile(0.0).loglik[0] == pytest.approx(ll, rel=1e-12)


def test_information_matrices_equal_dense_formulas(model):
    m, K = model
    sg, se = 0.6, 0.5
    N = m.N
    V = sg * K + se * np.eye(N)
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ m.X @ np.linalg.solve(m.X.T @ Vi @ m.X, m.X.T @ Vi)
    A = [K, np.eye(N)]
    fisher = 0.5 * np.array([[np.trace(P @ a @ P @ b) for b in A] for a in A])
    Py = P @ m.y
    ai = 0.5 * np.array([[Py @ a @ P @ b @ Py for b in A] for a in A])
    np.testing.assert_allclose(m.information(sg, se, kind="fisher"), fisher, rtol=1e-8)
    np.testing.assert_allclose(m.information(sg, se, kind="ai"), ai, rtol=1e-8)
    fisher_ml = 0.5 * np.array([[np.trace(Vi @ a @ Vi @ b) for b in A] for a in A])
    np.testing.assert_allclose(m.information(sg, se, reml=False, kind="fisher"), fisher_ml,
                               rtol=1e-8)
