"""Results per component: the table and figure of partitioned h2, compare() and
prior_sensitivity() with several kernels."""

from __future__ import annotations

import numpy as np
import pytest

import bayeslmm
from bayeslmm.bayes import compare, marginal_grm, prior_sensitivity, sample
from bayeslmm.bayes.components import component_table, plot_components


@pytest.fixture(scope="module")
def two():
    rng = np.random.default_rng(3)
    N = 120
    Z = rng.standard_normal((N, 240))
    K1 = Z @ Z.T / 240
    grp = rng.integers(0, 15, N)
    K2 = (grp[:, None] == grp[None, :]).astype(float)
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = X @ [1.0, 0.3] + np.linalg.cholesky(0.4 * K1 + 0.3 * K2 + 0.5 * np.eye(N)) @ \
        rng.standard_normal(N)
    fit = bayeslmm.reml(y, [K1, K2], X, component_names=["grm", "cage"])
    idata = sample(marginal_grm(y, [K1, K2], X, component_names=["grm", "cage"]), draws=500,
                   chains=2, seed=1, progressbar=False)
    return y, K1, K2, X, fit, idata


def test_component_table_and_figure(two, tmp_path):
    y, K1, K2, X, fit, idata = two
    t = component_table(fit, idata, hdi_prob=0.9)
    assert list(t.index) == ["h2[grm]", "h2[cage]", "h2_total"]
    np.testing.assert_allclose(t["reml"].values, [*fit.h2, fit.h2_total], rtol=1e-12)
    h2 = idata["posterior"]["h2"].values.reshape(-1, 2)
    np.testing.assert_allclose(t["post_mean"].values, [*h2.mean(0), h2.sum(1).mean()])
    assert np.all(t["hdi_lower"] < t["post_mean"]) and np.all(t["post_mean"] < t["hdi_upper"])
    assert np.all(t["reml_lower"] < t["reml"]) and np.all(t["reml"] < t["reml_upper"])
    fig = plot_components(fit, idata, tmp_path / "h2.png")
    assert (tmp_path / "h2.png").stat().st_size > 10_000
    assert len(fig.axes) == 3


def test_compare_has_every_component_and_the_total(two):
    y, K1, K2, X, fit, idata = two
    c = compare(fit, idata)
    for q in ("h2[grm]", "h2[cage]", "h2_total", "sigma_g2[grm]", "sigma_e2", "Vp"):
        assert q in c.table.index
    assert c.table.loc["h2_total", "reml"] == pytest.approx(fit.h2_total)
    assert abs(c.table.loc["h2_total", "shift_sd"]) < 1.5  # N = 120: REML and posterior near


def test_prior_sensitivity_with_several_kernels(two):
    y, K1, K2, X, fit, idata = two
    sens = prior_sensitivity(y, [K1, K2], X, priors={
        "wide": {"sigma_g2": "HalfNormal(5)", "sigma_e2": "HalfNormal(5)"},
        "tight": {"sigma_g2": "HalfNormal(0.05)", "sigma_e2": "HalfNormal(5)"}},
        draws=500, chains=2, seed=2, progressbar=False)
    s = sens.summary
    assert s.attrs["reml_h2"] == pytest.approx(fit.h2_total)
    # A prior that pins both genetic variances near 0 pulls h2_total down, and says so.
    assert float(s["h2_mean"].sel(prior="tight")) < float(s["h2_mean"].sel(prior="wide")) - 0.1
    assert sens.prior_sensitive
    assert np.isfinite(s["psense_prior"]).all()
    with pytest.raises(bayeslmm.InputError, match="quadrature' is for one kernel"):
        prior_sensitivity(y, [K1, K2], X, priors={"a": {}}, method="quadrature")
