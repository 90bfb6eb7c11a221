"""LD score regression for h2 and rg (notes 6.1; Bulik-Sullivan et al. 2015, Nat Genet 47:291, and
its online methods; the estimator of ldsc's ``ldscore/regressions.py``, ``irwls.py`` and
``jackknife.py``, read and written again here).

For SNP j with association statistic chi2_j = Z_j^2 from N_j samples and LD score l_j,

    E[chi2_j] = N_j h2 l_j / M + N_j a + 1                                  (LDSC eq. 1)

(M: SNPs the LD scores sum over, normally ``.l2.M_5_50``; the intercept b = 1 + N a absorbs
confounding and cryptic relatedness). The regression of chi2 on x_j = N_j l_j / Nbar
(Nbar = mean N_j, which keeps the normal equations well conditioned) and 1 gives
h2 = M slope / Nbar.

Weights (ldsc ``Hsq.weights``): w_j = 1 / (2 (b + h2 N_j l_j / M)^2) x 1 / w_ld_j, the
inverse variance of chi2_j under the model (heteroskedasticity; h2 clipped to [0, 1], l_j and
the regression-SNP LD score w_ld_j floored at 1) times the over-counting correction 1/w_ld_j.
The first weights use h2 from the aggregate estimator M (mean chi2 - b0) / mean(N l) (b0 = 1,
or the fixed intercept); then two iteratively re-weighted least-squares updates with the
fitted h2 and intercept; the estimate is the weighted least squares fit with the final weights.

Two-step estimator (``--two-step C``, default 30 with a free intercept): step 1 fits the
intercept on the SNPs with chi2 < C only; step 2 fixes it and fits the slope on every SNP.
Block jackknife: the SNPs, in file order, are cut into ``n_blocks`` contiguous blocks
(separators floor(linspace(0, n, n_blocks + 1)); step 2 uses step 1's blocks mapped back to
all SNPs), each deleted in turn; pseudovalues n_blocks est - (n_blocks - 1) est_(-b) give the
covariance cov(pseudovalues) / n_blocks. In the two-step estimator step 2's delete values
are corrected for step 1's intercept: slope_(-b) - c (intercept_(-b) - intercept), with c =
sum(w x) / sum(w x^2) over the first weights (ldsc ``_combine_twostep_jknives``).

Also: mean chi2, lambda GC = median(chi2) / 0.4549, ratio = (intercept - 1) / (mean chi2 - 1)
(with its SE intercept_se / (mean chi2 - 1)), and the liability scale (Lee et al. 2011, AJHG
88:294): h2_liab = h2_obs K^2 (1 - K)^2 / (P (1 - P) phi(t)^2), t = Phi^-1(1 - K).

Genetic correlation (``--rg``; Bulik-Sullivan et al. 2015, Nat Genet 47:1236; ldsc's
``Gencov`` and ``RG``): the same regression of z1_j z2_j on sqrt(N1_j N2_j) l_j / Nbar and 1,

    E[z1_j z2_j] = sqrt(N1_j N2_j) rho_g l_j / M + N_s rho / sqrt(N1_j N2_j)

(N_s samples in both studies, rho the phenotypic correlation among them: the intercept),
gencov = M slope / Nbar, weights 1 / ((N1 h1 l / M + b1)(N2 h2 l / M + b2) + (sqrt(N1 N2)
rho_g l / M + b)^2) / w_ld with each trait's h2 and intercept from its own regression on the
same SNPs, the first weights from the aggregate M mean(z1 z2) / mean(sqrt(N1 N2) l) with
b = 0; with ``--two-step C``, step 1 on SNPs with z1^2 and z2^2 < C (not the default of
``ldsc.py --rg``, see :func:`bayeslmm.estimation.ldsc_files.ldsc_rg_files`).
rg = gencov / sqrt(h2_1 h2_2), with the ratio jackknife: pseudovalues
n_b rg - (n_b - 1) gencov_(-b) / sqrt(h2_1(-b) h2_2(-b)), each regression's delete values
taken with its own blocks (in the two-step estimator the three step-1 SNP sets differ, hence
their blocks' bounds; ldsc divides them as they are, and so do we); p = 2 Phi(-|rg / se|).

ldsc's quirk kept for agreement: in step 1 of the two-step estimator its weights see
N_j l_j / Nbar in place of l_j (equal when N is constant), for h2 and for gencov.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.liability import liability_factor
from bayeslmm.estimation.results import Results

__all__ = ["CHI2_MEDIAN", "LDSCFit", "LDSCRGFit", "RegressionFit", "block_jackknife",
           "gencov_weights", "h2_obs_to_liability", "jackknife_separators", "ldsc_h2", "ldsc_rg",
           "ldsc_weights"]

log = logging.getLogger(__name__)

#: chi2_1's median, as ldsc divides by it
CHI2_MEDIAN = 0.4549


def ldsc_weights(ld: np.ndarray, w_ld: np.ndarray, N: np.ndarray, M: float, h2: float,
                 intercept: float) -> np.ndarray:
    """LDSC's regression weights 1 / (2 (b + h2 N l / M)^2 w_ld) (module docstring)."""
    h2 = min(max(h2, 0.0), 1.0)
    ld, w_ld = np.fmax(ld, 1.0), np.fmax(w_ld, 1.0)
    return 1.0 / (2.0 * np.square(intercept + h2 * N / M * ld)) / w_ld


def jackknife_separators(n: int, n_blocks: int) -> np.ndarray:
    """The block jackknife's block bounds: floor(linspace(0, n, n_blocks + 1))."""
    return np.floor(np.linspace(0, n, n_blocks + 1)).astype(int)


@dataclass(frozen=True)
class _Jackknife:
    est: np.ndarray       # (p,) whole-data estimate
    delete: np.ndarray    # (n_blocks, p) delete-one-block estimates
    separators: np.ndarray

    @property
    def cov(self) -> np.ndarray:
        """cov(pseudovalues) / n_blocks."""
        nb = self.delete.shape[0]
        pseudo = nb * self.est[None, :] - (nb - 1) * self.delete
        return np.atleast_2d(np.cov(pseudo.T, ddof=1)) / nb


def block_jackknife(x: np.ndarray, y: np.ndarray, separators: np.ndarray) -> _Jackknife:
    """Least squares y ~ x and its delete-one-block estimates (ldsc LstsqJackknifeFast)."""
    nb = len(separators) - 1
    p = x.shape[1]
    xtx, xty = np.zeros((nb, p, p)), np.zeros((nb, p))
    for i in range(nb):
        a, b = separators[i], separators[i + 1]
        xtx[i], xty[i] = x[a:b].T @ x[a:b], x[a:b].T @ y[a:b]
    XtX, Xty = xtx.sum(axis=0), xty.sum(axis=0)
    est = np.linalg.solve(XtX, Xty)
    delete = np.linalg.solve(XtX[None] - xtx, (Xty[None] - xty)[..., None])[..., 0]
    return _Jackknife(est, delete, separators)


def _irwls(x: np.ndarray, y: np.ndarray, update, w: np.ndarray, separators: np.ndarray
           ) -> _Jackknife:
    """Two re-weighting updates, then the weighted fit's block jackknife (ldsc IRWLS)."""
    sw = np.sqrt(w)
    for _ in range(2):
        coef = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
        sw = np.sqrt(update(coef))
    if np.any(sw <= 0):
        raise InputError("LD score regression weights must be > 0")
    sw = sw / sw.sum()  # as ldsc (it changes nothing but the scale)
    return block_jackknife(x * sw[:, None], y * sw, separators)


def _sel(a: np.ndarray, ii: np.ndarray | None) -> np.ndarray:
    return a if ii is None else a[ii]


@dataclass(frozen=True)
class _Regression:
    total: float          # h2 or gencov: M slope / Nbar
    total_se: float
    intercept: float
    intercept_se: float   # NaN when fixed
    delete: np.ndarray    # (n_blocks,) delete-one-block totals
    filtered: int         # SNPs left out of the two-step estimator's step 1


def _regression(y: np.ndarray, ld: np.ndarray, N: np.ndarray, M: float, weights, *,
                null: float, intercept: float | None, step1: np.ndarray | None,
                n_blocks: int) -> _Regression:
    """One LD score regression (ldsc's ``LD_Score_Regression`` with one LD score): y on
    x = N l / Nbar and 1 (module docstring), for h2 (y = chi2, ``null`` intercept 1) and for
    the genetic covariance (y = z1 z2, N = sqrt(N1 N2), ``null`` 0).

    ``weights(l, ii, total, b)`` gives the weights of the SNPs ``ii`` (indices; None: all)
    with LD column ``l`` (theirs), the total (h2 or gencov) and intercept b. The first
    weights take the aggregate total M (mean y - b0) / mean(N l), b0 the fixed intercept or
    ``null``. ``step1`` (a mask; only with a free intercept): the two-step estimator's SNPs of
    step 1."""
    n = y.size
    Nbar = N.mean()
    x = N * ld / Nbar
    b0 = null if intercept is None else intercept
    w0 = weights(ld, None, M * (y.mean() - b0) / np.mean(ld * N), b0)
    free = np.column_stack([x, np.ones(n)])
    filtered = 0

    def tot(c):
        return M * c[0] / Nbar

    if intercept is not None:  # slope only, y - intercept through the origin
        jk = _irwls(x[:, None], y - intercept,
                    lambda c: weights(ld, None, tot(c), intercept), w0,
                    jackknife_separators(n, n_blocks))
        b, b_se = float(intercept), float("nan")
    elif step1 is not None:
        ii = np.flatnonzero(step1)
        filtered = int(n - ii.size)
        # step 1's weights see ldsc's first design column (N l / Nbar), see the docstring
        jk1 = _irwls(free[ii], y[ii], lambda c: weights(x[ii], ii, tot(c), c[1]), w0[ii],
                     jackknife_separators(ii.size, n_blocks))
        b1 = float(jk1.est[1])
        sep2 = np.r_[0, ii[jk1.separators[1:-1]], n]
        jk2 = _irwls(x[:, None], y - b1, lambda c: weights(ld, None, tot(c), b1), w0, sep2)
        c = np.sum(w0 * x) / np.sum(w0 * x**2)
        delete = np.column_stack([jk2.delete[:, 0] - c * (jk1.delete[:, 1] - b1),
                                  jk1.delete[:, 1]])
        jk = _Jackknife(np.r_[jk2.est[0], b1], delete, sep2)
        b, b_se = b1, float(np.sqrt(jk.cov[1, 1]))
    else:
        jk = _irwls(free, y, lambda c: weights(ld, None, tot(c), c[1]), w0,
                    jackknife_separators(n, n_blocks))
        b, b_se = float(jk.est[1]), float(np.sqrt(jk.cov[1, 1]))
    return _Regression(float(tot(jk.est)), float(M * np.sqrt(jk.cov[0, 0]) / Nbar), b, b_se,
                       jk.delete[:, 0] * M / Nbar, filtered)


class RegressionFit(Results):
    """What every LD score regression fit says the same way: no likelihood (``llf`` NaN: a
    moment estimator) and the regression SNPs as ``nobs``."""

    @property
    def llf(self) -> float:
        return float("nan")

    @property
    def nobs(self) -> int:
        return self.n_snps


@dataclass(frozen=True)
class LDSCFit(RegressionFit):
    """LD score regression's h2 (``ldsc.py --h2``), with the package's results vocabulary:
    ``params`` (h2, intercept), ``bse`` (block-jackknife SEs), ``conf_int()``, ``nobs`` (the
    regression SNPs); ``llf`` is NaN (a moment estimator, not a likelihood).

    Attributes
    ----------
    h2, h2_se : float
        Observed-scale SNP heritability and its block-jackknife SE.
    intercept, intercept_se : float
        The intercept (fixed: ``intercept_se`` is NaN).
    mean_chisq, lambda_gc : float
        Over the regression SNPs (after ``chisq_max``).
    ratio, ratio_se : float
        (intercept - 1) / (mean chi2 - 1); NaN with a fixed intercept or mean chi2 <= 1.
    n_snps, n_blocks : int
    M : float
    two_step : float or None
    twostep_filtered : int
        SNPs left out of step 1 (chi2 >= two_step).
    h2_delete : numpy.ndarray
        The delete-one-block h2 values.
    """

    h2: float
    h2_se: float
    intercept: float
    intercept_se: float
    mean_chisq: float
    lambda_gc: float
    ratio: float
    ratio_se: float
    n_snps: int
    n_blocks: int
    M: float
    two_step: float | None
    twostep_filtered: int
    h2_delete: np.ndarray

    @property
    def params(self) -> pd.Series:
        return pd.Series({"h2": self.h2, "intercept": self.intercept}, name="params")

    def cov_params(self) -> pd.DataFrame:
        """The jackknife variances on the diagonal; their covariance is not kept (NaN)."""
        c = np.array([[self.h2_se**2, np.nan], [np.nan, self.intercept_se**2]])
        return pd.DataFrame(c, index=self.params.index, columns=self.params.index)


    def liability(self, samp_prev: float, pop_prev: float) -> tuple[float, float]:
        """h2 and its SE on the liability scale (sample prevalence P, population K)."""
        c = h2_obs_to_liability(1.0, samp_prev, pop_prev)
        return c * self.h2, c * self.h2_se


def h2_obs_to_liability(h2_obs: float, samp_prev: float, pop_prev: float) -> float:
    """h2_obs K^2 (1 - K)^2 / (P (1 - P) phi(Phi^-1(1 - K))^2) (Lee et al. 2011, eq. 23);
    P and K both NaN: a quantitative trait, h2_obs unchanged (ldsc's ``nan`` in a ``--rg``
    list of prevalences)."""
    P, K = samp_prev, pop_prev
    if np.isnan(P) and np.isnan(K):
        return h2_obs
    for name, v in (("--samp-prev", P), ("--pop-prev", K)):
        if not 0.0 < v < 1.0:
            raise InputError(f"{name} must be in (0, 1), got {v}")
    return h2_obs * liability_factor(K, P)  # the package's one Lee transform


def ldsc_h2(chisq, ld, w_ld, N, M: float, *, n_blocks: int = 200,
            intercept: float | None = None, two_step: float | None = 30.0,
            chisq_max: float | None = None) -> LDSCFit:
    """LD score regression estimate of SNP heritability (module docstring's equations).

    Parameters
    ----------
    chisq : array
        chi2_j = Z_j^2 of the regression SNPs, in genome order (the jackknife's blocks are
        contiguous runs of SNPs).
    ld : array
        Their LD scores l_j (``--ref-ld``).
    w_ld : array
        Their LD scores over the regression SNPs only (``--w-ld``), for the weights.
    N : array or float
        Samples per SNP.
    M : float
        Number of SNPs the LD scores sum over (``.l2.M_5_50``).
    n_blocks : int
        Jackknife blocks (at most the number of SNPs).
    intercept : float, optional
        Fix the intercept (``--intercept-h2``); None: estimated.
    two_step : float or None
        The two-step estimator's cutoff (``--two-step``; ignored with a fixed intercept,
        as ldsc does only when the user gives none).
    chisq_max : float, optional
        Leave out SNPs with chi2 >= this (``--chisq-max``).

    Returns
    -------
    LDSCFit
    """
    y = np.asarray(chisq, dtype=np.float64).ravel()
    n = y.size
    ld = np.asarray(ld, dtype=np.float64).ravel()
    w_ld = np.asarray(w_ld, dtype=np.float64).ravel()
    N = np.broadcast_to(np.asarray(N, dtype=np.float64), (n,)).copy()
    if not (ld.size == w_ld.size == n):
        raise InputError(f"chisq, ld and w_ld must have one value per SNP; got {n}, "
                         f"{ld.size}, {w_ld.size}")
    for name, v in (("chi2", y), ("LD score", ld), ("w_ld", w_ld), ("N", N)):
        if not np.all(np.isfinite(v)):
            raise InputError(f"LD score regression: {name} has missing or infinite values")
    if np.any(N <= 0) or not M > 0:
        raise InputError("LD score regression needs N > 0 for every SNP and M > 0")
    if intercept is not None and two_step is not None:
        raise InputError("--two-step estimates the intercept; it cannot be used with "
                         "--intercept-h2")
    if chisq_max is not None:
        keep = y < chisq_max
        y, ld, w_ld, N = y[keep], ld[keep], w_ld[keep], N[keep]
        n = y.size
    n_blocks = min(n, n_blocks)
    if n_blocks < 2:
        raise InputError(f"LD score regression needs at least 2 SNPs, got {n}")
    step1 = None if intercept is not None or two_step is None else y < two_step
    fit = _regression(y, ld, N, M, lambda l, ii, h2, b: ldsc_weights(
        l, _sel(w_ld, ii), _sel(N, ii), M, h2, b), null=1.0, intercept=intercept,
        step1=step1, n_blocks=n_blocks)
    b, b_se = fit.intercept, fit.intercept_se
    mean_chisq = float(y.mean())
    lam = float(np.median(y) / CHI2_MEDIAN)
    if intercept is None and mean_chisq > 1:
        ratio, ratio_se = (b - 1) / (mean_chisq - 1), b_se / (mean_chisq - 1)
    else:
        ratio = ratio_se = float("nan")
    return LDSCFit(fit.total, fit.total_se, float(b), float(b_se), mean_chisq, lam,
                   float(ratio), float(ratio_se), int(n), int(n_blocks), float(M), two_step
                   if intercept is None else None, fit.filtered, fit.delete)


# ----------------------------------------------------------------------------- rg
def gencov_weights(ld: np.ndarray, w_ld: np.ndarray, N1: np.ndarray, N2: np.ndarray,
                   M: float, h2_1: float, h2_2: float, gencov: float, intercept: float,
                   intercept_1: float = 1.0, intercept_2: float = 1.0) -> np.ndarray:
    """The cross-trait regression's weights 1 / ((N1 h1 l / M + b1)(N2 h2 l / M + b2) +
    (sqrt(N1 N2) rho l / M + b)^2) / w_ld (the variance of z1 z2 under the model; h1, h2
    clipped to [0, 1], rho to [-1, 1], l and w_ld floored at 1; ldsc ``Gencov.weights``)."""
    h2_1, h2_2 = (min(max(h, 0.0), 1.0) for h in (h2_1, h2_2))
    gencov = min(max(gencov, -1.0), 1.0)
    ld, w_ld = np.fmax(ld, 1.0), np.fmax(w_ld, 1.0)
    a = N1 * h2_1 * ld / M + intercept_1
    b = N2 * h2_2 * ld / M + intercept_2
    c = np.sqrt(N1 * N2) * gencov * ld / M + intercept
    return 1.0 / (a * b + c**2) / w_ld


@dataclass(frozen=True)
class LDSCRGFit(RegressionFit):
    """LD score regression's genetic correlation (``ldsc.py --rg``), with the package's results
    vocabulary: ``params`` (rg, gencov, intercept: the cross-trait regression's; h2_1,
    intercept_1, h2_2, intercept_2: each trait's h2 regression on the same SNPs), ``bse``
    (block jackknife: rg's of the ratio), ``conf_int()``, ``pvalues`` (rg's is ldsc's P),
    ``nobs`` (the SNPs of both traits); ``llf`` is NaN (a moment estimator).

    Attributes
    ----------
    rg, rg_se : float
        gencov / sqrt(h2_1 h2_2) and its ratio-jackknife SE; NaN when an h2 is <= 0 (ldsc:
        "h2 out of bounds").
    gencov, gencov_se, intercept, intercept_se : float
        The cross-trait regression (the intercept fixed: ``intercept_se`` NaN).
    mean_z1z2 : float
    hsq1, hsq2 : LDSCFit
        Each trait's h2 (ldsc's ``--h2`` on the SNPs of both traits).
    n_snps, n_blocks : int
    M : float
    two_step : float or None
    gencov_delete : numpy.ndarray
        The delete-one-block gencov values.
    """

    rg: float
    rg_se: float
    gencov: float
    gencov_se: float
    intercept: float
    intercept_se: float
    mean_z1z2: float
    hsq1: LDSCFit
    hsq2: LDSCFit
    n_snps: int
    n_blocks: int
    M: float
    two_step: float | None
    gencov_delete: np.ndarray

    @property
    def params(self) -> pd.Series:
        return pd.Series({"rg": self.rg, "gencov": self.gencov, "intercept": self.intercept,
                          "h2_1": self.hsq1.h2, "intercept_1": self.hsq1.intercept,
                          "h2_2": self.hsq2.h2, "intercept_2": self.hsq2.intercept},
                         name="params")

    def cov_params(self) -> pd.DataFrame:
        """The jackknife variances on the diagonal; their covariances are not kept (NaN)."""
        se = np.array([self.rg_se, self.gencov_se, self.intercept_se, self.hsq1.h2_se,
                       self.hsq1.intercept_se, self.hsq2.h2_se, self.hsq2.intercept_se])
        c = np.full((se.size, se.size), np.nan)
        np.fill_diagonal(c, se**2)
        return pd.DataFrame(c, index=self.params.index, columns=self.params.index)


    @property
    def z(self) -> float:
        """rg / rg_se (ldsc's Z-score)."""
        return float(self.tvalues["rg"])

    @property
    def p(self) -> float:
        """Two-sided normal p-value of rg (ldsc's P: chi2_1's tail at z^2)."""
        return float(self.pvalues["rg"])


def _pair(value, flag: str) -> tuple[float | None, float | None]:
    """One value for both traits, or one each (ldsc's comma list)."""
    if value is None or np.ndim(value) == 0:
        return value, value
    if len(value) == 1:
        return float(value[0]), float(value[0])
    if len(value) != 2:
        raise InputError(f"{flag} takes one value, or one per trait (2); got {len(value)}")
    return float(value[0]), float(value[1])


def ldsc_rg(z1, z2, ld, w_ld, N1, N2, M: float, *, n_blocks: int = 200,
            intercept_h2=None, intercept_gencov: float | None = None,
            two_step: float | None = None, chisq_max: float | None = None) -> LDSCRGFit:
    """LD score regression's genetic correlation (Bulik-Sullivan et al. 2015, Nat Genet
    47:1236; ldsc's ``RG``, read and written again): for SNP j,

        E[z1_j z2_j] = sqrt(N1_j N2_j) rho_g l_j / M + N_s rho / sqrt(N1_j N2_j)

    regressed as h2 is (:func:`_regression`: x = sqrt(N1 N2) l / Nbar, the aggregate start,
    two re-weightings, the two-step estimator on SNPs with z1^2 and z2^2 < ``two_step``, the
    block jackknife) with :func:`gencov_weights`, which take each trait's h2 and intercept
    from :func:`ldsc_h2` on the same SNPs. rg = gencov / sqrt(h2_1 h2_2); its SE is the
    ratio jackknife's, pseudovalues n_b rg - (n_b - 1) gencov_(-b) / sqrt(h2_1(-b) h2_2(-b))
    (each from its own regression's blocks, as ldsc).

    Parameters
    ----------
    z1, z2 : array
        Z of the two traits for the same SNPs (z2 signed for trait 1's A1), in genome order.
    ld, w_ld, M, n_blocks :
        As :func:`ldsc_h2`.
    N1, N2 : array or float
        Samples per SNP of each trait.
    intercept_h2 : float or pair, optional
        Fix the h2 intercepts (one value for both, or one each).
    intercept_gencov : float, optional
        Fix the cross-trait intercept (``--intercept-gencov``; 0 without sample overlap).
    two_step : float or None
        The two-step cutoff, for both h2 regressions and the cross-trait one (SNPs with z1^2
        and z2^2 below it); None (the default of ``ldsc.py --rg``, see
        :func:`bayeslmm.estimation.ldsc_files.ldsc_rg_files`): one step.
    chisq_max : float, optional
        Keep SNPs with z1^2 z2^2 < chisq_max^2 (ldsc's rule for ``--rg``).
    """
    z1 = np.asarray(z1, dtype=np.float64).ravel()
    z2 = np.asarray(z2, dtype=np.float64).ravel()
    n = z1.size
    ld = np.asarray(ld, dtype=np.float64).ravel()
    w_ld = np.asarray(w_ld, dtype=np.float64).ravel()
    N1, N2 = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy() for v in (N1, N2))
    if not (z2.size == ld.size == w_ld.size == n):
        raise InputError(f"z1, z2, ld and w_ld must have one value per SNP; got {n}, "
                         f"{z2.size}, {ld.size}, {w_ld.size}")
    for name, v in (("z1", z1), ("z2", z2), ("N1", N1), ("N2", N2)):
        if not np.all(np.isfinite(v)):
            raise InputError(f"LD score regression: {name} has missing or infinite values")
    if intercept_gencov is not None and two_step is not None:
        raise InputError("--intercept-gencov fixes the cross-trait intercept, which the "
                         "two-step estimator (--two-step) estimates: give one of them")
    if chisq_max is not None:
        keep = z1**2 * z2**2 < chisq_max**2
        z1, z2, ld, w_ld, N1, N2 = (a[keep] for a in (z1, z2, ld, w_ld, N1, N2))
        n = z1.size
    i1, i2 = _pair(intercept_h2, "--intercept-h2")
    hsq1 = ldsc_h2(z1**2, ld, w_ld, N1, M, n_blocks=n_blocks, intercept=i1, two_step=two_step)
    hsq2 = ldsc_h2(z2**2, ld, w_ld, N2, M, n_blocks=n_blocks, intercept=i2, two_step=two_step)
    n_blocks = hsq1.n_blocks
    step1 = None if intercept_gencov is not None or two_step is None else (
        (z1**2 < two_step) & (z2**2 < two_step))
    g = _regression(z1 * z2, ld, np.sqrt(N1 * N2), M, lambda l, ii, rho, b: gencov_weights(
        l, _sel(w_ld, ii), _sel(N1, ii), _sel(N2, ii), M, hsq1.h2, hsq2.h2, rho, b,
        hsq1.intercept, hsq2.intercept), null=0.0, intercept=intercept_gencov, step1=step1,
        n_blocks=n_blocks)
    if hsq1.h2 <= 0 or hsq2.h2 <= 0:
        log.warning("rg is not estimated: h2 of trait %d is <= 0 (ldsc: 'h2 out of bounds'; "
                    "usually a munging error, or h2 or N too low).", 1 if hsq1.h2 <= 0 else 2)
        rg = rg_se = float("nan")
    else:
        rg = g.total / np.sqrt(hsq1.h2 * hsq2.h2)
        with np.errstate(invalid="ignore", divide="ignore"):
            pseudo = n_blocks * rg - (n_blocks - 1) * g.delete / np.sqrt(
                hsq1.h2_delete * hsq2.h2_delete)
        rg_se = float(np.sqrt(np.var(pseudo, ddof=1) / n_blocks))
        if not np.isfinite(rg_se):
            log.warning("rg's SE is not estimated: a delete-one-block h2 is <= 0.")
    return LDSCRGFit(float(rg), rg_se, g.total, g.total_se, g.intercept, g.intercept_se,
                     float(np.mean(z1 * z2)), hsq1, hsq2, int(n), int(n_blocks), float(M),
                     two_step, g.delete)

