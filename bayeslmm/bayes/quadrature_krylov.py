"""The posterior of h2 on the matrix-free (Krylov/SLQ) likelihood, with its Monte Carlo error.

The quadrature is :func:`bayeslmm.bayes.quadrature.posterior_h2_quadrature` itself, given a
:class:`bayeslmm.krylov.KrylovLMM` in place of the spectral model: beta (flat) and Vp
integrated exactly as there, the same priors, grid and output.
"""

from __future__ import annotations

import numpy as np

from bayeslmm.bayes.quadrature import posterior_h2_quadrature
from bayeslmm.krylov import KrylovLMM

__all__ = ["posterior_h2_krylov"]


def posterior_h2_krylov(model: KrylovLMM, *, priors=None, n_grid: int = 2001,
                        prob: float = 0.95):
    """Posterior of h2 by 1-D quadrature (beta and Vp integrated) on the Krylov likelihood.

    The quadrature is :func:`bayeslmm.bayes.posterior_h2_quadrature` itself, given the
    Krylov model in place of the spectral one (same priors, same grid, same output).
    The Monte Carlo error of the SLQ log-determinant is propagated by a jackknife over the
    probe batches: ``attrs["mean_mc_se"]`` and ``attrs["sd_mc_se"]``; ``attrs["mc_flag"]``
    is 1 when the error of the mean exceeds a tenth of the posterior SD (then add probes).
    """
    import copy

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

