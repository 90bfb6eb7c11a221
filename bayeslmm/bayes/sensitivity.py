"""Prior sensitivity of h2: refit the model over a list of priors and say what moves.

Two lines of evidence, reported together:

* **refits**: the one-kernel model is refitted under each prior (sharing one decomposition
  of K), and the spread of the posterior means of h2 across priors is measured in posterior
  SDs;
* **power scaling** (Kallioinen et al. 2024, ArviZ's ``psense``): for each fit, how much the
  posterior of h2 changes when the prior (or likelihood) is raised to a power near 1,
  estimated by importance sampling from the stored ``log_prior`` and ``log_likelihood``.
  Values above 0.05 indicate an informative prior. A flat prior cannot be detected this way
  (a power of a constant is a constant), which is why the refits are reported too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from bayeslmm.bayes.summaries import (
    credible_interval,
    interval_label,
    interval_prob,
    posterior_draws,
)
from bayeslmm.data import check_seed
from bayeslmm.errors import InputError

__all__ = ["Sensitivity", "prior_sensitivity"]

PSENSE_THRESHOLD = 0.05
SPREAD_THRESHOLD = 0.5  # posterior means further apart than half a posterior SD
# Posterior variance below half the prior's (SD ratio < 0.71): the data, not the prior,
# set the width of the posterior.
CONTRACTION_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class Sensitivity:
    """Result of :func:`prior_sensitivity`.

    Attributes
    ----------
    summary : xarray.Dataset
        Over dim ``prior`` (the labels): ``h2_mean``, ``h2_median``, ``h2_sd``,
        ``h2_hdi_lower``, ``h2_hdi_upper``, ``prior_h2_mean``, ``prior_h2_sd`` (the h2 prior
        implied by each spec), ``psense_prior`` and ``psense_likelihood`` (power-scaling
        sensitivity of h2; NaN for the quadrature method), ``contraction`` (1 - posterior
        variance / prior variance of h2), ``sigma_g2_mean``, ``sigma_e2_mean``,
        ``divergences``. Attributes: ``spread_sd`` (range of the posterior means of h2 over
        the median posterior SD), ``contraction`` (under the widest prior), ``triggers``
        (which of ``weak_data``, ``spread``, ``psense`` fired), ``prior_sensitive`` (0/1),
        ``verdict``.
    posteriors : dict
        Label -> the posterior (an ArviZ DataTree for NUTS, an xarray Dataset of the exact
        density for the quadrature method).
    """

    summary: xr.Dataset
    posteriors: dict[str, Any] = field(repr=False)
    h2_draws: dict[str, np.ndarray] = field(repr=False)
    prior_draws: dict[str, np.ndarray] = field(repr=False)
    reml_h2: float | None = None
    #: label -> the set's own prior on h2 (a Prior with ``logpdf``) where it puts one there,
    #: so that its exact density can be drawn; the other sets have only ``prior_draws``
    h2_priors: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def prior_sensitive(self) -> bool:
        return bool(self.summary.attrs["prior_sensitive"])

    @property
    def verdict(self) -> str:
        return str(self.summary.attrs["verdict"])

    def to_dataframe(self):
        return self.summary.to_dataframe()

    def __repr__(self) -> str:
        cols = ["h2_mean", "h2_sd", "h2_hdi_lower", "h2_hdi_upper", "prior_h2_mean",
                "prior_h2_sd", "contraction", "psense_prior"]
        return (f"Sensitivity\n{self.summary[cols].to_dataframe().to_string()}\n"
                f"{self.verdict}")


def _psense(idata, var: str, group: str, pieces: tuple | None = None) -> float:
    import arviz_stats

    if group == "likelihood" and pieces is not None:
        # The stored terms of the marginal model are leave-one-out densities, which do not
        # sum to log p(y | theta): power-scale the joint likelihood instead.
        from bayeslmm.bayes.loo import joint_loglik

        data, dec, fixed = pieces
        post = idata["posterior"]
        joint = joint_loglik(post.to_dataset(), data, dec, fixed).expand_dims(obs=1, axis=-1)
        idata = idata.copy()
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({"y": joint}))
    try:
        val = arviz_stats.psense(idata, var_names=[var], group=group)
    except (KeyError, ValueError) as exc:  # a fit without the stored group
        raise InputError(f"power-scaling needs the {group} group in the posterior: {exc}") \
            from None
    return float(np.max(np.asarray(val[var])))


def _verdict(labels, means, sds, prior_sds, psense_prior) -> tuple[float, bool, str, dict]:
    """The verdict and what triggered it (three tests, each a quantity that means what the
    words say):

    * **weak data**: posterior contraction 1 - sd_post^2 / sd_prior^2 (Schad, Betancourt &
      Vasishth 2021) under the widest prior tried is below ``CONTRACTION_THRESHOLD``: the
      posterior is close to the prior, the data do not pin h2 down;
    * **prior moves the estimate**: the posterior means across priors span more than
      ``SPREAD_THRESHOLD`` posterior SDs;
    * **power scaling** (ArviZ ``psense``) of the prior >= ``PSENSE_THRESHOLD`` for a prior.
    """
    contraction = 1.0 - (np.asarray(sds) / np.asarray(prior_sds)) ** 2
    widest = int(np.nanargmax(prior_sds))
    c_widest = float(contraction[widest])
    spread = float((np.max(means) - np.min(means)) / np.median(sds))
    flagged_ps = [lab for lab, p in zip(labels, psense_prior, strict=True)
                  if np.isfinite(p) and p >= PSENSE_THRESHOLD]
    triggers = {"weak_data": c_widest < CONTRACTION_THRESHOLD,
                "spread": spread > SPREAD_THRESHOLD, "psense": bool(flagged_ps)}
    sensitive = any(triggers.values())
    lo, hi = labels[int(np.argmin(means))], labels[int(np.argmax(means))]
    data = (f"contraction {c_widest:.2f} under the widest prior {labels[widest]!r} "
            f"(posterior SD {sds[widest]:.3f}, prior SD {prior_sds[widest]:.3f})")
    parts = []
    if triggers["weak_data"]:
        parts.append(f"h2 is prior-dominated: the data do not pin it down ({data} < "
                     f"{CONTRACTION_THRESHOLD})")
    elif triggers["spread"] or flagged_ps:
        parts.append(f"h2 is prior-influenced although the data inform it ({data})")
    else:
        parts.append(f"h2 is robust to these priors ({data})")
    move = (f"the posterior mean ranges from {np.min(means):.3f} (prior {lo!r}) to "
            f"{np.max(means):.3f} (prior {hi!r}), {spread:.2f} posterior SDs")
    parts.append(move + (f" > {SPREAD_THRESHOLD}" if triggers["spread"] else
                         f" <= {SPREAD_THRESHOLD}"))
    if flagged_ps:
        parts.append("power-scaling flags the prior as informative (psense >= "
                     f"{PSENSE_THRESHOLD}) for " + ", ".join(repr(f) for f in flagged_ps))
    elif np.any(np.isfinite(psense_prior)):
        parts.append(f"power-scaling finds no prior informative (all psense < "
                     f"{PSENSE_THRESHOLD})")
    fired = [k for k, v in triggers.items() if v]
    parts.append("triggered by: " + (", ".join(fired) if fired else "none"))
    return spread, sensitive, "; ".join(parts) + ".", {
        "contraction": c_widest, "triggers": ",".join(fired)}


def implied_h2_total_prior(spec, k: int, *, y, n: int = 4000, seed=None) -> np.ndarray:
    """Draws of h2_total = sum_j sigma_j / (sum_j sigma_j + sigma_e2) implied by independent
    priors on k components (``sigma_g2``, each) and ``sigma_e2``; NaN for improper priors."""
    from bayeslmm.bayes.priors import default_priors

    pri = default_priors(spec, np.asarray(y, dtype=float), None, kind="lmm-variances")
    if not (pri["sigma_g2"].proper and pri["sigma_e2"].proper):
        return np.full(n, np.nan)
    rng = np.random.default_rng(seed)
    sg = pri["sigma_g2"].rvs(n * k, rng).reshape(n, k).sum(axis=1)
    se = pri["sigma_e2"].rvs(n, rng)
    return sg / (sg + se)


def prior_sensitivity(y, K=None, X=None, priors: Mapping[str, Mapping[str, Any]] | None = None, *,
                      method: str = "nuts", draws: int = 1000, tune: int = 1000,
                      chains: int = 4, seed: int | None = None, sampler: str = "nutpie",
                      progressbar: bool = True, hdi_prob: float | None = None,
                      n_prior_draws: int = 4000) -> Sensitivity:
    """Refit the one-kernel model under each prior and summarise how h2 responds.

    Parameters
    ----------
    y : array_like, shape (N,), or VarianceComponentFit
        The phenotype, or a REML fit: ``prior_sensitivity(fit, priors=...)`` reuses its data
        and decomposition (then give neither K nor X).
    K : array_like (N, N), Decomposition, list of kernels or VarianceComponentFit
        The kernel; it is decomposed once and shared by every refit (a REML fit's
        decomposition is reused as is; y must then be the fit's phenotype). With several
        kernels (a list, or a several-kernel fit) the rows summarise h2_total (priors:
        ``sigma_g2`` for every component and ``sigma_e2``).
    X : array_like, optional
        Covariates, default an intercept.
    priors : dict
        Label -> prior spec (see :mod:`bayeslmm.bayes.priors`), e.g.
        ``{"flat": {"h2": "Beta(1, 1)"}, "IG(eps)": {"sigma_g2": "InverseGamma(0.001, 0.001)",
        "sigma_e2": "InverseGamma(0.001, 0.001)"}}``.
    method : {"nuts", "quadrature"}
        Sample each posterior with NUTS (with power-scaling diagnostics), or compute the exact
        posterior of h2 on a grid (fast; beta flat, no power scaling).
    draws, tune, chains, seed, sampler, progressbar
        Passed to :func:`bayeslmm.sample` for each prior (seeded per prior from ``seed``).
    hdi_prob : float
    n_prior_draws : int
        Draws of each implied h2 prior (for its summary and the figure).

    Returns
    -------
    Sensitivity
    """
    from bayeslmm.bayes.model_info import model_info
    from bayeslmm.bayes.models.marginal import marginal_grm
    from bayeslmm.bayes.priors import default_priors, implied_h2_prior
    from bayeslmm.bayes.quadrature import posterior_h2_quadrature
    from bayeslmm.bayes.sampling import sample
    from bayeslmm.estimation.reml import VarianceComponentFit, reml

    if not priors:
        raise InputError("give at least one prior, e.g. priors={'flat': {'h2': 'Beta(1, 1)'}}")
    if method not in ("nuts", "quadrature"):
        raise InputError(f"method must be 'nuts' or 'quadrature', got {method!r}")
    check_seed(seed)
    if isinstance(y, VarianceComponentFit):
        if K is not None or X is not None:
            raise InputError("prior_sensitivity(fit, priors=...) takes the data from the fit; "
                             "do not also give K or X")
        fit = y
    elif isinstance(K, VarianceComponentFit):
        fit = K
        n_y = np.size(y) if y is not None else fit.N
        if n_y != fit.N:
            raise InputError(f"y has {n_y} values but the fit was made on {fit.N} samples; "
                             "give the fit alone: prior_sensitivity(fit, priors=...)")
        if y is not None and not np.allclose(np.asarray(getattr(y, "values", y), dtype=float),
                                             fit.data.y, equal_nan=True):
            raise InputError("y differs from the phenotype the fit was made on; give the fit "
                             "alone: prior_sensitivity(fit, priors=...)")
    elif K is None:
        raise InputError("give a kernel K (or a REML fit) with y")
    else:
        fit = reml(y, K, X)
    # Several kernels: the summaries are of h2_total, each refit samples through the
    # several-kernel route (bayeslmm.bayes.models.multikernel).
    several = fit.decomposition is None
    if several and method == "quadrature":
        raise InputError("method='quadrature' is for one kernel; with several kernels use "
                         "method='nuts' (sampled by the several-kernel route: a checked grid "
                         "or importance sampling)")
    dec = fit.decomposition if not several else list(fit.data.Ks)
    kw = {"component_names": list(fit.components)} if several else {}
    h2_name = "h2_total" if several else "h2"
    seeds = np.random.SeedSequence(seed).spawn(len(priors))
    labels = list(priors)
    rows: dict[str, list[float]] = {k: [] for k in (
        "h2_mean", "h2_median", "h2_sd", "h2_hdi_lower", "h2_hdi_upper", "prior_h2_mean",
        "prior_h2_sd", "psense_prior", "psense_likelihood", "sigma_g2_mean", "sigma_e2_mean",
        "divergences")}
    posteriors, h2_draws, prior_draws, h2_priors = {}, {}, {}, {}
    for label, ss in zip(labels, seeds, strict=True):
        spec = dict(priors[label])
        s = int(ss.generate_state(1)[0])
        pd_h2 = (implied_h2_total_prior(spec, fit.k, y=fit.data.y, n=n_prior_draws, seed=s)
                 if several else implied_h2_prior(spec, y=fit.data.y, n=n_prior_draws, seed=s))
        prior_draws[label] = pd_h2
        if not several:
            resolved = default_priors(spec, fit.data.y, None)
            if resolved.parameterisation == "h2":
                h2_priors[label] = resolved["h2"]
        rows["prior_h2_mean"].append(float(np.nanmean(pd_h2)))
        rows["prior_h2_sd"].append(float(np.nanstd(pd_h2)))
        if method == "quadrature":
            spec.setdefault("beta", "Flat()")
            q = posterior_h2_quadrature(fit, priors=spec, prob=interval_prob(hdi_prob))
            posteriors[label] = q
            # Exact draws from the grid density, for the same summaries as NUTS.
            rng = np.random.default_rng(s)
            w = q["density"].values * np.gradient(q["h2"].values)
            draws_h2 = rng.choice(q["h2"].values, size=20_000, p=w / w.sum())
            h2_draws[label] = draws_h2
            rows["h2_mean"].append(float(q["mean"]))
            rows["h2_sd"].append(float(q["sd"]))
            rows["h2_median"].append(float(np.median(draws_h2)))
            rows["h2_hdi_lower"].append(float(q["hdi"].sel(bound="lower")))
            rows["h2_hdi_upper"].append(float(q["hdi"].sel(bound="upper")))
            for k in ("psense_prior", "psense_likelihood", "sigma_g2_mean", "sigma_e2_mean",
                      "divergences"):
                rows[k].append(np.nan)
            continue
        data_y = fit.data.y
        Xd = fit.data.X
        model = marginal_grm(data_y, dec, Xd, priors=spec, **kw)
        # Several kernels: likelihood power scaling reads the stored (per-draw) totals; one
        # kernel: the joint is computed from the decomposition (_psense), nothing stored.
        idata = sample(model, draws=draws, tune=tune, chains=chains, seed=s, sampler=sampler,
                       progressbar=progressbar, log_likelihood=several)
        posteriors[label] = idata
        info = model_info(model)
        h2 = posterior_draws(idata, h2_name)
        h2_draws[label] = h2
        lo, hi = credible_interval(h2, hdi_prob)
        rows["h2_mean"].append(float(h2.mean()))
        rows["h2_median"].append(float(np.median(h2)))
        rows["h2_sd"].append(float(h2.std(ddof=1)))
        rows["h2_hdi_lower"].append(lo)
        rows["h2_hdi_upper"].append(hi)
        rows["psense_prior"].append(_psense(idata, h2_name, "prior"))
        rows["psense_likelihood"].append(
            _psense(idata, h2_name, "likelihood") if several else
            _psense(idata, "h2", "likelihood", pieces=(info.data, info.decomposition, info.fixed)))
        rows["sigma_g2_mean"].append(float(posterior_draws(idata, "sigma_g2").sum(axis=-1).mean()
                                           if several else
                                           posterior_draws(idata, "sigma_g2").mean()))
        rows["sigma_e2_mean"].append(float(posterior_draws(idata, "sigma_e2").mean()))
        div = idata["sample_stats"]["diverging"].values if "diverging" in \
            idata["sample_stats"] else np.zeros(1)
        rows["divergences"].append(float(np.sum(div)))
    spread, sensitive, verdict, extra = _verdict(labels, np.array(rows["h2_mean"]),
                                                 np.array(rows["h2_sd"]),
                                                 np.array(rows["prior_h2_sd"]),
                                                 np.array(rows["psense_prior"]))
    rows["contraction"] = list(1.0 - (np.array(rows["h2_sd"])
                                      / np.array(rows["prior_h2_sd"])) ** 2)
    summary = xr.Dataset(
        {k: ("prior", np.asarray(v, dtype=float)) for k, v in rows.items()},
        coords={"prior": labels,
                "spec": ("prior", [", ".join(f"{k}={v}" for k, v in priors[lab].items())
                                   for lab in labels])},
        attrs={"spread_sd": spread, "prior_sensitive": int(sensitive), "verdict": verdict,
               "method": method, "hdi_prob": interval_prob(hdi_prob),
               "interval": interval_label(hdi_prob), "N": fit.N,
               "reml_h2": fit.h2_total if several else fit.h2,
               "psense_threshold": PSENSE_THRESHOLD, "spread_threshold": SPREAD_THRESHOLD,
               "contraction_threshold": CONTRACTION_THRESHOLD, **extra})
    return Sensitivity(summary=summary, posteriors=posteriors, h2_draws=h2_draws,
                       prior_draws=prior_draws, h2_priors=h2_priors,
                       reml_h2=float(fit.h2_total if several else fit.h2))
