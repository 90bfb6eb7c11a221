"""Figures of bayeslmm (matplotlib; importing this module leaves the backend as it is: the
command line chooses Agg itself).

:func:`plot_h2_posterior` shows the posterior density of h2 with its prior, its highest
density interval and the REML estimate with its confidence interval, which is the one
picture that answers "what do the data say about heritability, and how much of it is the
prior?". ArviZ-plots has no single plot that overlays a prior *density* (it wants prior
draws) and a frequentist interval, so the figure is drawn with matplotlib directly, using
ArviZ's KDE (boundary-corrected on [0, 1]) and HDI for the posterior.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from bayeslmm.bayes.summaries import (
    credible_interval,
    interval_label,
    posterior_draws,
    reflected_kde,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayeslmm.estimation.reml import VarianceComponentFit

__all__ = ["plot_h2_posterior"]

DEFAULT_SIZE = (6.4, 4.0)
DEFAULT_DPI = 100


def plot_h2_posterior(
    idata: Any,
    *,
    prior: Any = None,
    reml: VarianceComponentFit | None = None,
    true_h2: float | None = None,
    extra: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    hdi_prob: float | None = None,
    var: str = "h2",
    path: str | os.PathLike[str] | None = None,
    figsize: tuple[float, float] = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
) -> Figure:
    """Posterior density of h2 with the prior, the HDI and the REML estimate.

    Parameters
    ----------
    idata : xarray.DataTree or ndarray
        The result of :func:`bayeslmm.bayes.sample` (its ``posterior`` group must hold
        ``var``), or the draws themselves (n_draws,) or (n_draws, k).
    prior : Prior, callable or None
        The prior of h2: a :class:`bayeslmm.bayes.priors.Prior` (its ``logpdf`` is drawn) or
        a function ``x -> density``. None: no prior curve.
    reml : VarianceComponentFit, optional
        Its h2 is marked with a vertical line and its interval shaded: the profile-likelihood
        95% CI when the fit has one, else h2 +- 1.96 SE.
    true_h2 : float, optional
        The simulated truth (demo data), a dotted line.
    extra : mapping label -> (grid, density), optional
        Further curves, e.g. the quadrature (empirical-Bayes comparison) posterior.
    hdi_prob : float
        Mass of the highest-density interval drawn under the posterior.
    var : str
        Posterior variable to draw.
    path : path, optional
        Save the figure there as PNG.
    figsize, dpi
        Figure size in inches and resolution; the PNG is ``figsize * dpi`` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per component of ``var``.
    """
    draws = posterior_draws(idata, var)
    draws = draws.reshape(draws.shape[0], -1)  # (n_draws, n_components)
    k = draws.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(figsize[0] * k, figsize[1]), dpi=dpi,
                             squeeze=False)
    grid = np.linspace(0.0, 1.0, 401)
    reml_h2 = None if reml is None else np.atleast_1d(reml.h2)
    reml_se = None if reml is None else np.atleast_1d(reml.h2_se)
    for j, ax in enumerate(axes[0]):
        x = draws[:, j]
        dens = reflected_kde(x, grid, 0.0, 1.0)
        ax.plot(grid, dens, color="C0", lw=2, label="posterior")
        lo, hi = credible_interval(x, hdi_prob)
        m = (grid >= lo) & (grid <= hi)
        ax.fill_between(grid[m], dens[m], color="C0", alpha=0.25,
                        label=f"{interval_label(hdi_prob)} [{lo:.2f}, {hi:.2f}]")
        ax.axvline(float(np.mean(x)), color="C0", ls="--", lw=1,
                   label=f"posterior mean {np.mean(x):.3f}")
        if prior is not None:
            f = (lambda g: np.exp(prior.logpdf(g))) if hasattr(prior, "logpdf") else prior
            with np.errstate(all="ignore"):
                pd_ = np.asarray(f(grid), dtype=float)
            pd_ = np.where(np.isfinite(pd_), pd_, np.nan)
            ax.plot(grid, pd_, color="0.4", lw=1.5, ls=":", label=f"prior {prior}")
        for c, (n, (gx, gy)) in enumerate((extra or {}).items()):
            ax.plot(gx, gy, lw=1.5, ls="--", color=f"C{c + 2}", label=n)
        if reml_h2 is not None:
            h, se = float(reml_h2[j]), float(reml_se[j])
            ci = reml.h2_ci if (reml.h2_ci is not None and k == 1) else (
                max(h - 1.96 * se, 0.0), min(h + 1.96 * se, 1.0))
            ax.axvspan(ci[0], ci[1], color="C3", alpha=0.12,
                       label=f"REML 95% CI [{ci[0]:.2f}, {ci[1]:.2f}]")
            ax.axvline(h, color="C3", lw=1.5, label=f"REML {h:.3f} (SE {se:.3f})")
        if true_h2 is not None:
            ax.axvline(true_h2, color="k", ls=(0, (1, 2)), lw=1.5, label=f"true {true_h2:g}")
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(var if k == 1 else f"{var}[{j}]")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    fig.suptitle(title or "Posterior of heritability")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png", dpi=dpi)
    return fig


def close(fig: Figure) -> None:
    """Release a figure's memory (pyplot keeps every open figure otherwise)."""
    plt.close(fig)

