"""LD scores from a PLINK reference panel (notes 6.1; Bulik-Sullivan et al. 2015, Nat Genet 47:291).

The LD score of SNP j is the sum, over the SNPs k of its window (j itself included), of LDSC's
unbiased estimate of the squared correlation,

    l_j = sum_k r2_adj(j, k),   r2_adj = r2 - (1 - r2) / (N - 2),

with r the Pearson correlation of the N reference samples' genotypes, computed as z_j'z_k / N
from genotypes standardized as LDSC does: a missing call set to the SNP's mean, then centred
and divided by the standard deviation of that column (so z_j'z_j = N; E[r2] = rho2 +
(1 - rho2) / (N - 2) under normality, hence the correction).

A window is a distance: k is in j's window when both are on the same chromosome and
|c_j - c_k| <= w, for c the base-pair position (``--ld-wind-kb``: w kb = 1000 w bp), the
genetic map position (``--ld-wind-cm``, ``.bim`` column 3) or the index among the kept SNPs
(``--ld-wind-snps``). As in LDSC's ``getBlockLefts``, the distance is the float difference of
the coordinates in their own unit (bp, cM, index), compared with the window in that unit
(1000 w for kb): SNPs exactly w apart are in each other's window (positions are not divided
by 1000, which would round 1100 / 1000 - 1 above 100 / 1000). The genotypes are read block
by block (:func:`bayeslmm.genotypes.kinship.standardized_genotypes`); the standardized SNPs
of the current window are kept, so memory is N x (window + block) and time
N P (window + block).

Annotation-stratified LD scores (LDSC's ``--annot``; Finucane et al. 2015, Nat Genet 47:1228):
for an annotation matrix a (a_kc: SNP k's value in annotation c, binary or continuous),

    l_jc = sum_{k in window(j)} r2_adj(j, k) a_kc,

one column per annotation (``<name>L2``; ``L2`` when there is one), with M_c = sum_k a_kc
over the kept SNPs and M_5_50_c the same sum over those with MAF > 0.05 (what partitioned
h2 divides by).

LDSC's own ``--l2`` evaluates windows in chunks of ``--chunk-size`` SNPs (50) and assumes
every SNP of a chunk has the chunk's first left bound, an approximation this exact window
does not make; monomorphic SNPs are left out, as LDSC does. ``M_5_50`` counts the SNPs with
MAF > 0.05 exactly (0.05 < p < 0.95 on the A1 frequency p, so a MAF of exactly 0.05 is not
counted, whichever allele is the minor one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import DEFAULT_BLOCK_SIZE, standardized_genotypes
from bayeslmm.io.plink import as_dataset

__all__ = ["WINDOW_UNITS", "LDScores", "ld_scores", "r2_unbiased", "window_coordinates"]

log = logging.getLogger(__name__)

#: a window's unit -> the variant coordinate it is measured on, and how many of that
#: coordinate's units one window unit is (a window of w is w * that: 1 kb = 1000 bp)
WINDOW_UNITS = {"kb": ("pos", 1000.0), "cm": ("cm", 1.0), "snps": (None, 1.0)}


def r2_unbiased(r: np.ndarray, N: int) -> np.ndarray:
    """LDSC's unbiased r2: r2 - (1 - r2) / (N - 2) (Bulik-Sullivan et al. 2015, online
    methods; ldsc ``__l2_unbiased__``, which uses N when N <= 2)."""
    r2 = np.square(r)
    return r2 - (1.0 - r2) / (N - 2 if N > 2 else N)


@dataclass(frozen=True)
class LDScores:
    """LD scores of a reference panel.

    Attributes
    ----------
    table : pandas.DataFrame
        ``CHR SNP BP L2`` (LDSC's ``.l2.ldscore`` columns), one row per kept SNP, with the
        A1 frequency in ``MAF`` (the minor allele's) for the ``M_5_50`` count.
    M : int
        Number of SNPs the scores sum over (LDSC's ``.l2.M``).
    M_5_50 : int
        Those with MAF > 0.05 (``.l2.M_5_50``, what ``ldsc --h2`` divides by).
    N : int
        Reference samples.
    window : tuple
        (w, unit).
    columns : tuple of str
        The LD score columns of ``table``: ``("L2",)``, or ``<name>L2`` per annotation.
    M_columns, M_5_50_columns : numpy.ndarray or None
        With annotations: each one's sum over the kept SNPs, and over those with MAF > 0.05
        (``.l2.M`` and ``.l2.M_5_50``); None without.
    """

    table: pd.DataFrame
    M: int
    M_5_50: int
    N: int
    window: tuple[float, str]
    columns: tuple[str, ...] = ("L2",)
    M_columns: np.ndarray | None = None
    M_5_50_columns: np.ndarray | None = None


def window_coordinates(ds, unit: str) -> np.ndarray:
    """The coordinate a window of ``unit`` is measured on, for every variant of ``ds``, in its
    own unit (bp for ``kb``; a window of w is w * ``WINDOW_UNITS[unit][1]`` of it)."""
    if unit not in WINDOW_UNITS:
        raise InputError(f"window unit must be one of {sorted(WINDOW_UNITS)}, got {unit!r}")
    name, _ = WINDOW_UNITS[unit]
    if name is None:
        return np.arange(ds.sizes["variant"], dtype=np.float64)
    c = ds[name].to_numpy().astype(np.float64)
    if unit == "cm" and not np.any(c != 0):
        raise InputError("--ld-wind-cm needs genetic map positions, and the .bim's third "
                         "column is all 0; use --ld-wind-kb, or a .bim with cM positions")
    return c


def _left_bounds(c: np.ndarray, lo: int, s: int, e: int, width: float) -> np.ndarray:
    """For j in [s, e), the first k in [lo, j] with c[j] - c[k] <= width (c sorted on
    [lo, e)): LDSC's ``getBlockLefts`` rule, the float difference against the width, found by
    a bisection vectorized over j (the difference is monotone in k, so is the rule)."""
    j = np.arange(s, e)
    first, last = np.full(e - s, lo), j.copy()  # c[j] - c[j] = 0 <= width: last qualifies
    while np.any(first < last):
        mid = (first + last) // 2
        inside = c[j] - c[mid] <= width
        last, first = np.where(inside, mid, last), np.where(inside, first, mid + 1)
    return first


def ld_scores(source, window: float, unit: str = "kb", *, maf: float = 0.0,
              chromosomes: Iterable[str | int] | None = None, annot: pd.DataFrame | None = None,
              block_size: int = DEFAULT_BLOCK_SIZE, progress: bool | None = None) -> LDScores:
    """LD scores l_j = sum_{k in window(j)} r2_adj(j, k) (module docstring) of every SNP of a
    PLINK reference, or per annotation l_jc = sum_k r2_adj(j, k) a_kc.

    Parameters
    ----------
    source : xarray.Dataset or str
        The reference panel (:func:`bayeslmm.io.read_plink` or a prefix).
    window : float
        Window size w in ``unit``: k is in j's window when |c_j - c_k| <= w, same chromosome.
    unit : {"kb", "cm", "snps"}
        LDSC's ``--ld-wind-kb``, ``--ld-wind-cm``, ``--ld-wind-snps``.
    maf : float
        Leave out SNPs with MAF below this (LDSC's ``--maf``); monomorphic SNPs always.
    chromosomes : list, optional
        Only these chromosomes.
    annot : pandas.DataFrame, optional
        One row per variant of ``source`` (all of them, in its order), one column per
        annotation (LDSC's ``.annot``, :func:`bayeslmm.io.ldscores.read_annot`).
    block_size : int
        SNPs read per block.
    progress : bool, optional
        Progress bar over the blocks.

    Returns
    -------
    LDScores
    """
    if not (np.isfinite(window) and window >= 0):
        raise InputError(f"the LD window must be a finite number >= 0, got {window}")
    ds = as_dataset(source)
    N = ds.sizes["sample"]
    if N < 3:
        raise InputError(f"LD scores need at least 3 reference samples, got {N}")
    coord = window_coordinates(ds, unit)
    width = float(window) * WINDOW_UNITS[unit][1]
    chrom_all = ds["chrom"].to_numpy().astype(str)
    P = ds.sizes["variant"]
    if annot is None:
        A_all, columns = np.ones((P, 1)), ("L2",)
    else:
        A_all = annot.to_numpy(np.float64)
        if A_all.shape[0] != P or A_all.ndim != 2 or not np.all(np.isfinite(A_all)):
            raise InputError(f"the annotation needs one finite row per reference SNP ({P}), "
                             f"got {A_all.shape[0]} rows")
        columns = ("L2",) if A_all.shape[1] == 1 else tuple(f"{c}L2" for c in annot.columns)
    # the kept SNPs' chromosome, coordinate and window's left bound, filled as blocks come
    # (a left bound needs only the SNPs before it, so one pass suffices)
    ch, c, left = np.empty(P, dtype=chrom_all.dtype), np.empty(P), np.empty(P, np.int64)
    idx, ps, l2 = np.empty(P, np.int64), np.empty(P), np.zeros((P, A_all.shape[1]))
    A = np.empty_like(l2)  # the kept SNPs' annotations
    seen: set[str] = set()
    chr_start = 0
    buf = np.zeros((N, 0))  # standardized SNPs [buf_start, a): the window to the left
    buf_start = a = 0
    for blk in standardized_genotypes(ds, maf=maf, scale="empirical", chromosomes=chromosomes,
                                      block_size=block_size, progress=progress):
        ss = np.einsum("ij,ij->j", blk.Z, blk.Z)
        ok = ss > 0  # monomorphic among the samples: left out, as LDSC does
        if not ok.any():
            continue
        # LDSC's scale: the SD of the mean-imputed column, so z'z = N (ours: = calls)
        Z = blk.Z[:, ok] * np.sqrt(N / ss[ok])
        b = a + Z.shape[1]
        idx[a:b], ps[a:b], ch[a:b] = blk.variants[ok], blk.p[ok], chrom_all[blk.variants[ok]]
        A[a:b] = A_all[blk.variants[ok]]
        c[a:b] = np.arange(a, b) if unit == "snps" else coord[blk.variants[ok]]
        # left bounds, one chromosome run of the block at a time (no loop over SNPs)
        new = np.flatnonzero(ch[a:b] != np.concatenate([ch[a - 1:a] if a else [None],
                                                         ch[a:b - 1]])) + a
        for s, e in zip([a, *new], [*new, b], strict=False):
            if s == e:
                continue
            if s in new:  # a chromosome starts here
                if ch[s] in seen:
                    raise InputError("the reference's chromosomes are not contiguous; sort "
                                     "the .bim by chromosome and position")
                seen.add(ch[s])
                chr_start = s
            if np.any(np.diff(c[max(chr_start, s - 1):e]) < 0):
                raise InputError(f"positions on chromosome {ch[s]} are not sorted; LD "
                                 "windows need SNPs in map order")
            left[s:e] = _left_bounds(c, chr_start, s, e, width)
        lo = int(left[a:b].min())
        buf, buf_start = buf[:, lo - buf_start:], lo
        # pairs (k <= j) with k in j's window (k >= left[j]): the block with itself ...
        R = Z.T @ Z / N
        jj, kk = np.arange(a, b)[:, None], np.arange(a, b)[None, :]
        r2 = np.where((kk <= jj) & (kk >= left[a:b][:, None]), r2_unbiased(R, N), 0.0)
        l2[a:b] += r2 @ A[a:b] + r2.T @ A[a:b] - np.diag(r2)[:, None] * A[a:b]
        if buf.shape[1]:  # ... and with the window to its left
            R = buf.T @ Z / N
            kk = np.arange(buf_start, a)[:, None]
            r2 = np.where(kk >= left[a:b][None, :], r2_unbiased(R, N), 0.0)
            l2[a:b] += r2.T @ A[buf_start:a]
            l2[buf_start:a] += r2 @ A[a:b]
        buf = np.concatenate([buf, Z], axis=1)
        a = b
    if a == 0:
        raise InputError("no SNP of the reference is polymorphic and passes --maf")
    idx, ps, l2, chrom, A = idx[:a], ps[:a], l2[:a], ch[:a], A[:a]
    table = pd.DataFrame({"CHR": chrom, "SNP": ds["snp"].to_numpy()[idx],
                          "BP": ds["pos"].to_numpy()[idx]})
    for i, name in enumerate(columns):
        table[name] = l2[:, i]
    table["MAF"] = np.minimum(ps, 1.0 - ps)
    log.info("LD scores of %d SNPs from %d reference samples, window %g %s, %d column(s) "
             "(mean %s %.3f).", idx.size, N, window, unit, len(columns), columns[0],
             float(l2[:, 0].mean()))
    # MAF > 0.05 exactly: min(p, 1 - p) would round 1 - 0.95 above 0.05
    common = (ps > 0.05) & (ps < 0.95)
    per = {} if annot is None else dict(M_columns=A.sum(axis=0),
                                        M_5_50_columns=A[common].sum(axis=0))
    return LDScores(table, int(idx.size), int(common.sum()), N, (float(window), unit),
                    columns, **per)
