"""Numbers that are not estimates are not reported as estimates (bayeslmm.identifiability).

Each flag and each error is tested both ways: the degenerate input triggers it, a close but
valid input does not. The REML optimum is checked against a brute-force dense REML
log-likelihood written here from the notes (eq. 48 / 4.3.2), not with the package's code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayeslmm
from bayeslmm.errors import (
    CollinearityError,
    IdentifiabilityWarning,
    InputError,
    KernelError,
)
from bayeslmm.reports.hsq import fmt_number, hsq_text


def _problem(seed: int, N: int = 80, P: int = 120, h2: float = 0.5):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    Z = (Z - Z.mean(0)) / Z.std(0)
    K = Z @ Z.T / P
    y = Z @ rng.normal(0, np.sqrt(h2 / P), P) + rng.normal(0, np.sqrt(1 - h2), N) + 3.0
    return y, K, rng


def _fit(y, K, X=None, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = bayeslmm.reml(y, K, X, **kw)
    return fit, [x for x in w if issubclass(x.category, IdentifiabilityWarning)]


def test_ones_kernel_with_intercept_is_flagged_and_a_grm_is_not():
    y, K, _ = _problem(1)
    fit, warn = _fit(y, np.ones_like(K))
    assert fit.not_identifiable and "span of the covariates" in fit.not_identifiable
    assert np.isnan(fit.h2_se) and np.isnan(fit.sigma_g2_se) and np.isnan(fit.Vp_se)
    assert len(warn) == 1
    hsq = dict(ln.split("\t", 1) for ln in hsq_text(fit).splitlines())
    assert hsq["V(G)/Vp"].split("\t")[1] == "nan"  # never 0.000000
    ok, warn = _fit(y, K)
    assert ok.not_identifiable is None and not warn and np.isfinite(ok.h2_se) and ok.h2_se > 0


def test_kernel_proportional_to_identity_is_flagged():
    y, K, _ = _problem(2)
    for c in (1.0, 3.0):
        fit, warn = _fit(y, c * np.eye(len(y)))
        assert "proportional to the identity" in fit.not_identifiable and warn
        assert np.isnan(fit.h2_se)
    # I plus a little structure is identifiable (in principle; weakly in practice).
    fit, warn = _fit(y, np.eye(len(y)) + 0.5 * K)
    assert fit.not_identifiable is None and not warn


def test_one_residual_degree_of_freedom_is_flagged_two_are_not():
    y, K, rng = _problem(3, N=4)
    X3 = np.column_stack([np.ones(4), rng.standard_normal((4, 2))])
    fit, _ = _fit(y, K + np.eye(4), X3)  # N - M = 1
    assert "one residual degree of freedom" in fit.not_identifiable
    assert np.isnan(fit.h2_se)
    fit, _ = _fit(y, K + np.eye(4), X3[:, :2])  # N - M = 2
    assert fit.not_identifiable is None


def test_same_flag_through_a_precomputed_decomposition():
    y, K, _ = _problem(4)
    dec = bayeslmm.decompose(np.ones_like(K))
    fit, warn = _fit(y, dec)
    assert fit.not_identifiable and warn


def test_perfectly_fitting_covariate_is_an_error_nearly_fitting_is_not():
    y, K, rng = _problem(5)
    X = np.column_stack([np.ones_like(y), y])
    with pytest.raises(CollinearityError, match="fit the phenotype exactly"):
        bayeslmm.reml(y, K, X)
    X[:, 1] += rng.normal(0, 0.3, len(y))
    fit = bayeslmm.reml(y, K, X)
    assert 0 <= fit.h2 <= 1


@pytest.mark.parametrize("scale", [1e300, 1e60, -1e300])
def test_huge_values_are_one_line_errors(scale):
    y, K, _ = _problem(6)
    y2 = y.copy()
    y2[3] = scale
    with pytest.raises(InputError, match="overflow"):
        bayeslmm.reml(y2, K)
    with pytest.raises(InputError, match="overflow"):
        bayeslmm.reml(y, K, np.column_stack([np.ones_like(y), y * scale / 10]))


def test_large_but_representable_scale_gives_the_same_h2():
    y, K, _ = _problem(6)
    ref = bayeslmm.reml(y, K)
    for s in (1e-20, 1e20):
        fit = bayeslmm.reml(y * s, K)
        assert fit.h2 == pytest.approx(ref.h2, abs=1e-6)
        assert fit.sigma_e2 == pytest.approx(ref.sigma_e2 * s**2, rel=1e-5)


def test_tiny_spread_is_an_error():
    y, K, _ = _problem(6)
    with pytest.raises(InputError, match="underflow"):
        bayeslmm.reml(y * 1e-60, K)


def test_collinear_kernels_are_errors_distinct_ones_are_not():
    y, K, rng = _problem(7)
    Z = rng.standard_normal((len(y), 50))
    K2 = Z @ Z.T / 50
    for Ks, what in (([K, K], "proportional"), ([K, 2.5 * K], "proportional"),
                     ([K, np.eye(len(y))], "identity")):
        with pytest.raises(KernelError, match=what):
            bayeslmm.reml(y, Ks)
    fit = bayeslmm.reml(y, [K, K2])
    assert np.all(np.isfinite(fit.sigma2))


def test_negative_delta_method_variance_is_nan_not_zero():
    from dataclasses import replace

    y, K, _ = _problem(8)
    fit = bayeslmm.reml(y, K)
    bad = replace(fit, cov=-np.abs(fit.cov))  # not positive definite
    assert np.isnan(bad.h2_se) and np.isnan(bad.Vp_se) and np.isnan(bad.sigma_e2_se)
    assert np.isfinite(fit.h2_se)


@pytest.mark.parametrize("x, text", [(0.436295, "0.436295"), (0.0, "0.000000"),
                                     (1.5e-9, "1.500000e-09"), (-2.25e-7, "-2.250000e-07"),
                                     (3.2e12, "3.200000e+12"), (1234567.0, "1234567.000000"),
                                     (float("nan"), "nan")])
def test_hsq_numbers_tiny_and_huge_in_scientific_notation(x, text):
    assert fmt_number(x) == text


def test_hsq_of_tiny_variances_is_not_zero():
    y, K, _ = _problem(9)
    fit = bayeslmm.reml(y * 1e-6, K)
    rows = dict(ln.split("\t", 1) for ln in hsq_text(fit).splitlines())
    vg, se = (float(v) for v in rows["V(G)"].split("\t"))
    assert vg == pytest.approx(fit.sigma_g2, rel=1e-5) and vg > 0
    assert se == pytest.approx(fit.sigma_g2_se, rel=1e-5) and se > 0


# ----------------------------------------------------------------------------- property
def _dense_reml_profile(y, K, X, h2):
    """Profiled REML log-likelihood at h2 (V = Vp [h2 K + (1 - h2) I]), brute force:
    -1/2 [(N - M)(log 2 pi + 1 + log s2) + log|H| + log|X'H^-1X| - log|X'X|] with
    s2 = y'P_H y / (N - M) (notes 4.3.2)."""
    N, M = X.shape
    H = h2 * K + (1 - h2) * np.eye(N)
    Hi = np.linalg.inv(H)
    XtHiX = X.T @ Hi @ X
    P = Hi - Hi @ X @ np.linalg.solve(XtHiX, X.T @ Hi)
    s2 = float(y @ P @ y) / (N - M)
    return -0.5 * ((N - M) * (np.log(2 * np.pi) + 1 + np.log(s2)) + np.linalg.slogdet(H)[1]
                   + np.linalg.slogdet(XtHiX)[1] - np.linalg.slogdet(X.T @ X)[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), N=st.integers(8, 40), P=st.integers(2, 60),
       h2=st.floats(0, 1), with_cov=st.booleans())
def test_reml_never_raises_and_beats_a_dense_grid(seed, N, P, h2, with_cov):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    y = Z @ rng.normal(0, np.sqrt(h2 / P), P) + rng.normal(0, np.sqrt(1 - h2 + 1e-3), N)
    X = np.ones((N, 1))
    if with_cov:
        X = np.column_stack([X, rng.standard_normal(N)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bayeslmm.reml(y, K, X)
    assert 0.0 <= fit.h2 <= 1.0
    grid = np.linspace(0, 1 - 1e-5, 201)
    best = max(_dense_reml_profile(y, K, X, h) for h in grid)
    h_fit = min(fit.h2, 1 - 1e-5)
    assert _dense_reml_profile(y, K, X, h_fit) >= best - 1e-6


@pytest.mark.parametrize("k", [-6, -3, 3, 6])
def test_scaling_K_moves_only_sigma_g2(k):
    y, K, _ = _problem(10)
    ref = bayeslmm.reml(y, K)
    fit = bayeslmm.reml(y, K * 10.0**k)
    if ref.boundary is None:
        assert fit.sigma_g2 * 10.0**k == pytest.approx(ref.sigma_g2, rel=1e-4)
    assert fit.sigma_e2 == pytest.approx(ref.sigma_e2, rel=1e-4)
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-6)  # the same set of V
