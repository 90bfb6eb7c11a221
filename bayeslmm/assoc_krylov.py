"""GRAMMAR and GRAMMAR-Gamma (BOLT-LMM-inf) association from a Krylov REML fit (notes 5.2.3).

With the BLUP residuals y~ = sigma_e2 P y (eq. 63; from the Krylov solve, no pass), every
SNP's statistic

    chi2_GRAMMAR = N (x'y~)^2 / ((x_perp'x_perp)(y~'y~))

needs x'y~ and x_perp'x_perp only (x_perp: x with the covariates projected out): one pass
over the genotypes gives both for all SNPs, as Z'[y~, Q] and the column sums of Z^2 (the
latter exact from the operator's genotype counts).
Standardizing a SNP (missing calls at the mean) changes neither, so the statistic equals
:func:`bayeslmm.assoc.assoc`'s on mean-imputed allele counts. GRAMMAR-Gamma divides by
c_inf, the mean over random SNPs of (GRAMMAR chi2) / (exact chi2); their exact denominators
x'Px come from one more block-Lanczos run started at those SNPs (Gauss quadrature of
x'H_c^-1x, converged like the REML solve).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from bayeslmm.errors import InputError
from bayeslmm.genotype_operator import GenotypeOperator
from bayeslmm.krylov import KrylovFit, block_lanczos

__all__ = ["assoc_krylov"]


def assoc_krylov(fit: KrylovFit, op: GenotypeOperator, *, n_calibration: int = 30,
                 n_steps: int = 20, seed: int = 0) -> xr.Dataset:
    """GRAMMAR and GRAMMAR-Gamma statistics of every SNP of ``op`` (1 + ``n_steps`` passes).

    Parameters
    ----------
    fit : KrylovFit
        The null REML fit, made with ``op`` (same samples and covariates).
    op : GenotypeOperator
        The operator of the fit (covariates projected).
    n_calibration : int
        Random SNPs for c_inf (0: GRAMMAR only, one pass).
    n_steps : int
        Lanczos steps of the calibration solves.
    seed : int
        Seed of the calibration SNPs.

    Returns
    -------
    xarray.Dataset
        Over ``variant`` (the SNPs passing the operator's QC): ``snp``, ``chrom``,
        ``chi2_grammar``, ``chi2`` (GRAMMAR-Gamma), ``p``; attributes ``c_inf``,
        ``lambda_gc``, ``n_samples``, ``calibration_variants`` (positions of the SNPs c_inf
        was estimated on).
    """
    if op.Q is None:
        raise InputError("assoc_krylov needs the operator of the Krylov fit (covariates "
                         "projected)")
    model = fit.model
    N = op.N
    ytilde = (1.0 - fit.h2) * model.solve_y(fit.h2)  # sigma_e2 P y, in units of Vp
    YQ = np.column_stack([ytilde, op.Q])
    # float64: these are the reported statistics themselves, not a stochastic estimate.
    Zt_YQ = op.rmatmat(YQ, precision="float64")
    zz = op.column_sumsq()  # exact from the genotype counts, no pass
    xy = Zt_YQ[:, 0]
    xperp2 = zz - (Zt_YQ[:, 1:] ** 2).sum(axis=1)
    yy = float(ytilde @ ytilde)
    poly = xperp2 > 1e-12 * max(float(zz.max()), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2_g = np.where(poly, N * xy**2 / (xperp2 * yy), np.nan)
    c_inf = 1.0
    cal = np.zeros(0, dtype=np.int64)
    if n_calibration > 0:
        rng = np.random.default_rng(seed)
        cand = np.flatnonzero(poly)
        if cand.size == 0:
            raise InputError("no polymorphic SNP to calibrate GRAMMAR-Gamma with")
        cal = np.sort(rng.choice(cand, size=min(n_calibration, cand.size), replace=False))
        (Zc,) = op.compute(op.Z[:, cal])
        Xc = op.project(Zc)
        lz = block_lanczos(op.matmat, Xc, n_steps)
        coords = lz.W.T @ lz.start
        xHx = (coords**2 / (fit.h2 * lz.theta + 1.0 - fit.h2)[:, None]).sum(axis=0)
        # c_j = N sigma_e2^2 x'Px / (x_perp'x_perp y~'y~) (uncalibrated / exact chi2) with
        # sigma_e2 = (1 - h2) Vp, x'Px = x'H_c^-1 x / Vp and y~ = (1 - h2) H_c^-1 y_c.
        c = N * ((1.0 - fit.h2) * fit.Vp) ** 2 * (xHx / fit.Vp) / (xperp2[cal] * yy)
        c_inf = float(np.mean(c))
    chi2 = chi2_g / c_inf
    ds = op.dataset
    finite = chi2[np.isfinite(chi2)]
    lam = float(np.median(finite) / 0.454936423119572) if finite.size else float("nan")
    return xr.Dataset(
        {"snp": ("variant", ds["snp"].to_numpy()), "chrom": ("variant", ds["chrom"].to_numpy()),
         "chi2_grammar": ("variant", chi2_g), "chi2": ("variant", chi2),
         "p": ("variant", special.chdtrc(1, chi2))},
        attrs={"test": "grammar-gamma", "c_inf": c_inf, "lambda_gc": lam, "n_samples": N,
               "engine": "krylov", "calibration_variants": cal})
