"""The marginal (ordinary least squares) per-SNP test with covariates: plink2 ``--glm`` for a
quantitative trait, plink1.9 ``--linear`` (``assoc --test linear``).

For each SNP x the model is y = X b + x beta + e, e ~ N(0, sigma_e2 I), fitted on the samples
with a call at x (PLINK drops a sample with a missing genotype from that SNP's regression).
With Q an orthonormal basis of span(X) (one QR of X for all SNPs), r = y - Q Q'y and
x_perp = x - Q Q'x (Frisch-Waugh-Lovell),

    beta = x_perp'r / x_perp'x_perp,   RSS = r'r - beta x_perp'r,
    se = sqrt(RSS / (N - M - 1) / x_perp'x_perp),   t = beta / se ~ t(N - M - 1),

with M the number of columns of X (the intercept included). A SNP with missing calls is the
same regression on its called samples: with w its indicator of calls, the covariates'
Gram matrix becomes A = Q' diag(w) Q = I - Q_m'Q_m (Q_m: Q's rows of the missing samples), and
the three cross-products are corrected by A^-1 (a batched (M x M) solve for those SNPs only).
Replacing y by r and x by x_perp in that sub-regression changes nothing (they differ from y, x
by a vector of span(X)), and keeps the sums of squares free of the mean's cancellation.

No GRM and no variance-component fit: LD score regression assumes these marginal statistics,
not mixed-model ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.association.fixed_variance import genomic_control
from bayeslmm.covariance.structures import Covariates
from bayeslmm.data import sample_index
from bayeslmm.errors import CollinearityError, InputError
from bayeslmm.genotypes.kinship import (
    DEFAULT_BLOCK_SIZE,
    allele_stats,
    iter_variant_blocks,
    qc_keep,
)
from bayeslmm.io.plink import as_dataset
from bayeslmm.labels import sample_labels
from bayeslmm.likelihood import tails
from bayeslmm.progress import progress_bar

__all__ = ["linear_assoc", "ols_block"]

#: columns with the SNP's metadata carried from the genotype dataset
_META = ("chrom", "pos", "snp", "a1", "a2")


def ols_block(G: np.ndarray, r: np.ndarray, Q: np.ndarray) -> dict[str, np.ndarray]:
    """OLS of y on [X, x] for every column x of ``G`` (module docstring's equations).

    Parameters
    ----------
    G : numpy.ndarray
        ``(N, b)`` allele counts, NaN for a missing call.
    r : numpy.ndarray
        ``(N,)`` phenotype residuals on the covariates, r = (I - Q Q') y.
    Q : numpy.ndarray
        ``(N, M)`` orthonormal basis of the covariates' span.

    Returns
    -------
    dict
        ``beta``, ``se``, ``t``, ``p`` (two-sided, t(n - M - 1)), ``n`` (samples called) and
        ``const`` (no variation among the called samples: statistics NaN).
    """
    N, M = Q.shape
    miss = np.isnan(G)
    n = N - miss.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(miss, 0.0, G).sum(axis=0) / n
    Gi = np.where(miss, mean, G)  # imputed only to project; the missing rows are dropped next
    Xr = Gi - Q @ (Q.T @ Gi)
    Xr[miss] = 0.0
    sxx = np.einsum("ij,ij->j", Xr, Xr)
    sxy = Xr.T @ r
    syy = np.full(G.shape[1], r @ r)
    gaps = np.flatnonzero(miss.any(axis=0) & (n > 0))
    if gaps.size:  # the regression on the called samples: A = I - Q_m'Q_m per SNP
        Wm = miss[:, gaps].astype(np.float64)
        A = np.eye(M)[None] - np.einsum("ij,ik,il->jkl", Wm, Q, Q)
        Wc = 1.0 - Wm
        u = Q.T @ Xr[:, gaps]                 # (M, g): Q'diag(w)x_perp (missing rows are 0)
        c = Q.T @ (Wc * r[:, None])           # (M, g): Q'diag(w)r
        rhs = np.stack([u.T, c.T], axis=2)    # (g, M, 2)
        try:
            sol = np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:
            raise CollinearityError("the covariates are collinear on the samples called at "
                                    "some SNP; drop a covariate") from None
        sxx[gaps] -= np.einsum("gm,gm->g", u.T, sol[:, :, 0])
        sxy[gaps] -= np.einsum("gm,gm->g", u.T, sol[:, :, 1])
        syy[gaps] = Wc.T @ (r * r) - np.einsum("gm,gm->g", c.T, sol[:, :, 1])
    with np.errstate(invalid="ignore"):
        const = (n == 0) | (np.nanmax(np.where(miss, -np.inf, G), axis=0)
                            == np.nanmin(np.where(miss, np.inf, G), axis=0))
    df = n - M - 1
    bad = const | (df <= 0) | ~(sxx > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(bad, np.nan, sxy / sxx)
        rss = syy - beta * sxy
        se = np.sqrt(rss / df / sxx)
        t = beta / se
        p = 2.0 * tails.t_sf(np.abs(t), np.where(bad, 1, df))
    nan = np.where(bad, np.nan, 1.0)
    return {"beta": beta * nan, "se": se * nan, "t": t * nan, "p": p * nan, "n": n,
            "const": const}


def _design(y: pd.Series, X) -> tuple[np.ndarray, np.ndarray]:
    """Residuals r of y on X and the orthonormal basis Q of span(X) (intercept when None)."""
    yv = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(yv)):
        raise InputError("the phenotype has missing or infinite values; align it with "
                         "bayeslmm.load_inputs, which drops them")
    Xv = np.ones((len(yv), 1)) if X is None else np.asarray(X, dtype=np.float64)
    if Xv.ndim != 2 or Xv.shape[0] != len(yv) or not np.all(np.isfinite(Xv)):
        raise InputError(f"covariates must be a finite ({len(yv)}, M) matrix, got shape "
                         f"{Xv.shape}")
    cov = Covariates.of(Xv)  # the package's one projection of the covariates
    d = np.abs(np.diag(cov.R))
    if d.size and d.min() <= 1e-10 * d.max():
        raise CollinearityError(f"the {Xv.shape[1]} covariate columns are collinear; drop one")
    return cov.residualize(yv), cov.Q


def linear_assoc(genotypes, y: pd.Series, X: pd.DataFrame | None = None, *,
                 min_maf: float = 0.0, max_missing: float = 1.0,
                 block_size: int = DEFAULT_BLOCK_SIZE, progress: bool | None = None
                 ) -> xr.Dataset:
    """Marginal OLS association of every SNP with ``y`` given covariates ``X`` (plink2 ``--glm``
    for a quantitative trait; see the module docstring for the equations).

    Parameters
    ----------
    genotypes : xarray.Dataset or str
        A PLINK dataset (:func:`bayeslmm.io.read_plink`, lazy) or prefix; A1 (``.bim``
        column 5) is counted.
    y : pandas.Series
        The phenotype indexed by (FID, IID) (as :func:`bayeslmm.load_inputs` gives it); the
        genotypes are aligned to it by label.
    X : pandas.DataFrame, optional
        The design in ``y``'s sample order, intercept included (default: intercept only).
    min_maf, max_missing : float
        SNPs with MAF below / missing rate above these (on the tested samples) are marked
        ``filtered`` and not tested.
    block_size : int
        SNPs per block read from the ``.bed``.
    progress : bool, optional
        Progress bar over the blocks (None: when there are many).

    Returns
    -------
    xarray.Dataset
        Along ``variant``: ``beta``, ``se``, ``t``, ``p``, ``obs_ct`` (samples called),
        ``af`` (A1 frequency), ``monomorphic``, ``filtered``, with coordinates
        ``chrom, pos, snp, a1, a2``; attributes ``df_covariates`` (M) and ``lambda_gc``.
    """
    ds = as_dataset(genotypes)
    r, Q = _design(y, X)
    if isinstance(y.index, pd.MultiIndex):
        want = sample_labels(y.index.get_level_values(0), y.index.get_level_values(1))
        idx = sample_index(want, ds["sample"].to_numpy(), "the genotypes")
        if idx is not None:
            ds = ds.isel(sample=idx)
    elif ds.sizes["sample"] != len(r):
        raise InputError(f"an unlabelled phenotype of {len(r)} values cannot be aligned to "
                         f"{ds.sizes['sample']} genotyped samples; give (FID, IID) labels")
    P = ds.sizes["variant"]
    out = {k: np.full(P, np.nan) for k in ("beta", "se", "t", "p", "af")}
    out |= {"obs_ct": np.zeros(P, np.int64), "monomorphic": np.zeros(P, bool),
            "filtered": np.zeros(P, bool)}
    n_blocks = -(-P // block_size)
    it = iter_variant_blocks(ds, block_size=block_size)
    if progress or (progress is None and n_blocks >= 20):
        it = progress_bar(it, total=n_blocks, desc="linear test", unit="block")
    for blk in it:
        v, G = blk.variants, blk.genotypes
        st = allele_stats(G)
        keep = qc_keep(st, min_maf, max_missing) if (min_maf, max_missing) != (0.0, 1.0) \
            else np.ones(len(v), bool)
        res = ols_block(G, r, Q)
        for k in ("beta", "se", "t", "p"):
            out[k][v] = np.where(keep, res[k], np.nan)
        out["af"][v], out["obs_ct"][v] = st.p, res["n"]
        out["monomorphic"][v], out["filtered"][v] = res["const"], ~keep
    chi2 = out["t"][np.isfinite(out["t"])] ** 2
    # genomic control on the chi2_1 scale of each p (t is not chi2 at small df)
    lam = genomic_control(tails.chi2_isf(out["p"][np.isfinite(out["p"])], 1)) \
        if chi2.size else float("nan")
    coords = {c: ("variant", ds[c].to_numpy()) for c in _META if c in ds.variables}
    return xr.Dataset({k: ("variant", val) for k, val in out.items()}, coords=coords,
                      attrs={"test": "linear", "df_covariates": Q.shape[1],
                             "lambda_gc": lam})
