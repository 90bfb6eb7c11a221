"""Empirical Bayes (REML plug-in) against the full posterior, side by side.

The REML answer for h2 is a point, a delta-method SE and a profile-likelihood interval
(notes 4.3); the full posterior integrates over sigma_g2 and sigma_e2 instead of plugging in
their estimates. With many samples the two agree (Bernstein-von Mises); with few, the
posterior is wider and, near the boundary, pulled away from it. This module puts the two
next to each other as a table and a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.bayes.summaries import (
    credible_interval,
    interval_label,
    interval_prob,
    posterior_draws,
)
from bayeslmm.blup import blup as blup_of
from bayeslmm.covariance.structures import Covariates
from bayeslmm.errors import InputError

__all__ = ["Comparison", "compare", "compare_liability"]

@dataclass(frozen=True, eq=False)
class Comparison:
    """REML against the posterior.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity (``h2``, ``sigma_g2``, ``sigma_e2``, ``Vp``, ``beta[name]``), with
        the REML estimate, SE and interval (profile likelihood for h2, Wald otherwise) next to
        the posterior mean, median, SD and HDI, and ``shift_sd`` = (posterior mean - REML) /
        posterior SD.
    genetic_values : pandas.Series or None
        BLUP against the posterior mean of the genetic values g: correlation, shrinkage slope
        (regression of posterior mean on BLUP) and the largest absolute difference.
    """

    table: pd.DataFrame
    genetic_values: pd.Series | None
    hdi_prob: float
    h2_draws: np.ndarray = field(repr=False)
    reml_h2: float = 0.0
    reml_h2_ci: tuple[float, float] | None = None
    quadrature: xr.Dataset | None = field(default=None, repr=False)
    #: how the figure names the REML estimate and its interval
    reml_label: str = "REML"
    reml_ci_label: str = "REML 95% profile CI"

    def agreement(self, quantity: str = "h2") -> str:
        """A sentence on how far the posterior mean lies from the REML estimate."""
        shift = float(self.table.loc[quantity, "shift_sd"])
        size = "agree" if abs(shift) < 0.2 else ("differ slightly" if abs(shift) < 1 else
                                                   "differ")
        side = "above" if shift > 0 else "below"
        return (f"REML and the posterior {size} on {quantity}: the posterior mean lies "
                f"{abs(shift):.2f} posterior SDs {side} the REML estimate.")

    def __repr__(self) -> str:
        return (f"Comparison (posterior: {interval_label(self.hdi_prob)})\n"
                f"{self.table.to_string()}\n{self.agreement()}")


def _check_compare_inputs(fit, posterior) -> None:
    """Types, and that the posterior was sampled on the fit's data (its observed values)."""
    from bayeslmm.estimation.reml import VarianceComponentFit

    if not isinstance(fit, VarianceComponentFit):
        raise InputError(f"compare() needs a REML/ML fit (bayeslmm.reml) first, got "
                         f"{type(fit).__name__}")
    if not isinstance(posterior, xr.DataTree | xr.Dataset):
        raise InputError(f"compare() needs the posterior DataTree of bayeslmm.sample, got "
                         f"{type(posterior).__name__}")
    tree = posterior if isinstance(posterior, xr.DataTree) else None
    post = tree["posterior"] if tree is not None and "posterior" in tree.children else posterior
    if "h2" not in post.data_vars:
        raise InputError("the posterior has no 'h2' draws; give the result of "
                         "bayeslmm.sample on a bayeslmm model")
    if tree is None or "observed_data" not in tree.children:
        return
    obs = tree["observed_data"]
    if "y" in obs.data_vars:
        mine, theirs = fit.data.y, obs["y"].to_numpy().ravel()
    elif "y_rot" in obs.data_vars and fit.decomposition is not None:
        # U'y_r (y less its least-squares fit on X, as the model stores it), up to the sign
        # of each eigenvector: compare the sorted absolute values.
        y_r = Covariates.of(fit.data.X).residualize(fit.data.y)
        mine = np.abs(fit.decomposition.U.T @ y_r)
        theirs = np.abs(obs["y_rot"].to_numpy().ravel())
    else:
        return
    if mine.shape != theirs.shape or not np.allclose(np.sort(mine), np.sort(theirs),
                                                     rtol=1e-6, atol=1e-9 * np.abs(mine).max()):
        raise InputError(f"the posterior was sampled on other data than the fit ({theirs.size} "
                         f"observed values vs the fit's {mine.size}, or different values); "
                         "sample the model of the same y, K and X")


def compare(fit, posterior: xr.DataTree, *, hdi_prob: float | None = None,
            quadrature: xr.Dataset | None = None,
            prevalence: float | None = None) -> Comparison:
    """Compare a REML fit (empirical Bayes) with a full posterior of the same model.

    Parameters
    ----------
    fit : VarianceComponentFit
        From :func:`bayeslmm.reml` (one kernel or several).
    posterior : xarray.DataTree
        From :func:`bayeslmm.sample` on a model of the same data (``h2``, ``sigma_g2``,
        ``sigma_e2``, ``Vp``, ``beta`` and optionally ``g``).
    hdi_prob : float
        Mass of the highest-density intervals.
    quadrature : xarray.Dataset, optional
        The exact posterior of h2 (:func:`bayeslmm.posterior_h2_quadrature`), drawn in the
        figure when given.
    prevalence : float, optional
        K, required for the posterior of the threshold model
        (:func:`bayeslmm.bayes.models.threshold.threshold`), whose h2 is on the liability scale:
        the REML estimate of the 0/1 trait is then transformed to that scale (Lee et al.
        2011, eq. 23, with the fit's case proportion) and compared with it, Wald interval.

    Returns
    -------
    Comparison
    """
    _check_compare_inputs(fit, posterior)
    post = posterior
    if isinstance(post, xr.DataTree) and "posterior" in post.children:
        post = post["posterior"]
    if post.attrs.get("model_kind") == "threshold":
        return _compare_liability_scale(fit, post, prevalence, hdi_prob)
    if prevalence is not None:
        raise InputError("prevalence= is for the posterior of the threshold model; the linear "
                         "model's posterior gets h2 on the liability scale from "
                         "bayeslmm.estimation.liability.liability_posterior")
    rows = []
    z = 1.959963984540054
    ci_h2 = None
    if fit.k == 1:  # several kernels: per-component Wald intervals below
        ci_h2 = fit.h2_ci if fit.h2_ci is not None else (
            max(fit.h2 - z * fit.h2_se, 0.0), min(fit.h2 + z * fit.h2_se, 1.0))

    def add(name, est, se, ci, draws, ci_kind):
        lo, hi = credible_interval(draws, hdi_prob)
        mean, sd = float(np.mean(draws)), float(np.std(draws, ddof=1))
        rows.append({"quantity": name, "reml": est, "reml_se": se, "reml_lower": ci[0],
                     "reml_upper": ci[1], "reml_interval": ci_kind,
                     "post_interval": interval_label(hdi_prob), "post_mean": mean,
                     "post_median": float(np.median(draws)), "post_sd": sd, "hdi_lower": lo,
                     "hdi_upper": hi, "shift_sd": (mean - est) / sd if sd > 0 else np.nan})

    def wald(est, se):
        return (est - z * se, est + z * se)

    if fit.k == 1:
        add("h2", fit.h2, fit.h2_se, ci_h2, posterior_draws(post, "h2"),
            "profile" if fit.h2_ci is not None else "Wald")
        add("sigma_g2", fit.sigma_g2, fit.sigma_g2_se, wald(fit.sigma_g2, fit.sigma_g2_se),
            posterior_draws(post, "sigma_g2"), "Wald")
    else:
        h2d = posterior_draws(post, "h2")
        sgd = posterior_draws(post, "sigma_g2")
        for j, c in enumerate(fit.components):
            add(f"h2[{c}]", fit.h2[j], fit.h2_se[j], wald(fit.h2[j], fit.h2_se[j]), h2d[:, j],
                "Wald")
            add(f"sigma_g2[{c}]", fit.sigma_g2[j], fit.sigma_g2_se[j],
                wald(fit.sigma_g2[j], fit.sigma_g2_se[j]), sgd[:, j], "Wald")
        add("h2_total", fit.h2_total, fit.h2_total_se, wald(fit.h2_total, fit.h2_total_se),
            h2d.reshape(len(h2d), -1).sum(axis=1), "Wald")
    add("sigma_e2", fit.sigma_e2, fit.sigma_e2_se, wald(fit.sigma_e2, fit.sigma_e2_se),
        posterior_draws(post, "sigma_e2"), "Wald")
    add("Vp", fit.Vp, fit.Vp_se, wald(fit.Vp, fit.Vp_se), posterior_draws(post, "Vp"), "Wald")
    beta_draws = posterior_draws(post, "beta")
    if beta_draws.ndim == 1:
        beta_draws = beta_draws[:, None]
    for j, name in enumerate(fit.beta.index):
        se = float(fit.beta_se.iloc[j])
        est = float(fit.beta.iloc[j])
        add(f"beta[{name}]", est, se, wald(est, se), beta_draws[:, j], "Wald")
    table = pd.DataFrame(rows).set_index("quantity")

    genetic = None
    post_ds = post.to_dataset() if isinstance(post, xr.DataTree) else post
    if "g" in post_ds:
        g_mean = posterior_draws(post, "g").mean(axis=0)
        blup = np.asarray(blup_of(fit)["g"].values)
        if blup.ndim > 1:  # several kernels: compare the total genetic value
            blup = blup.sum(axis=tuple(range(1, blup.ndim)))
        slope = float(np.polyfit(blup, g_mean, 1)[0])
        genetic = pd.Series({"correlation": float(np.corrcoef(blup, g_mean)[0, 1]),
                             "slope": slope,
                             "max_abs_difference": float(np.max(np.abs(blup - g_mean)))},
                            name="posterior mean of g vs BLUP")
    h2_draws = posterior_draws(post, "h2")
    if h2_draws.ndim > 1:
        h2_draws = h2_draws.sum(axis=1)
    return Comparison(table=table, genetic_values=genetic, hdi_prob=interval_prob(hdi_prob),
                      h2_draws=h2_draws, reml_h2=float(np.sum(fit.h2)),
                      reml_h2_ci=ci_h2 if fit.k == 1 else None, quadrature=quadrature)


def compare_liability(fit, idata: xr.DataTree, prevalence: float, *,
                      case_proportion: float | None = None, prob: float | None = None,
                      true_h2: float | None = None) -> pd.DataFrame:
    """The REML estimate transformed to the liability scale next to the threshold posterior,
    as two rows (the h2 row of :func:`compare` with ``prevalence``, laid out per method).

    Parameters
    ----------
    fit : VarianceComponentFit
        REML fit of the linear model to the same 0/1 trait.
    idata : DataTree
        Posterior of :func:`bayeslmm.bayes.models.threshold.threshold` (h2 on the liability scale).
    prevalence : float
        K for the transformation (Lee et al. 2011,
        :func:`bayeslmm.estimation.liability.liability_h2`).
    case_proportion : float, optional
        P for the transformation; by default the fit's proportion of cases.
    prob : float, optional
        Probability of the intervals; the posterior interval's kind (HDI or equal-tailed) is
        the package's convention (:func:`bayeslmm.bayes.summaries.set_interval`), the REML row's
        is Wald (estimate -/+ z SE). Both are named in the column ``interval``.

    Returns
    -------
    pandas.DataFrame
        Rows ``REML (Lee transform)`` and ``threshold posterior``; columns ``h2``
        (estimate / posterior mean), ``se`` (SE / posterior SD), ``lower``, ``upper``,
        ``interval`` and, with ``true_h2``, ``error``.
    """
    _check_compare_inputs(fit, idata)
    r = _compare_liability_scale(fit, idata, prevalence, prob, case_proportion).table.loc["h2"]
    df = pd.DataFrame(
        [{"h2": r.reml, "se": r.reml_se, "lower": r.reml_lower, "upper": r.reml_upper,
          "interval": f"{interval_prob(prob):.0%} Wald"},
         {"h2": r.post_mean, "se": r.post_sd, "lower": r.hdi_lower, "upper": r.hdi_upper,
          "interval": r.post_interval}],
        index=["REML (Lee transform)", "threshold posterior"])
    if true_h2 is not None:
        df["error"] = df["h2"] - true_h2
    return df


def _compare_liability_scale(fit, post, prevalence: float | None, hdi_prob: float | None,
                             case_proportion: float | None = None) -> Comparison:
    """The threshold model's h2 (liability scale) against the REML estimate transformed to
    it (Lee et al. 2011), in :func:`compare`'s table layout."""
    from bayeslmm.estimation.liability import liability_h2

    if prevalence is None:
        raise InputError("this is a posterior of the threshold model, whose h2 is on the "
                         "liability scale: give prevalence=K (--prevalence) so that the REML "
                         "estimate of the 0/1 trait is transformed to that scale")
    if fit.k != 1:
        raise InputError("the threshold model has one kernel; compare it with a one-kernel "
                         "REML fit")
    lia = liability_h2(fit, prevalence, case_proportion)
    draws = posterior_draws(post, "h2")
    p = interval_prob(hdi_prob)
    ci = tuple(float(b) for b in lia.conf_int(alpha=1 - p).loc["h2"])
    lo, hi = credible_interval(draws, p)
    mean, sd = float(np.mean(draws)), float(np.std(draws, ddof=1))
    table = pd.DataFrame([{
        "quantity": "h2", "reml": float(lia.h2), "reml_se": float(lia.h2_se),
        "reml_lower": ci[0], "reml_upper": ci[1], "reml_interval": "Wald (Lee transform)",
        "post_interval": interval_label(p), "post_mean": mean,
        "post_median": float(np.median(draws)), "post_sd": sd, "hdi_lower": lo,
        "hdi_upper": hi, "shift_sd": (mean - float(lia.h2)) / sd if sd > 0 else np.nan,
    }]).set_index("quantity")
    return Comparison(table=table, genetic_values=None, hdi_prob=p, h2_draws=draws,
                      reml_h2=float(lia.h2), reml_h2_ci=ci,
                      reml_label=f"REML, Lee transform (K = {prevalence:g})",
                      reml_ci_label=f"REML {p:.0%} Wald CI")
