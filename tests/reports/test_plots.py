"""Every figure of bayeslmm.reports.plots is saved, reopened and checked to be a non-empty image of
the expected size."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.bayes.priors import parse_prior
from bayeslmm.reports import plots


def _tree(draws: np.ndarray) -> xr.DataTree:
    post = xr.Dataset({"h2": (("chain", "draw", *(["component"] if draws.ndim == 3 else [])),
                              draws)})
    return xr.DataTree.from_dict({"posterior": post})


def _check(path, size):
    img = mpimg.imread(path)
    assert img.shape[:2] == (size[1], size[0])
    assert img[..., :3].std() > 0.01  # something is drawn


def test_h2_posterior_png_with_prior_reml_truth(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((150, 300))
    K = Z @ Z.T / 300
    y = Z @ rng.normal(0, np.sqrt(0.5 / 300), 300) + rng.normal(0, np.sqrt(0.5), 150)
    fit = bayeslmm.reml(y, K)
    draws = rng.beta(8, 8, size=(2, 300))
    grid = np.linspace(0.01, 0.99, 50)
    fig = plots.plot_h2_posterior(_tree(draws), prior=parse_prior("Beta(2, 2)"), reml=fit,
                                  true_h2=0.5, extra={"exact": (grid, np.ones_like(grid))},
                                  path=tmp_path / "h2.png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("prior Beta") for lbl in labels)
    assert any(lbl.startswith("REML") for lbl in labels)
    assert any("HDI" in lbl for lbl in labels)
    _check(tmp_path / "h2.png", (640, 400))
    plots.close(fig)


def test_h2_posterior_several_components_and_size(tmp_path):
    draws = np.random.default_rng(1).uniform(0, 0.5, size=(2, 100, 2))
    fig = plots.plot_h2_posterior(_tree(draws), figsize=(4, 3), dpi=50,
                                  path=tmp_path / "two.png")
    assert len(fig.axes) == 2
    _check(tmp_path / "two.png", (400, 150))  # two panels side by side
    plots.close(fig)


def test_h2_posterior_from_bare_draws_and_boundary(tmp_path):
    # A posterior piled against 0 (h2 = 0 boundary) still draws a density up to the edge.
    x = np.abs(np.random.default_rng(2).normal(0, 0.05, 500))
    fig = plots.plot_h2_posterior(x, path=tmp_path / "b.png")
    line = fig.axes[0].lines[0].get_ydata()
    assert line[0] > 0.5 * line.max()
    _check(tmp_path / "b.png", (640, 400))
    plots.close(fig)


def test_missing_variable_is_an_input_error():
    with pytest.raises(bayeslmm.InputError, match="no variable"):
        plots.plot_h2_posterior(_tree(np.zeros((1, 3))), var="sigma_g2")
