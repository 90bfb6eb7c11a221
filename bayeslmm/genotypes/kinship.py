"""Genotype QC, standardization (notes section 3) and GRMs computed block by block.

Notation (notes section 3 and GCTA): ``x_ij`` is the count of the A1 allele of SNP
``i`` in sample ``j`` (NaN = missing call), ``p_i`` the A1 frequency among the
non-missing calls of SNP ``i``, and the standardized genotype is

.. math:: z_{ij} = (x_{ij} - 2 p_i) / \\sqrt{2 p_i (1 - p_i)},\\qquad z_{ij}=0
          \\text{ if } x_{ij} \\text{ is missing.}

The GCTA GRM keeps the per-pair number of SNPs called in both samples,

.. math:: A_{jk} = \\frac{1}{N_{jk}} \\sum_i w_{ij} w_{ik} z_{ij} z_{ik},\\qquad
          N_{jk} = \\sum_i w_{ij} w_{ik}

with ``w_ij = 1`` for a non-missing call.  With ``W`` the ``N x P`` indicator matrix and
``Z`` the standardized matrix (zeros where missing) this is ``(Z Z') / (W W')``
elementwise, accumulated over blocks of SNPs; no Python loop runs over SNPs or
samples.  Without missing data ``A = Z Z' / P``, the kernel of notes eq. (44)-(47).

``plink1.9 --make-grm-bin`` computes exactly this (checked numerically in the tests),
including its treatment of monomorphic SNPs (p = 0 or 1): they pass QC unless
``maf > 0`` is asked for, add 0 to the numerator but 1 to ``N_jk``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import InputError
from bayeslmm.io.grm_files import GRM
from bayeslmm.io.plink import (
    as_dataset,
    block_bounds,
    iter_variant_blocks,
)
from bayeslmm.progress import progress_bar

__all__ = [
    "GRM",
    "StandardizedBlock",
    "iter_variant_blocks",
    "AlleleStats",
    "allele_stats",
    "chromosome_mask",
    "grm",
    "qc_keep",
    "grm_by_chromosome",
    "loco_grms",
    "standardize_block",
    "standardized_genotype_matrix",
    "standardized_genotypes",
    "variant_qc",
]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1000
#: show a progress bar by default when there are at least this many blocks
PROGRESS_MIN_BLOCKS = 20

Source = xr.Dataset | str | os.PathLike[str]


# ------------------------------------------------------------------------------- QC


@dataclass(frozen=True)
class AlleleStats:
    """Per-SNP statistics of one block (arrays of length b).

    ``p``: A1 frequency among non-missing calls (NaN if all missing);
    ``maf``: min(p, 1-p); ``missing_rate``: fraction of missing calls;
    ``n_called``: number of non-missing calls.
    """

    p: np.ndarray
    maf: np.ndarray
    missing_rate: np.ndarray
    n_called: np.ndarray


def allele_stats(genotypes: np.ndarray) -> AlleleStats:
    """Allele frequency, MAF and missing rate of each column of an ``(N, b)`` block."""
    G = np.asarray(genotypes, dtype=np.float64)
    called = ~np.isnan(G)
    n_called = called.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(called, G, 0.0).sum(axis=0) / (2.0 * n_called)
    maf = np.minimum(p, 1.0 - p)
    n = G.shape[0]
    missing = 1.0 - n_called / n if n else np.zeros(G.shape[1])
    return AlleleStats(p, maf, missing, n_called)


def _block_stats(blk, allele_freq: np.ndarray | None) -> AlleleStats:
    st = allele_stats(blk.genotypes)
    if allele_freq is None:
        return st
    p = np.asarray(allele_freq, dtype=np.float64)[blk.variants]
    return AlleleStats(p, np.minimum(p, 1.0 - p), st.missing_rate, st.n_called)


def _check_freq(ds: xr.Dataset, allele_freq: np.ndarray | None) -> None:
    if allele_freq is None:
        return
    f = np.asarray(allele_freq, dtype=np.float64)
    if f.shape != (ds.sizes["variant"],):
        raise InputError(
            f"allele_freq has shape {f.shape}; expected ({ds.sizes['variant']},), one A1 "
            "frequency per variant of the dataset"
        )
    if np.any((f < 0) | (f > 1)):
        raise InputError("allele_freq values must lie in [0, 1]")


def _check_qc_args(maf: float, geno: float) -> None:
    if not 0.0 <= maf <= 0.5:
        raise InputError(f"maf must be in [0, 0.5], got {maf}")
    if not 0.0 <= geno <= 1.0:
        raise InputError(f"geno must be in [0, 1], got {geno}")


def qc_keep(st: AlleleStats, maf: float, geno: float) -> np.ndarray:
    """PLINK's filters: ``--geno`` drops missing rate > geno; ``--maf`` drops
    MAF < maf.  A SNP with no call at all is always dropped."""
    keep = st.n_called > 0
    keep &= st.missing_rate <= geno + 1e-12
    if maf > 0:
        keep &= st.maf >= maf - 1e-12
    return keep


def variant_qc(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Per-variant QC table: ``snp, chrom, pos, p, maf, missing_rate, n_called, keep``.

    ``keep`` applies PLINK's ``--geno`` (missing call rate > ``geno`` removed) and
    ``--maf`` (minor-allele frequency < ``maf`` removed) definitions, with
    frequencies from all (non-missing) samples in ``source``.
    """
    _check_qc_args(maf, geno)
    ds = as_dataset(source)
    P = ds.sizes["variant"]
    out = {k: np.full(P, np.nan) for k in ("p", "maf", "missing_rate", "n_called")}
    keep = np.zeros(P, dtype=bool)
    for blk in _progress(
        iter_variant_blocks(ds, block_size=block_size), ds, block_size, progress, None, "variant QC"
    ):
        st = allele_stats(blk.genotypes)
        for k in out:
            out[k][blk.variants] = getattr(st, k)
        keep[blk.variants] = qc_keep(st, maf, geno)
    df = pd.DataFrame(
        {
            "snp": ds["snp"].to_numpy(),
            "chrom": ds["chrom"].to_numpy(),
            "pos": ds["pos"].to_numpy(),
            **out,
            "keep": keep,
        }
    )
    df["n_called"] = df["n_called"].astype(np.int64)
    return df


# ------------------------------------------------------------------- standardization


def standardize_block(
    genotypes: np.ndarray,
    p: np.ndarray | None = None,
    *,
    scale: Literal["gcta", "empirical"] = "gcta",
) -> tuple[np.ndarray, np.ndarray]:
    """Standardize an ``(N, b)`` block of allele counts (notes section 3).

    Parameters
    ----------
    genotypes : numpy.ndarray
        Allele counts with NaN for missing calls.
    p : numpy.ndarray, optional
        A1 frequencies; default: from the block's non-missing calls.
    scale : {"gcta", "empirical"}
        ``"gcta"`` divides by sqrt(2p(1-p)) (HWE variance, GCTA/PLINK);
        ``"empirical"`` by the observed standard deviation of the non-missing calls,
        so every column has ``Z_i'Z_i = (number of calls)``.

    Returns
    -------
    Z, W : numpy.ndarray
        ``Z`` float64 with missing calls set to 0 *after* centring and scaling
        (columns of zero variance are all 0), and the float64 indicator ``W`` of
        non-missing calls.
    """
    G = np.asarray(genotypes, dtype=np.float64)
    W = ~np.isnan(G)
    if p is None:
        p = allele_stats(G).p
    mean = 2.0 * p
    with np.errstate(invalid="ignore", divide="ignore"):
        if scale == "gcta":
            sd = np.sqrt(2.0 * p * (1.0 - p))
        elif scale == "empirical":
            dev = np.where(W, G - mean, 0.0)
            sd = np.sqrt((dev**2).sum(axis=0) / W.sum(axis=0))
        else:
            raise InputError(f"scale must be 'gcta' or 'empirical', got {scale!r}")
        ok = np.isfinite(sd) & (sd > 0)
        inv = np.where(ok, 1.0 / np.where(ok, sd, 1.0), 0.0)
    Z = np.where(W, G - mean, 0.0) * inv
    return Z, W.astype(np.float64)


class StandardizedBlock(NamedTuple):
    """A block of standardized genotypes.

    ``variants``: positions along the dataset's ``variant`` dimension (only SNPs that
    passed QC); ``Z``: ``(N, b)`` standardized genotypes (missing = 0);
    ``p``: their A1 frequencies.
    """

    variants: np.ndarray
    Z: np.ndarray
    p: np.ndarray


def standardized_genotypes(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    scale: Literal["gcta", "empirical"] = "gcta",
    variants: np.ndarray | None = None,
    chromosomes: Iterable[str | int] | None = None,
    allele_freq: np.ndarray | None = None,
    progress: bool | None = None,
) -> Iterator[StandardizedBlock]:
    """Stream the standardized genotype matrix ``Z`` (notes section 3) in SNP blocks.

    Columns are centred at ``2p`` and scaled to unit (HWE) variance, missing calls
    are then set to 0; with ``P`` SNPs passing QC and no missing data,
    ``K = Z Z' / P`` is the GCTA GRM returned by :func:`grm` (notes eq. 44-47).
    Monomorphic SNPs give an all-zero column.

    Parameters are those of :func:`grm`; ``variants`` restricts to given positions.
    """
    _check_qc_args(maf, geno)
    ds = as_dataset(source)
    _check_freq(ds, allele_freq)
    sel = _select_variants(ds, variants, chromosomes)
    for blk in _progress(
        iter_variant_blocks(ds, block_size=block_size, variants=sel),
        ds,
        block_size,
        progress,
        sel,
        "standardizing",
    ):
        st = _block_stats(blk, allele_freq)
        keep = qc_keep(st, maf, geno)
        if not keep.any():
            continue
        Z, _ = standardize_block(blk.genotypes[:, keep], st.p[keep], scale=scale)
        yield StandardizedBlock(blk.variants[keep], Z, st.p[keep])


def standardized_genotype_matrix(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    scale: Literal["gcta", "empirical"] = "gcta",
    chromosomes: Iterable[str | int] | None = None,
    allele_freq: np.ndarray | None = None,
    progress: bool | None = None,
) -> xr.DataArray:
    """The whole standardized matrix ``Z`` as a labelled ``(sample, variant)`` array.

    Holds N x P float64 in memory; use :func:`standardized_genotypes` otherwise.
    The ``p`` coordinate carries the A1 frequencies.
    """
    ds = as_dataset(source)
    blocks = list(
        standardized_genotypes(
            ds,
            maf=maf,
            geno=geno,
            block_size=block_size,
            scale=scale,
            chromosomes=chromosomes,
            allele_freq=allele_freq,
            progress=progress,
        )
    )
    N = ds.sizes["sample"]
    if blocks:
        idx = np.concatenate([b.variants for b in blocks])
        Z = np.concatenate([b.Z for b in blocks], axis=1)
        p = np.concatenate([b.p for b in blocks])
    else:
        idx, Z, p = np.zeros(0, np.int64), np.zeros((N, 0)), np.zeros(0)
    sub = ds.isel(variant=idx)
    da = xr.DataArray(Z, dims=("sample", "variant"), coords=sub.coords, name="Z")
    return da.assign_coords(p=("variant", p))


# ----------------------------------------------------------------------------- GRMs


def _select_variants(
    ds: xr.Dataset, variants: np.ndarray | None, chromosomes: Iterable[str | int] | None
) -> np.ndarray:
    P = ds.sizes["variant"]
    mask = np.ones(P, dtype=bool)
    if variants is not None:
        v = np.asarray(variants)
        m = np.zeros(P, dtype=bool)
        m[np.flatnonzero(v) if v.dtype == bool else v.astype(np.int64)] = True
        mask &= m
    if chromosomes is not None:
        mask &= chromosome_mask(ds["chrom"].to_numpy(), chromosomes)
    return np.flatnonzero(mask)


# Sex chromosomes and mitochondria: names, and PLINK's human numeric codes.
NON_AUTOSOMAL = ("X", "Y", "XY", "MT", "M", "23", "24", "25", "26")
_CHROM_ALIAS = {"X": "23", "Y": "24", "XY": "25", "MT": "26", "M": "26"}


def _chrom_key(c: str) -> tuple[int, int | str]:
    return (0, int(c)) if c.isdigit() else (1, c)


def _chrom_code(c: str) -> str:
    """PLINK's canonical code: 'chr1', '01' and '1' are chromosome 1, 'X' is 23."""
    c = c.strip().upper()
    c = c[3:] if c.startswith("CHR") else c
    c = _CHROM_ALIAS.get(c, c)
    return str(int(c)) if c.isdigit() else c


def chromosome_mask(chrom: np.ndarray, wanted: Iterable[str | int]) -> np.ndarray:
    """Which SNPs lie on the chromosomes named the way PLINK's ``--chr`` names them.

    Items are chromosome codes (``1``, ``X``, ``chr2``; PLINK's aliases X = 23, Y = 24,
    XY = 25, MT = 26), lists separated by commas (``1,2,5``) or ranges of numeric codes
    (``1-10``, ``20-X``).

    Raises
    ------
    InputError
        A chromosome named on its own that the data do not have (a typo costs no work),
        or a range with none of its chromosomes in the data.
    """
    # Codes are worked out once per distinct chromosome, not once per SNP.
    labels, inverse = np.unique(np.asarray(chrom).astype(str), return_inverse=True)
    codes = np.array([_chrom_code(c) for c in labels], dtype=str)[inverse]
    have = sorted(labels.tolist(), key=_chrom_key)
    keep: set[str] = set()
    for item in (p for w in wanted for p in str(w).split(",")):
        item = item.strip()
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        if sep and _chrom_code(lo).isdigit() and _chrom_code(hi).isdigit():
            span = {str(c) for c in range(int(_chrom_code(lo)), int(_chrom_code(hi)) + 1)}
            if not span & set(codes.tolist()):
                raise InputError(f"--chr {item}: none of these chromosomes is in the genotype "
                                 f"data (it has {' '.join(have)})")
            keep |= span
        elif _chrom_code(item) in codes:
            keep.add(_chrom_code(item))
        else:
            raise InputError(f"--chr {item}: chromosome {item} is not in the genotype data "
                             f"(it has {' '.join(have)})")
    return np.isin(codes, sorted(keep))


def _progress(it, ds, block_size, progress, sel, desc, split_by=None):
    n = len(sel) if sel is not None else ds.sizes["variant"]
    if progress is False:
        return it
    groups = None
    if split_by is not None:
        g = ds[split_by].to_numpy()
        groups = g if sel is None else g[sel]
    n_blocks = len(block_bounds(n, block_size, groups))
    if progress is None and n_blocks < PROGRESS_MIN_BLOCKS:
        return it
    return progress_bar(it, total=n_blocks, desc=desc, unit="block")


@dataclass
class _Acc:
    num: np.ndarray
    cnt: np.ndarray
    M: int = 0


def _accumulate(
    ds: xr.Dataset,
    *,
    maf: float,
    geno: float,
    block_size: int,
    chromosomes: Iterable[str | int] | None,
    by_chromosome: bool,
    allele_freq: np.ndarray | None,
    progress: bool | None,
) -> dict[str, _Acc]:
    """Sum ``Z Z'`` and ``W W'`` over SNP blocks, per chromosome if asked."""
    _check_qc_args(maf, geno)
    _check_freq(ds, allele_freq)
    sel = _select_variants(ds, None, chromosomes)
    N = ds.sizes["sample"]
    chrom = ds["chrom"].to_numpy().astype(str)
    split = "chrom" if by_chromosome else None
    acc: dict[str, _Acc] = {}
    it = iter_variant_blocks(ds, block_size=block_size, variants=sel, split_by=split)
    for blk in _progress(it, ds, block_size, progress, sel, "GRM", split):
        key = chrom[blk.variants[0]] if by_chromosome else "all"
        if key not in acc:
            acc[key] = _Acc(np.zeros((N, N)), np.zeros((N, N)))
        a = acc[key]
        st = _block_stats(blk, allele_freq)
        keep = qc_keep(st, maf, geno)
        if not keep.any():
            continue
        G = blk.genotypes[:, keep]
        Z, W = standardize_block(G, st.p[keep])
        a.num += Z @ Z.T
        if np.all(st.n_called[keep] == N):
            a.cnt += float(keep.sum())
        else:
            a.cnt += W @ W.T
        a.M += int(keep.sum())
    return acc


def _finish(ds: xr.Dataset, num: np.ndarray, cnt: np.ndarray, M: int, label: str) -> GRM:
    pos = cnt > 0
    if not pos.all():
        log.warning(
            "GRM %s: %d entries (sample pairs) share no non-missing SNP; set to 0",
            label,
            int((~pos).sum()),
        )
    K = np.divide(num, cnt, out=np.zeros_like(num), where=pos)
    K = (K + K.T) / 2.0  # exact symmetry (products are symmetric up to rounding)
    ids = pd.DataFrame(
        {"fid": ds["fid"].to_numpy().astype(str), "iid": ds["iid"].to_numpy().astype(str)}
    )
    return GRM.from_arrays(K, ids, n_snps=cnt.copy(), M=M, label=label)


def grm(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chromosomes: Iterable[str | int] | None = None,
    allele_freq: np.ndarray | None = None,
    progress: bool | None = None,
    autosome: bool = True,
) -> GRM:
    """GCTA's genomic relationship matrix, computed in blocks of SNPs.

    .. math:: A_{jk} = \\frac{1}{N_{jk}} \\sum_i
              \\frac{(x_{ij}-2p_i)(x_{ik}-2p_i)}{2p_i(1-p_i)}

    summing over SNPs called in both ``j`` and ``k`` (``N_jk`` of them), with ``p_i``
    from the non-missing calls.  Without missing data this is ``Z Z'/P`` (notes
    section 3, eq. 44).  Equal to ``plink1.9 --make-grm-bin`` (and GCTA
    ``--make-grm``) on the same SNPs.

    Parameters
    ----------
    source : xarray.Dataset or path
        A PLINK prefix or a dataset from :func:`bayeslmm.io.read_plink` (possibly
        subset with ``isel``).
    maf : float, default 0
        Drop SNPs with minor-allele frequency < ``maf`` (PLINK ``--maf``).
    geno : float, default 1
        Drop SNPs with missing call rate > ``geno`` (PLINK ``--geno``).
    block_size : int
        SNPs read and multiplied at a time (memory is about ``N * block_size * 24``
        bytes plus the two ``N x N`` accumulators).
    chromosomes : iterable of str, optional
        Use only SNPs on these chromosomes.
    allele_freq : numpy.ndarray, optional
        A1 frequency of every variant of ``source`` to use instead of the frequency
        among all its non-missing calls (also used by the ``maf`` filter).  PLINK
        1.9 estimates frequencies from *founders* only (samples without parents
        in the ``.fam``) and, when there is no founder (e.g. GEMMA's mouse_hs1940
        example), uses 0.5 for every SNP; ``np.full(P, 0.5)`` reproduces that,
        while the default equals ``plink1.9 --make-grm-bin --nonfounders`` and GCTA.
    progress : bool, optional
        Show a tqdm progress bar; default: only when there are at least
        ``PROGRESS_MIN_BLOCKS`` blocks.
    autosome : bool, default True
        Leave out SNPs on the sex chromosomes and mitochondria (codes ``X Y XY MT`` and
        PLINK's human numbers 23-26), as ``plink1.9 --make-grm-bin`` does by default and
        GCTA with ``--autosome``; their dosage differs between sexes. The count left out
        is logged. Ignored when ``chromosomes`` is given.

    Returns
    -------
    GRM
        ``K``, the per-pair counts ``n_snps`` (``N_jk``), ``ids`` and ``M``.
    """
    ds = as_dataset(source)
    if autosome and chromosomes is None:
        chrom = ds["chrom"].to_numpy().astype(str)
        labels, inverse = np.unique(chrom, return_inverse=True)
        non_auto = np.isin([c.upper() for c in labels], NON_AUTOSOMAL)[inverse]
        if non_auto.any():
            log.info("GRM: %d SNP(s) on non-autosomal chromosomes (%s) left out, as PLINK "
                     "does; autosome=False (--include-nonautosomal) keeps them.",
                     int(non_auto.sum()), ", ".join(sorted(set(chrom[non_auto]))))
            chromosomes = sorted(set(chrom[~non_auto]), key=_chrom_key)
    acc = _accumulate(
        ds,
        maf=maf,
        geno=geno,
        block_size=block_size,
        chromosomes=chromosomes,
        by_chromosome=False,
        allele_freq=allele_freq,
        progress=progress,
    )
    N = ds.sizes["sample"]
    a = acc.get("all", _Acc(np.zeros((N, N)), np.zeros((N, N))))
    if a.M == 0:
        raise InputError(f"no SNP passed QC (maf={maf:g}, geno={geno:g}); cannot build a GRM")
    return _finish(ds, a.num, a.cnt, a.M, "all")


def grm_by_chromosome(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chromosomes: Iterable[str | int] | None = None,
    allele_freq: np.ndarray | None = None,
    progress: bool | None = None,
) -> dict[str, GRM]:
    """One GCTA GRM per chromosome (keys: chromosome codes in file order).

    Same definition and arguments as :func:`grm`; QC is per SNP so a SNP passes or
    fails identically here and in the genome-wide GRM.  Chromosomes with no SNP
    passing QC are omitted.  Needs one pass over the data and ``2 N^2`` floats per
    chromosome.
    """
    ds = as_dataset(source)
    acc = _accumulate(
        ds,
        maf=maf,
        geno=geno,
        block_size=block_size,
        chromosomes=chromosomes,
        by_chromosome=True,
        allele_freq=allele_freq,
        progress=progress,
    )
    return {c: _finish(ds, a.num, a.cnt, a.M, f"chr{c}") for c, a in acc.items() if a.M > 0}


def loco_grms(
    source: Source,
    *,
    maf: float = 0.0,
    geno: float = 1.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chromosomes: Iterable[str | int] | None = None,
    allele_freq: np.ndarray | None = None,
    progress: bool | None = None,
) -> dict[str, GRM]:
    """Leave-one-chromosome-out GRMs: for each chromosome ``c``, the GRM of all SNPs
    not on ``c``.

    Computed from the per-chromosome sums as
    ``A^{-c}_{jk} = (S_jk - S^c_jk) / (N_jk - N^c_jk)`` where ``S`` is the numerator
    sum of :func:`grm` and ``N`` the per-pair count, which is exact with missing data
    (subtracting normalized GRMs would not be).  ``chromosomes`` restricts the SNPs
    used (and the keys).
    """
    ds = as_dataset(source)
    acc = _accumulate(
        ds,
        maf=maf,
        geno=geno,
        block_size=block_size,
        chromosomes=chromosomes,
        by_chromosome=True,
        allele_freq=allele_freq,
        progress=progress,
    )
    acc = {c: a for c, a in acc.items() if a.M > 0}
    if len(acc) < 2:
        raise InputError(f"LOCO GRMs need SNPs on at least 2 chromosomes; found {sorted(acc)}")
    total_num = sum(a.num for a in acc.values())
    total_cnt = sum(a.cnt for a in acc.values())
    total_M = sum(a.M for a in acc.values())
    return {
        c: _finish(ds, total_num - a.num, total_cnt - a.cnt, total_M - a.M, f"loco-chr{c}")
        for c, a in acc.items()
    }
