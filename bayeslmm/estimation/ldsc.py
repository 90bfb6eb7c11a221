"""LD score regression for h2 (notes 6.1; Bulik-Sullivan et al. 2015, Nat Genet 47:291, and
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

ldsc's quirk kept for agreement: in step 1 of the two-step estimator its weights see
N_j l_j / Nbar in place of l_j (equal when N is constant).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.liability import liability_factor
from bayeslmm.estimation.results import Results
from bayeslmm.io.sumstats import align_alleles, read_alleles, read_ldscores, read_sumstats

__all__ = ["LDSCFit", "block_jackknife", "h2_obs_to_liability", "ldsc_h2", "ldsc_h2_files",
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


def _separators(n: int, n_blocks: int) -> np.ndarray:
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


@dataclass(frozen=True)
class LDSCFit(Results):
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

    @property
    def llf(self) -> float:
        return float("nan")

    @property
    def nobs(self) -> int:
        return self.n_snps

    def liability(self, samp_prev: float, pop_prev: float) -> tuple[float, float]:
        """h2 and its SE on the liability scale (sample prevalence P, population K)."""
        c = h2_obs_to_liability(1.0, samp_prev, pop_prev)
        return c * self.h2, c * self.h2_se


def h2_obs_to_liability(h2_obs: float, samp_prev: float, pop_prev: float) -> float:
    """h2_obs K^2 (1 - K)^2 / (P (1 - P) phi(Phi^-1(1 - K))^2) (Lee et al. 2011, eq. 23)."""
    P, K = samp_prev, pop_prev
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
    Nbar = N.mean()
    x = N * ld / Nbar
    b0 = 1.0 if intercept is None else intercept
    h2_agg = M * (y.mean() - b0) / np.mean(ld * N)
    w0 = ldsc_weights(ld, w_ld, N, M, h2_agg, b0)
    free = np.column_stack([x, np.ones(n)])
    sep = _separators(n, n_blocks)
    filtered = 0
    if intercept is not None:  # slope only, y - intercept through the origin
        jk = _irwls(x[:, None], y - intercept,
                    lambda c: ldsc_weights(ld, w_ld, N, M, M * c[0] / Nbar, intercept),
                    w0, sep)
        est, cov = np.r_[jk.est, intercept], jk.cov
        h2_del = jk.delete[:, 0] * M / Nbar
        b, b_se = intercept, np.nan
    elif two_step is not None:
        ii = y < two_step
        filtered = int(n - ii.sum())
        # step 1's weights see ldsc's first design column (N l / Nbar), see the docstring
        x1, N1, wl1 = x[ii], N[ii], w_ld[ii]
        jk1 = _irwls(free[ii], y[ii], lambda c: ldsc_weights(
            x1, wl1, N1, M, M * c[0] / Nbar, c[1]), w0[ii],
            _separators(int(ii.sum()), n_blocks))
        b1 = jk1.est[1]
        sep2 = np.r_[0, np.flatnonzero(ii)[jk1.separators[1:-1]], n]
        jk2 = _irwls(x[:, None], y - b1,
                     lambda c: ldsc_weights(ld, w_ld, N, M, M * c[0] / Nbar, b1), w0, sep2)
        c = np.sum(w0 * x) / np.sum(w0 * x**2)
        delete = np.column_stack([jk2.delete[:, 0] - c * (jk1.delete[:, 1] - b1),
                                  jk1.delete[:, 1]])
        jk = _Jackknife(np.r_[jk2.est[0], b1], delete, sep2)
        est, cov = jk.est, jk.cov
        h2_del = delete[:, 0] * M / Nbar
        b, b_se = b1, float(np.sqrt(cov[1, 1]))
    else:
        jk = _irwls(free, y, lambda c: ldsc_weights(ld, w_ld, N, M, M * c[0] / Nbar, c[1]),
                    w0, sep)
        est, cov = jk.est, jk.cov
        h2_del = jk.delete[:, 0] * M / Nbar
        b, b_se = float(est[1]), float(np.sqrt(cov[1, 1]))
    h2 = float(M * est[0] / Nbar)
    h2_se = float(M * np.sqrt(cov[0, 0]) / Nbar)
    mean_chisq = float(y.mean())
    lam = float(np.median(y) / CHI2_MEDIAN)
    if intercept is None and mean_chisq > 1:
        ratio, ratio_se = (b - 1) / (mean_chisq - 1), b_se / (mean_chisq - 1)
    else:
        ratio = ratio_se = float("nan")
    return LDSCFit(h2, h2_se, float(b), float(b_se), mean_chisq, lam, float(ratio),
                   float(ratio_se), int(n), int(n_blocks), float(M), two_step
                   if intercept is None else None, filtered, h2_del)


def ldsc_h2_files(sumstats, ref_ld, w_ld, *, merge_alleles=None, N: float | None = None,
                  intercept: float | None = None, two_step: float | None = None,
                  **options) -> LDSCFit:
    """``ldsc.py --h2 SUMSTATS --ref-ld REF --w-ld W`` on files: the summary statistics read
    and munged (:func:`bayeslmm.io.sumstats.read_sumstats`, aligned to ``merge_alleles`` if
    given), joined to the LD scores in the reference's order (the jackknife's blocks are runs
    of it, as ldsc's inner merge keeps), then :func:`ldsc_h2` with M from REF.l2.M_5_50.

    ``two_step`` None is ldsc's default: 30 with a free intercept, none with a fixed one.
    ``options`` go to :func:`ldsc_h2` (``n_blocks``, ``chisq_max``).
    """
    ss = read_sumstats(sumstats, N=N)
    if merge_alleles is not None:
        ss = align_alleles(ss, read_alleles(merge_alleles))
    ref, M = read_ldscores(ref_ld)
    wld, _ = read_ldscores(w_ld)
    d = ref.drop_duplicates("SNP").merge(ss, on="SNP")
    d = d.merge(wld.drop_duplicates("SNP").rename(columns={"L2": "W"}), on="SNP")
    log.info("%d of %d SNPs are in the reference panel LD and the regression SNP LD.",
             len(d), len(ss))
    if two_step is None and intercept is None:
        two_step = 30.0
    return ldsc_h2(d.Z.to_numpy() ** 2, d.L2.to_numpy(), d.W.to_numpy(), d.N.to_numpy(), M,
                   intercept=intercept, two_step=two_step, **options)
