"""Flags of estimates that the data cannot support (issue 22): too few samples (N = 3), a
one-level grouping next to a GRM, a perfect OLS fit, an identity kernel in the Bayesian
model. Each is flagged with a reason (and NaN SEs where the split is arbitrary); the
neighbouring identifiable case is not."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.bayes import marginal_grm
from bayeslmm.bayes.model_info import find_info
from bayeslmm.errors import IdentifiabilityWarning
from bayeslmm.identifiability import invisible_kernels, too_few_samples


def _caught(fn, *a, **k):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*a, **k)
    return out, [str(x.message) for x in w if issubclass(x.category, IdentifiabilityWarning)]


def _kernel(rng, N, P=30):
    Z = rng.standard_normal((N, P))
    return Z @ Z.T / P


# ------------------------------------------------------------------ N = 3
def test_three_samples_are_flagged_four_are_not():
    rng = np.random.default_rng(8)
    K = _kernel(rng, 4)
    y = rng.standard_normal(4)
    fit, warn = _caught(bayeslmm.reml, y[:3], K[:3, :3])
    assert fit.few_samples and "only 2 residual degrees of freedom" in fit.few_samples
    assert any("too few samples" in m for m in warn)
    fit, warn = _caught(bayeslmm.reml, y, K)
    assert fit.few_samples is None and not warn


def test_too_few_samples_counts_parameters():
    assert too_few_samples(3, 1, k=1) and too_few_samples(4, 1, k=2)
    assert too_few_samples(4, 1, k=1) is None and too_few_samples(5, 1, k=2) is None
    assert too_few_samples(2, 1, k=1) is None  # df = 1: not_identifiable's case, not this


# ------------------------------------------------------------------ one-level grouping
@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(9)
    N = 60
    Z = rng.standard_normal((N, 100))
    ids = [f"s{i}" for i in range(N)]
    K = pd.DataFrame(Z @ Z.T / 100, index=ids, columns=ids)
    df = pd.DataFrame({"y": Z @ rng.normal(0, 0.1, 100) + rng.standard_normal(N),
                       "one": "c1", "cage": rng.integers(0, 6, N)}, index=ids)
    return df, K


def test_one_level_grouping_beside_a_grm_is_flagged(frame):
    df, K = frame
    fit, warn = _caught(bayeslmm.fit, "y ~ 1 + (1 | grm) + (1 | one)", df, kernels={"grm": K})
    assert "'one'" in fit.not_identifiable and "span of the covariates" in fit.not_identifiable
    assert np.all(np.isnan(fit.h2_se)) and np.all(np.isnan(fit.bse[fit.variance_names]))
    assert any("'one'" in m for m in warn)
    fit, warn = _caught(bayeslmm.fit, "y ~ 1 + (1 | grm) + (1 | cage)", df, kernels={"grm": K})
    assert fit.not_identifiable is None and not warn


def test_invisible_kernels_agree_with_the_eigen_rule():
    """The O(N^2 M) trace test names exactly the kernels that the eigendecomposition rule
    (not_identifiable) calls invisible."""
    rng = np.random.default_rng(10)
    N = 30
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    x = X[:, 1]
    Ks = {"ones": np.ones((N, N)), "x": np.outer(x, x), "grm": _kernel(rng, N),
          "mix": np.ones((N, N)) + 1e-3 * _kernel(rng, N)}
    got = invisible_kernels(X, list(Ks.values()), list(Ks))
    from bayeslmm.identifiability import not_identifiable
    want = [n for n, K in Ks.items()
            if (r := not_identifiable(X, K=K)) is not None and "span" in r]
    assert got == want == ["ones", "x"]


# ------------------------------------------------------------------ OLS
def test_perfect_ols_fit_is_flagged_with_nan_inference():
    x = np.arange(10.0)
    X = np.column_stack([np.ones(10), x])
    fit, warn = _caught(bayeslmm.ols, 2 * x + 1, X)
    np.testing.assert_allclose(fit.params, [1.0, 2.0], atol=1e-12)
    assert fit.perfect_fit and "fit y exactly" in fit.perfect_fit and warn
    assert fit.bse.isna().all() and fit.pvalues.isna().all()
    assert fit.conf_int().isna().all().all()


def test_nearly_perfect_ols_fit_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    x = np.arange(10.0)
    X = np.column_stack([np.ones(10), x])
    y = 2 * x + 1 + 1e-6 * np.sin(x)
    fit, warn = _caught(bayeslmm.ols, y, X)
    ref = sm.OLS(y, X).fit()
    assert fit.perfect_fit is None and not warn
    np.testing.assert_allclose(fit.bse.values, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(fit.pvalues.values, ref.pvalues, rtol=1e-6)


# ------------------------------------------------------------------ marginal_grm
@pytest.mark.parametrize("c", [1.0, 0.2])
def test_marginal_grm_with_an_identity_kernel_is_flagged(c):
    rng = np.random.default_rng(11)
    y = rng.standard_normal(30)
    model, warn = _caught(marginal_grm, y, c * np.eye(30))
    assert "proportional to the identity" in find_info(model).extra["not_identifiable"]
    assert any("posterior is its prior" in m for m in warn)
    model, warn = _caught(marginal_grm, y, _kernel(rng, 30))
    assert find_info(model).extra["not_identifiable"] is None and not warn
