"""The exact marginal posterior of h2 for the one-kernel model, by quadrature.

With V = Vp H(h2), H = h2 K + (1 - h2) I, a flat prior on beta integrates beta out in closed
form (the REML lemma, notes 4.3.1-4.3.2):

    p(y | h2, Vp) = (2 pi Vp)^{-(N-M)/2} |X'X|^{1/2} |H|^{-1/2} |X'H^-1X|^{-1/2}
                    exp(-Q / (2 Vp)),   Q = y'H^-1y - y'H^-1X (X'H^-1X)^-1 X'H^-1y.

With Vp ~ InverseGamma(a, b) (a = b = 0 is the scale-invariant p(Vp) ∝ 1/Vp) the scale
integrates out too:

    p(h2 | y) ∝ p(h2) |H|^{-1/2} |X'H^-1X|^{-1/2} Gamma(a + n/2) (b + Q/2)^{-(a + n/2)},

n = N - M; for a = b = 0 this is exp(REML profile log-likelihood) times p(h2), which
:meth:`~bayeslmm.likelihood.single.SpectralLMM.profile` already gives, vectorised over h2. Other
priors (on Vp, or independent priors on sigma_g2 and sigma_e2) are integrated numerically on
a 2-D grid in (h2, log Vp). Either way the answer is exact to grid accuracy, which is what
validates NUTS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import special

from bayeslmm.bayes.priors import Prior, default_priors
from bayeslmm.covariance.decomposition import Decomposition, decompose
from bayeslmm.data import prepare
from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI
from bayeslmm.likelihood.single import SpectralLMM

__all__ = ["grid_posterior_tree", "posterior_h2_quadrature"]

QUANTILES = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)


def _lmm_from(fit_or_dec, y, X) -> SpectralLMM:
    if isinstance(fit_or_dec, SpectralLMM):
        return fit_or_dec
    if hasattr(fit_or_dec, "decomposition") and hasattr(fit_or_dec, "data"):
        if y is not None or X is not None:
            raise InputError("a fit carries its data: call posterior_h2_quadrature(fit) "
                             "without y or X")
        if isinstance(fit_or_dec.model, SpectralLMM):
            return fit_or_dec.model
        if fit_or_dec.decomposition is None:
            raise InputError("the quadrature posterior is for one kernel; this fit has "
                             f"{fit_or_dec.k}")
        return SpectralLMM(fit_or_dec.decomposition, fit_or_dec.data.y, fit_or_dec.data.X)
    if y is None:
        raise InputError("give y (and X) with a decomposition or kernel")
    if isinstance(fit_or_dec, Decomposition):
        data = prepare(y, None, X)
        return SpectralLMM(fit_or_dec.aligned_to(data.samples), data.y, data.X)
    data = prepare(y, fit_or_dec, X)
    return SpectralLMM(decompose(data.Ks[0], samples=data.samples), data.y, data.X)


def _pieces(lmm: SpectralLMM, h2: np.ndarray):
    """log-ish pieces at each h2: A = -1/2 log|H| - 1/2 log|X'H^-1X| and Q (REML profile)."""
    prof = lmm.profile(h2, reml=True)
    n = lmm.N - lmm.M
    Q = prof.Vp * n
    with np.errstate(invalid="ignore", divide="ignore"):
        A = prof.loglik + 0.5 * n * (LOG2PI + np.log(prof.Vp)) + 0.5 * n - 0.5 * lmm.logdet_XtX
    A = np.where(np.isfinite(prof.loglik), A, -np.inf)
    return A, Q, n


def _conjugate(pri, vp: Prior | None) -> tuple[float, float] | None:
    if pri.parameterisation != "h2" or vp is None:
        return None
    if vp.family == "Jeffreys":
        return 0.0, 0.0
    if vp.family == "InverseGamma":
        return vp.params["alpha"], vp.params["beta"]
    return None


def _log_post(lmm: SpectralLMM, pri, h2: np.ndarray, n_vp: int) -> np.ndarray:
    """Unnormalised log p(h2 | y) at each h2 (beta flat, Vp integrated)."""
    A, Q, n = _pieces(lmm, h2)
    conj = _conjugate(pri, pri.priors.get("Vp"))
    if conj is not None:
        a, b = conj
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = (pri["h2"].logpdf(h2) + A + special.gammaln(a + n / 2)
                  - (a + n / 2) * np.log(b + Q / 2))
        return np.where(np.isfinite(lp), lp, -np.inf)
    # 2-D: for each h2 a grid in log Vp around the conditional mode Q/n; its width is many
    # conditional sds (sd of log Vp ~ sqrt(2/n)) so the grid holds all the mass.
    half = 14.0 * np.sqrt(2.0 / n) + 0.5
    t = np.linspace(-half, half, n_vp)
    with np.errstate(divide="ignore", invalid="ignore"):
        logV = np.log(Q / n)[:, None] + t[None, :]
        Vp = np.exp(logV)
        hh = h2[:, None]
        if pri.parameterisation == "h2":
            lprior = pri["h2"].logpdf(hh) + pri["Vp"].logpdf(Vp)
        else:
            # (sigma_g2, sigma_e2) = (h2 Vp, (1 - h2) Vp): Jacobian |d(sg, se)/d(h2, Vp)| = Vp.
            lprior = (pri["sigma_g2"].logpdf(hh * Vp) + pri["sigma_e2"].logpdf((1 - hh) * Vp)
                      + logV)
        ll = A[:, None] - 0.5 * n * logV - Q[:, None] / (2 * Vp)
        f = lprior + ll + logV  # + log Vp: dVp = Vp dlogVp
        f = np.where(np.isfinite(f), f, -np.inf)
        lp = special.logsumexp(f, axis=1) + np.log(t[1] - t[0])
    return np.where(np.isfinite(lp), lp, -np.inf)


def _summaries(h2: np.ndarray, dens: np.ndarray, prob: float):
    w = np.gradient(h2)  # trapezoid-like weights on a (possibly non-uniform) grid
    mass = dens * w
    mean = float(np.sum(h2 * mass))
    sd = float(np.sqrt(max(np.sum((h2 - mean) ** 2 * mass), 0.0)))
    cdf = np.cumsum(mass) - 0.5 * mass
    q = np.interp(QUANTILES, cdf, h2)
    # HDI: the highest-density set holding `prob` of the mass, reported as its span.
    order = np.argsort(dens)[::-1]
    k = int(np.searchsorted(np.cumsum(mass[order]), prob)) + 1
    inside = order[:k]
    return mean, sd, q, (float(h2[inside].min()), float(h2[inside].max()))


def posterior_h2_quadrature(fit_or_dec, y=None, X=None, *,
                            priors: Mapping[str, Any] | None = None, n_grid: int = 2001,
                            n_vp: int = 241, prob: float = 0.95) -> xr.Dataset:
    """Exact marginal posterior of h2 for one kernel by 1-D (or 2-D) quadrature.

    Parameters
    ----------
    fit_or_dec : VarianceComponentFit, Decomposition, SpectralLMM or kernel matrix
        A one-kernel REML fit (its decomposition and data are reused), or a decomposition /
        kernel with ``y`` and ``X``.
    y, X : array_like, optional
        Phenotype and covariates when ``fit_or_dec`` is not a fit.
    priors : dict, optional
        ``h2`` + ``Vp`` or ``sigma_g2`` + ``sigma_e2`` (see :mod:`bayeslmm.bayes.priors`);
        ``beta`` must be ``"Flat()"`` (the default here): beta is integrated analytically.
        ``Vp ~ InverseGamma(a, b)`` or ``Jeffreys()`` is integrated analytically (1-D
        quadrature); anything else numerically on a (h2, log Vp) grid.
    n_grid : int
        Points of the refined h2 grid.
    n_vp : int
        Points of the log Vp grid (non-conjugate priors).
    prob : float
        Mass of the highest-density interval.

    Returns
    -------
    xarray.Dataset
        ``density`` and ``log_density`` over ``h2`` (normalised on the grid), scalars
        ``mean``, ``sd``, ``quantiles`` (dim ``quantile``) and ``hdi`` (dim ``bound``:
        lower, upper) -- read them as ``ds["mean"]`` (``ds.mean`` is xarray's method);
        ``attrs`` hold the priors and the method.
    """
    lmm = _lmm_from(fit_or_dec, y, X)
    spec = dict(priors or {})
    spec.setdefault("beta", "Flat()")
    pri = default_priors(spec, lmm.y, lmm.X)
    if pri["beta"].family != "Flat":
        raise InputError("the quadrature posterior integrates beta analytically under a flat "
                         f"prior; got beta ~ {pri['beta']}. Use priors={{'beta': 'Flat()'}}")
    if n_grid < 11:
        raise InputError("n_grid must be at least 11")
    # Pass 1: a uniform grid of midpoints (the endpoints can have infinite prior density).
    coarse = (np.arange(n_grid) + 0.5) / n_grid
    lp = _log_post(lmm, pri, coarse, n_vp)
    if not np.any(np.isfinite(lp)):
        raise InputError("the posterior of h2 is zero everywhere on the grid")
    # Pass 2: refine where the density is within e^-40 of its peak, so a sharp posterior
    # (large N) is resolved as finely as a broad one.
    live = np.flatnonzero(lp > lp.max() - 40.0)
    step = 1.0 / n_grid
    lo = max(coarse[live[0]] - 2 * step, 0.0)
    hi = min(coarse[live[-1]] + 2 * step, 1.0)
    grid = lo + (hi - lo) * (np.arange(n_grid) + 0.5) / n_grid
    lp = _log_post(lmm, pri, grid, n_vp)
    w = np.gradient(grid)
    log_norm = special.logsumexp(lp + np.log(w))
    log_dens = lp - log_norm
    dens = np.exp(log_dens)
    mean, sd, q, hdi = _summaries(grid, dens, prob)
    method = "1-D conjugate" if _conjugate(pri, pri.priors.get("Vp")) else "2-D grid"
    return xr.Dataset(
        {"density": ("h2", dens), "log_density": ("h2", log_dens), "mean": mean, "sd": sd,
         "quantiles": ("quantile", q), "hdi": ("bound", np.array(hdi))},
        coords={"h2": grid, "quantile": list(QUANTILES), "bound": ["lower", "upper"]},
        attrs={"priors": repr(pri.describe()), "method": method, "hdi_prob": prob,
               "N": lmm.N, "M": lmm.M})


def grid_posterior_tree(post: xr.Dataset, *, draws: int = 1000, chains: int = 4,
                        seed: int | np.random.Generator | None = None) -> xr.DataTree:
    """A quadrature posterior (:func:`posterior_h2_quadrature`, or the Krylov engine's) as
    the DataTree every other path writes: posterior draws of h2 that ArviZ reads, the grid in
    a group of its own.

    The draws invert the grid's CDF, F(h2) = sum of density x cell width (linear inside a
    cell), at ``chains x draws`` seeded uniforms: independent draws of the exact posterior,
    so their ESS is their number and R-hat 1 up to noise.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``h2`` over chain, draw; attrs: the method and, from the
        Krylov engine, the Monte Carlo errors ``mean_mc_se``/``sd_mc_se``) and ``grid`` (the
        quadrature's own Dataset); root attrs ``model_family``, ``default_priors`` and
        ``priors`` as :func:`bayeslmm.bayes.sample` stores them.
    """
    import ast
    import json

    from bayeslmm.bayes.priors import default_prior_table
    from bayeslmm.data import check_seed

    check_seed(seed, "seed")
    h2 = post["h2"].to_numpy()
    mass = post["density"].to_numpy() * np.gradient(h2)
    edges = np.concatenate([[max(h2[0] - 0.5 * (h2[1] - h2[0]), 0.0)],
                            0.5 * (h2[1:] + h2[:-1]),
                            [min(h2[-1] + 0.5 * (h2[-1] - h2[-2]), 1.0)]])
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    u = np.random.default_rng(seed).uniform(size=(chains, draws)) * cdf[-1]
    x = np.interp(u, cdf, edges)
    keep = {k: post.attrs[k] for k in ("method", "mean_mc_se", "sd_mc_se", "mc_flag",
                                       "probes", "deflated") if k in post.attrs}
    posterior = xr.Dataset({"h2": (("chain", "draw"), x)},
                           coords={"chain": np.arange(chains), "draw": np.arange(draws)},
                           attrs={**keep, "sampler": "inverse CDF of the quadrature grid"})
    tree = xr.DataTree.from_dict({"posterior": posterior, "grid": post})
    tree.attrs.update(model_family="linear",
                      default_priors=json.dumps(default_prior_table("linear")),
                      priors=json.dumps(ast.literal_eval(post.attrs["priors"])))
    return tree
