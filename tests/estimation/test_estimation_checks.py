"""Inputs that used to end in a LinAlgError or in NaN estimates (issue 22): an identity kernel
with the dense algorithms, a two-trait fit whose trait overflows, a prevalence so small that
K^2 underflows. Each gives a flagged result, our one-line error, or the right number."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import bayeslmm
from bayeslmm.errors import CollinearityError, IdentifiabilityWarning, InputError
from bayeslmm.estimation.liability import liability_factor
from bayeslmm.estimation.multitrait import multitrait_reml

from helpers import simulate, simulate_two


# ------------------------------------------------------------------ K = I, dense algorithms
@pytest.mark.parametrize("method", ["ai", "fisher", "em"])
@pytest.mark.parametrize("c", [1.0, 3.5])
def test_identity_kernel_dense_is_flagged_with_the_closed_form_vp(method, c):
    """K = c I cannot be told from the residual: the fit is flagged (NaN SE, a reason, a
    warning) and its Vp is the closed form RSS / (N - M), its logL the linear model's."""
    rng = np.random.default_rng(4)
    N = 40
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = X @ [1.0, 2.0] + rng.standard_normal(N)
    with pytest.warns(IdentifiabilityWarning, match="proportional to the identity"):
        fit = bayeslmm.reml(y, c * np.eye(N), X, method=method)
    assert "proportional to the identity" in fit.not_identifiable
    assert np.isnan(fit.h2_se) and np.isnan(fit.sigma_g2_se)
    rss = float(np.sum((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2))
    assert fit.sigma_g2 * c + fit.sigma_e2 == pytest.approx(rss / (N - 2), rel=1e-6)
    assert fit.loglik == pytest.approx(fit.loglik_null, abs=1e-6)


@pytest.mark.parametrize("method", ["ai", "fisher", "em"])
def test_a_grm_with_the_dense_algorithms_is_not_flagged(method):
    y, K, X, *_ = simulate(N=80, P=160, h2=0.5, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        fit = bayeslmm.reml(y, K, X, method=method)
    ref = bayeslmm.reml(y, K, X)
    assert fit.not_identifiable is None and np.isfinite(fit.h2_se)
    assert fit.h2 == pytest.approx(ref.h2, abs=1e-4)


# ------------------------------------------------------------------ two traits, per trait
@pytest.fixture(scope="module")
def two():
    Y, K, X, _ = simulate_two(N=60, P=120, seed=5)
    return Y, K, X


@pytest.mark.parametrize("scale, match", [(1e300, "trait 'trait2' has values as large as"),
                                          (-1e60, "trait 'trait2' has values as large as"),
                                          (1e-60, "trait 'trait2' varies only by about")])
def test_two_traits_get_the_one_trait_numeric_checks(two, scale, match):
    Y, K, X = two
    Y2 = Y.copy()
    Y2[:, 1] *= scale
    with pytest.raises(InputError, match=match):
        multitrait_reml(Y2, K, X)
    with pytest.raises(InputError, match=match.replace("trait 'trait2'", "the phenotype")):
        bayeslmm.reml(Y2[:, 1], K, X)  # the one-trait fit says the same of that trait


def test_two_traits_covariate_fitting_a_trait_exactly_is_an_error(two):
    Y, K, X = two
    Y2 = Y.copy()
    Y2[:, 0] = 2 * X[:, 1] + 1
    with pytest.raises(CollinearityError, match="the covariates fit trait 'trait1' exactly"):
        multitrait_reml(Y2, K, X)


def test_two_traits_large_representable_scale_gives_the_same_fit(two):
    """The accepted direction: 1e20 (squares far from overflow) only rescales trait 2."""
    Y, K, X = two
    ref = multitrait_reml(Y, K, X, tests=False)
    Y2 = Y.copy()
    Y2[:, 1] *= 1e20
    fit = multitrait_reml(Y2, K, X, tests=False)
    np.testing.assert_allclose(fit.h2, ref.h2, atol=1e-5)
    assert fit.r_g == pytest.approx(ref.r_g, abs=1e-5)
    assert fit.Sigma_e.values[1, 1] == pytest.approx(ref.Sigma_e.values[1, 1] * 1e40, rel=1e-4)


# ------------------------------------------------------------------ liability factor
def _mills(K: float, P: float) -> float:
    """C for small K from Mills' ratio: K = phi(t)/t (1 - 1/t^2 + 3/t^4 - 15/t^6 + ...),
    so K / z = (1 - 1/t^2 + 3/t^4 - 15/t^6) / t (relative error ~105 / t^8)."""
    t = stats.norm.isf(K)
    return ((1 - 1 / t**2 + 3 / t**4 - 15 / t**6) / t) ** 2 / (P * (1 - P))


@pytest.mark.parametrize("K", [1e-300, 1e-200, 1e-120])
def test_liability_factor_of_a_tiny_prevalence_is_finite_and_right(K):
    assert liability_factor(K, 0.3) == pytest.approx(_mills(K, 0.3), rel=1e-8)


@pytest.mark.parametrize("K", [1e-6, 0.01, 0.4, 0.9])
def test_liability_factor_matches_lee_eq23_in_the_usual_range(K):
    P = 0.35
    z = stats.norm.pdf(stats.norm.isf(K))
    assert liability_factor(K, P) == pytest.approx(K**2 * (1 - K) ** 2 / (z**2 * P * (1 - P)),
                                                   rel=1e-12)


@pytest.mark.parametrize("K", [0.0, 1.0, -1e-300, np.nan])
def test_liability_factor_refuses_prevalence_outside_0_1(K):
    with pytest.raises(InputError, match="prevalence K must"):
        liability_factor(K, 0.3)


def test_liability_h2_of_a_fit_with_a_tiny_prevalence_is_finite():
    y, K, X, *_ = simulate(N=80, P=160, h2=0.5, seed=2)
    cc = (y > np.median(y)).astype(float)
    lia = bayeslmm.reml(cc, K, X).liability_h2(1e-300)
    assert np.isfinite(lia.h2) and np.isfinite(lia.h2_se) and lia.h2 > 0
