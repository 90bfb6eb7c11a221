"""The kernel K = Z Z' / P as an operator over a PLINK fileset, never formed (notes section 3).

The genotypes are a dask array over variant chunks, each read by bed-reader (through
:func:`bayeslmm.io.plink.iter_variant_blocks`) and standardized on the fly by
:func:`bayeslmm.genotypes.standardize_block`: centred at ``2p`` and scaled by
``sqrt(2p(1-p))`` with ``p`` from all the dataset's non-missing calls, missing calls set to
0 *after* standardizing, monomorphic SNPs an all-zero column that still counts in ``P``.
Without missing calls this is exactly :func:`bayeslmm.genotypes.grm` (GCTA's GRM, notes
eq. 44-47); with missing calls the GCTA GRM divides each pair by the SNPs called in both
(``N_jk``), which is not a low-rank product, and the operator is ``Z Z'/P`` with missing
calls at the mean (BOLT-LMM's convention).

A product ``K V`` for a block of vectors ``V`` is one pass over the genotypes, a dask
map-reduce: each chunk gives ``Z_c (Z_c' V)`` and the partial products are summed by dask's
tree reduction. The threaded scheduler runs it by default; a ``dask.distributed`` ``Client``
runs it on a cluster. With covariates ``X`` the operator is the projected kernel
``(I - Q Q') K (I - Q Q')`` (``Q`` an orthonormal basis of ``X``'s columns), the kernel of
the REML likelihood on the residual space (notes 4.3.2).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bayeslmm.errors import InputError
from bayeslmm.genotypes import variant_qc
from bayeslmm.io.plink import iter_variant_blocks, read_plink

__all__ = ["GenotypeOperator", "PassStats", "genotype_array", "standardize_inplace"]

log = logging.getLogger(__name__)

#: bytes of float64 standardized genotypes per chunk (per dask task), by default
CHUNK_BYTES = 64 * 2**20
#: show a per-pass progress bar by default from this many chunks on
PROGRESS_MIN_CHUNKS = 20


class _VariantChunks:
    """An array-like (``shape``, ``dtype``, ``ndim``, slicing) over a lazy PLINK dataset that
    dask's ``from_array`` cuts into variant chunks; each slice is one bed-reader read.

    It holds only the dataset's annotations (picklable), so a distributed worker reads its
    chunks from the ``.bed`` itself.
    """

    def __init__(self, ds: xr.Dataset):
        self.ds = ds
        self.shape = (ds.sizes["sample"], ds.sizes["variant"])
        self.dtype = np.dtype(np.float64)
        self.ndim = 2

    def __getitem__(self, key):
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        pos = np.arange(self.shape[1])[cols]
        if pos.size == 0:
            return np.zeros((self.shape[0], 0))[rows]
        # bed-reader's own threads stay at 1: dask already runs one chunk per thread/worker.
        blk = next(iter_variant_blocks(self.ds, block_size=pos.size, variants=pos,
                                       num_threads=1))
        return blk.genotypes[rows]


def standardize_inplace(g: np.ndarray) -> np.ndarray:
    """:func:`bayeslmm.genotypes.standardize_block` (GCTA scaling, ``p`` from the block),
    overwriting the float64 block ``g`` and skipping the indicator matrix.

    The same arithmetic, so the values equal ``standardize_block(g)[0]`` to rounding (the
    column sums may add in another order), at a third of the memory traffic: a pass spent
    most of its time standardizing, not in the products.
    """
    miss = np.isnan(g)
    n_called = g.shape[0] - miss.sum(axis=0)
    np.copyto(g, 0.0, where=miss)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = g.sum(axis=0) / (2.0 * n_called)
        mean = 2.0 * p
        sd = np.sqrt(2.0 * p * (1.0 - p))
        ok = np.isfinite(sd) & (sd > 0)
        inv = np.where(ok, 1.0 / np.where(ok, sd, 1.0), 0.0)
    g -= mean
    np.copyto(g, 0.0, where=miss)
    g *= inv
    return g


def _standardized(g: np.ndarray) -> np.ndarray:
    # dask may hand the same block to two consumers only through its own cache, never by
    # reference to our input; the bed-reader read is a fresh array owned by this task.
    return standardize_inplace(np.array(g, dtype=np.float64, copy=not g.flags.writeable))


def genotype_array(source, *, chunk_size: int | None = None):
    """The standardized genotypes ``Z`` (samples x variants) as a lazy dask array.

    Parameters
    ----------
    source : xarray.Dataset or path
        A lazy dataset from :func:`bayeslmm.io.read_plink` (possibly subset with ``isel``)
        or a PLINK prefix.
    chunk_size : int, optional
        Variants per chunk; default about ``CHUNK_BYTES`` of float64 per chunk.

    Returns
    -------
    dask.array.Array
        ``Z`` chunked ``(N, chunk_size)``; ``p`` of each SNP is computed inside its chunk
        from all of the dataset's samples, as :func:`bayeslmm.genotypes.grm` does.
    """
    import dask.array as da

    ds = read_plink(source) if isinstance(source, str | os.PathLike) else source
    N, P = ds.sizes["sample"], ds.sizes["variant"]
    if chunk_size is None:
        chunk_size = max(1, min(P, CHUNK_BYTES // (8 * max(N, 1))))
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    G = da.from_array(_VariantChunks(ds), chunks=(N, chunk_size), name=False,
                      meta=np.empty((0, 0)))
    return G.map_blocks(_standardized, dtype=np.float64, meta=np.empty((0, 0)))


@dataclass
class PassStats:
    """Bookkeeping of the passes over the genotypes (for benchmarks and logs)."""

    passes: int = 0
    vectors: int = 0
    seconds: list[float] = field(default_factory=list)
    bed_bytes_per_pass: int = 0

    @property
    def bytes_read(self) -> int:
        return self.passes * self.bed_bytes_per_pass


class GenotypeOperator:
    """``K = Z Z' / P`` (optionally projected off covariates) applied by passes over a fileset.

    Parameters
    ----------
    source : xarray.Dataset or path
        Lazy PLINK dataset (:func:`bayeslmm.io.read_plink`) or prefix. Its samples define
        the allele frequencies (as :func:`bayeslmm.genotypes.grm`).
    maf, geno : float
        PLINK's ``--maf`` / ``--geno`` filters (one QC pass, :func:`bayeslmm.genotypes.variant_qc`).
    samples : array of int, optional
        Rows (positions in ``source``) the operator acts on, e.g. the phenotyped samples;
        frequencies still come from all samples, as subsetting a GRM would.
    X : array_like (n, M), optional
        Covariates on those rows; when given, ``matmat`` applies the projected kernel
        ``(I - QQ') K (I - QQ')``.
    chunk_size : int, optional
        Variants per dask chunk.
    client : dask.distributed.Client, optional
        Run passes on this cluster; default the threaded scheduler.
    threads : int, optional
        Threads of the threaded scheduler (default: dask's, the number of cores).
    progress : bool, optional
        tqdm bar ticking once per pass; default when there are at least
        ``PROGRESS_MIN_CHUNKS`` chunks.
    """

    def __init__(self, source, *, maf: float = 0.0, geno: float = 1.0,
                 samples: np.ndarray | None = None, X=None, chunk_size: int | None = None,
                 client=None, threads: int | None = None, progress: bool | None = None):
        ds = read_plink(source) if isinstance(source, str | os.PathLike) else source
        if not isinstance(ds, xr.Dataset):
            raise InputError("expected a PLINK prefix or a dataset from read_plink, got "
                             f"{type(source).__name__}")
        qc = variant_qc(ds, maf=maf, geno=geno, progress=progress)
        keep = qc["keep"].to_numpy()
        if not keep.any():
            raise InputError(f"no SNP passed QC (maf={maf:g}, geno={geno:g}); no kernel")
        self.dataset = ds.isel(variant=np.flatnonzero(keep))
        self.P = int(keep.sum())
        self.has_missing = bool((qc["missing_rate"].to_numpy()[keep] > 0).any())
        N_all = ds.sizes["sample"]
        rows = np.arange(N_all) if samples is None else np.asarray(samples, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= N_all)):
            raise InputError(f"samples must be positions in 0..{N_all - 1}")
        self.rows = rows
        self.N = int(rows.size)
        self.samples = ds["sample"].to_numpy().astype(str)[rows]
        Z = genotype_array(self.dataset, chunk_size=chunk_size)
        self.Z = Z if samples is None else Z[rows]
        self.n_chunks = len(self.Z.chunks[1])
        self.client = client
        self.threads = threads
        self.Q = None
        if X is not None:
            Xa = np.asarray(X, dtype=np.float64)
            if Xa.ndim == 1:
                Xa = Xa[:, None]
            if Xa.shape[0] != self.N:
                raise InputError(f"X has {Xa.shape[0]} rows; the operator has {self.N} samples")
            self.Q = np.linalg.qr(Xa)[0]
        n_file = int(ds.attrs.get("bed_iid_count", N_all))
        self.stats = PassStats(bed_bytes_per_pass=((n_file + 3) // 4) * self.P)
        show = progress if progress is not None else self.n_chunks >= PROGRESS_MIN_CHUNKS
        self._bar = None
        if show:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="passes over genotypes", unit="pass")

    # ------------------------------------------------------------------ helpers
    @property
    def M(self) -> int:
        """Number of covariate columns projected out (0 without X)."""
        return 0 if self.Q is None else self.Q.shape[1]

    def project(self, V: np.ndarray) -> np.ndarray:
        """``(I - QQ') V``: remove the covariates' span (identity without X)."""
        V = np.asarray(V, dtype=np.float64)
        return V if self.Q is None else V - self.Q @ (self.Q.T @ V)

    def compute(self, *collections):
        """Compute dask collections in one pass (shared genotype reads), on the client if
        one was given, else the threaded scheduler; counts the pass."""
        import time

        import dask

        t0 = time.perf_counter()
        if self.client is not None:
            out = dask.compute(*collections, scheduler=self.client)
        else:
            kw = {"num_workers": self.threads} if self.threads else {}
            out = dask.compute(*collections, scheduler="threads", **kw)
        self.stats.passes += 1
        self.stats.seconds.append(time.perf_counter() - t0)
        if self._bar is not None:
            self._bar.update(1)
        return out

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ products
    def matmat(self, V: np.ndarray, *, extra=()):
        """``K V`` (projected when X was given) for an ``(N, k)`` block, in one pass.

        ``extra`` dask collections built on :attr:`Z` are computed in the same pass and
        returned after the product.
        """
        V = np.asarray(V, dtype=np.float64)
        one = V.ndim == 1
        V2 = self.project(V[:, None] if one else V)
        if V2.shape[0] != self.N:
            raise InputError(f"V has {V2.shape[0]} rows; the operator has {self.N} samples")
        self.stats.vectors += V2.shape[1]
        # Z (Z' V): dask sums the per-chunk products Z_c (Z_c' V) by a tree reduction.
        prod = self.Z @ (self.Z.T @ V2)
        out, *rest = self.compute(prod, *extra)
        out = self.project(out / self.P)
        out = out[:, 0] if one else out
        return (out, *rest) if extra else out

    def trace(self) -> float:
        """tr(K) (projected when X was given): ``sum Z^2 / P - tr(Q'KQ)``; one pass."""
        sq = (self.Z**2).sum()
        if self.Q is None:
            return float(self.compute(sq)[0]) / self.P
        KQ, s = self.matmat_raw(self.Q, extra=(sq,))
        return float(s) / self.P - float(np.trace(self.Q.T @ KQ))

    def matmat_raw(self, V: np.ndarray, *, extra=()):
        """``Z Z' V / P`` without the covariate projection (one pass)."""
        V = np.asarray(V, dtype=np.float64)
        out, *rest = self.compute(self.Z @ (self.Z.T @ V), *extra)
        self.stats.vectors += V.shape[1] if V.ndim == 2 else 1
        return (out / self.P, *rest)

    def gram(self) -> np.ndarray:
        """``Z'Z`` (P x P, unscaled), accumulated over chunks in one pass."""
        return self.compute(self.Z.T @ self.Z)[0]

    def dense(self) -> np.ndarray:
        """K as a dense N x N matrix (tests and small data only)."""
        return self.matmat(np.eye(self.N))

    def __repr__(self) -> str:
        return (f"GenotypeOperator(N={self.N}, P={self.P}, M={self.M}, "
                f"chunks={self.n_chunks}, scheduler="
                f"{'distributed' if self.client is not None else 'threads'})")
