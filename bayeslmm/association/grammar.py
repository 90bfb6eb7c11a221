"""GRAMMAR and GRAMMAR-Gamma (BOLT-LMM-inf) association from a Krylov REML fit (notes 5.2.3).

With the BLUP residuals y~ = sigma_e2 P y (eq. 63; from the Krylov solve, no pass), every
SNP's statistic

    chi2_GRAMMAR = N (x'y~)^2 / ((x_perp'x_perp)(y~'y~))

needs x'y~ and x_perp'x_perp only (x_perp: x with the covariates projected out): one pass
over the genotypes gives both for all SNPs, as Z'[y~, Q] and the column sums of Z^2 (the
latter exact from the operator's genotype counts).
Standardizing a SNP (missing calls at the mean) changes neither, so the statistic equals
:func:`bayeslmm.association.fixed_variance.assoc`'s on mean-imputed allele counts. GRAMMAR-Gamma
divides by
c_inf, the mean over random SNPs of (GRAMMAR chi2) / (exact chi2); their exact denominators
x'Px come from one more block-Lanczos run started at those SNPs (Gauss quadrature of
x'H_c^-1x, converged like the REML solve).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from bayeslmm.covariance.lanczos import block_lanczos
from bayeslmm.errors import InputError
from bayeslmm.estimation.krylov import KrylovFit
from bayeslmm.genotypes.operator import GenotypeOperator

__all__ = ["assoc_krylov"]


def assoc_krylov(fit: KrylovFit, op: GenotypeOperator, *, test: str = "grammar-gamma",
                 n_calibration: int = 30, n_steps: int = 20, seed: int = 0) -> xr.Dataset:
    """GRAMMAR or GRAMMAR-Gamma statistics of every SNP of ``op`` (1 + ``n_steps`` passes).

    Parameters
    ----------
    fit : KrylovFit
        The null REML fit, made with ``op`` (same samples and covariates).
    op : GenotypeOperator
        The operator of the fit (covariates projected).
    test : {"grammar-gamma", "grammar"}
        Which statistic fills ``chi2``, ``beta``, ``se`` and ``p`` (``"grammar"``: one
        pass, no calibration).
    n_calibration : int
        Random SNPs for c_inf (0: GRAMMAR only, one pass).
    n_steps : int
        Lanczos steps of the calibration solves.
    seed : int
        Seed of the calibration SNPs.

    Returns
    -------
    xarray.Dataset
        Over ``variant`` (the SNPs passing the operator's QC), in the layout of
        :func:`bayeslmm.association.fixed_variance.assoc` (so the same writers take it): ``chrom``,
        ``snp``,
        ``pos``, ``a1``, ``a2``, ``af`` and ``n`` (A1 frequency and calls among the
        analysed samples), ``beta`` and ``se`` (per A1 allele: beta = x'y~ sigma_e2 / D,
        se = sigma_e2 / sqrt(D), D = c x_perp'x_perp y~'y~ / N, as ``assoc`` computes them),
        ``chi2``, ``p``, ``monomorphic``, ``filtered``; also ``chi2_grammar`` (uncalibrated).
        Attributes ``test``, ``c_inf``, ``lambda_gc``, ``n_samples``,
        ``calibration_variants`` (positions of the SNPs c_inf was estimated on).
    """
    if test not in ("grammar-gamma", "grammar"):
        raise InputError(f"the Krylov engine computes the 'grammar' and 'grammar-gamma' tests "
                         f"(BOLT-LMM-inf); got {test!r}. The exact test needs a "
                         "decomposition: engine 'eigen' or 'lowrank'")
    if test == "grammar":
        n_calibration = 0
    if op.Q is None:
        raise InputError("assoc_krylov needs the operator of the Krylov fit (covariates "
                         "projected)")
    model = fit.model
    N = op.N
    ytilde = (1.0 - fit.h2) * model.solve_y(fit.h2)  # sigma_e2 P y, in units of Vp
    YQ = np.column_stack([ytilde, op.Q])
    op.stage(f"{test} association", 1 + (n_steps + 1 if n_calibration > 0 else 0))
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
    # Per A1 allele: the operator's columns are z = (x - 2p) d (d = 1 / sqrt(2p(1-p)), p
    # over all of the dataset's samples), so x'y~ = z'y~ / d and x_perp'x_perp = z_perp'z_perp
    # / d^2; the coefficient of x is d times that of z.
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 / np.sqrt(2.0 * op.p * (1.0 - op.p))
        denom = c_inf * xperp2 * yy / N
        sigma_e2 = (1.0 - fit.h2) * fit.Vp
        beta = np.where(poly, xy * sigma_e2 / denom * d, np.nan)
        se = np.where(poly, sigma_e2 / np.sqrt(denom) * d, np.nan)
        called, allele_sum = op.row_stats[0], op.row_stats[1]
        af = allele_sum / (2.0 * called)
    ds = op.dataset
    finite = chi2[np.isfinite(chi2)]
    lam = float(np.median(finite) / 0.454936423119572) if finite.size else float("nan")
    cols = {name: ("variant", ds[name].to_numpy()) for name in ("chrom", "snp", "pos", "a1",
                                                                "a2")}
    return xr.Dataset(
        cols | {"af": ("variant", af), "n": ("variant", called.astype(np.int64)),
                "beta": ("variant", beta), "se": ("variant", se),
                "chi2": ("variant", chi2), "p": ("variant", special.chdtrc(1, chi2)),
                "chi2_grammar": ("variant", chi2_g), "monomorphic": ("variant", ~poly),
                "filtered": ("variant", np.zeros(poly.size, dtype=bool))},
        attrs={"test": test, "c_inf": c_inf, "lambda_gc": lam, "n_samples": N,
               "engine": "krylov", "calibration_variants": cal})
