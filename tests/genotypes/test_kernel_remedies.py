"""Indefinite kernels: the spectral fit on h2 < 1 / (1 - s_min), and GCTA's two remedies
(relatedness cutoff, eigenvalue bending), against hand-worked values and dense brute force."""

import numpy as np
import pytest
from scipy import optimize

import bayeslmm
from bayeslmm.errors import KernelError
from bayeslmm.genotypes.remedies import bend, bend_eigenvalues, relatedness_cutoff
from bayeslmm.likelihood.single import dense_loglik

from helpers import simulate


def dense_profile_reml(y, X, K, h2):
    """REML profiled over Vp at one h2, with H = h2 K + (1 - h2) I factorised densely
    (Cholesky); -inf where H is not PD. Independent of the spectral code."""
    N, M = X.shape
    H = h2 * K + (1 - h2) * np.eye(N)
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return -np.inf
    Li_y = np.linalg.solve(L, y)
    Li_X = np.linalg.solve(L, X)
    A = Li_X.T @ Li_X
    b = np.linalg.solve(A, Li_X.T @ Li_y)
    Q = float(np.sum((Li_y - Li_X @ b) ** 2))
    n = N - M
    return (-0.5 * (n * (np.log(2 * np.pi * Q / n) + 1) + 2 * np.log(np.diag(L)).sum())
            - 0.5 * (np.linalg.slogdet(A)[1] - np.linalg.slogdet(X.T @ X)[1]))


def brute_force_h2(y, X, K, h2_max, n_grid=2001):
    grid = np.linspace(0, h2_max, n_grid)[:-1]
    ll = np.array([dense_profile_reml(y, X, K, h) for h in grid])
    i = int(np.argmax(ll))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    r = optimize.minimize_scalar(lambda h: -dense_profile_reml(y, X, K, h), bounds=(lo, hi),
                                 method="bounded", options={"xatol": 1e-10})
    return (r.x, -r.fun) if -r.fun > ll[i] else (grid[i], ll[i])


@pytest.fixture(scope="module")
def indefinite():
    # Rank-deficient K (P < N) shifted down: 50 eigenvalues of -0.05, V PD for h2 < 1/1.05.
    y, K, X, *_ = simulate(N=150, P=100, h2=0.5, seed=5)
    return y, K - 0.05 * np.eye(150), X


def test_indefinite_kernel_is_decomposed_with_its_negative_eigenvalues(indefinite):
    _, K, _ = indefinite
    dec = bayeslmm.decompose(K)
    assert dec.min_eigenvalue == pytest.approx(-0.05, abs=1e-9)
    assert np.sum(dec.S < 0) == 50 and dec.full_rank
    np.testing.assert_allclose(dec.kernel(), K, atol=1e-10)
    assert dec.h2_max == pytest.approx(1 / 1.05)
    # The strict mode still refuses it, naming the problem.
    with pytest.raises(KernelError, match="not positive semi-definite.*smallest -0.05"):
        bayeslmm.decompose(K, indefinite=False)


def test_indefinite_kernel_logs_its_smallest_eigenvalue(indefinite, caplog):
    _, K, _ = indefinite
    with caplog.at_level("INFO", logger="bayeslmm.covariance.decomposition"):
        bayeslmm.decompose(K)
    assert "indefinite" in caplog.text and "-0.05" in caplog.text
    assert "h2 < 0.952381" in caplog.text


def test_psd_kernel_keeps_the_economic_form(rng):
    Z = rng.standard_normal((40, 10))
    dec = bayeslmm.decompose(Z @ Z.T / 10)
    assert dec.rank == 10 and np.all(dec.S > 0) and dec.h2_max == 1.0


def test_reml_on_indefinite_kernel_equals_dense_brute_force(indefinite):
    y, K, X = indefinite
    fit = bayeslmm.reml(y, K, X)
    h2_bf, ll_bf = brute_force_h2(y, X, K, 1 / 1.05)
    assert fit.h2 == pytest.approx(h2_bf, abs=1e-5)
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-8)
    # The unprofiled dense likelihood at the estimate agrees too (V is PD there).
    assert dense_loglik(y, X, [K], fit.sigma_g2, fit.sigma_e2) == pytest.approx(fit.loglik,
                                                                                abs=1e-8)
    assert fit.boundary is None and fit.converged


def test_reml_on_indefinite_kernel_stays_below_the_pd_bound(rng):
    # Data generated with h2 near 1: the estimate approaches, but never reaches, 1/(1-s_min).
    N = 120
    Z = rng.standard_normal((N, 60))
    K = Z @ Z.T / 60 - 0.2 * np.eye(N)
    y = Z @ rng.normal(0, np.sqrt(1 / 60), 60) + rng.normal(0, 0.05, N)
    fit = bayeslmm.reml(y, K)
    dec = bayeslmm.decompose(K)
    assert fit.h2 < dec.h2_max
    assert np.linalg.eigvalsh(fit.sigma_g2 * K + fit.sigma_e2 * np.eye(N)).min() > 0
    h2_bf, ll_bf = brute_force_h2(y, np.ones((N, 1)), K, dec.h2_max)
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-6)


def test_dense_path_accepts_indefinite_kernels(indefinite):
    y, K, X = indefinite
    fit = bayeslmm.reml(y, [K], X, method="ai")
    assert fit.loglik == pytest.approx(bayeslmm.reml(y, K, X).loglik, abs=1e-6)


# ----------------------------------------------------------------------------- cutoff
def test_relatedness_cutoff_follows_gcta_rule():
    K = np.eye(5)
    # Sample 0 is related to 1 and 2 (count 2): GCTA removes 0 and keeps 1 and 2.
    K[1, 0] = K[0, 1] = K[2, 0] = K[0, 2] = 0.3
    # A lone pair (4, 3), counts tied: GCTA removes the first of the pair, i = 4.
    K[4, 3] = K[3, 4] = 0.5
    np.testing.assert_array_equal(relatedness_cutoff(K, 0.25),
                                  [False, True, True, True, False])
    # Nothing above the cutoff: everyone kept; a pair at the cutoff is not "above".
    np.testing.assert_array_equal(relatedness_cutoff(K, 0.5), [True] * 5)


# ----------------------------------------------------------------------------- bending
def test_bend_eigenvalues_by_hand():
    s = np.array([-0.2, -0.1, 1.0, 2.0])
    # S = -0.3, p = 0.1, W = 100 * 0.09 + 1 = 10: -0.2 -> 0.1 * 0.01 / 10, -0.1 -> 0.1 * 0.04
    # / 10; then scaled by mean(s) / mean(s') = 2.7 / 3.0005.
    want = np.array([1e-4, 4e-4, 1.0, 2.0]) * (2.7 / 3.0005)
    np.testing.assert_allclose(bend_eigenvalues(s), want, rtol=1e-14)
    np.testing.assert_array_equal(bend_eigenvalues(np.array([0.5, 1.0])), [0.5, 1.0])


def test_bend_makes_the_kernel_psd_and_keeps_eigenvectors_and_trace(indefinite):
    _, K, _ = indefinite
    b = bend(K)
    s, U = np.linalg.eigh(K)
    s2, U2 = np.linalg.eigh(b.K)
    assert b.n_negative == 50 and b.min_eigenvalue_before == pytest.approx(-0.05)
    assert s2.min() > -1e-12 and b.min_eigenvalue_after >= 0
    assert np.trace(b.K) == pytest.approx(np.trace(K), rel=1e-12)
    # The top eigenvector is unchanged (up to sign).
    assert abs(U[:, -1] @ U2[:, -1]) == pytest.approx(1.0, abs=1e-10)
    psd = bend(b.K)
    assert psd.n_negative == 0 or psd.max_abs_change < 1e-12


def test_posterior_refuses_an_indefinite_kernel_and_accepts_it_bent(indefinite):
    from bayeslmm.bayes import marginal_grm

    y, K, X = indefinite
    with pytest.raises(KernelError, match="indefinite.*h2 < 0.952381.*--grm-bend"):
        marginal_grm(y, K, X)
    marginal_grm(y, bend(K).K, X)  # PSD after bending: builds
