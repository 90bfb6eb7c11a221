"""Empirical Bayes (REML) against the full posterior: agreement at large N, the expected
divergence at small N measured against the exact quadrature posterior."""

from __future__ import annotations

import arviz_stats as azs
import matplotlib.image as mpimg
import numpy as np
import pytest

import bayeslmm
from bayeslmm.bayes import marginal_grm, posterior_h2_quadrature, sample
from bayeslmm.bayes.compare import compare
from bayeslmm.reports.plots import plot_compare

from helpers import simulate

# Priors under which the quadrature posterior is exact (beta flat, Vp inverse gamma).
CONJ = {"h2": "Beta(1, 1)", "Vp": "InverseGamma(1, 1)", "beta": "Flat()"}


def assert_png(path, size=None):
    """A PNG of one panel of the paper geometry (reports/formats.py), not blank."""
    from bayeslmm.reports.formats import FIGURE_DPI, FIGURE_SIZE

    size = size or (round(FIGURE_SIZE[1] * FIGURE_DPI), round(FIGURE_SIZE[0] * FIGURE_DPI))
    img = mpimg.imread(path)
    assert img.shape[:2] == size
    assert np.ptp(img[..., :3]) > 0  # not a blank canvas


@pytest.mark.slow
def test_large_n_posterior_agrees_with_reml(tmp_path):
    y, _, X, Z, _ = simulate(N=2000, P=200, h2=0.5, seed=4)
    fit = bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X)
    idata = sample(marginal_grm(y, fit.decomposition, X), draws=500, tune=500, chains=2,
                   seed=3, progressbar=False)
    cmp = compare(fit, idata)
    t = cmp.table
    assert {"h2", "sigma_g2", "sigma_e2", "Vp", "beta[intercept]", "beta[x1]"} <= set(t.index)
    # Bernstein-von Mises: with N large the posterior mean is within 0.2 posterior SD of REML.
    assert abs(t.loc["h2", "shift_sd"]) < 0.2
    assert t.loc["h2", "hdi_lower"] < fit.h2 < t.loc["h2", "hdi_upper"]
    assert "agree" in cmp.agreement()
    plot_compare(cmp, tmp_path / "cmp.png")
    assert_png(tmp_path / "cmp.png")


def test_small_n_divergence_matches_the_exact_posterior(tmp_path):
    """N = 100: the posterior mean of h2 moves away from REML; its direction and size are
    those of the exact (quadrature) posterior under the same priors."""
    y, K, X, _, _ = simulate(N=100, P=300, h2=0.2, seed=12)
    fit = bayeslmm.reml(y, K, X)
    q = posterior_h2_quadrature(fit, priors=CONJ)
    idata = sample(marginal_grm(y, fit.decomposition, X, priors=CONJ), draws=1000, tune=1000,
                   chains=2, seed=5, progressbar=False)
    cmp = compare(fit, idata, quadrature=q)
    s = azs.summary(idata, var_names=["h2"], kind="all", fmt="wide")
    mcse = float(s.loc["h2", "mcse_mean"])
    exact_shift = float(q["mean"]) - fit.h2
    shift = float(cmp.table.loc["h2", "post_mean"]) - fit.h2
    print(f"\nREML {fit.h2:.3f}, exact mean {float(q['mean']):.3f}, NUTS "
          f"{cmp.table.loc['h2', 'post_mean']:.3f} (mcse {mcse:.4f})")
    assert abs(exact_shift) > 0.2 * float(q["sd"])  # a real divergence at this N
    assert np.sign(shift) == np.sign(exact_shift)
    assert abs(shift - exact_shift) < max(0.01, 3 * mcse)
    assert cmp.table.loc["h2", "post_sd"] == pytest.approx(float(q["sd"]), rel=0.1)
    plot_compare(cmp, tmp_path / "small.png")
    assert_png(tmp_path / "small.png")
    # a prevalence belongs to the threshold model's posterior, not to this one
    from bayeslmm.errors import InputError

    with pytest.raises(InputError, match="threshold model"):
        compare(fit, idata, prevalence=0.1)


def test_genetic_values_compared_with_blup():
    y, K, X, _, _ = simulate(N=120, P=300, h2=0.5, seed=2)
    fit = bayeslmm.reml(y, K, X)
    idata = sample(marginal_grm(y, fit.decomposition, X, latent=True), draws=500, tune=500,
                   chains=2, seed=1, progressbar=False, check=False)
    cmp = compare(fit, idata)
    gv = cmp.genetic_values
    assert gv["correlation"] > 0.95
    # The full posterior averages over h2, so its shrinkage differs from BLUP's only mildly.
    assert 0.7 < gv["slope"] < 1.3
