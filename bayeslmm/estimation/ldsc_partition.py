"""Partitioned heritability by stratified LD score regression (Finucane et al. 2015, Nat Genet
47:1228; ldsc's ``Hsq`` with several LD score columns, ``ldscore/regressions.py``, read and
written again here).

With annotations c = 1..C (a_kc: SNP k's value) and LD scores l_jc = sum_k r2(j, k) a_kc,

    E[chi2_j] = N_j sum_c tau_c l_jc + N_j a + 1,

so tau_c is the per-SNP h2 of annotation c given the others. The regression of chi2 on
x_jc = N_j l_jc / Nbar (and 1) gives tau_c = slope_c / Nbar; h2 of annotation c is
h2_c = M_c tau_c (M_c = sum_k a_kc over the common SNPs, ``.l2.M_5_50``), the total
h2 = sum_c h2_c, the proportion of h2 prop_c = h2_c / h2, and the enrichment
(h2_c / M_c) / (h2 / M_tot), M_tot = sum_c M_c.

Weights (ldsc's ``old_weights``, its choice for several columns): computed once, from the
aggregate estimate h2_0 = M_tot (mean chi2 - b0) / mean(N l_tot) with l_tot = sum_c l_jc and
b0 = 1 (or the fixed intercept): w_j = 1 / (2 (b0 + h2_0 N_j l_tot_j / M_tot)^2 w_ld_j) (h2_0
clipped to [0, 1], l_tot and w_ld floored at 1); no re-weighting, no two-step estimator.
SNPs with chi2 >= max(0.001 max N, 80) are left out (ldsc's default ``--chisq-max`` here).

SEs from the block jackknife (200 contiguous blocks): cov(tau) = cov(pseudovalues) / n_b,
cov(h2_c, h2_d) = M_c M_d cov(tau_c, tau_d), var(h2) = the sum of that matrix; prop_c by the
ratio jackknife (pseudovalues n_b prop_c - (n_b - 1) h2_c(-b) / h2(-b)).

Overlapping annotations (``--overlap-annot``, ldsc's ``_overlap_output``): with O = A'A over
the common SNPs (O_cd: SNPs in both c and d) and M_tot their number, annotation c holds the
proportion of h2 sum_d (O_cd / M_d) prop_d (SE from the same linear map of cov(prop)), of SNPs
M_c / M_tot; enrichment = their ratio (SE: the proportion's / M_c * M_tot), and its test
compares the per-SNP h2 in c with that outside it: D_c = sum_d (O_cd / M_c - (M_d - O_cd) /
(M_tot - M_c)) tau_d, p = 2 t_(n_b).sf(|D_c / se(D_c)|) (NaN when c holds every SNP).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import (
    CHI2_MEDIAN,
    RegressionFit,
    block_jackknife,
    h2_obs_to_liability,
    jackknife_separators,
    ldsc_weights,
)
from bayeslmm.likelihood import tails

__all__ = ["LDSCPartitionedFit", "ldsc_h2_partitioned", "overlap_results"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LDSCPartitionedFit(RegressionFit):
    """Partitioned h2 (``ldsc.py --h2`` with several LD score columns), with the package's
    results vocabulary: ``params`` (each annotation's tau, then the intercept), ``bse`` and
    ``cov_params()`` (block jackknife), ``conf_int()``, ``nobs``; ``llf`` NaN (a moment
    estimator).

    Attributes
    ----------
    names : list of str
        The LD score columns (ldsc's ``Categories``).
    coef, coef_se, coef_cov : numpy.ndarray
        tau_c (per-SNP h2 given the other annotations), SEs and covariance.
    cat, cat_se : numpy.ndarray
        h2_c = M_c tau_c and SEs.
    prop, prop_se, prop_cov : numpy.ndarray
        h2_c / h2 (ratio jackknife).
    enrichment, M_prop : numpy.ndarray
        (h2_c / M_c) / (h2 / M_tot), and M_c / M_tot.
    h2, h2_se : float
        Total (sum of h2_c).
    intercept, intercept_se : float
        The intercept (fixed: ``intercept_se`` NaN).
    mean_chisq, lambda_gc, ratio, ratio_se : float
        As :class:`~bayeslmm.estimation.ldsc.LDSCFit`.
    M : numpy.ndarray
        M_c of each column.
    n_snps, n_blocks : int
    chisq_max : float
    """

    names: list[str]
    coef: np.ndarray
    coef_se: np.ndarray
    coef_cov: np.ndarray
    cat: np.ndarray
    cat_se: np.ndarray
    prop: np.ndarray
    prop_se: np.ndarray
    prop_cov: np.ndarray
    enrichment: np.ndarray
    M_prop: np.ndarray
    h2: float
    h2_se: float
    intercept: float
    intercept_se: float
    mean_chisq: float
    lambda_gc: float
    ratio: float
    ratio_se: float
    M: np.ndarray
    n_snps: int
    n_blocks: int
    chisq_max: float

    @property
    def params(self) -> pd.Series:
        return pd.Series([*self.coef, self.intercept], index=[*self.names, "intercept"],
                         name="params")

    def cov_params(self) -> pd.DataFrame:
        """tau's jackknife covariance; the intercept's variance (its covariances not kept)."""
        C = len(self.names)
        c = np.full((C + 1, C + 1), np.nan)
        c[:C, :C] = self.coef_cov
        c[C, C] = self.intercept_se**2
        return pd.DataFrame(c, index=self.params.index, columns=self.params.index)

    def liability(self, samp_prev: float, pop_prev: float) -> float:
        """The factor from observed- to liability-scale h2 (h2, h2_c and their SEs)."""
        return h2_obs_to_liability(1.0, samp_prev, pop_prev)


def ldsc_h2_partitioned(chisq, ld, w_ld, N, M, *, names=None, n_blocks: int = 200,
                        intercept: float | None = None, chisq_max: float | None = None
                        ) -> LDSCPartitionedFit:
    """Partitioned h2 by stratified LD score regression (module docstring's equations).

    Parameters
    ----------
    chisq : array (n,)
        chi2_j = Z_j^2 of the regression SNPs, in genome order.
    ld : array (n, C)
        Their LD scores, one column per annotation (``--ref-ld``).
    w_ld : array (n,)
        LD scores over the regression SNPs (``--w-ld``), for the weights.
    N : array or float
        Samples per SNP.
    M : array (C,)
        M_c per column (``.l2.M_5_50``).
    names : list of str, optional
        Column names (default ``CAT_0``, ``CAT_1``, ...).
    n_blocks : int
        Jackknife blocks (at most the SNPs before the chi2 filter, as ldsc).
    intercept : float, optional
        Fix the intercept (``--intercept-h2``).
    chisq_max : float, optional
        Leave out SNPs with chi2 >= this; default max(0.001 max N, 80) (ldsc's).

    Returns
    -------
    LDSCPartitionedFit
    """
    y = np.asarray(chisq, dtype=np.float64).ravel()
    n = y.size
    ld = np.asarray(ld, dtype=np.float64).reshape(n, -1)
    C = ld.shape[1]
    w_ld = np.asarray(w_ld, dtype=np.float64).ravel()
    N = np.broadcast_to(np.asarray(N, dtype=np.float64), (n,)).copy()
    M = np.asarray(M, dtype=np.float64).ravel()
    names = [f"CAT_{i}" for i in range(C)] if names is None else list(names)
    if w_ld.size != n or M.size != C or len(names) != C:
        raise InputError(f"partitioned LD score regression: {n} SNPs and {C} LD score columns "
                         f"need w_ld for each SNP ({w_ld.size}) and M and a name for each "
                         f"column ({M.size}, {len(names)})")
    for what, v in (("chi2", y), ("LD score", ld), ("w_ld", w_ld), ("N", N), ("M", M)):
        if not np.all(np.isfinite(v)):
            raise InputError(f"LD score regression: {what} has missing or infinite values")
    if np.any(N <= 0) or np.any(M <= 0):
        raise InputError("partitioned LD score regression needs N > 0 and every M_c > 0 "
                         "(an annotation with no common SNP cannot be estimated)")
    n_blocks = min(n, n_blocks)
    if chisq_max is None:
        chisq_max = max(0.001 * N.max(), 80.0)
    keep = y < chisq_max
    if (~keep).any():
        log.info("Removed %d SNPs with chi^2 > %g (%d SNPs remain).", int((~keep).sum()),
                 chisq_max, int(keep.sum()))
    y, ld, w_ld, N = y[keep], ld[keep], w_ld[keep], N[keep]
    n = y.size
    if n < max(n_blocks, C + 2):
        raise InputError(f"partitioned LD score regression: {n} SNPs left for {C} columns and "
                         f"{n_blocks} jackknife blocks")
    M_tot = float(M.sum())
    l_tot = ld.sum(axis=1)
    b0 = 1.0 if intercept is None else float(intercept)
    h2_0 = M_tot * (y.mean() - b0) / np.mean(l_tot * N)
    sw = np.sqrt(ldsc_weights(l_tot, w_ld, N, M_tot, h2_0, b0))
    sw = sw / sw.sum()
    Nbar = N.mean()
    x = N[:, None] * ld / Nbar
    if intercept is None:
        x = np.column_stack([x, np.ones(n)])
    jk = block_jackknife(x * sw[:, None], (y - (0.0 if intercept is None else b0)) * sw,
                         jackknife_separators(n, n_blocks))
    cov = jk.cov
    coef, coef_cov = jk.est[:C] / Nbar, cov[:C, :C] / Nbar**2
    cat, cat_cov = M * coef, np.outer(M, M) * coef_cov
    h2, h2_se = float(cat.sum()), float(np.sqrt(cat_cov.sum()))
    num = M * jk.delete[:, :C] / Nbar  # delete values of h2_c
    nb = n_blocks
    pseudo = nb * cat / h2 - (nb - 1) * num / num.sum(axis=1, keepdims=True)
    prop_cov = np.atleast_2d(np.cov(pseudo.T, ddof=1)) / nb
    if intercept is None:
        b, b_se = float(jk.est[C]), float(np.sqrt(cov[C, C]))
    else:
        b, b_se = b0, float("nan")
    mean_chisq = float(y.mean())
    if intercept is None and mean_chisq > 1:
        ratio, ratio_se = (b - 1) / (mean_chisq - 1), b_se / (mean_chisq - 1)
    else:
        ratio = ratio_se = float("nan")
    return LDSCPartitionedFit(
        names, coef, np.sqrt(np.diag(coef_cov)), coef_cov, cat, np.sqrt(np.diag(cat_cov)),
        cat / h2, np.sqrt(np.diag(prop_cov)), prop_cov, (cat / M) / (h2 / M_tot), M / M_tot,
        h2, h2_se, b, b_se, mean_chisq, float(np.median(y) / CHI2_MEDIAN), float(ratio),
        float(ratio_se), M, int(n), int(nb), float(chisq_max))


def overlap_results(fit: LDSCPartitionedFit, overlap: np.ndarray, M_tot: float,
                    coefficients: bool = False) -> pd.DataFrame:
    """ldsc's ``.results`` table for overlapping annotations (module docstring): Category,
    Prop._SNPs, Prop._h2, Prop._h2_std_error, Enrichment, Enrichment_std_error, Enrichment_p
    (and with ``coefficients`` Coefficient, Coefficient_std_error, Coefficient_z-score).

    ``overlap`` is A'A over the common SNPs (:func:`bayeslmm.io.ldscores.read_annot_overlap`)
    and ``M_tot`` their number; the annotations' M are the fit's."""
    O = np.asarray(overlap, dtype=np.float64)
    M = fit.M
    C = M.size
    if O.shape != (C, C):
        raise InputError(f"the annotation files have {O.shape[0]} columns, the LD scores {C}")
    Op = O / M[None, :]
    prop = Op @ fit.prop
    prop_se = np.sqrt(np.maximum(0.0, np.diag(Op @ fit.prop_cov @ Op.T)))
    m_prop = M / M_tot
    D = np.zeros((C, C))
    for i in range(C):
        if M_tot != M[i]:
            D[i] = O[i] / M[i] - (M - O[i]) / (M_tot - M[i])
    diff_se = np.sqrt(np.diag(D @ fit.coef_cov @ D.T))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(diff_se == 0, np.nan,
                     2 * tails.t_sf(np.abs(D @ fit.coef / diff_se), fit.n_blocks))
    df = pd.DataFrame({"Category": fit.names, "Prop._SNPs": m_prop, "Prop._h2": prop,
                       "Prop._h2_std_error": prop_se, "Enrichment": prop / m_prop,
                       "Enrichment_std_error": prop_se / m_prop, "Enrichment_p": p})
    if coefficients:
        df["Coefficient"] = fit.coef
        df["Coefficient_std_error"] = fit.coef_se
        df["Coefficient_z-score"] = fit.coef / fit.coef_se
    return df
