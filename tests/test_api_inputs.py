"""Python objects of the wrong type or from another data set: a BayesLMMError naming the
problem, never an AttributeError or a silently wrong answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.bayes import compare, marginal_grm, prior_sensitivity, sample
from bayeslmm.bayes.sampling import check_diagnostics
from bayeslmm.errors import BayesLMMError, KernelError, SamplingWarning


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    N, P = 60, 100
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    y = Z @ rng.normal(0, np.sqrt(0.5 / P), P) + rng.normal(0, 0.7, N)
    return y, K, rng


@pytest.fixture(scope="module")
def fit(data):
    y, K, _ = data
    return bayeslmm.reml(y, K)


@pytest.fixture(scope="module")
def posterior(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sample(marginal_grm(fit.data.y, fit.decomposition), draws=40, tune=40,
                      chains=1, seed=1, progressbar=False)


@pytest.mark.parametrize("bad", ["model", None, 3, {"h2": 1}])
def test_sample_needs_a_model(bad):
    with pytest.raises(BayesLMMError, match="needs a pymc.Model"):
        sample(bad)


def test_sample_integer_arguments(fit):
    m = marginal_grm(fit.data.y, fit.decomposition)
    with pytest.raises(BayesLMMError, match="draws must be an integer"):
        sample(m, draws=10.5)


@pytest.mark.parametrize("fit_arg, post_arg, msg", [
    ("fit", "x", "posterior DataTree"), ("x", "post", "REML/ML fit"),
    ("fit", xr.Dataset({"a": 1}), "no 'h2' draws")])
def test_compare_types(fit, posterior, fit_arg, post_arg, msg):
    f = fit if fit_arg == "fit" else fit_arg
    p = posterior if isinstance(post_arg, str) and post_arg == "post" else post_arg
    with pytest.raises(BayesLMMError, match=msg):
        compare(f, p)


def test_compare_with_a_posterior_of_other_data(data, fit, posterior):
    y, K, rng = data
    assert compare(fit, posterior).table.shape[0] > 0  # same data: fine
    other = bayeslmm.reml(rng.permutation(y) + 1.0, K)
    with pytest.raises(BayesLMMError, match="sampled on other data"):
        compare(other, posterior)
    smaller = bayeslmm.reml(y[:50], K[:50, :50])
    with pytest.raises(BayesLMMError, match="sampled on other data"):
        compare(smaller, posterior)


def test_prior_sensitivity_with_another_y(data, fit):
    y, K, _ = data
    with pytest.raises(BayesLMMError, match="y has 50 values but the fit was made on 60"):
        prior_sensitivity(y[:50], fit, priors={"a": {"h2": "Beta(1, 1)"}},
                          method="quadrature")
    with pytest.raises(BayesLMMError, match="y differs"):
        prior_sensitivity(y[::-1].copy(), fit, priors={"a": {"h2": "Beta(1, 1)"}},
                          method="quadrature")
    s = prior_sensitivity(y, fit, priors={"a": {"h2": "Beta(1, 1)"}}, method="quadrature")
    assert s.summary is not None


@pytest.mark.parametrize("where", ["reml", "decompose", "X"])
def test_complex_inputs(data, where):
    y, K, _ = data
    with pytest.raises(BayesLMMError, match="complex"):
        if where == "reml":
            bayeslmm.reml(y, K + 1e-3j)
        elif where == "decompose":
            bayeslmm.decompose(K.astype(complex))
        else:
            bayeslmm.reml(y, K, np.ones(len(y), dtype=complex))
    assert issubclass(KernelError, BayesLMMError)


def test_one_draw_warns_that_diagnostics_are_missing():
    post = xr.Dataset({"h2": (("chain", "draw"), [[0.4], [0.5]])},
                      coords={"chain": [0, 1], "draw": [0]})
    tree = xr.DataTree.from_dict({"posterior": post})
    with pytest.warns(SamplingWarning, match="could not be computed"):
        d = check_diagnostics(tree)
    assert np.isnan(d["min_ess_bulk"])
    ok = xr.Dataset({"h2": (("chain", "draw"),
                            np.random.default_rng(0).uniform(size=(2, 500)))},
                    coords={"chain": [0, 1], "draw": np.arange(500)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_diagnostics(xr.DataTree.from_dict({"posterior": ok}))
