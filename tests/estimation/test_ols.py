"""The standard linear model (notes section 2): closed forms, numpy and statsmodels."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeslmm
from bayeslmm.errors import CollinearityError, InputError

from peers import require_module


@pytest.fixture
def data(rng):
    N = 80
    X = pd.DataFrame({"intercept": 1.0, "age": rng.normal(50, 10, N), "dose": rng.normal(0, 1, N)})
    y = X.values @ [2.0, 0.03, -0.5] + rng.normal(0, 1.3, N)
    return y, X


def test_beta_equals_lstsq_and_sigma2_is_rss_over_n_minus_m(data):
    y, X = data
    fit = bayeslmm.ols(y, X)
    beta, rss, *_ = np.linalg.lstsq(X.values, y, rcond=None)
    np.testing.assert_allclose(fit.params.values, beta, rtol=1e-10)
    assert fit.rss == pytest.approx(rss[0], rel=1e-10)
    assert fit.sigma2 == pytest.approx(rss[0] / (len(y) - 3), rel=1e-12)  # (32)
    assert list(fit.params.index) == ["intercept", "age", "dose"]


def test_standard_errors_t_and_intervals_from_closed_form(data):
    y, X = data
    fit = bayeslmm.ols(y, X)
    Xa = X.values
    se = np.sqrt(fit.sigma2 * np.diag(np.linalg.inv(Xa.T @ Xa)))  # (38)
    np.testing.assert_allclose(fit.bse.values, se, rtol=1e-10)
    t = fit.params.values / se
    np.testing.assert_allclose(fit.pvalues.values, 2 * stats.t.sf(np.abs(t), len(y) - 3))  # (40)
    q = stats.t.ppf(0.975, len(y) - 3)
    np.testing.assert_allclose(fit.conf_int()["lower"].values, fit.params.values - q * se)


def test_against_statsmodels(data):
    sm = require_module("statsmodels.api")
    y, X = data
    ours = bayeslmm.ols(y, X)
    theirs = sm.OLS(y, X).fit()
    np.testing.assert_allclose(ours.params.values, theirs.params.values, rtol=1e-10)
    np.testing.assert_allclose(ours.bse.values, theirs.bse.values, rtol=1e-10)
    np.testing.assert_allclose(ours.pvalues.values, theirs.pvalues.values, rtol=1e-8)
    np.testing.assert_allclose(ours.conf_int().values, theirs.conf_int().values, rtol=1e-10)
    assert ours.loglik == pytest.approx(theirs.llf, rel=1e-12)
    R = np.array([[0, 1, 0], [0, 0, 1]])
    f_ours, f_theirs = ours.f_test(R), theirs.f_test(R)
    assert f_ours["F"] == pytest.approx(float(np.squeeze(f_theirs.fvalue)), rel=1e-10)
    assert f_ours["p"] == pytest.approx(float(f_theirs.pvalue), rel=1e-8)
    restricted = bayeslmm.ols(y, X[["intercept"]])
    lr = bayeslmm.lr_test(restricted, ours)
    lr_sm = theirs.compare_lr_test(sm.OLS(y, X[["intercept"]]).fit())
    assert lr["LR"] == pytest.approx(lr_sm[0], rel=1e-10)
    assert lr["p"] == pytest.approx(lr_sm[1], rel=1e-8)


def test_single_coefficient_f_is_t_squared(data):
    y, X = data
    fit = bayeslmm.ols(y, X)
    f = fit.f_test([0, 0, 1])
    assert f["F"] == pytest.approx(fit.tvalues["dose"] ** 2, rel=1e-10)
    assert f["p"] == pytest.approx(fit.pvalues["dose"], rel=1e-8)


def test_collinear_columns_are_named(data):
    y, X = data
    X = X.assign(age_months=X["age"] * 12)
    with pytest.raises(CollinearityError, match="age_months|'age'"):
        bayeslmm.ols(y, X)


def test_combination_of_several_columns_is_named(rng):
    N = 40
    X = pd.DataFrame({"intercept": 1.0, "a": rng.normal(size=N), "b": rng.normal(size=N)})
    X["mean_ab"] = (X["a"] + X["b"]) / 2
    with pytest.raises(CollinearityError, match="rank 3 < 4"):
        bayeslmm.ols(rng.normal(size=N), X)


def test_notes_redundant_features_example_is_full_rank_but_ill_conditioned():
    # Notes eq. (42): nearly redundant features are allowed, with large standard errors.
    X = np.array([[180 / 181, 180 / 181, 0], [0, 0, 1], [19 / 181, -19 / 181, 0],
                  [1.0, 0.9, 0.1], [0.2, 0.1, 0.5]])
    fit = bayeslmm.ols(np.array([1.0, 2.0, 0.5, 1.5, 0.3]), X)
    assert np.isfinite(fit.bse).all()


def test_bad_input(rng):
    with pytest.raises(InputError, match="missing or non-finite"):
        bayeslmm.ols(np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(InputError, match="rows but y has"):
        bayeslmm.ols(rng.normal(size=10), np.ones((9, 1)))
    with pytest.raises(InputError, match="constant"):
        bayeslmm.ols(np.ones(10))
