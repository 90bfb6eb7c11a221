"""Posterior draws: extraction, highest-density intervals and bounded densities.

Shared by the comparison, the sensitivity study and the figures, and free of PyMC so the
figures do not import the sampler.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslmm.errors import InputError

__all__ = ["hdi", "posterior_draws", "reflected_kde"]

_SAMPLE_DIMS = ("chain", "draw")


def posterior_draws(posterior, name: str) -> np.ndarray:
    """All draws of a posterior variable, chains pooled: shape (draws, *rest).

    ``posterior`` is an ArviZ DataTree (its ``posterior`` group is used), the posterior
    group itself, a Dataset, or already an array of draws (returned as is).
    """
    if isinstance(posterior, np.ndarray):
        return np.asarray(posterior, dtype=float)
    post = posterior
    if isinstance(post, xr.DataTree) and "posterior" in post.children:
        post = post["posterior"]
    post = post.to_dataset() if isinstance(post, xr.DataTree) else post
    if name not in post:
        raise InputError(f"the posterior has no variable {name!r}; it has {list(post.data_vars)}")
    da = post[name]
    other = [d for d in da.dims if d not in _SAMPLE_DIMS]
    return da.transpose(*_SAMPLE_DIMS, *other).values.reshape(-1, *[da.sizes[d] for d in other])


def hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of the (finite) draws: ArviZ's HDI."""
    import arviz_stats

    x = np.asarray(draws, dtype=float)
    lo, hi = np.asarray(arviz_stats.hdi(x[np.isfinite(x)], prob=prob))
    return float(lo), float(hi)


def reflected_kde(draws: np.ndarray, grid: np.ndarray, lower: float | None = 0.0,
                  upper: float | None = None) -> np.ndarray:
    """Gaussian KDE of ``draws`` on ``grid``, reflected at the bounds, so that the density of
    a variance or of h2 piled against 0 (or 1) is not drawn falling to zero there.

    Fewer than two distinct finite draws give a zero density.
    """
    from scipy.stats import gaussian_kde

    x = np.asarray(draws, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return np.zeros_like(grid, dtype=float)
    kde = gaussian_kde(x)
    dens = kde(grid)
    if lower is not None:
        dens = dens + kde(2 * lower - grid)
    if upper is not None:
        dens = dens + kde(2 * upper - grid)
    return dens
