"""The one results base: every fit speaks statsmodels' vocabulary by one rule (bse from
cov_params, Wald or t intervals at any alpha, NaN p-values for boundary parameters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeslmm
from bayeslmm.estimation.liability import liability_h2
from bayeslmm.estimation.results import Results

from helpers import simulate


@pytest.fixture(scope="module")
def data():
    return simulate(N=300, h2=0.5, seed=11)


def _check_vocabulary(res, q_of):
    """bse, conf_int(alpha) and tvalues from params and cov_params, computed here."""
    assert isinstance(res, Results)
    p, C = res.params, res.cov_params()
    assert list(C.index) == list(p.index) == list(C.columns)
    v = np.diag(C.to_numpy())
    se = np.where(v > 0, np.sqrt(np.where(v > 0, v, 0)), np.nan)
    np.testing.assert_allclose(res.bse.to_numpy(), se, rtol=1e-12)
    for alpha in (0.05, 0.1):
        ci = res.conf_int(alpha=alpha)
        q = q_of(alpha)
        ok = np.isfinite(se)
        np.testing.assert_allclose(ci["lower"].to_numpy()[ok], (p - q * se).to_numpy()[ok],
                                   rtol=1e-10)
    np.testing.assert_allclose(res.tvalues.to_numpy(), (p / se).to_numpy(), rtol=1e-12)


def test_ols_uses_student_t(data):
    y, K, X = data[:3]
    fit = bayeslmm.ols(y, X)
    _check_vocabulary(fit, lambda a: stats.t.ppf(1 - a / 2, fit.df_resid))
    assert fit.tvalues.name == "t"


def test_variance_component_fit_wald_and_boundary_pvalues(data):
    y, K, X = data[:3]
    fit = bayeslmm.reml(y, K, X)
    _check_vocabulary(fit, lambda a: stats.norm.ppf(1 - a / 2))
    # both directions: fixed effects get a p-value, variance components (boundary null) none
    assert np.isfinite(fit.pvalues[fit.beta.index]).all()
    assert fit.pvalues[fit.variance_names].isna().all()
    assert fit.nobs == len(y) and np.isfinite(fit.llf)


def test_liability_h2_is_a_result(data):
    y, K, X = data[:3]
    yb = (y > np.median(y)).astype(float)
    lia = liability_h2(bayeslmm.reml(yb, K, X), 0.2)
    _check_vocabulary(lia, lambda a: stats.norm.ppf(1 - a / 2))
    assert list(lia.params.index) == ["h2"]
    lo, hi = lia.conf_int(alpha=0.1).loc["h2"]
    assert lo == pytest.approx(lia.h2 - stats.norm.ppf(0.95) * lia.h2_se, rel=1e-12)


def test_multitrait_fit_is_a_result(data):
    y, K, X = data[:3]
    rng = np.random.default_rng(4)
    Y = pd.DataFrame({"a": y, "b": 0.5 * y + rng.standard_normal(len(y))})
    fit = bayeslmm.multitrait_reml(Y, K, X, tests=False)
    _check_vocabulary(fit, lambda a: stats.norm.ppf(1 - a / 2))


def test_krylov_fit_profile_interval_at_its_level_wald_otherwise(data):
    from bayeslmm.covariance.lanczos import block_lanczos
    from bayeslmm.estimation.krylov import fit_krylov
    from bayeslmm.likelihood.krylov import KrylovLMM

    y, K, X = data[:3]
    Q = np.linalg.qr(X)[0]

    def project(V):
        return V - Q @ (Q.T @ V)

    V0 = project(np.column_stack([y, np.random.default_rng(2).choice([-1.0, 1.0], (300, 7))]))
    lz = block_lanczos(lambda V: project(K @ project(V)), V0, 40)
    Pm = np.eye(300) - Q @ Q.T
    fit = fit_krylov(KrylovLMM(lz, y, X, float(np.trace(Pm @ K @ Pm)), n_deflate=20))
    assert isinstance(fit, Results)
    ci = fit.conf_int()
    assert tuple(ci.loc["h2"]) == fit.h2_ci  # the profile interval at the fit's level
    ci90 = fit.conf_int(alpha=0.1)
    q = stats.norm.ppf(0.95)
    assert ci90.loc["h2", "lower"] == pytest.approx(fit.h2 - q * fit.h2_se, rel=1e-12)
    assert fit.bse["h2"] == fit.h2_se
    with pytest.raises(bayeslmm.InputError, match="alpha"):
        fit.conf_int(alpha=1.5)
