"""LDpred: posterior SNP effects from summary statistics and a reference LD matrix (notes
section 6; Vilhjalmsson et al. 2015, AJHG 97:576; Prive, Arbel & Vilhjalmsson 2020,
Bioinformatics 36:5424, "LDpred2").

The model, on standardized genotypes and phenotype: the marginal effect of SNP j is a
correlation, ``bhat_j = Z_j / sqrt(N_j + Z_j^2)`` from its association Z score and sample size
(LDpred2's scaling: the correlation a regression t-statistic implies), and

    bhat | beta ~ N(R beta, s R / N)        (in-sample LD R, N samples, s = 1 - h2)
    beta_j ~ N(0, h2 / M)                                  (infinitesimal)
    beta_j ~ p N(0, h2 / (M p)) + (1 - p) delta_0          (point-normal)

with M the number of SNPs and s the residual variance of the standardized phenotype:
``shrinkage="exact"`` (the default) takes s = 1 - h2, the model's own value;
``"published"`` takes s = 1, as LDpred and LDpred2 do (their M / (N h2) shrinkage; it
shrinks less when h2 is large). Three estimators:

* :func:`ldpred_inf`: the posterior mean under the infinitesimal prior, in closed form,

      E[beta | bhat] = (R + diag(M s / (N_j h2)))^{-1} bhat,

  a sparse direct solve per chromosome (the windowed R is block diagonal over them). With
  in-sample LD, a window covering each chromosome and ``"exact"`` it is SNP-BLUP from the
  individual data, ridge regression of the standardized phenotype on the standardized
  genotypes with penalty M (1 - h2) / h2 (tested so).
* :func:`ldpred_gibbs` with fixed ``p, h2`` (LDpred2-grid) or ``auto=True`` (LDpred2-auto):
  Gibbs sampling of beta. Conditional on the other effects the likelihood of beta_j is
  N(res_j, 1 / n_j) with ``res_j = bhat_j - sum_{k != j} R_jk beta_k`` and ``n_j = N_j / s``
  (exact for the model above), so with ``C1 = h2 / (M p)`` and ``C2 = n_j C1 / (1 + n_j C1)``

      P(beta_j != 0 | rest) = 1 / (1 + (1 - p)/p sqrt(1 + n_j C1) exp(-n_j C2 res_j^2 / 2)),
      beta_j | beta_j != 0, rest ~ N(C2 res_j, C2 / n_j),

  and ``R beta`` is updated by the column of R of each changed effect (residual updating:
  O(window) per SNP). ``auto`` then draws ``p ~ Beta(1 + M_c, 1 + M - M_c)`` (M_c the
  non-zero effects) and sets ``h2 = beta' R beta`` after each sweep, as LDpred2-auto. The
  reported effect is the Rao-Blackwellised mean of ``P(beta_j != 0) C2 res_j`` over the
  kept sweeps; with ``p = 1`` the chain's mean is the infinitesimal posterior mean (tested
  against :func:`ldpred_inf`). The first sweeps of auto can overshoot (all effects start at
  0, and in strong LD several SNPs take up one signal before the others give it back): h2 is
  held in [1e-4, 0.99] for the next sweep's prior. A chain whose h2 estimate is still at or
  above 1 after the burn-in, or whose effects stop being finite (LDpred2-auto's reported
  failure, e.g. with LD that does not match the summary statistics) is stopped and reported,
  never averaged into the result.

Effects are returned on the standardized scale (``beta_std``) and per copy of the reference's
A1 allele in phenotype standard deviations (``beta = beta_std / sqrt(2 p (1 - p))``, p the A1
frequency of the reference), ready for a polygenic score.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from numba import njit

from bayeslmm.errors import InputError, SamplingWarning
from bayeslmm.genotypes.ldmatrix import LDMatrix
from bayeslmm.io.sumstats import align_alleles

__all__ = ["SHRINKAGE", "LDpredFit", "ldpred_gibbs", "ldpred_inf", "marginal_correlations"]

log = logging.getLogger(__name__)


@dataclass
class LDpredFit:
    """Posterior SNP effects from summary statistics.

    Attributes
    ----------
    effects : pandas.DataFrame
        ``CHR SNP BP A1 A2 beta_std beta`` (and ``pip`` from the Gibbs sampler), one row per
        SNP in both the summary statistics and the LD matrix, in the matrix's order.
    method : str
        ``"inf"``, ``"grid"`` or ``"auto"``.
    h2, p : float
        The hyperparameters used (grid, inf) or their posterior means (auto).
    posterior : xarray.DataTree or None
        Gibbs: group ``posterior`` with ``p`` and ``h2`` per (chain, draw) (constant unless
        ``auto``), group ``snp_summary`` with ``beta_std`` and ``pip`` per SNP.
    """

    effects: pd.DataFrame
    method: str
    h2: float
    p: float
    posterior: xr.DataTree | None = None

    @property
    def nobs(self) -> int:
        """SNPs with an effect (M)."""
        return len(self.effects)


def marginal_correlations(sumstats: pd.DataFrame, ld: LDMatrix) -> tuple[np.ndarray, ...]:
    """Align ``SNP A1 A2 Z N`` (:func:`bayeslmm.io.sumstats.read_sumstats`) to the LD
    matrix's SNPs and alleles; return ``(positions in ld, bhat, N)`` with
    ``bhat = Z / sqrt(N + Z^2)`` (module docstring)."""
    ref = ld.snps[["SNP", "A1", "A2"]]
    ss = align_alleles(sumstats, ref)
    pos = pd.Index(ld.snps["SNP"]).get_indexer(ss["SNP"])
    order = np.argsort(pos)
    pos = pos[order]
    z = ss["Z"].to_numpy(np.float64)[order]
    n = ss["N"].to_numpy(np.float64)[order]
    log.info("LDpred: %d of %d SNPs of the LD matrix have summary statistics.", pos.size,
             ld.M)
    return pos, z / np.sqrt(n + z * z), n


def _effects(ld: LDMatrix, pos: np.ndarray, beta_std: np.ndarray, **extra) -> pd.DataFrame:
    snps = ld.snps.iloc[pos].reset_index(drop=True)
    p = snps["p"].to_numpy()
    sd = np.sqrt(2.0 * p * (1.0 - p))
    out = snps[["CHR", "SNP", "BP", "A1", "A2"]].assign(beta_std=beta_std, beta=beta_std / sd)
    return out.assign(**extra)


SHRINKAGE = ("exact", "published")


def _check_h2(h2: float, shrinkage: str) -> float:
    h2 = float(h2)
    if not 0.0 < h2 < 1.0:
        raise InputError(f"h2 must be in (0, 1), got {h2}")
    if shrinkage not in SHRINKAGE:
        raise InputError(f"shrinkage must be one of {SHRINKAGE}, got {shrinkage!r}")
    return h2


def ldpred_inf(sumstats: pd.DataFrame, ld: LDMatrix, h2: float,
               shrinkage: str = "exact") -> LDpredFit:
    """LDpred-inf: ``(R + diag(M s / (N_j h2)))^{-1} bhat`` (module docstring).

    Parameters
    ----------
    sumstats : pandas.DataFrame
        ``SNP A1 A2 Z N`` (:func:`bayeslmm.io.sumstats.read_sumstats`).
    ld : LDMatrix
        The reference's windowed correlations (:func:`bayeslmm.genotypes.ldmatrix.ld_matrix`).
    h2 : float
        SNP heritability (e.g. from LD score regression, ``bayeslmm ldsc --h2``).
    shrinkage : {"exact", "published"}
        s = 1 - h2 (SNP-BLUP's) or s = 1 (LDpred's published M / (N h2)).
    """
    from scipy.sparse.linalg import splu

    h2 = _check_h2(h2, shrinkage)
    s_e = 1.0 - h2 if shrinkage == "exact" else 1.0
    pos, bhat, n = marginal_correlations(sumstats, ld)
    M = pos.size
    R = ld.R[pos][:, pos].tocsc()
    beta = np.empty(M)
    ch = ld.snps["CHR"].to_numpy()[pos]
    starts = np.flatnonzero(np.r_[True, ch[1:] != ch[:-1]])
    for s, e in zip(starts, [*starts[1:], M], strict=True):
        A = R[s:e][:, s:e].tolil()
        A.setdiag(A.diagonal() + M * s_e / (n[s:e] * h2))
        beta[s:e] = splu(A.tocsc()).solve(bhat[s:e])
    log.info("LDpred-inf with h2 = %g over %d SNPs (%s shrinkage).", h2, M, shrinkage)
    return LDpredFit(_effects(ld, pos, beta), "inf", h2, 1.0)


@njit(cache=True)
def _gibbs_chain(indptr, indices, data, bhat, n, p, h2, burn, draws, auto, exact, seed):
    """One LDpred2 chain (module docstring): Rao-Blackwellised effect and inclusion sums and
    the (p, h2) of each kept sweep; ``ok`` False (and the sweep it failed at) when h2 left
    (0, 1) or an effect stopped being finite."""
    # numba compiles the legacy np.random calls (seeded per chain), not a Generator
    np.random.seed(seed)  # noqa: NPY002
    M = bhat.size
    beta = np.zeros(M)
    dot = np.zeros(M)  # R beta
    sum_beta = np.zeros(M)
    sum_pip = np.zeros(M)
    ps = np.empty(draws)
    h2s = np.empty(draws)
    # the likelihood's residual variance stays at the given h2's: updated with auto's h2 it
    # feeds back (a larger h2 sharpens the likelihood, more SNPs enter, h2 grows) to p -> 1
    s_e = 1.0 - h2 if exact else 1.0
    for it in range(burn + draws):
        C1 = h2 / (M * p)
        logit_p = np.log(p / (1.0 - p)) if p < 1.0 else np.inf
        nc = 0
        keep = it >= burn
        for j in range(M):
            nj = n[j] / s_e
            C2 = nj * C1 / (1.0 + nj * C1)
            res = bhat[j] - dot[j] + beta[j]
            if logit_p == np.inf:
                postp = 1.0
            else:
                lo = logit_p - 0.5 * np.log1p(nj * C1) + 0.5 * nj * C2 * res * res
                postp = 1.0 / (1.0 + np.exp(-lo)) if lo > -700 else 0.0
            new = 0.0
            if np.random.random() < postp:  # noqa: NPY002
                new = C2 * res + np.sqrt(C2 / nj) * np.random.standard_normal()  # noqa: NPY002
                nc += 1
            d = new - beta[j]
            if d != 0.0:
                for t in range(indptr[j], indptr[j + 1]):
                    dot[indices[t]] += d * data[t]
                beta[j] = new
            if keep:
                sum_beta[j] += postp * C2 * res
                sum_pip[j] += postp
        if auto:
            p = min(max(np.random.beta(1.0 + nc, 1.0 + M - nc), 1e-5), 1.0 - 1e-12)  # noqa: NPY002
            h2_raw = float(beta @ dot)
            # the first sweeps can overshoot (strong LD, all effects starting at 0): the
            # next sweep's prior takes h2 in [1e-4, 0.99]; a chain still above 1 once the
            # burn-in is over, or not finite, has diverged
            if not (np.isfinite(h2_raw) and np.all(np.isfinite(beta))) or \
                    (keep and h2_raw >= 1.0):
                return sum_beta, sum_pip, ps, h2s, False, it
            h2 = min(max(h2_raw, 1e-4), 0.99)
        if keep:
            ps[it - burn] = p
            h2s[it - burn] = h2
    return sum_beta / draws, sum_pip / draws, ps, h2s, True, it


def ldpred_gibbs(sumstats: pd.DataFrame, ld: LDMatrix, *, h2: float, p: float = 1.0,
                 auto: bool = False, burn: int = 500, draws: int = 1000, chains: int = 1,
                 shrinkage: str = "exact", seed: int = 0) -> LDpredFit:
    """LDpred2-grid (fixed ``p``, ``h2``) or LDpred2-auto (``auto=True``: ``p`` and ``h2``
    are sampled, starting from these) by Gibbs sampling (module docstring).

    Parameters
    ----------
    sumstats, ld
        As :func:`ldpred_inf`.
    h2 : float
        SNP heritability (auto: its starting value).
    p : float
        Fraction of non-zero effects in (0, 1] (auto: its starting value; 1 is the
        infinitesimal prior).
    burn, draws : int
        Sweeps discarded, then kept, per chain.
    chains : int
        Independent chains (seeds ``seed``, ``seed + 1``, ...); auto chains are summarised
        together (their R-hat and ESS: ``arviz_stats`` on ``posterior``).
    shrinkage : {"exact", "published"}
        As :func:`ldpred_inf`.

    Raises
    ------
    InputError
        Every chain diverged (h2 at or above 1 after the burn-in, or effects not finite);
        chains that diverge while others do not are left out, with a warning naming them.
    """
    h2 = _check_h2(h2, shrinkage)
    if not 0.0 < p <= 1.0:
        raise InputError(f"p must be in (0, 1], got {p}")
    if burn < 0 or draws < 1 or chains < 1:
        raise InputError("need burn >= 0, draws >= 1 and chains >= 1")
    pos, bhat, n = marginal_correlations(sumstats, ld)
    R = ld.R[pos][:, pos].tocsc()  # symmetric: column j's entries are row j's
    R.sort_indices()
    runs = [_gibbs_chain(R.indptr, R.indices, R.data, bhat, n, float(p), h2, int(burn),
                         int(draws), bool(auto), shrinkage == "exact", int(seed) + c)
            for c in range(chains)]
    bad = [c for c, r in enumerate(runs) if not r[4]]
    if bad:
        msg = (f"LDpred2-auto: chain(s) {bad} diverged (h2 at or above 1 after the burn-in, "
               f"or effects not finite; first at sweep {runs[bad[0]][5]}): does the LD "
               "reference match the summary statistics' samples and alleles?")
        if len(bad) == chains:
            raise InputError(msg + " No chain is left; nothing is written")
        warnings.warn(msg + " Those chains are left out.", SamplingWarning, stacklevel=2)
    out = [r for r in runs if r[4]]
    chains = len(out)
    beta = np.mean([o[0] for o in out], axis=0)
    pip = np.mean([o[1] for o in out], axis=0)
    ps = np.stack([o[2] for o in out])
    h2s = np.stack([o[3] for o in out])
    effects = _effects(ld, pos, beta, pip=pip)
    post = {"p": (("chain", "draw"), ps), "h2": (("chain", "draw"), h2s)}
    snp = {"beta_std": (("variant",), beta), "pip": (("variant",), pip)}
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post, coords={"chain": np.arange(chains),
                                              "draw": np.arange(draws)}),
        "snp_summary": xr.Dataset(snp, coords={"variant": effects["SNP"].to_numpy()})})
    method = "auto" if auto else "grid"
    fit = LDpredFit(effects, method, float(h2s.mean()), float(ps.mean()), tree)
    log.info("LDpred2-%s over %d SNPs, %d chain(s) x %d sweeps (+%d burn-in): h2 %.4f, "
             "p %.4g.", method, pos.size, chains, draws, burn, fit.h2, fit.p)
    return fit
