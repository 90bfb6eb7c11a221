"""The posterior of a fitted mixed model in one call: build the family's model, sample it,
check it, and carry it to the scale asked for.

What the command line's ``sample``, ``compare`` and ``demo`` do after REML, for a Python user
too: :func:`posterior_of_fit` builds the model of the registered family (``linear``: the
marginal model of :func:`~bayeslmm.bayes.models.marginal.marginal_grm`, one kernel or several;
``threshold``: the liability-threshold model; ``multitrait``: two traits with LKJ priors) on
the fit's own decomposition (no second eigendecomposition), samples it with
:func:`~bayeslmm.bayes.sampling.sample`, and, with a prevalence K, puts the linear model's h2
on the liability scale draw by draw (Lee et al. 2011) or checks the threshold model's case
proportion by posterior prediction. Every step is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from bayeslmm.bayes import models  # noqa: F401  (the families attach their builders)
from bayeslmm.bayes.model_info import model_info
from bayeslmm.bayes.sampling import sample
from bayeslmm.errors import InputError
from bayeslmm.estimation.liability import case_proportion_of, liability_posterior
from bayeslmm.registry import model_family

__all__ = ["PosteriorRun", "check_priors", "log_priors", "posterior_of_fit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PosteriorRun:
    """A sampled posterior and what it was sampled from.

    Attributes
    ----------
    idata : xarray.DataTree
        From :func:`~bayeslmm.bayes.sampling.sample` (with ``h2_liability`` for a linear model
        given a prevalence, and the group ``posterior_predictive`` for the threshold model).
    model : pymc.Model
    family : str
        The registered family that built it.
    h2_prior : Prior or None
        The prior of h2 as used (for figures), None when h2 has no prior of its own.
    """

    idata: xr.DataTree
    model: Any
    family: str
    h2_prior: Any = None

    @property
    def liability_scale(self) -> bool:
        """True when the posterior's h2 is on the liability scale (the threshold model)."""
        return self.family == "threshold"


def check_priors(priors: Mapping[str, Any], model: str = "linear") -> None:
    """Refuse a prior the model family does not have, or a specification that does not
    parse, before any work (the multi-trait model checks its own when it is built)."""
    from bayeslmm.bayes.priors import parse_prior, parse_priors

    if model == "threshold":
        from bayeslmm.bayes.models.threshold import PRIOR_NAMES

        bad = sorted(set(priors) - set(PRIOR_NAMES))
        if bad:
            raise InputError(f"--prior {bad[0]}: the threshold model has priors on "
                             f"{', '.join(PRIOR_NAMES)}")
        for spec in priors.values():
            parse_prior(spec)
    elif model in ("bayesc", "bayesr", "bslmm"):  # conjugate or GEMMA's priors (spec.py)
        from bayeslmm.bayes.sparse.spec import sparse_prior_kwargs

        sparse_prior_kwargs(priors, model)
    elif model != "multitrait":
        parse_priors(priors)


def log_priors(info) -> None:
    """Log, once per run, the family's default priors (the table of
    :data:`~bayeslmm.bayes.priors.DEFAULT_PRIORS`) and the priors as used."""
    from bayeslmm.bayes.priors import default_prior_table
    from bayeslmm.bayes.sampling import priors_as_used
    from bayeslmm.registry import family_for_kind

    name = family_for_kind(info.kind).name
    log.info("Default priors of the %s model (docs/priors.md): %s", name,
             "; ".join(f"{k} ~ {v}" for k, v in default_prior_table(name).items()))
    log.info("Priors as used: %s", "; ".join(f"{k} ~ {v}"
                                            for k, v in priors_as_used(info).items()))


def _log_sampling(idata: xr.DataTree, chains: int, draws: int) -> None:
    post = idata["posterior"]
    log.info("Sampled %d chains x %d draws (%s) in %.1f s (max R-hat %.3f, min bulk ESS "
             "%.0f, %d divergences).", chains, draws, post.attrs.get("sampler", "NUTS"),
             post.attrs.get("wall_time_s", 0),
             post.attrs.get("max_rhat", np.nan), post.attrs.get("min_ess_bulk", np.nan),
             post.attrs.get("n_divergences", 0))


def posterior_of_fit(fit, y, X=None, *, K=None, model: str = "linear",
                     priors: Mapping[str, Any] | None = None, prevalence: float | None = None,
                     link: str = "probit", component_names: Sequence[str] | None = None,
                     draws: int = 1000, tune: int = 1000, chains: int = 4,
                     seed: int | None = None, progressbar: bool = True,
                     cores: int | None = None, lkj_eta: float = 1.0) -> PosteriorRun:
    """Sample the posterior of the model family ``model`` on the data a fit was made on.

    Parameters
    ----------
    fit : VarianceComponentFit or MultiTraitFit
        REML/ML fit of the same data; its decomposition is reused (one kernel).
    y : pandas.Series or DataFrame
        The phenotype(s) the fit used (a DataFrame of two traits for ``multitrait``).
    X : pandas.DataFrame, optional
        The covariates.
    K : kernel or list of kernels, optional
        Used when the fit holds no decomposition (several kernels).
    model : {"linear", "threshold", "multitrait"}
        The registered family (:mod:`bayeslmm.registry`).
    priors : mapping, optional
        Priors by parameter name (:mod:`bayeslmm.bayes.priors`).
    prevalence : float, optional
        K: with ``linear``, adds ``h2_liability`` (the draws transformed); with
        ``threshold``, places the threshold.
    link : {"probit", "logit"}
        The threshold model's link.
    draws, tune, chains, seed, progressbar, cores
        Passed to :func:`~bayeslmm.bayes.sampling.sample`.
    lkj_eta : float
        ``multitrait``: the LKJ shape of the r_g and r_e priors.

    Returns
    -------
    PosteriorRun
    """
    family = model_family(model)
    if model in ("bayesc", "bayesr", "bslmm"):  # their samplers take the genotypes themselves
        raise InputError(f"--model {model} samples SNP effects from the genotypes, not a GRM "
                         f"posterior beside a fit: run 'bayeslmm sample --model {model}'")
    priors = dict(priors or {})
    if model == "multitrait":
        m = family.build(y, fit.model.dec, X, priors=priors, eta=lkj_eta)
        h2_prior = model_info(m).h2_prior
    else:
        Kf = fit.decomposition if getattr(fit, "decomposition", None) is not None else K
        if model == "threshold":
            if isinstance(Kf, list):
                raise InputError("the threshold model takes one GRM")
            m = family.build(y, Kf, X, prevalence=prevalence, link=link, priors=priors,
                             store_g=False)
            log.info("Threshold (%s) model, liability h2; %s.", link,
                     f"threshold from the prevalence K = {prevalence:g}"
                     if prevalence is not None
                     else "free intercept (the sample taken as the population)")
            h2_prior = model_info(m).priors.get("h2")
        else:
            kw = {"component_names": list(component_names)} if isinstance(Kf, list) \
                and component_names is not None else {}
            m = family.build(y, Kf, X, priors=priors, **kw)
            h2_prior = model_info(m).priors.priors.get("h2")
    log_priors(model_info(m))
    idata = sample(m, draws=draws, tune=tune, chains=chains, seed=seed,
                   progressbar=progressbar, cores=cores)
    if prevalence is not None and model == "linear":
        idata = liability_posterior(idata, prevalence, case_proportion_of(y))
        log.info("h2_liability: the posterior of h2 transformed draw by draw (Lee et al. "
                 "2011, K = %g).", prevalence)
    if model == "threshold":
        from bayeslmm.bayes.models.threshold import posterior_predictive_cases

        pp = posterior_predictive_cases(idata, m, seed=seed)["posterior_predictive"]
        log.info("Posterior predictive check: case proportion %.4f observed, %.4f replicated "
                 "(posterior predictive p = %.3f).", pp.attrs["observed_case_proportion"],
                 float(pp["case_proportion"].mean()), pp.attrs["ppp_case_proportion"])
    _log_sampling(idata, chains, draws)
    return PosteriorRun(idata=idata, model=m, family=model, h2_prior=h2_prior)
