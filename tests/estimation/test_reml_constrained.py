"""Several kernels with non-negativity constraints: AI, Fisher and EM reach the constrained
REML optimum (a dense brute-force maximisation over the feasible set), and ``converged``
means the KKT conditions hold."""

import warnings

import numpy as np
import pytest
from scipy import optimize

import bayeslmm
from bayeslmm.errors import ConvergenceWarning

from helpers import simulate

ALGORITHMS = ["ai", "fisher", "em"]


def profiled_reml(y, X, Ks, h):
    """Dense REML at proportions h (V = Vp (sum h_j K_j + (1 - sum h) I)), Vp profiled out in
    closed form; -inf off the feasible set or where V is not PD. Independent of bayeslmm."""
    h = np.asarray(h, dtype=float)
    if np.any(h < 0) or h.sum() >= 1:
        return -np.inf
    N, M = X.shape
    H = (1 - h.sum()) * np.eye(N) + sum(hj * K for hj, K in zip(h, Ks, strict=True))
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return -np.inf
    Ly, LX = np.linalg.solve(L, y), np.linalg.solve(L, X)
    A = LX.T @ LX
    r = Ly - LX @ np.linalg.solve(A, LX.T @ Ly)
    n = N - M
    return (-0.5 * (n * (np.log(2 * np.pi * (r @ r) / n) + 1) + 2 * np.log(np.diag(L)).sum())
            - 0.5 * (np.linalg.slogdet(A)[1] - np.linalg.slogdet(X.T @ X)[1]))


def brute_force(y, X, Ks):
    """Grid over the simplex of (h_1, h_2), then a bounded quasi-Newton refinement from the
    best grid point; returns the largest log-likelihood found."""
    X = np.ones((len(y), 1)) if X is None else X
    g = np.linspace(0, 0.98, 15)
    pts = [(a, b) for a in g for b in g if a + b < 0.99]
    ll = np.array([profiled_reml(y, X, Ks, p) for p in pts])
    best_ll, best_h = -np.inf, None
    for i in np.argsort(ll)[-3:]:  # Nelder-Mead (bounded) from the three best grid points
        r = optimize.minimize(lambda h: -profiled_reml(y, X, Ks, h), pts[i],
                              method="Nelder-Mead", bounds=[(0, 0.99)] * 2,
                              options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})
        if -r.fun > best_ll:
            best_ll, best_h = -r.fun, r.x
    return best_ll, best_h


@pytest.fixture(scope="module")
def mouse_kernels(mouse_dir):
    """GEMMA's mouse phenotype with the genome-wide GRM and the GRM of chromosomes 1-10, on
    the first 400 phenotyped mice (dense REML is O(N^3) per iteration). Their REML optimum
    puts the second component at 0, the case that used to stop at a non-optimal point."""
    from bayeslmm.genotypes.kinship import grm
    from bayeslmm.io import read_plink

    ds = read_plink(mouse_dir / "mouse_hs1940")
    y = ds["pheno"].to_numpy()
    idx = np.flatnonzero(np.isfinite(y))[:400]
    ds = ds.isel(sample=idx)
    K_all = grm(ds, progress=False).values
    K_half = grm(ds, chromosomes=[str(c) for c in range(1, 11)], progress=False).values
    K_rest = grm(ds, chromosomes=[str(c) for c in range(11, 20)], progress=False).values
    return y[idx], K_all, K_half, K_rest


@pytest.fixture(scope="module")
def mouse_boundary_optimum(mouse_kernels):
    """The brute-force optimum of (genome-wide GRM, chromosomes 1-10), once per module."""
    y, K_all, K_half, _ = mouse_kernels
    return brute_force(y, None, [K_all, K_half])


@pytest.fixture(scope="module")
def mouse_interior_optimum(mouse_kernels):
    """The brute-force optimum of (chromosomes 1-10, chromosomes 11-19), once per module."""
    y, _, K_half, K_rest = mouse_kernels
    return brute_force(y, None, [K_half, K_rest])


# The mouse tests share their kernels and brute-force optima: one xdist worker runs them.
@pytest.mark.slow
@pytest.mark.xdist_group("mouse_kernels")
@pytest.mark.parametrize("method", ALGORITHMS)
def test_mouse_boundary_optimum_equals_brute_force(mouse_kernels, mouse_boundary_optimum,
                                                   method):
    y, K_all, K_half, _ = mouse_kernels
    fit = bayeslmm.reml(y, [K_all, K_half], method=method)
    ll_bf, h_bf = mouse_boundary_optimum
    assert h_bf[1] < 1e-6  # the brute force agrees the optimum is on the boundary
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-4)
    assert fit.converged and fit.boundary == "some sigma_g2=0"
    assert fit.sigma_g2[1] < 1e-6 * fit.Vp
    # On that boundary the model is the one-kernel model: the spectral fit is exact.
    assert fit.loglik == pytest.approx(bayeslmm.reml(y, K_all).loglik, abs=1e-6)
    assert round(fit.loglik, 4) == -466.8742  # the value docs/real-data.md gives


@pytest.mark.slow
@pytest.mark.xdist_group("mouse_kernels")
@pytest.mark.parametrize("method", ALGORITHMS)
def test_mouse_interior_optimum_equals_brute_force(mouse_kernels, mouse_interior_optimum,
                                                   method):
    y, _, K_half, K_rest = mouse_kernels
    fit = bayeslmm.reml(y, [K_half, K_rest], method=method)
    ll_bf, h_bf = mouse_interior_optimum
    assert np.all(h_bf > 0.05)
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-4)
    assert fit.converged and fit.boundary is None
    np.testing.assert_allclose(np.atleast_1d(fit.h2), h_bf, atol=2e-3)


@pytest.fixture(scope="module")
def null_second_kernel():
    """Simulated: y from K1 (h2 = 0.5); K2 from independent SNPs carries nothing."""
    y, K1, X, *_ = simulate(N=250, P=500, h2=0.5, seed=3)
    _, K2, *_ = simulate(N=250, P=500, h2=0.5, seed=4)
    return y, K1, K2, X


@pytest.fixture(scope="module")
def null_second_kernel_optimum(null_second_kernel):
    y, K1, K2, X = null_second_kernel
    return brute_force(y, X, [K1, K2])


@pytest.mark.xdist_group("null_second_kernel")
@pytest.mark.parametrize("method", ALGORITHMS)
def test_simulated_irrelevant_kernel_goes_to_zero_at_the_optimum(null_second_kernel,
                                                                 null_second_kernel_optimum,
                                                                 method):
    y, K1, K2, X = null_second_kernel
    fit = bayeslmm.reml(y, [K1, K2], X, method=method)
    ll_bf, h_bf = null_second_kernel_optimum
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-4)
    assert fit.converged


@pytest.mark.parametrize("method", ["ai", "fisher"])
def test_fixed_component_is_released_when_its_gradient_points_inside(null_second_kernel,
                                                                     method):
    # y from 0.1 K1 + 0.1 K2 + 0.8 I (a draw found to do this): the first steps overshoot
    # G1 below zero, so it is fixed; at the optimum of the rest its gradient is positive
    # (KKT violated), it is released and ends at sigma_g2 = 0.021 > 0.
    y, K1, K2, X = null_second_kernel
    e = np.random.default_rng(0).standard_normal((4, 250))[3]
    L = np.linalg.cholesky(0.1 * K1 + 0.1 * K2 + 0.8 * np.eye(250))
    y2 = X @ [1.0, 2.0] + L @ e
    fit = bayeslmm.reml(y2, [K1, K2], X, method=method)
    fixed = fit.history["fixed"].tolist()
    assert "G1" in fixed and fixed[-1] == ""  # fixed on the way, released at the end
    ll_bf, h_bf = brute_force(y2, X, [K1, K2])
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-4)
    assert fit.sigma_g2[0] == pytest.approx(0.0208, abs=1e-3) and fit.converged


def test_converged_false_when_gradient_conditions_fail(null_second_kernel):
    y, K1, K2, X = null_second_kernel
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = bayeslmm.reml(y, [K1, K2], X, method="em", max_iter=3)
    assert not fit.converged
    assert any(issubclass(x.category, ConvergenceWarning) and "gradient conditions" in
               str(x.message) for x in w)
