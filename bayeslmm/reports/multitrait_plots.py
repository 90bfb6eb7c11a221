"""Figure of a two-trait posterior: h2_1, h2_2 and r_g with the REML estimates overlaid.

One panel per quantity: the posterior density (KDE reflected at the bounds of h2 in [0, 1]
and r_g in [-1, 1]) with its 95% highest-density interval, and the REML estimate with its
95% interval: Wald (estimate +- 1.96 SE, clipped) for h2, the profile-likelihood interval for
r_g. The interval convention is written in each legend.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from bayeslmm.bayes.summaries import (
    credible_interval,
    interval_label,
    posterior_draws,
    reflected_kde,
)

__all__ = ["plot_multitrait_posterior"]


def plot_multitrait_posterior(idata: Any, fit: Any = None, *, prob: float | None = None,
                              path: str | os.PathLike[str] | None = None, title: str | None = None):
    """Posterior densities of h2 (each trait) and r_g, with the REML fit overlaid.

    Parameters
    ----------
    idata : DataTree
        From :func:`bayeslmm.bayes.sample` on :func:`~bayeslmm.bayes.models.multitrait.
        multitrait_marginal` (variables ``h2`` over ``trait`` and ``r_g``).
    fit : MultiTraitFit, optional
        The REML fit; its estimates, Wald intervals (h2) and profile interval (r_g) are drawn.
    prob : float
        Mass of the posterior highest-density interval.
    path : path, optional
        Save the figure as PNG there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    h2 = posterior_draws(idata, "h2")
    rg = posterior_draws(idata, "r_g").ravel()
    traits = [str(t) for t in idata["posterior"]["trait"].values] if "trait" in \
        idata["posterior"].coords else [f"trait{t + 1}" for t in range(h2.shape[1])]
    panels = [(f"h2 ({traits[0]})", h2[:, 0], (0.0, 1.0), "h2_1"),
              (f"h2 ({traits[1]})", h2[:, 1], (0.0, 1.0), "h2_2"),
              ("r_g", rg, (-1.0, 1.0), "rg_12")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    d = fit.derived() if fit is not None else None
    for ax, (label, x, (lo, hi), key) in zip(axes, panels, strict=True):
        grid = np.linspace(lo, hi, 401)
        dens = reflected_kde(x, grid, lower=lo, upper=hi)
        ax.plot(grid, dens, color="C0", lw=2, label="posterior")
        a, b = credible_interval(x, prob)
        inside = (grid >= a) & (grid <= b)
        ax.fill_between(grid[inside], dens[inside], color="C0", alpha=0.25,
                        label=f"{interval_label(prob)} [{a:.2f}, {b:.2f}]")
        if d is not None:
            est, se = float(d.loc[key, "estimate"]), float(d.loc[key, "se"])
            if key == "rg_12" and fit.rg_ci is not None:
                ci, kind = fit.rg_ci, "profile"
            else:
                ci, kind = (max(est - 1.96 * se, lo), min(est + 1.96 * se, hi)), "Wald"
            ax.axvspan(ci[0], ci[1], color="C3", alpha=0.12,
                       label=f"REML 95% {kind} CI [{ci[0]:.2f}, {ci[1]:.2f}]")
            ax.axvline(est, color="C3", lw=1.5, label=f"REML {est:.3f} (SE {se:.3f})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.suptitle(title or "Posterior of heritabilities and genetic correlation")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png", dpi=100)
    return fig
