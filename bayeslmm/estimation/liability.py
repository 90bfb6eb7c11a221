"""Heritability of a case-control trait, from the observed 0/1 scale to the liability scale.

A linear mixed model fitted to a 0/1 phenotype estimates h2 on the *observed* scale, h2_o,
which depends on the case proportion P of the sample. Under the liability-threshold model
(a normal liability, a case when it exceeds the threshold t = Phi^-1(1 - K) of a population
with prevalence K) Lee, Wray, Goddard & Visscher (2011, AJHG 88:294, eq. 23) give the
liability-scale heritability of an ascertained case-control sample as

    h2_l = h2_o * K^2 (1 - K)^2 / (z^2 P (1 - P)),     z = phi(Phi^-1(1 - K)),

phi the standard normal density. GCTA applies exactly this with ``--prevalence K`` (P the
case proportion of the analysed samples) and scales the standard error by the same factor,
reporting the row ``V(G)/Vp_L`` of the ``.hsq`` file; :func:`liability_h2` reproduces it
for a REML fit, :func:`liability_posterior` applies it draw by draw to a posterior of the
linear model. The transformation is a first-order (small-effect) approximation: it is known
to fail for large h2_l with small K and in small samples, which is what the threshold
model (:mod:`bayeslmm.bayes.models.threshold`) avoids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayeslmm.binary import check_fraction
from bayeslmm.errors import InputError
from bayeslmm.estimation.results import Results
from bayeslmm.likelihood import tails

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["LiabilityH2", "case_proportion_of", "liability_factor", "liability_h2",
           "liability_posterior", "observed_to_liability"]


def liability_factor(prevalence: float, case_proportion: float) -> float:
    """The factor C of h2_l = C h2_o (Lee et al. 2011, eq. 23; GCTA's ``transform_hsq_L``).

    C = K^2 (1 - K)^2 / (z^2 P (1 - P)) with z = phi(Phi^-1(1 - K)).

    Parameters
    ----------
    prevalence : float
        K, the disease prevalence in the population (from the literature, not the sample).
    case_proportion : float
        P, the proportion of cases among the analysed samples.
    """
    K = check_fraction(prevalence, "the prevalence K")
    P = check_fraction(case_proportion, "the case proportion P")
    # In logs: K^2 and z^2 both underflow for K below ~1e-160 (0 / 0 = NaN), while their
    # ratio stays near 1 / t^2 (Mills' ratio, t = Phi^-1(1 - K)).
    log_z = tails.norm_logpdf(tails.norm_isf(K))
    log_c = 2.0 * (np.log(K) + np.log1p(-K) - log_z) - np.log(P) - np.log1p(-P)
    C = float(np.exp(log_c))
    if not np.isfinite(C) or C <= 0:
        raise InputError(f"the liability-scale factor is not finite for prevalence K = {K:g} "
                         f"and case proportion P = {P:g}")
    return C


def observed_to_liability(h2_observed, prevalence: float, case_proportion: float):
    """h2 on the liability scale from h2 on the observed 0/1 scale (array-friendly)."""
    return np.asarray(h2_observed) * liability_factor(prevalence, case_proportion)


def case_proportion_of(y) -> float:
    """P for a phenotype coded strictly 0/1 or 1/2 (no missing codes left)."""
    arr = np.asarray(y, dtype=np.float64).reshape(-1)
    vals = set(np.unique(arr).tolist())
    if vals == {0.0, 1.0}:
        return float(arr.mean())
    if vals == {1.0, 2.0}:
        return float(arr.mean() - 1.0)
    shown = ", ".join(f"{v:g}" for v in sorted(vals)[:6])
    raise InputError(f"the fitted phenotype is not a case-control trait (values {shown}); "
                     "code it 0/1 or 1/2, or give case_proportion")


@dataclass(frozen=True)
class LiabilityH2(Results):
    """h2 transformed to the liability scale (GCTA's ``V(G)/Vp_L``).

    Attributes
    ----------
    h2, h2_se : float or ndarray
        Liability-scale estimate and its standard error (the observed-scale SE times the
        factor, as GCTA). One entry per kernel with several.
    h2_observed, h2_observed_se : float or ndarray
    prevalence, case_proportion, factor : float
        K, P and C = h2 / h2_observed.
    """

    h2: float | np.ndarray
    h2_se: float | np.ndarray
    h2_observed: float | np.ndarray
    h2_observed_se: float | np.ndarray
    prevalence: float
    case_proportion: float
    factor: float
    components: tuple[str, ...] = ("G",)
    nobs: int = 0
    llf: float = float("nan")  # the fit's: the transformation leaves the likelihood as it is

    @property
    def params(self) -> pd.Series:
        """h2 on the liability scale, one entry per genetic component (``h2`` for one)."""
        names = (["h2"] if len(self.components) == 1
                 else [f"h2_{c}" for c in self.components])
        return pd.Series(np.atleast_1d(self.h2), index=names, name="params")

    def cov_params(self) -> pd.DataFrame:
        """diag(SE^2): GCTA's SEs scaled by the factor (their covariances are not kept)."""
        names = list(self.params.index)
        return pd.DataFrame(np.diag(np.atleast_1d(self.h2_se) ** 2), index=names,
                            columns=names)

    def _boundary_params(self) -> list[str]:
        return list(self.params.index)


def liability_h2(fit: Results, prevalence: float,
                 case_proportion: float | None = None) -> LiabilityH2:
    """Transform a REML/ML fit of a 0/1 trait to the liability scale (Lee et al. 2011).

    Parameters
    ----------
    fit : VarianceComponentFit
        From :func:`bayeslmm.reml` on a case-control phenotype (0/1 or 1/2 coded).
    prevalence : float
        K, the population prevalence.
    case_proportion : float, optional
        P; by default the proportion of cases among the fitted samples.

    Returns
    -------
    LiabilityH2
        ``h2 = C h2_o`` and ``h2_se = C se(h2_o)``, C from :func:`liability_factor`.

    Examples
    --------
    GCTA's output for K = 0.4 and P = 0.399602 (h2_o = 0.420715, SE 0.392317) reads
    ``V(G)/Vp_L 0.676703 0.631026``:

    >>> from bayeslmm.estimation.liability import liability_factor
    >>> abs(0.420715 * liability_factor(0.4, 0.399602) - 0.676703) < 1e-6
    True
    """
    P = case_proportion_of(fit.data.y) if case_proportion is None else case_proportion
    C = liability_factor(prevalence, P)
    h2, se = fit.h2, fit.h2_se
    return LiabilityH2(h2=h2 * C, h2_se=se * C, h2_observed=h2, h2_observed_se=se,
                       prevalence=float(prevalence), case_proportion=float(P), factor=C,
                       components=tuple(fit.components), nobs=int(fit.nobs),
                       llf=float(fit.llf))


def liability_posterior(idata: xr.DataTree, prevalence: float, case_proportion: float,
                        *, var_name: str = "h2") -> xr.DataTree:
    """Add ``h2_liability`` = C * h2, draw by draw, to a posterior of the linear model.

    Parameters
    ----------
    idata : DataTree
        From :func:`bayeslmm.bayes.sample` on a linear mixed model of a 0/1 trait.
    prevalence, case_proportion : float
        K and P, as in :func:`liability_factor`.
    var_name : str
        The observed-scale h2 in the posterior group.

    Returns
    -------
    DataTree
        A copy with ``posterior["h2_liability"]`` (same dims as ``h2``; attrs hold K, P, C).
    """
    import xarray as xr

    if "posterior" not in idata.children or var_name not in idata["posterior"]:
        raise InputError(f"the DataTree has no posterior variable {var_name!r}")
    C = liability_factor(prevalence, case_proportion)
    post = idata["posterior"].to_dataset()
    post["h2_liability"] = post[var_name] * C
    post["h2_liability"].attrs.update(prevalence=float(prevalence),
                                      case_proportion=float(case_proportion), factor=C,
                                      method="Lee et al. 2011 eq. 23 (GCTA --prevalence)")
    out = idata.copy()
    out["posterior"] = xr.DataTree(post)
    return out
