"""Sampling the posterior, checking it, and predicting from it.

:func:`sample` wraps :func:`pymc.sample` (PyMC 6 returns an ArviZ ``DataTree``) with the
choices this package needs everywhere: nutpie by default, the ``log_likelihood`` and
``log_prior`` groups always stored (power-scaling sensitivity needs both), a seed for
reproducibility, and the R-hat / ESS / divergence checks turned into a
:class:`~bayeslmm.errors.SamplingWarning`.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pymc as pm
import xarray as xr

from bayeslmm.bayes.diagnostics import check_diagnostics
from bayeslmm.bayes.model_info import find_info, model_info
from bayeslmm.covariance.structures import DenseCovariance, SpectralCovariance
from bayeslmm.data import check_seed
from bayeslmm.errors import InputError, SamplingWarning
from bayeslmm.progress import is_terminal, sampler_lines
from bayeslmm.registry import family_for_kind

__all__ = ["check_diagnostics", "posterior_predictive", "priors_as_used", "sample"]

log = logging.getLogger(__name__)

SAMPLERS = ("nutpie", "pymc")


def sample(model: pm.Model, draws: int = 1000, tune: int = 1000, chains: int = 4,
           seed: int | np.random.Generator | None = None, sampler: str = "nutpie",
           progressbar: bool = True, *, cores: int | None = None,
           target_accept: float | None = None, log_likelihood: bool = False,
           log_prior: bool = True, check: bool = True, compiled_logp: bool = True,
           random_seed: int | np.random.Generator | None = None, **kwargs) -> xr.DataTree:
    """Sample the posterior of a bayeslmm model with NUTS and check the result.

    Parameters
    ----------
    model : pymc.Model
        From :func:`~bayeslmm.models.marginal_grm`, :func:`~bayeslmm.models.random_effects`
        or :func:`~bayeslmm.models.fixed_effects` (any PyMC model works, too).
    draws, tune, chains : int
        Kept draws per chain, tuning steps per chain, number of chains.
    seed : int or numpy.random.Generator, optional
        Same seed, same draws (both samplers).
    random_seed : int or numpy.random.Generator, optional
        The same as ``seed``, under the name ``pm.sample`` uses.
    sampler : {"nutpie", "pymc"}
        nutpie (PyMC 6's default, compiled with numba) or PyMC's own NUTS.
    progressbar : bool
    cores : int, optional
        Chains run in parallel on this many cores.
    target_accept : float, optional
        NUTS target acceptance; raise (e.g. 0.95) if divergences are reported.
    log_likelihood : bool
        Store the pointwise ``log_likelihood`` group, for PSIS-LOO (``arviz_stats.loo``) and
        likelihood power scaling. Off by default, as in ``pm.sample`` (``idata_kwargs=
        {"log_likelihood": True}``): for the one-kernel marginal model the terms are the
        exact leave-one-out densities p(y_i | y_-i, theta) (:mod:`bayeslmm.bayes.loo`),
        O(N r) per draw -- at N = 5,000 several times the cost of sampling -- and N values
        per draw to store.
    log_prior : bool
        Store the ``log_prior`` group (prior power scaling, :func:`arviz_stats.psense`).
    check : bool
        Warn (:class:`~bayeslmm.errors.SamplingWarning`) on R-hat > 1.01, bulk ESS below 100
        per chain, or any divergence.
    compiled_logp : bool
        With nutpie, sample the standard one-kernel marginal model (``marginal_grm`` with
        free variances and the default conditional beta) and the two-trait model
        (``multitrait_marginal`` with its built-in priors) through their hand-written
        log-densities (:mod:`bayeslmm.bayes.compiled.marginal`,
        :mod:`bayeslmm.bayes.compiled.multitrait`, compiled once per machine) instead of
        compiling PyMC's graph in every process (several seconds; about half a minute for two
        traits), and likewise the probit threshold model
        (:mod:`bayeslmm.bayes.compiled.threshold`). Same density, same output; other models, and
        False, use PyMC's graph (the reason is logged at INFO level). Two-trait models are
        sampled with nutpie's low-rank modified mass matrix (``adaptation="low_rank"``)
        unless ``nuts={"adaptation": "diag"}``.
        Several-kernel models go to
        :func:`bayeslmm.bayes.models.multikernel.sample_model` (beta and the scale
        integrated out, a checked quadrature grid over the log variance ratios for two
        kernels, importance sampling for more, NUTS as the last fallback; its options
        ``method``, ``min_ess``, ``max_proposals``, ``n_check`` pass through
        ``**kwargs``). The probit threshold model goes to
        :func:`bayeslmm.bayes.augmented.threshold.sample_augmented` (liabilities augmented,
        h2 and the fixed effects drawn collapsed over g; ``method="nuts"`` keeps NUTS, and
        the models it does not cover fall back to NUTS with the reason logged).
    **kwargs
        Passed to :func:`pymc.sample`.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``h2``, ``sigma_g2``, ``sigma_e2``, ``Vp``, ``beta`` over
        ``covariate``, ``g`` over ``sample`` when the model has it), ``sample_stats``,
        ``observed_data``, ``log_likelihood``, ``log_prior``; the diagnostics are in
        ``posterior.attrs`` (``n_divergences``, ``max_rhat``, ``min_ess_bulk``).
    """
    if not isinstance(model, pm.Model):
        raise InputError(f"sample() needs a pymc.Model (from bayeslmm.bayes.marginal_grm, "
                         f"random_effects or fixed_effects), got {type(model).__name__}")
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise InputError(f"{name} must be an integer, got {v!r}")
    if random_seed is not None:
        if seed is not None and seed is not random_seed and seed != random_seed:
            raise InputError("give seed= or random_seed=, not two different seeds")
        seed = random_seed
    check_seed(seed, "seed")
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if draws < 1 or chains < 1 or tune < 0:
        raise InputError("draws and chains must be positive and tune non-negative")
    if target_accept is not None:
        kwargs.setdefault("nuts", {})["target_accept"] = target_accept
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31))
    info = find_info(model)
    family = family_for_kind(getattr(info, "kind", None))
    if sampler == "nutpie" and compiled_logp and family is not None and \
            family.sample is not None:
        # A family with a sampler of its own (several kernels: beta and the scale integrated
        # out, the log variance ratios on a grid, ~100 factorisations of V, not one per step).
        # The threshold model: liabilities augmented, h2 drawn collapsed over g. A hook
        # returns None for a model (or method="nuts") it leaves to NUTS.
        nuts = kwargs.pop("nuts", {})
        with warnings.catch_warnings():
            if not check:  # the family's sampler checks its draws itself: check=False holds
                warnings.simplefilter("ignore", SamplingWarning)
            own = family.sample(
                model, draws=draws, tune=tune, chains=chains, seed=seed,
                progressbar=progressbar, target_accept=nuts.get("target_accept"),
                log_likelihood=log_likelihood, log_prior=log_prior, **kwargs)
        if own is not None:
            return _stamp_priors(own, family, info)
        kwargs.pop("method", None)
        if nuts:
            kwargs["nuts"] = nuts
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # PyMC's own convergence messages go to the logger; we warn once, ourselves, below.
        warnings.filterwarnings("ignore", message=".*compute_log_prior.*")
        # Our genetic values live on the dimension ``sample`` (the package's convention);
        # ArviZ warns about the name, which here is not a stacked chain/draw dimension.
        warnings.filterwarnings("ignore", message="Found dimension named 'sample'")
        if sampler == "nutpie":
            idata = _sample_nutpie(model, draws, tune, chains, cores, seed, progressbar,
                                   kwargs, compiled_logp)
        else:
            idata = pm.sample(draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                              nuts_sampler=sampler, progressbar=progressbar, model=model,
                              compute_convergence_checks=False, quiet=not progressbar,
                              **kwargs)
        if log_likelihood and model.observed_RVs and not _pointwise_loglik(idata, model):
            idata = pm.stats.compute_log_likelihood(idata, model=model, progressbar=False)
        if log_prior and model.free_RVs:
            idata = pm.stats.compute_log_prior(idata, model=model, progressbar=False)
            _log_prior_of_conditional_beta(idata, model)
    elapsed = time.perf_counter() - t0
    post = idata["posterior"]
    post.attrs["sampler"] = sampler
    post.attrs["wall_time_s"] = elapsed
    info = find_info(model)
    if info is not None:
        post.attrs["model_kind"] = str(getattr(info, "kind", type(info).__name__))
        pri = getattr(info, "priors", None)
        data = getattr(info, "data", None)
        if hasattr(pri, "describe") and data is not None:
            post.attrs["priors"] = repr(pri.describe(data.covariates))
        elif pri is not None:
            post.attrs["priors"] = repr(pri.describe() if hasattr(pri, "describe") else pri)
    diag = check_diagnostics(idata, warn=check)
    post.attrs.update(diag)
    return _stamp_priors(idata, family, info)


def priors_as_used(info) -> dict[str, str]:
    """The priors a model was built with, as text by parameter (the defaults filled in)."""
    pri = getattr(info, "priors", None)
    data = getattr(info, "data", None)
    if pri is None:
        return {}
    out = dict(pri.describe(data.covariates) if hasattr(pri, "describe") and data is not None
               else pri.describe() if hasattr(pri, "describe") else pri)
    extra = getattr(info, "extra", None) or {}
    if extra.get("dirichlet") is not None:  # several kernels, shares of Vp
        out = {k: v for k, v in out.items() if k not in ("sigma_g2", "sigma_e2")}
        alpha = ", ".join(f"{a:.4g}" for a in np.atleast_1d(extra["dirichlet"]))
        out |= {"pi": f"Dirichlet({alpha})", "Vp": str(extra.get("vp_prior"))}
    if getattr(info, "eta", None) is not None:  # two traits: LKJ on both correlations
        out |= {"r_g": f"LKJ({info.eta:g})", "r_e": f"LKJ({info.eta:g})"}
    return {str(k): str(v) for k, v in out.items()}


def _stamp_priors(idata: xr.DataTree, family, info) -> xr.DataTree:
    """The family's row of the default-prior table and the priors as used, as JSON in the
    tree's root attrs (``model_family``, ``default_priors``, ``priors``), on every path."""
    import json

    from bayeslmm.bayes.priors import DEFAULT_PRIORS, default_prior_table

    if family is not None and family.name in DEFAULT_PRIORS:
        idata.attrs["model_family"] = family.name
        idata.attrs["default_priors"] = json.dumps(default_prior_table(family.name))
    used = priors_as_used(info)
    if used:
        idata.attrs["priors"] = json.dumps(used)
    return idata


def _sample_nutpie(model: pm.Model, draws: int, tune: int, chains: int, cores, seed,
                   progressbar: bool, kwargs: dict, compiled_logp: bool = True) -> xr.DataTree:
    """nutpie called directly: compile, sample, add the observed/constant data groups.

    This is what ``pm.sample(nuts_sampler="nutpie")`` does, less its set-up work, which costs
    several seconds per call (about half of a full posterior at N = 2,000).
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    nuts = dict(kwargs.pop("nuts", {}))
    family = family_for_kind(getattr(find_info(model), "kind", None))
    if family is not None and "low_rank_modified_mass_matrix" not in nuts:
        for key, value in family.nuts_defaults.items():
            nuts.setdefault(key, value)
    if "max_treedepth" in nuts:
        nuts["maxdepth"] = nuts.pop("max_treedepth")
    if kwargs:
        raise InputError(f"options {sorted(kwargs)} are for sampler='pymc'; nutpie takes "
                         "target_accept and nuts={'max_treedepth': ...}")
    compiled = _hand_compiled(model) if compiled_logp else None
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model)
    t0 = time.perf_counter()
    if progressbar and not is_terminal():  # nutpie's bar needs a terminal: plain lines
        nuts |= {"progress_callback": sampler_lines(), "progress_rate": 1000}
        progressbar = False
    running = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                            cores=cores, seed=seed, save_warmup=False,
                            progress_bar=progressbar, blocking=False, **nuts)
    try:
        idata = running.wait()
    except BaseException:
        # nutpie's blocking call turns Ctrl-C into the partial trace drawn so far (chains
        # NaN-padded); a stopped sampler must not pass for a posterior, so stop and re-raise.
        running.cancel()
        raise
    patch_nutpie_idata(idata, model, sampling_time=time.perf_counter() - t0)
    return idata


def _hand_compiled(model: pm.Model):
    """The model's hand-written log-density as a nutpie model (from its family's registered
    ``compile``), or None -- with the reason logged -- when the model is not covered."""
    family = family_for_kind(getattr(find_info(model), "kind", None))
    if family is None or family.compile is None:
        reason = "no family of bayeslmm with a compiled density built it"
    else:
        reason = family.supported(model) if family.supported is not None else None
    if reason is not None:
        log.info("No hand-written log-density for this model (%s): compiling PyMC's graph.",
                 reason)
        return None
    return family.compile(model)


def _pointwise_loglik(idata: xr.DataTree, model: pm.Model) -> bool:
    """Per-sample log-likelihoods from the model's family where PyMC's observed terms are not
    what PSIS-LOO leaves out (the marginal model's rotated eigen-components); False (nothing
    stored) for the other models, whose observed terms PyMC computes."""
    family = family_for_kind(getattr(find_info(model), "kind", None))
    if family is None or family.pointwise_loglik is None:
        return False
    return family.pointwise_loglik(idata, model)


def _log_prior_of_conditional_beta(idata: xr.DataTree, model: pm.Model) -> None:
    """Put beta's prior in the ``log_prior`` group when beta is sampled through beta_z.

    With marginal_grm's conditional parameterisation beta is a deterministic of the flat
    beta_z and its prior is a potential, which PyMC's compute_log_prior does not see; power
    scaling of the prior must still include it.
    """
    info = find_info(model)
    if info is None or "beta_z" not in model.named_vars or "log_prior" not in idata.children:
        return
    from scipy import stats

    beta = idata["posterior"]["beta"]
    pri = info.priors
    if pri.beta_mu.size:
        lp = stats.norm.logpdf(beta.values, pri.beta_mu, pri.beta_sigma)
    elif pri["beta"].family == "Flat":
        lp = np.zeros(beta.shape)
    else:
        lp = pri["beta"].logpdf(beta.values)
    group = idata["log_prior"].to_dataset()
    group = group.drop_vars("beta_z", errors="ignore")
    group["beta"] = beta.copy(data=lp)
    idata["log_prior"] = xr.DataTree(group)


# ---------------------------------------------------------------------- prediction
def _stack(post: xr.Dataset, name: str) -> np.ndarray:
    """(S, ...) draws of a posterior variable, chains and draws flattened."""
    da = post[name]
    return np.asarray(da.values).reshape((-1,) + da.shape[2:])


def _as_matrix(a, what: str) -> np.ndarray:
    arr = np.asarray(a.values if hasattr(a, "values") and not isinstance(a, np.ndarray) else a,
                     dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} has NaN or infinite values")
    return arr


def posterior_predictive(idata: xr.DataTree, model: pm.Model, *, K_new=None, K_new_diag=None,
                         X_new=None, Z_new=None, samples_new=None,
                         seed: int | np.random.Generator | None = None) -> xr.DataTree:
    """Posterior predictive draws for the training samples or for new samples.

    Training (no ``K_new`` / ``Z_new``): replicated phenotypes y_rep ~ p(y | theta) for each
    posterior draw theta -- for the marginal model a fresh g (N(X beta, V)), for models with
    g in the posterior (``random_effects``, ``marginal_grm(latent=True)``) y_rep = X beta + g
    + e -- stored in group ``posterior_predictive`` as ``y`` over ``sample``.

    New samples (notes 5.2.2): given the cross kernel K(new, train) and the diagonal of
    K(new, new), for each draw the conditional normal

        g_new | y, theta ~ N(sigma_g2 K21 V^-1 (y - X beta),
                             sigma_g2 k22 - sigma_g2^2 diag(K21 V^-1 K12)),

    computed in the eigenbasis (O(N2 r) per draw), then y_new = X_new beta + g_new + e. The
    draws are marginal per new sample (their joint covariance is not formed). Stored in
    group ``predictions`` as ``y`` and ``g`` over ``sample_new``.

    Parameters
    ----------
    idata : DataTree
        From :func:`sample` on ``model``.
    model : pymc.Model
        Built by :mod:`bayeslmm.models`.
    K_new : array_like, shape (N2, N)
        Kernel between new and training samples, columns in the training order.
    K_new_diag : array_like, shape (N2,)
        Diagonal of K(new, new) (for a GRM, 1 + inbreeding).
    X_new : array_like, shape (N2, M), optional
        Covariates of the new samples; default an intercept when the model has only one.
    Z_new : array_like, shape (N2, P)
        For ``random_effects``: genotypes of the new samples (then g_new = Z_new b).
    samples_new : sequence of str, optional
        Labels of the new samples.
    seed : int or Generator, optional

    Returns
    -------
    DataTree
        A copy of ``idata`` with the new group.
    """
    check_seed(seed)
    info = model_info(model)
    rng = np.random.default_rng(seed)
    post = idata["posterior"].to_dataset()
    C, D = post.sizes["chain"], post.sizes["draw"]
    beta = _stack(post, "beta")  # (S, M)
    S_ = beta.shape[0]
    se = _stack(post, "sigma_e2").reshape(S_)
    data = info.data
    out = idata.copy()
    new = K_new is not None or Z_new is not None
    if not new:
        mu = beta @ data.X.T
        if "g" in post:
            y = mu + _stack(post, "g") + np.sqrt(se)[:, None] * rng.standard_normal(mu.shape)
        elif info.kind == "fixed":
            y = mu + np.sqrt(se)[:, None] * rng.standard_normal(mu.shape)
        elif info.kind == "marginal":
            cov = SpectralCovariance(info.decomposition)
            sg = _stack(post, "sigma_g2").reshape(S_)
            y = mu + cov.draw(sg, se, rng)
        else:  # dense, several kernels: one Cholesky per draw
            cov = DenseCovariance(tuple(data.Ks))
            sg = _stack(post, "sigma_g2")
            y = mu + np.stack([cov.draw_one(np.append(sg[s], se[s]), rng) for s in range(S_)])
        ds = xr.Dataset({"y": (("chain", "draw", "sample"), y.reshape(C, D, data.N))},
                        coords={"chain": post.chain, "draw": post.draw,
                                "sample": list(data.samples)})
        out["posterior_predictive"] = xr.DataTree(ds)
        return out

    # ---- new samples
    if Z_new is not None:
        if info.kind != "random":
            raise InputError("Z_new is for random_effects models; give K_new and K_new_diag "
                             "for the marginal model")
        Zn = _as_matrix(Z_new, "Z_new")
        N2 = Zn.shape[0]
    else:
        if info.kind != "marginal":
            raise InputError("K_new prediction needs a one-kernel marginal_grm model")
        K21 = _as_matrix(K_new, "K_new")
        if K21.ndim != 2 or K21.shape[1] != data.N:
            raise InputError(f"K_new must be N_new x {data.N} (columns = training samples in "
                             f"the model's order), got shape {K21.shape}")
        N2 = K21.shape[0]
        if K_new_diag is None:
            raise InputError("K_new_diag (the diagonal of K(new, new)) is needed for the "
                             "predictive variance")
        k22 = _as_matrix(K_new_diag, "K_new_diag").reshape(-1)
        if k22.shape != (N2,):
            raise InputError(f"K_new_diag must have {N2} values")
    if X_new is None:
        if data.M != 1:
            raise InputError(f"X_new is needed: the model has {data.M} covariates")
        Xn = np.ones((N2, 1))
    else:
        Xn = _as_matrix(X_new, "X_new").reshape(N2, -1)
        if Xn.shape[1] != data.M:
            raise InputError(f"X_new has {Xn.shape[1]} columns, the model {data.M}")
    if Z_new is not None:
        g = _stack(post, "b") @ Zn.T
    else:
        cov = SpectralCovariance(info.decomposition)
        sg = _stack(post, "sigma_g2").reshape(S_)
        # E and Var of g_new | y, theta for every draw: sigma_g2 K21 V^-1 (y - X beta) and
        # sigma_g2 k22 - sigma_g2^2 diag(K21 V^-1 K12), batched in the eigenbasis.
        mean, quad = cov.cross_solve(K21, data.y, data.X, beta, sg, se)
        mean = sg[:, None] * mean
        var = np.clip(sg[:, None] * k22[None, :] - sg[:, None] ** 2 * quad, 0.0, None)
        g = mean + np.sqrt(var) * rng.standard_normal(var.shape)
    y = beta @ Xn.T + g + np.sqrt(se)[:, None] * rng.standard_normal(g.shape)
    labels = (list(map(str, samples_new)) if samples_new is not None
              else [f"new{i}" for i in range(N2)])
    ds = xr.Dataset({"y": (("chain", "draw", "sample_new"), y.reshape(C, D, N2)),
                     "g": (("chain", "draw", "sample_new"), g.reshape(C, D, N2))},
                    coords={"chain": post.chain, "draw": post.draw, "sample_new": labels})
    out["predictions"] = xr.DataTree(ds)
    return out
