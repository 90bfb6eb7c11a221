"""The several-kernel marginal model: its PyMC form and its fast posterior.

y ~ N(X beta, sum_j sigma_j K_j + sigma_e2 I) (notes eq. 46 with k kernels). The PyMC model
(:func:`marginal_multikernel`, what ``bayeslmm.models.marginal_grm`` returns for a list of
kernels) is the declarative statement of the model and what ``sampler="pymc"`` samples
(dense Cholesky and its derivative in PyTensor's graph, beta sampled jointly: slow).
:func:`bayeslmm.sample` with the default nutpie sampler instead routes it to
:func:`sample_model`: beta and the scale sigma_e2 integrated out exactly along rays of fixed
variance ratios, the k log variance ratios on a checked quadrature grid (k <= 2) or by
Pareto-smoothed importance sampling (k >= 3), NUTS with the exact gradient as the last
fallback; sigma_e2 and beta drawn from their exact conditionals (see
:mod:`bayeslmm.bayes.multikernel.sampling`). Same posterior.

Priors: by default (:data:`bayeslmm.bayes.priors.DEFAULT_PRIORS`, ``multikernel``)
(sigma_1, ..., sigma_k, sigma_e2) = Vp pi with pi ~ Dirichlet(1/k, ..., 1/k, 1), so that the
total h2 is Beta(1, 1) as with one kernel, and Vp ~ HalfNormal(2.5 var y); ``dirichlet=alpha``
sets other shares. Priors on ``sigma_g2`` (applied to every component) and ``sigma_e2``
instead give the two variances independent priors, as for one kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.model_info import ModelInfo, attach_info, find_info, model_info
from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.bayes.multikernel.lowrank import LowRankDensity
from bayeslmm.bayes.multikernel.sampling import sample_multikernel
from bayeslmm.bayes.priors import default_prior, default_priors, parse_priors
from bayeslmm.data import prepare
from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI
from bayeslmm.registry import attach_family_hooks

__all__ = ["default_dirichlet", "density_of", "marginal_multikernel", "sample_model"]


def default_dirichlet(k: int) -> tuple[float, ...]:
    """The default shares' Dirichlet(1/k, ..., 1/k, 1) (:data:`~bayeslmm.bayes.priors.
    DEFAULT_PRIORS`): the k genetic shares sum to h2_total ~ Beta(1, 1) (the aggregation
    property), the one-kernel default, which k = 1 recovers exactly."""
    return (*([1.0 / k] * k), 1.0)


def marginal_multikernel(y, Ks: Sequence, X=None, *, priors: Mapping[str, Any] | None = None,
                         dirichlet=None, component_names: Sequence[str] | None = None
                         ) -> pm.Model:
    """Y ~ N(X beta, sum_j sigma_j K_j + sigma_e2 I) as a PyMC model (notes eq. 46).

    Parameters
    ----------
    y : array_like, shape (N,)
    Ks : sequence of (N, N) array_like
        The kernels (labelled by sample when y is).
    X : array_like, shape (N, M), optional
        Covariates; default an intercept.
    priors : dict, optional
        ``beta``, ``sigma_g2`` (every component), ``sigma_e2``; with ``dirichlet``, ``Vp``.
    dirichlet : float or sequence of k + 1 floats, optional
        Dirichlet prior on the variance proportions (components, then the residual);
        default (1/k, ..., 1/k, 1) unless ``priors`` names ``sigma_g2`` or ``sigma_e2``.
    component_names : sequence of str, optional
        Names of the kernels (coordinate ``component``).

    Returns
    -------
    pymc.Model
        Free ``beta``, ``sigma_g2`` (dim ``component``), ``sigma_e2`` (or ``Vp`` and ``pi``
        with ``dirichlet``); deterministics ``h2`` (per component), ``h2_total``, ``Vp``.
    """
    data = prepare(y, list(Ks), X, component_names=component_names)
    k = len(data.Ks)
    spec = dict(priors or {})
    vp_prior = None
    if dirichlet is None and not {"sigma_g2", "sigma_e2"} & set(spec):
        dirichlet = default_dirichlet(k)
    if dirichlet is not None:
        vp_prior = parse_priors({"Vp": spec.pop("Vp")})["Vp"] if "Vp" in spec else \
            default_prior("multikernel", "Vp", float(np.var(data.y, ddof=1)))
        for name in ("sigma_g2", "sigma_e2", "h2"):
            if name in spec:
                raise InputError(f"with dirichlet= the variances are Vp * pi: give a prior on "
                                 f"Vp, not on {name}")
    pri = default_priors(spec, data.y, data.X, kind="lmm-variances")
    shares = [*data.components, "residual"]
    coords = {"covariate": list(data.covariates), "sample": list(data.samples),
              "component": list(data.components), "share": shares}
    with pm.Model(coords=coords) as model:
        if pri.beta_mu.size:
            beta = pm.Normal("beta", mu=pri.beta_mu, sigma=pri.beta_sigma, dims="covariate")
        else:
            beta = pri["beta"].create("beta", dims="covariate", shape=(data.M,))
        if dirichlet is None:
            sg = pri["sigma_g2"].create("sigma_g2", dims="component", shape=(k,))
            se = pri["sigma_e2"].create("sigma_e2")
            Vp = pm.Deterministic("Vp", sg.sum() + se)
        else:
            alpha = np.broadcast_to(np.asarray(dirichlet, dtype=np.float64), (k + 1,))
            Vp = vp_prior.create("Vp")
            pi = pm.Dirichlet("pi", a=alpha, dims="share")
            sg = pm.Deterministic("sigma_g2", Vp * pi[:k], dims="component")
            se = pm.Deterministic("sigma_e2", Vp * pi[k])
        pm.Deterministic("h2", sg / Vp, dims="component")
        pm.Deterministic("h2_total", sg.sum() / Vp)
        V = se * pt.eye(data.N)
        for j, Kj in enumerate(data.Ks):
            V = V + sg[j] * Kj
        pm.MvNormal("y", mu=pt.dot(data.X, beta), cov=V, observed=data.y, dims="sample")
    attach_info(model, ModelInfo("marginal-dense", data, pri,
                                 extra={"dirichlet": dirichlet, "vp_prior": vp_prior}))
    return model


def density_of(model: pm.Model) -> MultiKernelDensity:
    """The :class:`MultiKernelDensity` of a :func:`marginal_multikernel` model."""
    info = find_info(model)
    if info is None or info.kind != "marginal-dense":
        raise InputError("not a several-kernel model from bayeslmm.models.marginal_grm")
    extra = info.extra if info is not None else {}
    dense = MultiKernelDensity.of(info.data, info.priors, dirichlet=extra.get("dirichlet"),
                                  vp_prior=extra.get("vp_prior"))
    # All kernels but one low rank (groups, GRMs from few SNPs): Woodbury, no N^3 per draw.
    return LowRankDensity.try_from(dense) or dense


def _log_groups(density: MultiKernelDensity, post: xr.Dataset,
                known: xr.Dataset | None = None) -> tuple[xr.Dataset, xr.Dataset]:
    """log p(y | beta, sigma) per draw (total: the marginal model has no per-sample
    factorisation; pointwise LOO would need diag V^-1 per draw) and the log priors, as the
    ``log_likelihood`` and ``log_prior`` groups (power-scaling sensitivity reads them)."""
    k = density.k
    C, D = post.sizes["chain"], post.sizes["draw"]
    sg = post["sigma_g2"].values.reshape(C * D, k)
    se = post["sigma_e2"].values.reshape(C * D)
    beta = post["beta"].values.reshape(C * D, density.M)
    s = np.column_stack([sg, se])
    # One Cholesky per distinct draw (NUTS; the grid and importance sampling pass theirs).
    uniq, inv = np.unique(s, axis=0, return_inverse=True)
    ll = np.empty(C * D)
    inv = inv.reshape(-1)
    if known is not None:  # the grid / importance sampling kept it from their ray pieces
        uniq = []
        ll = known["y"].values.reshape(C * D)
    for u, su in enumerate(uniq):
        rows = np.flatnonzero(inv == u)
        _, mu, L, ll_mu = density.logp_beta(np.log(su))
        ll[rows] = density.loglik_at_beta(ll_mu, mu, L, beta[rows])
    shape = (C, D)
    coords = {"chain": post.chain, "draw": post.draw}
    loglik = xr.Dataset({"y": (("chain", "draw"), ll.reshape(shape))}, coords=coords)
    lp = {}
    if density.dirichlet is None:
        lp["sigma_g2"] = (("chain", "draw", "component"),
                          density.priors[0].logpdf(sg).reshape(shape + (k,)))
        lp["sigma_e2"] = (("chain", "draw"), density.priors[-1].logpdf(se).reshape(shape))
    else:
        from scipy import stats

        Vp = s.sum(axis=1)
        lp["Vp"] = (("chain", "draw"), density.vp_prior.logpdf(Vp).reshape(shape))
        lp["pi"] = (("chain", "draw"),
                    stats.dirichlet(density.dirichlet).logpdf((s / Vp[:, None]).T)
                    .reshape(shape))
    pos = density.lam > 0
    lpb = np.where(pos, -0.5 * LOG2PI + 0.5 * np.log(np.where(pos, density.lam, 1.0))
                   - 0.5 * density.lam * (beta - density.m0) ** 2, 0.0)
    lp["beta"] = (("chain", "draw", "covariate"), lpb.reshape(shape + (density.M,)))
    coords_p = dict(coords, component=post.component, covariate=post.covariate)
    return loglik, xr.Dataset(lp, coords=coords_p)


def sample_model(model: pm.Model, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 seed=None, progressbar: bool = True, *, target_accept: float | None = None,
                 method: str = "auto", log_likelihood: bool = True, log_prior: bool = True,
                 **options) -> xr.DataTree:
    """The posterior of a several-kernel model by the fast exact route (what
    :func:`bayeslmm.sample` calls for it; see the module docstring).

    Returns
    -------
    xarray.DataTree
        ``posterior`` (``sigma_g2``, ``h2`` over ``component``, ``sigma_e2``, ``Vp``,
        ``h2_total``, ``beta``), ``observed_data``, ``log_likelihood`` (one total per draw),
        ``log_prior``, and the group ``grid`` (or ``importance``); the method and its
        diagnostics in ``posterior.attrs``.
    """
    density = density_of(model)
    out = sample_multikernel(density, draws=draws, chains=chains, seed=seed, method=method,
                             tune=tune, progressbar=progressbar, target_accept=target_accept,
                             **options)
    post = out["posterior"].to_dataset()
    attrs = dict(out["posterior"].attrs)
    groups = {"posterior": post}
    for name in out.children:
        if name not in ("posterior", "log_likelihood", "log_prior", "observed_data"):
            groups[name] = out[name].to_dataset()
    info = model_info(model)
    groups["observed_data"] = xr.Dataset({"y": ("sample", info.data.y)},
                                         coords={"sample": list(info.data.samples)})
    if log_likelihood or log_prior:
        known = out["log_likelihood"].to_dataset() if "log_likelihood" in out.children \
            else None
        ll, lp = _log_groups(density, post, known)
        if log_likelihood:
            groups["log_likelihood"] = ll
        if log_prior:
            groups["log_prior"] = lp
    tree = xr.DataTree.from_dict(groups)
    tree["posterior"].attrs.update(attrs)
    return tree


attach_family_hooks("multikernel", build=marginal_multikernel, sample=sample_model)
