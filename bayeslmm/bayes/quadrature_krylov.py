"""The posterior of h2 on the matrix-free (Krylov/SLQ) likelihood, with its Monte Carlo error.

The quadrature is :func:`bayeslmm.bayes.quadrature.posterior_h2_quadrature` itself, given a
:class:`bayeslmm.likelihood.krylov.KrylovLMM` in place of the spectral model: beta (flat) and Vp
integrated exactly as there, the same priors, grid and output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslmm.bayes.quadrature import posterior_h2_quadrature
from bayeslmm.likelihood.krylov import KrylovLMM

__all__ = ["posterior_h2_krylov", "posterior_h2_table"]


def posterior_h2_krylov(model: KrylovLMM, *, priors=None, n_grid: int = 2001,
                        prob: float | None = None):
    """Posterior of h2 by 1-D quadrature (beta and Vp integrated) on the Krylov likelihood.

    The quadrature is :func:`bayeslmm.bayes.posterior_h2_quadrature` itself, given the
    Krylov model in place of the spectral one (same priors, same grid, same output).
    The Monte Carlo error of the SLQ log-determinant is propagated by a jackknife over the
    probe batches: ``attrs["mean_mc_se"]`` and ``attrs["sd_mc_se"]``; ``attrs["mc_flag"]``
    is 1 when the error of the mean exceeds a tenth of the posterior SD (then add probes).
    """
    import copy

    from bayeslmm.bayes.summaries import interval_prob

    prob = interval_prob(prob)
    post = posterior_h2_quadrature(model, priors=priors, n_grid=n_grid, prob=prob)
    B = len(model.batches)
    means, sds = np.empty(B), np.empty(B)
    for b in range(B):
        mb = copy.copy(model)
        mb.drop_batch = b
        pb = posterior_h2_quadrature(mb, priors=priors, n_grid=n_grid, prob=prob)
        means[b], sds[b] = float(pb["mean"]), float(pb["sd"])
    jk = np.sqrt((B - 1) / B)
    mean_se = float(jk * np.sqrt(np.sum((means - means.mean()) ** 2)))
    sd_se = float(jk * np.sqrt(np.sum((sds - sds.mean()) ** 2)))
    post.attrs.update(method=post.attrs["method"] + " (Krylov/SLQ likelihood)",
                      mean_mc_se=mean_se, sd_mc_se=sd_se,
                      mc_flag=int(mean_se > 0.1 * float(post["sd"])), probes=model.m,
                      deflated=model.k)
    return post



def posterior_h2_table(post) -> pd.DataFrame:
    """One row (``h2``) summarising a quadrature posterior: mean, SD and the package's
    interval (:mod:`bayeslmm.bayes.summaries`, named in the column headers: HDI, or equal-tailed
    from the grid's CDF), with the Monte Carlo errors of the mean and SD when the posterior
    comes from :func:`posterior_h2_krylov`."""
    from bayeslmm.bayes.summaries import INTERVAL, interval_label, interval_prob

    h2 = post["h2"].to_numpy()
    mass = post["density"].to_numpy() * np.gradient(h2)
    prob = interval_prob()
    if INTERVAL.kind == "eti" or post.attrs.get("hdi_prob") != prob:
        cdf = np.cumsum(mass) - 0.5 * mass
        lo, hi = np.interp([(1 - prob) / 2, (1 + prob) / 2], cdf / cdf[-1], h2)
    else:
        lo, hi = (float(v) for v in post["hdi"].to_numpy())
    label = interval_label()
    row = {"mean": float(post["mean"]), "sd": float(post["sd"]), f"{label} lower": lo,
           f"{label} upper": hi}
    for k in ("mean_mc_se", "sd_mc_se"):
        if k in post.attrs:
            row[k] = float(post.attrs[k])
    return pd.DataFrame([row], index=pd.Index(["h2"], name="parameter"))
