"""A windowed LD (correlation) matrix from a PLINK reference panel, sparse, for summary-statistic
models (LDpred; notes section 6).

``R_jk = z_j'z_k / N`` for SNPs j, k on the same chromosome within ``window`` of each other
(``|c_j - c_k| <= w`` for c the base-pair position, the genetic map position or the index
among the kept SNPs), 0 otherwise; ``z`` the reference genotypes standardized as LDSC and
LDpred2 do (a missing call at the SNP's mean, centred, divided by the column's standard
deviation, so ``z_j'z_j = N`` and ``R_jj = 1``). Monomorphic SNPs are left out. The genotypes
are read block by block with the window to the left kept, so memory is N x (window + block)
plus the matrix's non-zeros, and time N P (window + block).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import DEFAULT_BLOCK_SIZE, standardized_genotypes
from bayeslmm.genotypes.ldscore import WINDOW_UNITS, window_coordinates
from bayeslmm.io.plink import as_dataset

__all__ = ["LDMatrix", "ld_matrix"]

log = logging.getLogger(__name__)


@dataclass
class LDMatrix:
    """Windowed correlations of a reference panel's SNPs.

    Attributes
    ----------
    R : scipy.sparse.csr_array
        (M, M) symmetric, unit diagonal; block diagonal over chromosomes.
    snps : pandas.DataFrame
        One row per SNP of ``R``: ``CHR SNP BP A1 A2 p`` (p the A1 frequency in the panel).
    N : int
        Reference samples.
    window : tuple
        ``(w, unit)``.
    """

    R: sparse.csr_array
    snps: pd.DataFrame
    N: int
    window: tuple[float, str]

    @property
    def M(self) -> int:
        return self.R.shape[0]

    def chromosome_slices(self) -> list[slice]:
        """Index ranges of each chromosome's SNPs (contiguous: the panel is sorted)."""
        ch = self.snps["CHR"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ch[1:] != ch[:-1]])
        return [slice(int(s), int(e)) for s, e in zip(starts, [*starts[1:], ch.size],
                                                      strict=True)]


def ld_matrix(source, window: float, unit: str = "cm", *, maf: float = 0.0,
              chromosomes: Iterable[str | int] | None = None,
              block_size: int = DEFAULT_BLOCK_SIZE, progress: bool | None = None) -> LDMatrix:
    """The windowed LD matrix of a PLINK reference (module docstring).

    Parameters
    ----------
    source : xarray.Dataset or str
        The reference panel (:func:`bayeslmm.io.read_plink` or a prefix), sorted by
        chromosome and position.
    window : float
        Window w in ``unit`` (LDpred2's default is 3 cM).
    unit : {"kb", "cm", "snps"}
    maf : float
        Leave out SNPs with MAF below this.
    chromosomes : list, optional
        Only these chromosomes.
    block_size : int
        SNPs read per block.
    progress : bool, optional
        Progress bar over the blocks.
    """
    if not (np.isfinite(window) and window >= 0):
        raise InputError(f"the LD window must be a finite number >= 0, got {window}")
    ds = as_dataset(source)
    N = ds.sizes["sample"]
    if N < 3:
        raise InputError(f"an LD matrix needs at least 3 reference samples, got {N}")
    coord_all = window_coordinates(ds, unit)
    width = float(window) * WINDOW_UNITS[unit][1]
    chrom_all = ds["chrom"].to_numpy().astype(str)
    rows, cols, vals = [], [], []
    idx_parts, p_parts = [], []
    buf = np.zeros((N, 0))  # standardized SNPs of the current chromosome's left window
    buf_c = np.zeros(0)
    buf_start = a = 0
    cur, seen = None, set()
    for blk in standardized_genotypes(ds, maf=maf, scale="empirical", chromosomes=chromosomes,
                                      block_size=block_size, progress=progress):
        ss = np.einsum("ij,ij->j", blk.Z, blk.Z)
        ok = ss > 0
        for ch in dict.fromkeys(chrom_all[blk.variants[ok]]):  # chromosome runs, in order
            sel = ok & (chrom_all[blk.variants] == ch)
            if ch != cur:
                if ch in seen:
                    raise InputError("the reference's chromosomes are not contiguous; sort "
                                     "the .bim by chromosome and position")
                seen.add(ch)
                cur, buf, buf_c, buf_start = ch, np.zeros((N, 0)), np.zeros(0), a
            Z = blk.Z[:, sel] * np.sqrt(N / ss[sel])
            v = blk.variants[sel]
            c = (np.arange(a, a + v.size, dtype=np.float64) if unit == "snps"
                 else coord_all[v])
            allc = np.concatenate([buf_c, c])
            if np.any(np.diff(allc) < 0):
                raise InputError(f"positions on chromosome {ch} are not sorted; LD windows "
                                 "need SNPs in map order")
            W = np.concatenate([buf, Z], axis=1)
            Rb = W.T @ Z / N  # (window + block) x block
            k = np.arange(allc.size)[:, None]
            j = np.arange(buf_c.size, allc.size)[None, :]
            inside = (k <= j) & (allc[j] - allc[k] <= width)
            kk, jj = np.nonzero(inside)  # jj: the block's column
            rows.append(buf_start + kk)
            cols.append(buf_start + buf_c.size + jj)
            vals.append(Rb[kk, jj])
            idx_parts.append(v)
            p_parts.append(blk.p[sel])
            a += v.size
            # keep only what a later SNP's window can reach
            keep = allc >= allc[-1] - width
            drop = int(np.argmax(keep))
            buf, buf_c, buf_start = W[:, drop:], allc[drop:], buf_start + drop
    if a == 0:
        raise InputError("no SNP of the reference is polymorphic and passes --maf")
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    off = r != c
    R = sparse.coo_array((np.concatenate([v, v[off]]),
                          (np.concatenate([r, c[off]]), np.concatenate([c, r[off]]))),
                         shape=(a, a)).tocsr()
    R.setdiag(1.0)  # exactly: z_j'z_j / N is 1 to rounding
    idx = np.concatenate(idx_parts)
    snps = pd.DataFrame({"CHR": chrom_all[idx], "SNP": ds["snp"].to_numpy()[idx].astype(str),
                         "BP": ds["pos"].to_numpy()[idx],
                         "A1": ds["a1"].to_numpy()[idx].astype(str),
                         "A2": ds["a2"].to_numpy()[idx].astype(str),
                         "p": np.concatenate(p_parts)})
    log.info("LD matrix of %d SNPs from %d reference samples, window %g %s: %d non-zeros "
             "(%.1f per SNP).", a, N, window, unit, R.nnz, R.nnz / a)
    return LDMatrix(R, snps, N, (float(window), unit))
