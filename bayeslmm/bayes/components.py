"""Results per variance component: partitioned heritability, REML against the posterior.

For a model with k kernels (a GRM per chromosome or MAF bin, a GRM plus a cage effect...),
h2_j = sigma_j / Vp and h2_total = sum_j sigma_j / Vp (notes eq. 46 with k kernels). The
table puts, for each h2_j and for h2_total, the REML estimate with its delta-method SE and
Wald interval (as GCTA reports them) next to the posterior mean, SD and HDI; the figure draws
one panel per component and one for the total, with the REML estimate and interval overlaid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslmm.bayes.summaries import (
    credible_interval,
    interval_label,
    posterior_draws,
    reflected_kde,
)

__all__ = ["component_table", "plot_components"]

Z95 = 1.959963984540054


def _draws(posterior, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(draws x k) per-component h2 and the total."""
    h2 = posterior_draws(posterior, "h2").reshape(-1, k)
    return h2, h2.sum(axis=1)


def component_table(fit, posterior, *, hdi_prob: float | None = None) -> pd.DataFrame:
    """Per-component and total h2: REML (estimate, SE, 95% Wald interval) and posterior
    (mean, SD, HDI of mass ``hdi_prob``).

    Parameters
    ----------
    fit : VarianceComponentFit
        From :func:`bayeslmm.reml` on the same data and kernels.
    posterior : DataTree
        From :func:`bayeslmm.sample` (``h2`` over ``component``).
    hdi_prob : float

    Returns
    -------
    pandas.DataFrame
        Index ``h2[name]`` for each component and ``h2_total``.
    """
    k = fit.k
    h2d, total = _draws(posterior, k)
    est = np.atleast_1d(fit.h2).astype(float)
    se = np.atleast_1d(fit.h2_se).astype(float)
    rows = []
    names = [f"h2[{c}]" for c in fit.components] + ["h2_total"]
    ests = [*est, fit.h2_total]
    ses = [*se, fit.h2_total_se]
    cols = [h2d[:, j] for j in range(k)] + [total]
    for name, e, s, d in zip(names, ests, ses, cols, strict=True):
        lo, hi = credible_interval(d, hdi_prob)
        rows.append({"quantity": name, "reml": e, "reml_se": s, "reml_lower": e - Z95 * s,
                     "reml_upper": e + Z95 * s, "post_mean": float(d.mean()),
                     "post_sd": float(d.std(ddof=1)), "hdi_lower": lo, "hdi_upper": hi})
    table = pd.DataFrame(rows).set_index("quantity")
    table.attrs["interval"] = ("REML: 95% Wald (delta method); posterior: "
                               f"{interval_label(hdi_prob)}")
    return table


def plot_components(fit, posterior, path=None, *, hdi_prob: float | None = None):
    """One panel per component h2 and one for h2_total: posterior density (reflected KDE on
    [0, 1]) with its HDI shaded, the REML estimate (line) and its 95% Wald interval (dashed).
    """
    # The user's matplotlib backend is left as it is (the CLI chooses Agg itself).
    import matplotlib.pyplot as plt

    table = component_table(fit, posterior, hdi_prob=hdi_prob)
    h2d, total = _draws(posterior, fit.k)
    cols = [h2d[:, j] for j in range(fit.k)] + [total]
    n = len(cols)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), dpi=100, sharey=False)
    grid = np.linspace(0, 1, 401)
    for ax, (name, row), d in zip(np.atleast_1d(axes), table.iterrows(), cols, strict=True):
        ax.plot(grid, reflected_kde(d, grid, 0.0, 1.0), color="C0", lw=2, label="posterior")
        ax.axvspan(row.hdi_lower, row.hdi_upper, color="C0", alpha=0.12,
                   label=interval_label(hdi_prob))
        ax.axvline(row.reml, color="C3", lw=2, label="REML")
        for b in (row.reml_lower, row.reml_upper):
            ax.axvline(float(np.clip(b, 0, 1)), color="C3", ls="--", lw=1)
        ax.plot([], [], color="C3", ls="--", lw=1, label="REML 95% Wald")
        ax.set_xlim(0, 1)
        ax.set_title(name)
        ax.set_xlabel("h2")
    np.atleast_1d(axes)[0].set_ylabel("density")
    np.atleast_1d(axes)[0].legend(frameon=False, fontsize=7)
    fig.suptitle("Partitioned heritability: posterior against REML", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png")
    return fig
