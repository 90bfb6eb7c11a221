"""The figures of bayeslmm.reports.plots, saved, read back and checked against what they
claim: the file's size and dpi, an x-range covering the posterior's 99.9% mass (not [0, 1]
for a narrow posterior), the prior curve equal to the prior's pdf (scipy's, not ours), the
interval convention named in the legend, the legend outside the axes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from scipy import stats

import bayeslmm
from bayeslmm.bayes.priors import parse_prior
from bayeslmm.reports import plots


def _tree(draws: np.ndarray) -> xr.DataTree:
    dims = ("chain", "draw", *(["component"] if draws.ndim == 3 else []))
    coords = {"component": ["chrA", "chrB"]} if draws.ndim == 3 else {}
    return xr.DataTree.from_dict({"posterior": xr.Dataset({"h2": (dims, draws)}, coords=coords)})


def _line(ax, gid):
    return next(ln for ln in ax.lines if ln.get_gid() == gid)


@pytest.fixture(scope="module")
def reml_fit():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((150, 300))
    y = Z @ rng.normal(0, np.sqrt(0.5 / 300), 300) + rng.normal(0, np.sqrt(0.5), 150)
    return bayeslmm.reml(y, Z @ Z.T / 300)


def test_png_size_dpi_axis_and_exact_prior(tmp_path, reml_fit):
    # a narrow posterior (SD 0.03) with a Beta(2, 8) prior: density 0 at h2 = 0, which a
    # KDE of prior draws would not show
    draws = np.random.default_rng(1).normal(0.3, 0.03, size=(2, 2000))
    prior = parse_prior("Beta(2, 8)")
    fig = plots.plot_h2_posterior(_tree(draws), prior=prior, reml=reml_fit,
                                  path=tmp_path / "h2.png")
    with Image.open(tmp_path / "h2.png") as im:
        assert im.size == (1050, 780)  # 3.5 x 2.6 in at 300 dpi
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert np.asarray(im.convert("L")).std() > 5  # something is drawn
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    q = np.quantile(draws, [0.0005, 0.9995])
    assert lo <= q[0] and hi >= q[1]  # the posterior's 99.9% mass
    assert (lo, hi) != (0.0, 1.0) and hi - lo < 0.8  # not [0, 1]
    mark = plots.reml_marks(reml_fit)[0]
    assert lo <= mark.ci[0] and hi >= mark.ci[1]  # and the REML interval
    pr = _line(ax, "prior")
    x = pr.get_xdata()
    np.testing.assert_allclose(pr.get_ydata(), stats.beta.pdf(x, 2, 8), rtol=1e-10)
    assert pr.get_color() == plots.prior_colour(prior) == plots.prior_colour(
        parse_prior("Beta(2, 8)"))  # fixed per prior
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("95% HDI") for lbl in labels)
    assert any(lbl.startswith("posterior mean") for lbl in labels)
    assert any(lbl.startswith("REML 95% profile CI") for lbl in labels)
    # the legend lies below the axes, outside the data
    fig.canvas.draw()
    box, leg = ax.get_window_extent(), ax.get_legend().get_window_extent()
    assert leg.y1 <= box.y0
    plots.close(fig)


def test_a_wide_posterior_keeps_its_support_and_a_boundary_density(tmp_path):
    x = np.abs(np.random.default_rng(2).normal(0, 0.4, (1, 4000))).clip(0, 1)
    fig = plots.plot_h2_posterior(_tree(x), path=tmp_path / "b.png")
    lo, hi = fig.axes[0].get_xlim()
    assert lo == 0.0 and hi == 1.0  # clipped to the support, no wider
    y = _line(fig.axes[0], "posterior").get_ydata()
    assert y[0] > 0.5 * y.max()  # piled against 0: drawn up to the edge
    plots.close(fig)


def test_components_named_and_other_formats(tmp_path):
    draws = np.random.default_rng(1).uniform(0.1, 0.4, size=(2, 300, 2))
    fig = plots.plot_h2_posterior(_tree(draws), figsize=(3, 2), dpi=100,
                                  path=tmp_path / "two.svg")
    assert [ax.get_xlabel() for ax in fig.axes[:2]] == ["h2 (chrA)", "h2 (chrB)"]
    assert (tmp_path / "two.svg").read_text().lstrip().startswith("<?xml")
    fig.savefig(tmp_path / "two.png", dpi=100)
    with Image.open(tmp_path / "two.png") as im:
        assert im.size == (600, 200)  # two panels side by side
    plots.close(fig)
    fig = plots.plot_h2_posterior(draws[0, :, 0], xlabel="liability h2", fmt="pdf",
                                  path=tmp_path / "t.pdf")
    assert fig.axes[0].get_xlabel() == "liability h2"
    assert (tmp_path / "t.pdf").read_bytes()[:4] == b"%PDF"
    plots.close(fig)


def test_refused_inputs():
    with pytest.raises(bayeslmm.InputError, match="no variable"):
        plots.plot_h2_posterior(_tree(np.zeros((1, 3))), var="sigma_g2")
    with pytest.raises(bayeslmm.InputError, match="figure format"):
        plots.plot_h2_posterior(np.full(50, 0.5) + np.linspace(0, 0.1, 50), fmt="jpeg")
