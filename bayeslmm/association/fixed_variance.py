"""Mixed-model association tests for every SNP with V fixed at the null fit (notes 5.1, 5.2.3).

Three statistics share one null fit (REML or ML without the test SNP) and its decomposition:

``"exact"`` (notes eq. 55; the EMMAX / GCTA ``--mlma`` / FaST-LMM family)
    With P = V^-1 - V^-1X(X'V^-1X)^-1X'V^-1 the REML projection at the null estimates, the
    GLS estimate of the SNP effect with covariates X is beta = x'Py / x'Px, its standard
    error 1 / sqrt(x'Px) and chi2 = (x'Py)^2 / x'Px ~ chi2_1. (Eq. 55 is the M = 0 case;
    P projects the covariates out.) In the eigenbasis x'Px costs O(r) per SNP once U'x is
    known, and U'x is computed for a whole block of SNPs by one matrix product.

``"grammar"`` and ``"grammar-gamma"`` (notes 5.2.3; GRAMMAR, GRAMMAR-Gamma / BOLT-LMM-inf)
    With the BLUP residuals y-tilde = sigma_e2 P y (eq. 63) and x_perp the SNP with the
    covariates regressed out, chi2 = N (x'y-tilde)^2 / (c_inf (x_perp'x_perp)(y-tilde'y-tilde)).
    GRAMMAR takes c_inf = 1 (conservative); GRAMMAR-Gamma estimates c_inf as the mean over
    ``n_calibration`` random SNPs of the ratio of this uncalibrated statistic to the exact one,
    c_j = N sigma_e2^2 x_j'Px_j / ((x_j,perp'x_j,perp)(y-tilde'y-tilde)), which depends only
    on the denominators. These tests cost O(N) per SNP: no rotation.

Missing genotypes are replaced by the SNP's mean over the non-missing tested samples
(mean imputation, as GEMMA and GCTA do) before testing. A monomorphic SNP (no variation
among the tested samples, or no call at all) gets NaN statistics and ``monomorphic = True``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special
from scipy.linalg import blas

from bayeslmm.association.catalogue import ALIASES, PER_SNP_TESTS, TESTS
from bayeslmm.association.per_snp import gemma_basis, per_snp_block
from bayeslmm.blup import FittedModel
from bayeslmm.covariance.structures import (
    Covariates,
    DenseCovariance,
    SpectralCovariance,
    inverse_cholesky,
)
from bayeslmm.data import sample_index
from bayeslmm.errors import AlignmentError, InputError
from bayeslmm.estimation.reml import ml as ml_fit
from bayeslmm.estimation.reml import reml as reml_fit
from bayeslmm.genotypes.kinship import iter_variant_blocks, loco_grms
from bayeslmm.likelihood import tails
from bayeslmm.progress import progress_bar

if TYPE_CHECKING:
    from bayeslmm.estimation.reml import VarianceComponentFit

__all__ = ["ALIASES", "STRATEGIES", "TESTS", "assoc", "genomic_control", "loco_fits", "one_test"]

log = logging.getLogger(__name__)

TestName = Literal["exact", "grammar", "grammar-gamma", "wald", "lrt", "score", "mlma"]
#: median of chi2_1, the denominator of the genomic-control lambda
CHI2_MEDIAN = float(tails.chi2_ppf(0.5, 1))
#: show a progress bar by default from this many blocks on
PROGRESS_MIN_BLOCKS = 20


def chi2_sf(chi2: np.ndarray) -> np.ndarray:
    """P(chi2_1 > x) = erfc(sqrt(x / 2)): the same function as ``tails.chi2_sf(x, 1)``,
    several times faster on a genome's worth of statistics."""
    with np.errstate(invalid="ignore"):
        return special.erfc(np.sqrt(np.asarray(chi2, dtype=np.float64) / 2.0))


def genomic_control(chi2: np.ndarray) -> float:
    """lambda_GC = median(chi2) / 0.4549 over the finite statistics (Devlin & Roeder)."""
    c = np.asarray(chi2, dtype=np.float64)
    c = c[np.isfinite(c)]
    return float(np.median(c) / CHI2_MEDIAN) if c.size else float("nan")


# ----------------------------------------------------------------------------- the null
STRATEGIES = ("auto", "rotation", "cholesky")


@dataclass(frozen=True, eq=False)
class _Null:
    """Everything a test needs from one null fit, computed once (O(N r) or O(N^3) dense).

    Two ways to get x'V^-1x for every SNP, chosen by cost (``strategy="auto"``): rotating by
    K's eigenvectors, 2 N r flops per SNP (one kernel of rank r < N / 2), or multiplying by
    the inverse Cholesky factor of V, N^2 flops per SNP at matrix-multiply speed (full-rank
    or several kernels). Both come from the covariance object; nothing here forms V.
    """

    fit: VarianceComponentFit
    X: np.ndarray
    Py: np.ndarray           # P y = V^-1 (y - X beta-hat)
    ytilde: np.ndarray       # sigma_e2 P y, the BLUP residuals (63)
    C: np.ndarray            # (X'V^-1X)^-1
    XtX_inv: np.ndarray      # (X'X)^-1 for x_perp
    sigma_e2: float
    strategy: str            # "rotation" or "cholesky"
    cov: SpectralCovariance | DenseCovariance
    sigma2: np.ndarray
    Q: np.ndarray            # orthonormal basis of span(X)
    C_Q: np.ndarray | None   # (Q'V^-1Q)^-1 (rotation)
    Uinv: np.ndarray | None = None  # (L^-1)' = U^-1 for V = L L' = U'U (cholesky)
    LX: np.ndarray | None = None    # L^-1 X
    R: np.ndarray | None = None     # [P y, y-tilde, X], Fortran order: one product per block
    XF: np.ndarray | None = None    # X in Fortran order

    @classmethod
    def from_fit(cls, fit: VarianceComponentFit, strategy: str = "auto") -> _Null:
        if strategy not in STRATEGIES:
            raise InputError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        sol = FittedModel(fit)
        X, cov = sol.X, sol.cov
        spectral = isinstance(cov, SpectralCovariance)
        if strategy == "auto":
            strategy = "rotation" if spectral and cov.rank < cov.N / 2 else "cholesky"
        if strategy == "rotation" and not spectral:
            raise InputError("the rotation strategy needs a one-kernel (spectral) fit")
        Q = Covariates.of(X).Q
        Uinv = LX = C_Q = None
        if strategy == "cholesky":
            Uinv = inverse_cholesky(cov, sol.sigma2)
            if Uinv is None:
                if not spectral:
                    raise InputError("V is not positive definite at the null estimates")
                strategy = "rotation"  # V singular (h2 = 1): the eigenbasis still works
            else:
                LX = Uinv.T @ X
        if strategy == "rotation":
            rQ = cov.rotate(Q)
            w, w0 = (v[0] for v in cov.weights(sol.sigma2[0], sol.sigma2[-1]))
            C_Q = np.linalg.inv(rQ.gram(w, w0))
        ytilde = sol.sigma_e2 * sol.Py
        R = np.asfortranarray(np.column_stack([sol.Py, ytilde, X]))
        return cls(fit=fit, X=X, Py=sol.Py, ytilde=ytilde, C=sol.C,
                   XtX_inv=np.linalg.inv(X.T @ X), sigma_e2=sol.sigma_e2, strategy=strategy,
                   cov=cov, sigma2=sol.sigma2, Q=Q, C_Q=C_Q, Uinv=Uinv, LX=LX, R=R,
                   XF=np.asfortranarray(X))

    def products(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x'Py, x'y-tilde, X'x) for every column of G, in one pass over the block."""
        out = _gemm_tn(G, self.R)
        return out[:, 0], out[:, 1], out[:, 2:].T

    def xPx(self, G: np.ndarray, cols: np.ndarray | None = None,
            work: np.ndarray | None = None) -> np.ndarray:
        """diag(G'PG) over the columns ``cols`` of a block G (N, B):
        x'V^-1x - (X'V^-1x)' C (X'V^-1x) per column.

        With the Cholesky factor the columns are gathered, a chunk at a time, into the
        Fortran-ordered buffer ``work`` (N, W) and multiplied by L^-1 in place: no block-sized
        temporaries, whose first touch costs more than the product on some machines.
        """
        if cols is None:
            cols = np.arange(G.shape[1])
        if self.Uinv is not None:
            if work is None:
                work = np.empty((G.shape[0], max(1, min(len(cols), 1024))), order="F")
            W = work.shape[1]
            xVx = np.empty(len(cols))
            XVx = np.empty((self.X.shape[1], len(cols)))
            for a in range(0, len(cols), W):
                c = cols[a:a + W]
                buf = work[:, :len(c)]
                # Gather rows of G' into rows of buf' (C order both ways for a Fortran
                # block); mode="clip" (the indices are valid) spares take its buffered copy.
                np.take(G.T, c, axis=0, out=buf.T, mode="clip")
                # P X = 0, so x'Px = x_c'Px_c for x_c = x - X (X'X)^-1 X'x. Without this
                # the covariate (intercept) part of x'V^-1x cancels against the correction
                # term: at h2 -> 1, V^-1 weighs the intercept by 1 / sigma_e2 and digits go.
                coef = blas.dgemm(1.0, self.XtX_inv, _gemm_tn(self.XF, buf))
                buf = blas.dgemm(-1.0, self.XF, coef, beta=1.0, c=buf, overwrite_c=1)
                LG = blas.dtrmm(1.0, self.Uinv, buf, lower=0, trans_a=1, overwrite_b=1)
                xVx[a:a + len(c)] = np.einsum("ij,ij->j", LG, LG)
                XVx[:, a:a + len(c)] = _gemm_tn(self.LX, LG)
            return xVx - np.einsum("mb,mb->b", XVx, self.C @ XVx)
        # Rotation: project the covariates out first (x'Px = x_c'Px_c, as above), then
        # x_c'V^-1x_c and Q'V^-1x_c in the eigenbasis, O(N r) per SNP.
        G = G[:, cols]
        Gc = G - self.Q @ (self.Q.T @ G)
        xVx, QVx = self.cov.block_quadratics(Gc, self.Q, self.sigma2)
        return xVx - np.einsum("mb,mb->b", QVx, self.C_Q @ QVx)

    def xperp2(self, XG: np.ndarray, gg: np.ndarray) -> np.ndarray:
        """x_perp'x_perp = x'x - x'X (X'X)^-1 X'x per column, from X'G and diag(G'G)."""
        return gg - np.einsum("mb,mb->b", XG, self.XtX_inv @ XG)


def _gemm_tn(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A' B through scipy's BLAS, the library of the triangular product.

    numpy and scipy wheels each bundle an OpenBLAS with its own thread pool, whose workers
    spin for a while after every call: alternating the two in the per-block loop leaves one
    pool spinning on a core the other needs (the 2-thread product then runs at 1-thread
    speed). So the loop calls one library only.
    """
    if A.flags.f_contiguous and B.flags.f_contiguous:
        return blas.dgemm(1.0, A, B, trans_a=1)
    if A.flags.c_contiguous and B.flags.c_contiguous:
        # A C-ordered array's transpose is Fortran-ordered: A'B = (B'A)' = ((B.T) (A.T)')'.
        return blas.dgemm(1.0, B.T, A.T, trans_b=1).T
    return blas.dgemm(1.0, np.asfortranarray(A), np.asfortranarray(B), trans_a=1)


# ----------------------------------------------------------------------------- genotypes
@dataclass(frozen=True)
class _Source:
    """Genotypes as blocks of (N_fit, B) allele counts aligned to the fit's samples."""

    P: int
    meta: dict[str, np.ndarray]
    blocks: object  # callable(list_of_variant_index_arrays) -> iterator of (idx, G)


def _meta_from(obj, P: int, given: dict) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    defaults = {"chrom": np.full(P, "", dtype=object), "snp": np.array(
        [f"v{j}" for j in range(P)], dtype=object), "pos": np.full(P, -1, dtype=np.int64),
        "a1": np.full(P, "", dtype=object), "a2": np.full(P, "", dtype=object)}
    for name, default in defaults.items():
        val = given.get(name)
        if val is None and obj is not None and name in getattr(obj, "coords", {}):
            val = obj.coords[name].values
        if val is None and obj is not None and isinstance(obj, xr.Dataset) and name in obj:
            val = obj[name].values
        if val is None:
            val = default
        val = np.asarray(val)
        if val.shape != (P,):
            raise InputError(f"{name} has shape {val.shape}; expected ({P},), one per variant")
        out[name] = val.astype(np.int64) if name == "pos" else val.astype(str).astype(object)
    return out


def _sample_index(labels, fit_samples: np.ndarray, n_rows: int) -> np.ndarray | None:
    """Rows of the genotype matrix in the fit's sample order (None = already aligned), by
    the package's one alignment rule (:func:`bayeslmm.data.sample_index`)."""
    if labels is None and n_rows != len(fit_samples):
        raise InputError(f"genotypes have {n_rows} samples but the fit has {len(fit_samples)}; "
                         "give labelled genotypes (xarray with a 'sample' coordinate) to align")
    have = None if labels is None else np.asarray(labels).astype(str)
    return sample_index(np.asarray(fit_samples), have, "the genotypes")


def _as_source(genotypes, fit_samples: np.ndarray, given: dict) -> _Source:
    if isinstance(genotypes, xr.Dataset):
        ds = genotypes
        labels = ds["sample"].values if "sample" in ds.coords else None
        idx = _sample_index(labels, fit_samples, ds.sizes["sample"])
        if idx is not None:
            ds = ds.isel(sample=idx)
        P = ds.sizes["variant"]
        if "genotype" in ds:
            return _as_source(ds["genotype"], fit_samples, {**_meta_from(ds, P, given)})
        def blocks(groups):
            for g in groups:
                for blk in iter_variant_blocks(ds, variants=g, block_size=max(len(g), 1)):
                    yield blk.variants, blk.genotypes

        return _Source(P, _meta_from(ds, P, given), blocks)
    if isinstance(genotypes, xr.DataArray):
        if set(genotypes.dims) != {"sample", "variant"}:
            raise InputError(f"genotype DataArray must have dims (sample, variant), got "
                             f"{genotypes.dims}")
        da = genotypes.transpose("sample", "variant")
        labels = da["sample"].values if "sample" in da.coords else None
        arr = da.values
        meta = _meta_from(da, arr.shape[1], given)
    else:
        import pandas as pd

        labels = genotypes.index.values if isinstance(genotypes, pd.DataFrame) else None
        if isinstance(genotypes, pd.DataFrame) and given.get("snp") is None:
            given = {**given, "snp": genotypes.columns.astype(str).values}
        arr = np.asarray(genotypes)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"genotypes must be a (samples, variants) matrix, got {arr.shape}")
        meta = _meta_from(None, arr.shape[1], given)
    idx = _sample_index(labels, fit_samples, arr.shape[0])
    if idx is not None:
        arr = arr[idx]  # one gather into the fit's order, not one per block
    _check_allele_counts(arr, fit_samples, meta["snp"])

    def blocks(groups):
        for g in groups:
            # A run of consecutive variants is a slice (a view, no gather).
            cols = slice(int(g[0]), int(g[-1]) + 1) if len(g) and g[-1] - g[0] == len(g) - 1 \
                else g
            G = arr[:, cols]
            yield g, np.asarray(G, dtype=np.float64)

    return _Source(arr.shape[1], meta, blocks)


def _check_allele_counts(arr, samples, snps) -> None:
    """In-memory genotypes must be allele counts 0/1/2 or missing (NaN); name the first
    offender. (Files read by bayeslmm.io are valid by construction.)"""
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(arr) & (arr != 0) & (arr != 1) & (arr != 2)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(f"genotypes must be allele counts 0, 1, 2 or missing (NaN); "
                         f"{int(bad.sum())} entries are not, the first {float(arr[i, j])!r} "
                         f"at sample {str(samples[i])!r}, SNP {str(snps[j])!r}")


def _impute(G: np.ndarray):
    """Mean-impute NaN per column.

    Returns G (a copy only if something was imputed), n called, A1 frequency, the
    monomorphic flag and the column sums of squares (reused by the GRAMMAR tests).
    """
    N = G.shape[0]
    colsum = G.sum(axis=0)  # NaN exactly where a call is missing
    gg = np.einsum("ij,ij->j", G, G)
    n = np.full(G.shape[1], N, dtype=np.int64)
    gaps = np.flatnonzero(np.isnan(colsum))
    if gaps.size:
        sub = G[:, gaps]
        miss = np.isnan(sub)
        n[gaps] = N - miss.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n[gaps] > 0, np.where(miss, 0.0, sub).sum(axis=0)
                            / np.maximum(n[gaps], 1), np.nan)
        sub = np.where(miss, mean[None, :], sub)
        G = G.copy(order="F")  # never write into the caller's genotypes
        G[:, gaps] = sub
        colsum[gaps] = sub.sum(axis=0)
        gg[gaps] = np.einsum("ij,ij->j", sub, sub)
    mean = colsum / N  # = the mean of the called genotypes (imputed values are that mean)
    # Monomorphic among the tested samples: every value equals the mean. The centred sum of
    # squares rules most columns out at once; the exact max - min test runs on the rest.
    with np.errstate(invalid="ignore"):
        maybe = ~(gg - colsum * mean > 1e-9 * np.maximum(gg, 1.0))
    mono = n == 0
    cand = np.flatnonzero(maybe & ~mono)
    if cand.size:
        sub = G[:, cand]
        mono[cand] = sub.max(axis=0) - sub.min(axis=0) <= 1e-12
    return G, n, mean / 2.0, mono, gg


def _groups(idx: np.ndarray, block_size: int) -> list[np.ndarray]:
    return [idx[a:a + block_size] for a in range(0, len(idx), block_size)]


# ----------------------------------------------------------------------------- public
def assoc(fit: VarianceComponentFit | None, genotypes,
          test: TestName | Sequence[TestName] = "wald", *,
          loco: Mapping[str, VarianceComponentFit] | None = None,
          n_calibration: int = 30, seed: int | np.random.Generator | None = 0,
          min_maf: float = 0.0, max_missing: float = 1.0, max_r2: float | None = None,
          block_size: int | None = None, progress: bool | None = None,
          strategy: str = "auto", chrom=None, snp=None, pos=None, a1=None, a2=None
          ) -> xr.Dataset | dict[str, xr.Dataset]:
    """Test every SNP for association under the mixed model (notes 5.1, 5.2.3).

    Model under test: y = X beta + x gamma + g + e, g ~ N(0, sigma_g2 K). Two families of
    tests: with the variances re-fitted for every SNP, as GEMMA does (the default,
    ``"wald"``; :mod:`bayeslmm.association.per_snp`), or fixed at the null (no-SNP) fit,
    one variance fit for all SNPs (``"exact"``, alias ``"mlma"``: EMMAX / GCTA ``--mlma``;
    the GRAMMAR tests: BOLT-LMM-inf).

    * ``"wald"``, ``"lrt"``, ``"score"``: GEMMA's ``-lmm 1``, ``-lmm 2``, ``-lmm 3``, with
      GEMMA's kernel (centred over the tested samples), lambda searches and reference
      distributions (F(1, n - c - 1) for Wald and score, chi2_1 for the likelihood ratio);
      ``lambda`` is the re-fitted variance ratio (REML for Wald, ML for the LRT, the null
      ML for the score test) and ``logl_H1`` the maximised log-likelihood (REML for Wald,
      ML for the LRT), GEMMA's ``l_remle``/``l_mle`` and ``logl_H1``. Their ``chi2`` is the
      chi2_1 value of the same p (for the genomic-control lambda).

    * ``"exact"``: beta = x'Py / x'Px, se = 1 / sqrt(x'Px), chi2 = (x'Py)^2 / x'Px (eq. 55
      with the covariates projected out by P = V^-1 - V^-1X(X'V^-1X)^-1X'V^-1).
    * ``"grammar"``: chi2 = N (x'y-tilde)^2 / ((x_perp'x_perp)(y-tilde'y-tilde)) with the BLUP
      residuals y-tilde = sigma_e2 P y (eq. 63; notes 5.2.3 with c_inf = 1).
    * ``"grammar-gamma"``: the same divided by c_inf, the mean over ``n_calibration`` random
      polymorphic SNPs of (uncalibrated chi2) / (exact chi2) (GRAMMAR-Gamma; BOLT-LMM-inf).
      For the two GRAMMAR tests ``beta`` and ``se`` are the exact-test quantities with
      x'Px replaced by its calibrated approximation c_inf (x_perp'x_perp)(y-tilde'y-tilde) /
      (N sigma_e2^2), so (beta / se)^2 = chi2.

    The fixed-variance tests' p-values are from chi2_1. Missing genotypes are mean-imputed
    per SNP (mean of the non-missing tested samples) before testing; ``n`` and ``af`` count
    only called genotypes (``af``: the frequency of the counted allele over the tested
    samples, as GEMMA).

    Parameters
    ----------
    fit : VarianceComponentFit or None
        The null fit (one kernel: spectral, O(N r) per SNP; several kernels: dense,
        O(N^2) per SNP). May be None when ``loco`` is given.
    genotypes : xarray.Dataset, xarray.DataArray, pandas.DataFrame or ndarray
        Allele counts 0/1/2 (NaN missing), dims (sample, variant). A Dataset from
        :func:`bayeslmm.io.read_plink` may be lazy (read in blocks). Samples are aligned to
        the fit by label when both carry labels; a bare array must be in the fit's order.
        Coordinates ``chrom, snp, pos, a1, a2`` are carried to the result.
    test : {"wald", "lrt", "score", "exact" (or "mlma"), "grammar", "grammar-gamma"} or a
        sequence of them
        Several tests run in one pass over the genotypes (read, imputed and projected once;
        GRAMMAR-Gamma then calibrates on the exact test's own denominators) and come back
        as one Dataset with a ``test`` dimension; :func:`one_test` takes one out, equal to
        the Dataset of a separate call.
    loco : True, or mapping chromosome -> VarianceComponentFit, optional
        Leave-one-chromosome-out: each chromosome's SNPs are tested against the null fit
        whose kernel omits that chromosome. Every tested chromosome must have an entry.
        ``True`` builds them: one GRM per left-out chromosome from ``genotypes`` (a PLINK
        dataset) and a refit of ``fit``'s phenotype and covariates on each.
    n_calibration : int
        Random SNPs used to estimate c_inf (``"grammar-gamma"``; per LOCO fit).
    seed : int or Generator
        Randomness of the calibration draw.
    min_maf, max_missing : float
        Quality control as GEMMA's ``-maf`` / ``-miss`` (GEMMA's defaults are 0.01 and 0.05;
        ours test everything): SNPs with minor allele frequency below ``min_maf`` or a
        fraction of missing calls above ``max_missing`` among the tested samples are not
        tested (NaN statistics, ``filtered = True``).
    max_r2 : float, optional
        GEMMA's ``-r2`` (0.9999 by default there; ``--format gemma`` sets it): with covariates
        besides the intercept, a SNP whose mean-imputed allele counts x have
        x'W (W'W)^-1 W'x / x'x above ``max_r2`` (W the covariates) is not tested either.
    block_size : int, optional
        SNPs per block (read, imputed and multiplied together; memory ~ 8 N block_size
        bytes x 3). Default: blocks of about 16 MB (at least 256 SNPs), small enough for
        the allocator to recycle their memory from block to block.
    progress : bool, optional
        tqdm bar; default on when there are at least 20 blocks.
    strategy : {"auto", "rotation", "cholesky"}
        How x'V^-1x is computed per SNP: by K's eigenvectors (2 N r flops per SNP) or by the
        inverse Cholesky factor of V (N^2 flops, at matrix-multiply speed). ``"auto"``
        rotates when the fit has one kernel of rank r < N / 2, else uses Cholesky.
    chrom, snp, pos, a1, a2 : array_like, optional
        Variant metadata for a bare matrix (override coordinates).

    Returns
    -------
    xarray.Dataset (with a ``test`` dimension for a sequence of tests)
        Over ``variant``: ``chrom, snp, pos, a1, a2, af, n, beta, se, chi2, p, lambda,
        logl_H1, monomorphic, filtered`` (``ds.to_dataframe()`` gives one row per SNP;
        ``lambda`` is the null fit's sigma_g2 / sigma_e2 for the fixed-variance tests and
        ``logl_H1`` NaN). Attributes: ``test``,
        ``lambda_gc`` (median chi2 / 0.4549), ``c_inf``, ``n_samples``, ``n_filtered``,
        ``sigma_g2``, ``sigma_e2``, ``loco``.

    Examples
    --------
    >>> import numpy as np, bayeslmm
    >>> from bayeslmm.association.fixed_variance import assoc
    >>> rng = np.random.default_rng(0)
    >>> G = rng.binomial(2, 0.3, (200, 300)).astype(float)
    >>> Z = (G - G.mean(0)) / G.std(0); K = Z @ Z.T / 300
    >>> y = Z @ rng.normal(0, 0.05, 300) + rng.normal(0, 1, 200)
    >>> res = assoc(bayeslmm.reml(y, K), G, ["wald", "exact"])
    >>> res.sizes["variant"], bool(np.isfinite(res.p).all())
    (300, True)
    """
    single = isinstance(test, str)
    tests = [test] if single else list(test)
    if not tests:
        raise InputError(f"give at least one test of {TESTS}")
    tests = [str(t).lower() for t in tests]
    for t in tests:
        if t not in TESTS and t not in ALIASES:
            raise InputError(f"test must be one of {(*TESTS, *ALIASES)}, got {t!r}")
    tests = list(dict.fromkeys(ALIASES.get(t, t) for t in tests))
    if not 0.0 <= min_maf <= 0.5:
        raise InputError(f"min_maf must be in [0, 0.5], got {min_maf}")
    if not 0.0 <= max_missing <= 1.0:
        raise InputError(f"max_missing must be in [0, 1], got {max_missing}")
    if loco is None and fit is None:
        raise InputError("give a null fit, or a LOCO mapping chromosome -> fit")
    if loco is True:
        # Build the LOCO null fits from the genotypes themselves, with the fit's y and X.
        if fit is None or not isinstance(genotypes, xr.Dataset) or "chrom" not in genotypes:
            raise InputError("loco=True builds the per-chromosome null fits from the "
                             "genotypes: give the genome-wide fit and a PLINK dataset "
                             "(bayeslmm.io.read_plink), or a mapping chromosome -> fit")
        loco = loco_fits(loco_grms(genotypes, progress=progress), *fit_inputs(fit),
                         ml=not fit.reml)
    if loco is not None and not isinstance(loco, Mapping):
        raise InputError(
            f"loco must be True or a mapping chromosome -> null fit (one REML fit per "
            f"chromosome on its leave-one-chromosome-out GRM, e.g. from "
            f"bayeslmm.genotypes.kinship.loco_grms), got {type(loco).__name__}")
    if n_calibration < 1:
        raise InputError(f"n_calibration must be at least 1, got {n_calibration}")
    if block_size is not None and block_size < 1:
        raise InputError(f"block_size must be positive, got {block_size}")
    ref = fit if fit is not None else next(iter(loco.values()))
    fit_samples = np.asarray(ref.data.samples).astype(str)
    src = _as_source(genotypes, fit_samples,
                     {"chrom": chrom, "snp": snp, "pos": pos, "a1": a1, "a2": a2})
    P, N = src.P, len(fit_samples)
    if block_size is None:
        block_size = max(256, (2 << 20) // max(N, 1))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    # Which null fit tests which SNPs.
    if loco is not None:
        loco = {str(k): v for k, v in loco.items()}
        chroms = src.meta["chrom"]
        plan: list[tuple[VarianceComponentFit, np.ndarray]] = []
        for c in dict.fromkeys(chroms):
            if c not in loco:
                raise InputError(f"no LOCO fit for chromosome {c!r}; the mapping has "
                                 f"{sorted(loco)}")
            f = loco[c]
            if not np.array_equal(np.asarray(f.data.samples).astype(str), fit_samples):
                raise AlignmentError(f"the LOCO fit of chromosome {c!r} has other samples "
                                     "than the first fit; fit all on the same samples")
            plan.append((f, np.flatnonzero(chroms == c)))
    else:
        plan = [(fit, np.arange(P))]

    shared = {"af": np.full(P, np.nan), "n": np.zeros(P, dtype=np.int64),
              "monomorphic": np.zeros(P, dtype=bool), "filtered": np.zeros(P, dtype=bool)}
    stat = {t: {k: np.full(P, np.nan) for k in ("beta", "se", "chi2", "p", "lambda", "logl")}
            for t in tests}
    per_snp = [t for t in tests if t in PER_SNP_TESTS]
    fixed = [t for t in tests if t not in PER_SNP_TESTS]
    bases = []
    c_values: dict[str, list[float]] = {t: [] for t in tests if t != "exact"}
    n_blocks = sum(math.ceil(len(v) / block_size) for _, v in plan)
    show = progress if progress is not None else n_blocks >= PROGRESS_MIN_BLOCKS
    bar = None
    if show:
        bar = progress_bar(total=P, desc=f"assoc ({', '.join(tests)})", unit="SNP")
    exact = "exact" in tests
    # Columns multiplied by L^-1 at a time: a buffer of about 24 MB, reused by every block
    # (under glibc's 32 MB mmap ceiling, so later calls get it back without page faults).
    work_width = max(64, min(block_size, (3 << 20) // max(N, 1)))
    work = None
    grammar = [t for t in fixed if t != "exact"]
    need_cal = "grammar-gamma" in tests
    for f, variants in plan:
        null = _Null.from_fit(f, strategy) if fixed else None
        basis = _gemma_basis(f, per_snp) if per_snp else None
        bases.append(basis)
        # Calibration candidates: a random order of this fit's SNPs; the first
        # n_calibration polymorphic ones are used, found during the single pass.
        order = np.empty(0, dtype=np.int64)
        if need_cal:
            order = rng.permutation(variants)[: min(len(variants), 4 * n_calibration + 10)]
        cand_rank = {int(v): i for i, v in enumerate(order)}
        cal: dict[int, float] = {}
        raw = []
        for idx, G in _iter(src, variants, block_size):
            if bar is not None:
                bar.update(len(idx))
            G, n, af, mono, gg = _impute(G)
            shared["n"][idx], shared["af"][idx], shared["monomorphic"][idx] = n, af, mono
            ok = ~mono
            if min_maf > 0 or max_missing < 1 or max_r2 is not None:
                filt = ok & ((np.minimum(af, 1.0 - af) < min_maf) | (1.0 - n / N > max_missing))
                W = f.data.X
                if max_r2 is not None and W.shape[1] > 1:  # GEMMA: uncentred x, as GEMMA
                    Wx = W.T @ G
                    with np.errstate(invalid="ignore", divide="ignore"):
                        r2 = np.einsum("cb,cb->b", Wx, np.linalg.solve(W.T @ W, Wx)) / gg
                    filt |= ok & (r2 > max_r2)
                shared["filtered"][idx] = filt
                ok &= ~filt
            cols = np.flatnonzero(ok)
            if not cols.size:
                continue
            ik = idx[cols]
            if per_snp:
                res = per_snp_block(basis, G[:, cols], per_snp)
                for t in per_snp:
                    for k_out, k_in in (("beta", "beta"), ("se", "se"), ("p", "p"),
                                        ("lambda", "lam"), ("logl", "logl")):
                        stat[t][k_out][ik] = res[t][k_in]
            if not fixed:
                continue
            # O(N) per SNP: cheaper on the whole block than after gathering the kept columns.
            xPy, xy, XG = (a[..., cols] for a in null.products(G))
            if grammar:
                xx = null.xperp2(XG, gg[cols])
                raw.append((ik, xy, xx))
            xPx = None
            if exact:
                if work is None and null.Uinv is not None:
                    work = np.empty((N, work_width), order="F")
                xPx = null.xPx(G, cols, work)
                s = stat["exact"]
                s["beta"][ik] = xPy / xPx
                s["se"][ik] = 1.0 / np.sqrt(xPx)
                s["chi2"][ik] = xPy * xPy / xPx
            if need_cal:
                sel = np.isin(ik, order)
                if sel.any():
                    # The exact denominators, already at hand when "exact" is run too.
                    xPx_c = xPx[sel] if xPx is not None else null.xPx(G, cols[sel], work)
                    for v, q, x2 in zip(ik[sel], xPx_c, xx[sel], strict=True):
                        cal[cand_rank[int(v)]] = q / x2
        if grammar:
            yy = float(null.ytilde @ null.ytilde)
            s2 = null.sigma_e2 ** 2
        for t in grammar:
            if t == "grammar-gamma":
                ratios = np.array([cal[i] for i in sorted(cal)][:n_calibration])
                if ratios.size == 0:
                    raise InputError("no polymorphic SNP to calibrate GRAMMAR-Gamma with")
                # c_j = N s^2 x'Px / (x_perp'x_perp y~'y~): uncalibrated / exact chi2.
                c = float(np.mean(N * s2 * ratios / yy))
            else:
                c = 1.0
            c_values[t].append(c)
            s = stat[t]
            for ik, xy, xx in raw:
                denom = c * xx * yy / N  # approximates sigma_e2^2 x'Px
                s["chi2"][ik] = xy * xy / denom
                s["beta"][ik] = xy * null.sigma_e2 / denom
                s["se"][ik] = null.sigma_e2 / np.sqrt(denom)
    if bar is not None:
        bar.close()
    meta = src.meta
    fits = [f for f, _ in plan]
    results = {}
    # Variables common to every test are built once (xarray's handling of the string
    # columns costs more than the statistics) and copied into the per-test Datasets.
    common = xr.Dataset(
        {name: ("variant", meta[name]) for name in ("chrom", "snp", "pos", "a1", "a2")}
        | {name: ("variant", shared[name]) for name in ("af", "n")})
    flags = {name: ("variant", shared[name]) for name in ("monomorphic", "filtered")}
    for t in tests:
        s = stat[t]
        if t in PER_SNP_TESTS:
            # chi2: the chi2_1 value of the same p (GEMMA's Wald and score tests are F tests)
            s["chi2"] = tails.chi2_isf(s["p"], 1)
        else:
            s["p"] = chi2_sf(s["chi2"])
            s["lambda"][:] = float(np.sum(fits[0].sigma2[:-1]) / fits[0].sigma2[-1])
        data = {name: ("variant", s[name]) for name in ("beta", "se", "chi2", "p", "lambda")}
        data["logl_H1"] = ("variant", s["logl"])
        cv = c_values.get(t, [])
        attrs = {
            "test": t,
            "lambda_gc": genomic_control(s["chi2"]),
            "c_inf": (float(np.mean(cv)) if cv else float("nan")),
            "n_samples": N,
            "n_variants": P,
            "n_monomorphic": int(shared["monomorphic"].sum()),
            "n_filtered": int(shared["filtered"].sum()),
            "min_maf": float(min_maf),
            "max_missing": float(max_missing),
            "sigma_g2": float(np.sum(fits[0].sigma2[:-1])),
            "sigma_e2": float(fits[0].sigma2[-1]),
            "loco": int(loco is not None),
            "imputation": "mean",
        }
        if t in PER_SNP_TESTS:
            b0 = bases[0]
            attrs |= {"df": b0.n - b0.c - 1, "lambda_mle_null": b0.l_mle_null,
                      "lambda_remle_null": b0.l_remle_null,
                      "logl_mle_null": b0.logl_mle_null,
                      "logl_remle_null": b0.logl_remle_null, "pve_gemma": b0.pve,
                      "kernel": "centred over the tested samples, eigenvalues < 1e-10 "
                                "set to 0 (GEMMA)"}
        if t == "grammar-gamma":
            attrs["n_calibration"] = n_calibration
            if len(cv) > 1:
                attrs["c_inf_per_fit"] = cv
        # One result leaves this function (several tests are stacked into one Dataset), so
        # the shared columns need no deep copy per test.
        results[t] = common.copy(deep=False).assign(data | flags).assign_attrs(attrs)
    if single:
        return results[tests[0]]
    return _stack_tests(results, tests)


PER_TEST_ATTRS = ("lambda_gc", "c_inf")
#: the variables of a result that each test has its own values of
STAT_VARS = ("beta", "se", "chi2", "p", "lambda", "logl_H1")


def _gemma_basis(fit: VarianceComponentFit, tests: list[str]):
    """The per-SNP tests' rotation of a one-kernel null fit's data: the fit's own
    eigendecomposition for the Wald test alone (REML, invariant to GEMMA's centring when the
    intercept is a covariate: :func:`~bayeslmm.association.per_snp.gemma_basis`), GEMMA's
    centred kernel, decomposed again, when an ML test needs it."""
    if fit.k != 1:
        raise InputError("the per-SNP tests (wald, lrt, score) take a one-kernel fit")
    y, X = fit.data.y, fit.data.X
    if set(tests) <= {"wald"} and (eigen := _complete_eigen(fit.decomposition, X)):
        return gemma_basis(None, y, X, eigen=eigen, ml=False)
    K = fit.data.Ks[0] if fit.data.Ks else fit.decomposition.kernel()
    return gemma_basis(K, y, X)


def _complete_eigen(dec, X: np.ndarray, max_complement: int = 16):
    """(d, U) with U square from an economic decomposition whose complement (eigenvalue 0)
    is small, or None (no decomposition, a low-rank kernel, or no intercept in span(X))."""
    if dec is None or dec.N - dec.rank > max_complement:
        return None
    one = np.ones(dec.N)
    coef = np.linalg.lstsq(X, one, rcond=None)[0]
    if not np.allclose(X @ coef, one, atol=1e-8):
        return None
    U, d = dec.U, dec.S
    k = dec.N - dec.rank
    if k:  # an orthonormal basis of the complement, by projecting fixed random vectors
        R = np.random.default_rng(0).standard_normal((dec.N, k))
        for _ in range(2):  # twice is enough for orthogonality to machine precision
            R -= U @ (U.T @ R)
        Q = np.linalg.qr(R)[0]
        U, d = np.column_stack([Q, U]), np.concatenate([np.zeros(k), d])
    return d, U


def _stack_tests(results: dict[str, xr.Dataset], tests: list[str]) -> xr.Dataset:
    """Several tests as one Dataset with a ``test`` dimension (the per-test statistics and
    lambda_gc, c_inf over ``test``; the SNPs' own columns once)."""
    first = results[tests[0]]
    per_test = {name: (("test", "variant"), np.stack([results[t][name].values for t in tests]))
                for name in STAT_VARS}
    per_test |= {name: ("test", [float(results[t].attrs[name]) for t in tests])
                 for name in PER_TEST_ATTRS}
    attrs = {k: v for k, v in first.attrs.items() if k not in (*PER_TEST_ATTRS, "test",
                                                                "n_calibration")}
    gg = results.get("grammar-gamma")
    if gg is not None:
        attrs["n_calibration"] = gg.attrs["n_calibration"]
        if "c_inf_per_fit" in gg.attrs:
            attrs["c_inf_per_fit"] = gg.attrs["c_inf_per_fit"]
    out = first.drop_vars(list(STAT_VARS)).assign(per_test)
    return out.assign_coords(test=list(tests)).assign_attrs(attrs | {"tests": list(tests)})


def fit_inputs(fit: VarianceComponentFit) -> tuple[pd.Series, pd.DataFrame]:
    """The labelled phenotype and covariates a fit was made with (to refit on other kernels)."""
    samples = np.asarray(fit.data.samples).astype(str)
    return (pd.Series(fit.data.y, index=samples, name="y"),
            pd.DataFrame(fit.data.X, index=samples, columns=list(fit.data.covariates)))


def loco_fits(grms: Mapping, y, X=None, *, ml: bool = False, **fit_kw
              ) -> dict[str, VarianceComponentFit]:
    """Null fits for leave-one-chromosome-out association: one (RE)ML fit per chromosome on
    the GRM that leaves it out (:func:`bayeslmm.genotypes.kinship.loco_grms`), ready for
    ``assoc(None, G, loco=...)``."""
    fits = {}
    for c, g in grms.items():
        K = getattr(g, "K", g)
        fits[str(c)] = (ml_fit if ml else reml_fit)(y, K, X, **fit_kw)
        log.info("Null fit without chromosome %s (%s SNPs): h2 = %.4f, logL = %.4f", c,
                 getattr(g, "M", "?"), float(np.sum(fits[str(c)].h2)), fits[str(c)].loglik)
    return fits


def one_test(res: xr.Dataset, test: str) -> xr.Dataset:
    """One test of a several-test result, laid out as ``assoc(fit, G, test)`` returns it
    (lambda_gc and c_inf back in the attributes)."""
    if "test" not in res.dims:
        if res.attrs.get("test") != test:
            raise InputError(f"this result holds the {res.attrs.get('test')!r} test, not "
                             f"{test!r}")
        return res
    if test not in res["test"].values:
        raise InputError(f"no {test!r} test in this result; it has {list(res['test'].values)}")
    one = res.sel(test=test).drop_vars("test")
    attrs = {k: v for k, v in res.attrs.items() if k != "tests"}
    attrs |= {name: float(one[name]) for name in PER_TEST_ATTRS} | {"test": test}
    if test != "grammar-gamma":
        attrs.pop("n_calibration", None)
        attrs.pop("c_inf_per_fit", None)
    return one.drop_vars(list(PER_TEST_ATTRS)).assign_attrs(attrs)


def _iter(src: _Source, variants: np.ndarray, block_size: int) -> Iterator:
    return src.blocks(_groups(np.asarray(variants), block_size))
