"""Prior sensitivity of h2: small N is flagged, large N is not."""

from __future__ import annotations

import numpy as np
import pytest

import bayeslmm
from bayeslmm.bayes.sensitivity import prior_sensitivity
from bayeslmm.errors import InputError
from bayeslmm.reports.plots import plot_sensitivity

from .test_compare import assert_png
from helpers import simulate

STRONG = {"flat": {"h2": "Beta(1, 1)"}, "low": {"h2": "Beta(2, 8)"},
          "high": {"h2": "Beta(8, 2)"}}
MILD = {"flat": {"h2": "Beta(1, 1)"}, "Beta(2, 2)": {"h2": "Beta(2, 2)"},
        "HalfNormal": {"sigma_g2": "HalfNormal(2)", "sigma_e2": "HalfNormal(2)"}}


def test_small_n_flags_the_h2_prior(tmp_path):
    y, K, X, _, _ = simulate(N=100, P=200, h2=0.5, seed=3)
    sens = prior_sensitivity(y, K, X, priors=STRONG, draws=500, tune=500, chains=2, seed=1,
                             progressbar=False)
    s = sens.summary
    assert list(s["prior"].values) == ["flat", "low", "high"]
    assert sens.prior_sensitive
    assert "spread" in s.attrs["triggers"] and "psense" in s.attrs["triggers"]
    assert "triggered by:" in sens.verdict
    # The posterior follows the prior: low < flat < high.
    m = s["h2_mean"].values
    assert m[1] < m[0] < m[2]
    # Power scaling sees the informative Beta priors, and cannot see a flat one.
    assert s["psense_prior"].sel(prior="low") >= 0.05
    assert s["psense_prior"].sel(prior="flat") < 0.05
    assert s["prior_h2_mean"].sel(prior="low") == pytest.approx(0.2, abs=0.02)
    fig = plot_sensitivity(sens, tmp_path / "sens.png")
    assert_png(tmp_path / "sens.png")
    # priors on h2 itself are drawn as their exact densities (Beta(2, 8) is 0 at h2 = 0,
    # where a KDE of its draws is not)
    from scipy import stats

    line = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}["low: prior"]
    x, d = line.get_data()
    np.testing.assert_allclose(d, stats.beta.pdf(x, 2, 8), rtol=1e-10)


def test_sensitivity_figure_says_kde_for_priors_on_the_variances(tmp_path):
    """The other direction: a set with priors on sigma_g2 and sigma_e2 has no closed-form h2
    density; its prior line is the KDE of its draws and the legend says so."""
    y, K, X, _, _ = simulate(N=100, P=200, h2=0.5, seed=3)
    sets = {"flat": {"h2": "Beta(1, 1)"},
            "HalfNormal": {"sigma_g2": "HalfNormal(2)", "sigma_e2": "HalfNormal(2)"}}
    sens = prior_sensitivity(y, K, X, priors=sets, method="quadrature", seed=0)
    assert set(sens.h2_priors) == {"flat"}
    labels = [ln.get_label() for ln in plot_sensitivity(sens).axes[0].get_lines()]
    assert "HalfNormal: prior (KDE)" in labels and "flat: prior" in labels


@pytest.mark.slow
def test_large_n_is_not_prior_sensitive():
    y, _, X, Z, _ = simulate(N=3000, P=100, h2=0.5, seed=7)
    fit = bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X)
    sens = prior_sensitivity(y, fit, X, priors=MILD, draws=500, tune=500, chains=2, seed=2,
                             progressbar=False)
    print("\n" + repr(sens))
    assert not sens.prior_sensitive, sens.verdict
    assert "robust" in sens.verdict
    assert np.all(sens.summary["psense_prior"].values < 0.05)


def test_quadrature_method_agrees_with_exact_posteriors():
    y, K, X, _, _ = simulate(N=100, P=200, h2=0.5, seed=3)
    sens = prior_sensitivity(y, K, X, priors=STRONG, method="quadrature", seed=0)
    assert sens.prior_sensitive
    assert np.all(np.isnan(sens.summary["psense_prior"].values))
    fit = bayeslmm.reml(y, K, X)
    q = bayeslmm.bayes.posterior_h2_quadrature(fit, priors={"h2": "Beta(2, 8)",
                                                             "beta": "Flat()"})
    assert sens.summary["h2_mean"].sel(prior="low") == pytest.approx(float(q["mean"]), abs=1e-9)


def test_bad_arguments():
    y, K, X, _, _ = simulate(N=50, P=100, seed=1)
    with pytest.raises(InputError, match="at least one prior"):
        prior_sensitivity(y, K, X, priors={})
    with pytest.raises(InputError, match="method"):
        prior_sensitivity(y, K, X, priors=STRONG, method="vb")


# ----------------------------------------------------------------------------- verdicts
# Exact posteriors (quadrature), so each verdict is decided by the data, not MCMC noise.
FLAT_SD = 1 / np.sqrt(12)  # SD of Beta(1, 1)


@pytest.fixture(scope="module")
def large_n():
    y, _, X, Z, _ = simulate(N=3000, P=100, h2=0.5, seed=7)
    return y, bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X), X


def test_weak_data_is_flagged_by_contraction():
    # N = 60: the posterior of h2 under a flat prior is barely narrower than the prior.
    y, _, X, Z, _ = simulate(N=60, P=200, h2=0.5, seed=7)
    sens = prior_sensitivity(y, bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X), X,
                             priors={"flat": {"h2": "Beta(1, 1)"},
                                     "mild": {"h2": "Beta(1.5, 1.5)"}},
                             method="quadrature", seed=0)
    s = sens.summary
    sd = float(s["h2_sd"].sel(prior="flat"))
    assert s.attrs["contraction"] == pytest.approx(1 - (sd / FLAT_SD) ** 2, abs=0.02)
    assert s.attrs["contraction"] < 0.5
    assert sens.prior_sensitive and s.attrs["triggers"] == "weak_data"
    assert "prior-dominated" in sens.verdict and "triggered by: weak_data" in sens.verdict


def test_large_n_mild_priors_are_robust(large_n):
    y, fit, X = large_n
    sens = prior_sensitivity(y, fit, X, priors={"flat": {"h2": "Beta(1, 1)"},
                                                "mild": {"h2": "Beta(1.5, 1.5)"}},
                             method="quadrature", seed=0)
    s = sens.summary
    assert s.attrs["contraction"] > 0.95 and s.attrs["spread_sd"] < 0.5
    assert not sens.prior_sensitive and s.attrs["triggers"] == ""
    assert "robust" in sens.verdict and "triggered by: none" in sens.verdict


def test_large_n_strong_prior_is_influential_not_weak_data(large_n):
    # Beta(20, 80) (mean 0.2, SD 0.04) pulls the posterior mean by more than half a posterior
    # SD although the data contract the flat prior by 98%: influential, and said so.
    y, fit, X = large_n
    sens = prior_sensitivity(y, fit, X, priors={"flat": {"h2": "Beta(1, 1)"},
                                                "strong": {"h2": "Beta(20, 80)"}},
                             method="quadrature", seed=0)
    s = sens.summary
    m = s["h2_mean"].values
    assert (m[0] - m[1]) / np.median(s["h2_sd"].values) == pytest.approx(s.attrs["spread_sd"])
    assert s.attrs["spread_sd"] > 0.5 and s.attrs["contraction"] > 0.95
    assert sens.prior_sensitive and s.attrs["triggers"] == "spread"
    assert "prior-influenced although the data inform it" in sens.verdict
