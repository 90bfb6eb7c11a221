"""The kernel K = Z Z' / P as an operator over a PLINK fileset, never formed (notes section 3).

The genotypes are decoded once, by bed-reader, into one byte per call and kept as a dask
array of int8 variant chunks (persisted in memory, or on the workers of a
``dask.distributed`` cluster); the same pass gives the allele counts of every SNP, hence
its frequency ``p`` (from all of the dataset's samples), PLINK's ``--maf``/``--geno``
filters and the exact ``tr(K)``. Later passes read the int8 chunks only. Any registered
format decodes the same way (:func:`bayeslmm.io.iter_variant_blocks`); a dosage source
(BGEN, VCF ``dosage=DS``) is cached as float32 expected allele counts (4 bytes a call), the
dosage path, with the same products and the allele sums taken from the dosages.

``Z`` is GCTA's standardization, exactly as :func:`bayeslmm.genotypes.kinship.grm`: centred at
``m = 2p`` and scaled by ``d = 1/sqrt(2p(1-p))``, missing calls 0 *after* standardizing,
monomorphic SNPs an all-zero column that still counts in ``P``. It is never written out:
with ``G0`` the counts with missing calls set to 0, ``C`` the indicator of the called
entries and ``M = 1 1' - C`` that of the missing ones (sparse),

    Z = G0 D - C diag(m d),      D = diag(d)
    Z' V = D (G0' V) - diag(m d) (1'V - M'V)
    Z Y  = G0 (D Y) - 1 (m d)'Y + M diag(m d) Y

so a chunk's two products are two dense products with the int8 counts cast to floating
point, plus rank-one and sparse corrections in float64. Without missing calls the operator
is exactly :func:`bayeslmm.genotypes.kinship.grm` (GCTA's GRM, notes eq. 44-47); with missing calls
the GCTA GRM divides each pair by the SNPs called in both (``N_jk``), which is not a
low-rank product, and the operator is ``Z Z'/P`` with missing calls at the mean (BOLT-LMM's
convention).

``precision="float32"`` (the default) casts the counts (0, 1, 2: exact in float32) and the
vectors to float32 for the two dense products and adds the chunks' results in float64;
``"float64"`` does everything in float64 (equal to the dense GRM to rounding). The first
product runs on ``V`` centred at its column means (the means enter exactly through the
counts' column sums), so a vector with a large mean (the intercept) loses nothing to the
cast.

A product ``K V`` for a block of vectors ``V`` is one pass, a dask map-reduce: each chunk
gives ``Z_c (Z_c' V)`` and dask's tree reduction sums the chunks. The threaded scheduler
runs it by default (one BLAS thread per dask thread); a ``dask.distributed`` ``Client``
runs it on a cluster. With covariates ``X`` the operator is the projected kernel
``(I - Q Q') K (I - Q Q')`` (``Q`` an orthonormal basis of ``X``'s columns), the kernel of
the REML likelihood on the residual space (notes 4.3.2).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import xarray as xr
from numba import njit

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import AlleleStats, qc_keep
from bayeslmm.genotypes.packed import (
    file_rows,
    packed_graph,
    packed_product,
    packed_standardized,
    row_stats,
)
from bayeslmm.genotypes.passes import PassStats, PassStore, digest
from bayeslmm.genotypes.storage import CACHES, available_memory, choose_cache, pass_identity
from bayeslmm.io.plink import MISSING_INT8, iter_variant_blocks, read_plink
from bayeslmm.progress import progress_bar

__all__ = ["CACHES", "PRECISIONS", "GenotypeOperator", "decode_chunk", "genotype_array",
           "standardize_inplace"]

log = logging.getLogger(__name__)

#: int8 bytes of genotypes per chunk (per dask task) at most, by default; a chunk costs no
#: memory beyond the cache but a partial product (N x b float64) to reduce
CHUNK_BYTES = 128 * 2**20
#: ... and at least this many chunks while they keep ``SUB_BLOCK`` variants (parallelism)
MIN_CHUNKS = 8
#: variants per dense product inside a chunk (a float buffer of N x this, reused)
SUB_BLOCK = 256
#: show a per-pass progress bar by default from this many chunks on
PROGRESS_MIN_CHUNKS = 20
PRECISIONS = ("float32", "float64")
#: rows of the per-variant statistics a decoding task returns
_STAT_ROWS = ("n_called", "sum", "called_rows", "sum_rows", "sumsq_rows")


# ------------------------------------------------------------------ chunk kernels
@njit(cache=True, nogil=True)
def _count_calls(g, clear):
    """Per column of int8 counts ``g`` (Fortran order): calls of 1, of 2, missing calls; with
    ``clear`` the missing calls are set to 0 and their Fortran-order positions returned.

    One compiled pass (branch-free counts) instead of a numpy pass per count; no GIL, so
    dask's threads decode chunks in parallel.
    """
    n, c = g.shape
    n1 = np.zeros(c, np.int64)
    n2 = np.zeros(c, np.int64)
    nm = np.zeros(c, np.int64)
    for j in range(c):
        a = b = m = 0
        for i in range(n):
            v = g[i, j]
            a += v == 1
            b += v == 2
            m += v == MISSING_INT8
        n1[j], n2[j], nm[j] = a, b, m
    pos = np.empty(nm.sum() if clear else 0, np.int64)
    if clear:
        k = 0
        for j in range(c):
            if nm[j] == 0:
                continue
            for i in range(n):
                if g[i, j] == MISSING_INT8:
                    pos[k] = j * n + i
                    g[i, j] = 0
                    k += 1
    return n1, n2, nm, pos


@njit(cache=True, nogil=True)
def _take_rows(g, rows):
    """``g[rows]`` in Fortran order (numpy's fancy indexing of a Fortran array is slower
    than the decoding itself)."""
    out = np.empty((g.shape[1], rows.size), np.int8).T
    for j in range(g.shape[1]):
        for k in range(rows.size):
            out[k, j] = g[rows[k], j]
    return out


def decode_chunk(ds: xr.Dataset, variants: np.ndarray, rows: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read variants of ``ds`` as int8 and return the cached form of the chunk.

    Returns
    -------
    counts : ndarray (n, c), int8, Fortran order
        Allele counts of ``rows`` (all samples if None), a missing call set to 0.
    missing : ndarray (k,), int64
        Positions of the missing calls in ``counts`` raveled in Fortran order (ascending).
    stats : ndarray (5, c), float64
        Per variant: calls and allele count over all samples (the frequency), then calls,
        allele count and sum of squared counts over ``rows``.
    """
    # bed-reader's own threads stay at 1: dask already runs one chunk per thread/worker.
    blk = next(iter_variant_blocks(ds, block_size=max(len(variants), 1), variants=variants,
                                   num_threads=1, dtype=_cache_dtype(ds).name))
    g = np.asfortranarray(blk.genotypes)
    if g.dtype == np.float32:
        return _decode_dosages(g, rows)
    n_all = g.shape[0]
    if rows is None:
        n1, n2, nm, missing = _count_calls(g, True)
        n1a, n2a, nma = n1, n2, nm
    else:
        n1a, n2a, nma, _ = _count_calls(g, False)
        g = _take_rows(g, rows)
        n1, n2, nm, missing = _count_calls(g, True)
    stats = np.array([n_all - nma, n1a + 2 * n2a, g.shape[0] - nm, n1 + 2 * n2, n1 + 4 * n2],
                     dtype=np.float64)
    return g, missing, stats


def _cache_dtype(ds: xr.Dataset) -> np.dtype:
    """int8 counts, or float32 expected allele counts for a dosage source (BGEN, VCF DS)."""
    return np.dtype(np.float32 if ds.attrs.get("dosage") else np.int8)


def _decode_dosages(g: np.ndarray, rows: np.ndarray | None):
    """:func:`decode_chunk` for float32 dosages (NaN missing): the same cached form and
    statistics, the sums of dosages in place of the counts of 1 and 2 calls."""
    miss_all = np.isnan(g)
    n_all = g.shape[0]
    called_all = n_all - miss_all.sum(axis=0)
    sum_all = np.where(miss_all, 0.0, g).sum(axis=0, dtype=np.float64)
    if rows is not None:
        g = np.asfortranarray(g[rows])
    miss = np.isnan(g)
    missing = np.flatnonzero(miss.ravel(order="F"))
    g[miss] = 0.0
    g64 = g.astype(np.float64)
    stats = np.array([called_all, sum_all, g.shape[0] - miss.sum(axis=0), g64.sum(axis=0),
                      (g64 * g64).sum(axis=0)], dtype=np.float64)
    return g, missing, stats


def _missing_matrix(missing: np.ndarray, n: int, c: int):
    """The sparse (n, c) indicator M of the missing calls (CSC, from sorted positions)."""
    from scipy import sparse

    cols = missing // n
    indptr = np.searchsorted(cols, np.arange(c + 1))
    return sparse.csc_array((np.ones(missing.size), missing % n, indptr), shape=(n, c))


def _chunk_product(counts, missing, coef, Vw, vbar, precision, half=False):
    """One chunk's ``Z_c (Z_c' V)`` (n, 1, b), or ``Z_c' V`` (c, b) if ``half``.

    ``coef`` rows: m = 2p, d (0 for a monomorphic SNP), column sums of the counts over the
    rows; ``Vw`` is V centred at its column means ``vbar``, already in ``precision``. The
    identities are in the module docstring; the dense products run in ``precision`` over
    sub-blocks of ``SUB_BLOCK`` variants through one reused buffer, everything else in
    float64.
    """
    n, c = counts.shape
    b = Vw.shape[1]
    m, d, s1 = coef[0], coef[1], coef[2]
    md = m * d
    M = _missing_matrix(missing, n, c) if missing.size else None
    # C'V = 1'V - M'V, with V = Vw + vbar.
    CtV = np.broadcast_to(n * vbar, (c, b)).copy()
    if M is not None:
        MtV = M.T @ Vw + M.sum(axis=0)[:, None] * vbar
        CtV -= MtV
    Y = np.empty((c, b))
    out = None if half else np.zeros((n, b))
    buf = np.empty((n, min(SUB_BLOCK, c)), dtype=precision, order="F")
    for a in range(0, c, SUB_BLOCK):
        e = min(a + SUB_BLOCK, c)
        F = buf[:, :e - a]
        np.copyto(F, counts[:, a:e])
        A = (F.T @ Vw).astype(np.float64) + np.outer(s1[a:e], vbar)  # G0'V
        Y[a:e] = d[a:e, None] * A - md[a:e, None] * CtV[a:e]
        if not half:
            out += F @ (d[a:e, None] * Y[a:e]).astype(precision)
    if half:
        return Y
    w = md[:, None] * Y
    out -= w.sum(axis=0)
    if M is not None:
        out += M @ w
    return out[:, None, :]


def _chunk_standardized(counts, missing, coef):
    """The chunk of Z (float64): ``(G - m) d`` with missing calls 0."""
    Z = (counts.astype(np.float64) - coef[0]) * coef[1]
    if missing.size:
        n = counts.shape[0]
        Z[missing % n, missing // n] = 0.0
    return Z


def standardize_inplace(g: np.ndarray) -> np.ndarray:
    """:func:`bayeslmm.genotypes.kinship.standardize_block` (GCTA scaling, ``p`` from the block),
    overwriting the float64 block ``g`` and skipping the indicator matrix.

    The same arithmetic, so the values equal ``standardize_block(g)[0]`` to rounding (the
    column sums may add in another order), at a third of the memory traffic.
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


def _scaling(n_called: np.ndarray, allele_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p, and the standardization's (m = 2p, d) as :func:`standardize_inplace` computes
    them (the same float64 arithmetic on the same integer sums)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = allele_sum / (2.0 * n_called)
        sd = np.sqrt(2.0 * p * (1.0 - p))
        ok = np.isfinite(sd) & (sd > 0)
        d = np.where(ok, 1.0 / np.where(ok, sd, 1.0), 0.0)
    m = np.where(np.isfinite(p), 2.0 * p, 0.0)
    return p, np.stack([m, d])


def _chunk_bounds(P: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk_size, P)) for s in range(0, P, chunk_size)]


def _decode_graph(ds: xr.Dataset, variants: np.ndarray, rows: np.ndarray | None,
                  chunk_size: int):
    """Lazy dask collections of the cached counts (n, P), missing positions and stats."""
    import dask
    import dask.array as da

    n = ds.sizes["sample"] if rows is None else rows.size
    dt = _cache_dtype(ds)
    ds_d = dask.delayed(ds, pure=True)
    rows_d = None if rows is None else dask.delayed(rows, pure=True)
    G, miss, stats = [], [], []
    for a, b in _chunk_bounds(variants.size, chunk_size):
        g, mi, st = dask.delayed(decode_chunk, nout=3, pure=True)(ds_d, variants[a:b], rows_d)
        G.append(da.from_delayed(g, shape=(n, b - a), dtype=dt, meta=np.empty((0, 0), dt)))
        miss.append(da.from_delayed(mi, shape=(np.nan,), dtype=np.int64,
                                    meta=np.empty(0, np.int64)))
        stats.append(da.from_delayed(st, shape=(len(_STAT_ROWS), b - a), dtype=np.float64,
                                     meta=np.empty((0, 0))))
    return (da.concatenate(G, axis=1), da.concatenate(miss),
            da.concatenate(stats, axis=1))


def genotype_array(source, *, chunk_size: int | None = None):
    """The standardized genotypes ``Z`` (samples x variants, float64) as a lazy dask array.

    Parameters
    ----------
    source : xarray.Dataset or path
        A lazy dataset from :func:`bayeslmm.io.read_plink` (possibly subset with ``isel``)
        or a PLINK prefix.
    chunk_size : int, optional
        Variants per chunk.

    Returns
    -------
    dask.array.Array
        ``Z`` chunked ``(N, chunk_size)``; ``p`` of each SNP is computed inside its chunk
        from all of the dataset's samples, as :func:`bayeslmm.genotypes.kinship.grm` does.
    """
    import dask.array as da

    ds = read_plink(source) if isinstance(source, str | os.PathLike) else source
    N, P = ds.sizes["sample"], ds.sizes["variant"]
    chunk_size = _default_chunk(N, P, chunk_size)
    G, miss, stats = _decode_graph(ds, np.arange(P), None, chunk_size)
    coef = stats.map_blocks(lambda s: _scaling(s[0], s[1])[1], dtype=np.float64,
                            chunks=((2,), stats.chunks[1]))
    return da.blockwise(_chunk_standardized, "ij", G, "ij", miss, "j", coef, "hj",
                        dtype=np.float64, align_arrays=False, concatenate=True,
                        meta=np.empty((0, 0)))


def _default_chunk(N: int, P: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        by_count = max(SUB_BLOCK, -(-P // MIN_CHUNKS))
        return max(1, min(P, CHUNK_BYTES // max(N, 1), by_count))
    if int(chunk_size) < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    return int(chunk_size)


class GenotypeOperator:
    """``K = Z Z' / P`` (optionally projected off covariates) applied by passes over a fileset.

    Parameters
    ----------
    source : xarray.Dataset or path
        Lazy PLINK dataset (:func:`bayeslmm.io.read_plink`) or prefix. Its samples define
        the allele frequencies (as :func:`bayeslmm.genotypes.kinship.grm`).
    maf, geno : float
        PLINK's ``--maf`` / ``--geno`` filters (from the decoding pass; with a filter
        asked for, the SNPs passing it are decoded again, so the cache holds them only).
    samples : array of int, optional
        Rows (positions in ``source``) the operator acts on, e.g. the phenotyped samples;
        frequencies still come from all samples, as subsetting a GRM would.
    X : array_like (n, M), optional
        Covariates on those rows; when given, ``matmat`` applies the projected kernel
        ``(I - QQ') K (I - QQ')``.
    chunk_size : int, optional
        Variants per dask chunk (default: at most ``CHUNK_BYTES`` of int8, at least
        ``MIN_CHUNKS`` chunks of ``SUB_BLOCK`` variants or more).
    client : dask.distributed.Client, optional
        Run passes on this cluster (the cache persists on its workers); default the
        threaded scheduler.
    threads : int, optional
        Threads of the threaded scheduler (default: dask's, the number of cores).
    progress : bool, optional
        tqdm bar over the decoding pass and one ticking once per product pass; default when
        there are at least ``PROGRESS_MIN_CHUNKS`` chunks.
    precision : {"float32", "float64"}
        Floating type of the dense products (module docstring); chunk sums are float64.
    cache : {"int8", "packed", "none"} or bool, optional
        Where the passes read the genotypes: ``"int8"`` (True) keeps them decoded in memory
        (N x P bytes, 4 N P for dosages; on a cluster, on its workers); ``"packed"`` reads a
        PLINK 1 ``.bed``'s 2-bit bytes on every pass, through the page cache, decoding them
        inside the product kernel (:mod:`bayeslmm.genotypes.packed`; N P / 4 bytes, none of
        them in the process); ``"none"`` decodes with the format's reader on every pass.
        False means "packed" for a ``.bed``, "none" otherwise. By default "int8" when it
        takes at most half of ``memory``, else "packed" for a ``.bed``, else "none".
    memory : int, optional
        Memory budget in bytes (PLINK's ``--memory``, in bytes here) that decides the
        default cache: by default the free memory (the workers' memory limits on a cluster).
    resume : path, optional
        Keep every completed pass in this folder (:class:`bayeslmm.genotypes.passes.PassStore`)
        and read back the ones a previous, interrupted run with the same inputs completed.
        The caller removes it on success (:meth:`PassStore.remove`, ``self.store``).
    """

    def __init__(self, source, *, maf: float = 0.0, geno: float = 1.0,
                 samples: np.ndarray | None = None, X=None, chunk_size: int | None = None,
                 client=None, threads: int | None = None, progress: bool | None = None,
                 precision: str = "float32", cache: bool | str | None = None,
                 memory: int | None = None, resume=None):
        ds = read_plink(source) if isinstance(source, str | os.PathLike) else source
        if not isinstance(ds, xr.Dataset):
            raise InputError("expected a PLINK prefix or a dataset from read_plink, got "
                             f"{type(source).__name__}")
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not 0.0 <= maf <= 0.5:
            raise InputError(f"maf must be in [0, 0.5], got {maf}")
        if not 0.0 <= geno <= 1.0:
            raise InputError(f"geno must be in [0, 1], got {geno}")
        N_all, P_all = ds.sizes["sample"], ds.sizes["variant"]
        rows = np.arange(N_all) if samples is None else np.asarray(samples, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= N_all)):
            raise InputError(f"samples must be positions in 0..{N_all - 1}")
        self.rows = rows
        self.N = int(rows.size)
        self.samples = ds["sample"].to_numpy().astype(str)[rows]
        self.client = client
        self.threads = threads
        self.precision = precision
        self.dtype = np.dtype(precision)
        self.chunk_size = _default_chunk(self.N, P_all, chunk_size)
        n_chunks = -(-P_all // self.chunk_size)
        self.progress = progress if progress is not None else n_chunks >= PROGRESS_MIN_CHUNKS
        itemsize = _cache_dtype(ds).itemsize  # 1 (int8 counts) or 4 (float32 dosages)
        self.storage = choose_cache(cache, ds, self.N * P_all * itemsize,
                                    available_memory(client) if memory is None else int(memory))
        self.cached = self.storage == "int8"
        n_file = int(ds.attrs.get("bed_iid_count", N_all))
        self.stats = PassStats(bed_bytes_per_pass=((n_file + 3) // 4) * P_all)
        row_sel = None if samples is None else rows
        self._file_rows = (file_rows(ds, row_sel, n_file) if self.storage == "packed"
                           else None)
        filtering = maf > 0 or geno < 1
        self.store = None
        if resume is not None:
            self.store = PassStore(resume, pass_identity(ds, rows, maf, geno, precision,
                                                         self.chunk_size, self.storage))
        self._digests: dict[int, tuple] = {}  # id -> (collection, its input's digest)
        # Decode: with a filter asked for, a statistics pass first, then the cache of the
        # SNPs that pass; else one pass (and again only if some SNP was never called).
        # Packed: one counting pass; the chunks of the SNPs kept are read by every pass.
        G, miss, st = self._decode(ds, np.arange(P_all), row_sel, keep=not filtering)
        p, _ = _scaling(st[0], st[1])
        with np.errstate(invalid="ignore"):
            maf_ = np.minimum(p, 1.0 - p)
        allele = AlleleStats(p, maf_, 1.0 - st[0] / N_all if N_all else np.zeros(P_all),
                             st[0])
        keep = qc_keep(allele, maf, geno)
        if not keep.any():
            raise InputError(f"no SNP passed QC (maf={maf:g}, geno={geno:g}); no kernel")
        kept = np.flatnonzero(keep)
        if filtering or kept.size < P_all:
            st = st[:, kept]
            self.stats.bed_bytes_per_pass = ((n_file + 3) // 4) * kept.size
            if self.storage == "packed":  # nothing to decode: the passes read kept's bytes
                G = packed_graph(ds, kept, self._file_rows,
                                 _chunk_bounds(kept.size, self.chunk_size))[0]
            else:
                G = miss = None  # release the first cache before decoding the kept SNPs
                G, miss, _ = self._decode(ds, kept, row_sel, keep=True)
        self.dataset = ds.isel(variant=kept)
        self.P = int(kept.size)
        self.has_missing = bool((st[0] < N_all).any())
        self.G, self.missing = G, miss
        self.n_chunks = len(G.chunks[1])
        self.p, md = _scaling(st[0], st[1])
        self.row_stats = st[2:]
        # m, d and the column sums of the counts over the rows; packed: those of Z (the
        # kernel works on standardized values), d (S1 - n m) over the called rows
        third = md[1] * (st[3] - st[2] * md[0]) if self.storage == "packed" else st[3]
        self._coef_np = np.vstack([md, third])
        import dask.array as da

        self.coef = da.from_array(self._coef_np, chunks=((3,), G.chunks[1]))
        self.stats.genotype_bytes_per_pass = (self.N * self.P * itemsize if self.cached
                                              else self.stats.bed_bytes_per_pass)
        log.info("Passes over the genotypes read %s (cache '%s').", {
            "int8": "them decoded once and kept in memory",
            "packed": "the .bed's 2-bit bytes (page cache), decoded in the product kernel",
            "none": "the file through its reader, decoding it every time"}[self.storage],
            self.storage)
        self.stats.flops_per_vector = 4 * self.N * self.P
        self.Q = None
        if X is not None:
            Xa = np.asarray(X, dtype=np.float64)
            if Xa.ndim == 1:
                Xa = Xa[:, None]
            if Xa.shape[0] != self.N:
                raise InputError(f"X has {Xa.shape[0]} rows; the operator has {self.N} samples")
            self.Q = np.linalg.qr(Xa)[0]
        self._bar = None
        if self.progress:
            self._bar = progress_bar(desc="passes over genotypes", unit="pass")

    # ------------------------------------------------------------------ decoding
    def _decode(self, ds, variants, rows, *, keep: bool):
        """One pass over the ``.bed``: the (persisted when cached and ``keep``) int8
        collections and the per-variant statistics as a numpy array."""
        import dask

        t0 = time.perf_counter()
        if self.storage == "packed":
            G, counts = packed_graph(ds, variants, self._file_rows,
                                     _chunk_bounds(variants.size, self.chunk_size))
            key = digest("counts", dask.base.tokenize(counts))
            stored = self.store.load(key) if self.store is not None else None
            if stored is not None:
                return G, None, row_stats(stored[0])
            with self._decode_bar():
                (counts,) = dask.compute(counts, **self._scheduler())
            if self.store is not None:
                self.store.save(key, (counts,))
            self.stats.decode_passes += 1
            self.stats.decode_seconds.append(time.perf_counter() - t0)
            return G, None, row_stats(counts)
        G, miss, st = _decode_graph(ds, variants, rows, self.chunk_size)
        if keep and self.cached:
            if self.client is not None:
                from distributed import wait

                G, miss, st = self.client.persist([G, miss, st])
                wait([G, miss, st])
                st_np = self.client.compute(st).result()
            else:
                with self._decode_bar():
                    G, miss, st = dask.persist(G, miss, st, **self._scheduler())
                st_np = st.compute(scheduler="sync")
        else:
            with self._decode_bar():
                (st_np,) = dask.compute(st, **self._scheduler())
        self.stats.decode_passes += 1
        self.stats.decode_seconds.append(time.perf_counter() - t0)
        return G, miss, np.asarray(st_np)

    def _decode_bar(self):
        import contextlib

        if not self.progress or self.client is not None:
            return contextlib.nullcontext()
        from tqdm.dask import TqdmCallback

        return TqdmCallback(desc="decoding genotypes", unit="task")

    def _scheduler(self) -> dict:
        if self.client is not None:
            return {"scheduler": self.client}
        kw = {"num_workers": self.threads} if self.threads else {}
        return {"scheduler": "threads", **kw}

    # ------------------------------------------------------------------ helpers
    @property
    def M(self) -> int:
        """Number of covariate columns projected out (0 without X)."""
        return 0 if self.Q is None else self.Q.shape[1]

    @property
    def Z(self):
        """The standardized genotypes (N x P, float64) as a lazy dask array over the cache."""
        import dask.array as da

        if self.storage == "packed":
            return da.blockwise(packed_standardized, "ij", self.G, "qj", self.coef, "hj",
                                rows=self._file_rows, n=self.N, dtype=np.float64,
                                align_arrays=False, concatenate=True, meta=np.empty((0, 0)),
                                new_axes={"i": self.N})
        return da.blockwise(_chunk_standardized, "ij", self.G, "ij", self.missing, "j",
                            self.coef, "hj", dtype=np.float64, align_arrays=False,
                            concatenate=True, meta=np.empty((0, 0)))

    def project(self, V: np.ndarray) -> np.ndarray:
        """``(I - QQ') V``: remove the covariates' span (identity without X)."""
        V = np.asarray(V, dtype=np.float64)
        return V if self.Q is None else V - self.Q @ (self.Q.T @ V)

    def compute(self, *collections):
        """Compute dask collections in one pass (shared genotype reads), on the client if
        one was given, else the threaded scheduler with one BLAS thread per dask thread;
        counts the pass."""
        import dask
        from threadpoolctl import threadpool_limits

        key, made = None, self._digests
        self._digests = {}
        if self.store is not None:
            # a product's input is its block of vectors (the graph holds it under a random
            # name); any other collection's is its dask token (pure graphs: deterministic)
            def input_digest(c):
                entry = made.get(id(c))
                return entry[1] if entry is not None and entry[0] is c else \
                    dask.base.tokenize(c)

            key = digest(*map(input_digest, collections))
            out = self.store.load(key)
            if out is not None:
                if self._bar is not None:
                    self._bar.update(1)
                return out
        t0 = time.perf_counter()
        if self.client is not None:
            out = dask.compute(*collections, scheduler=self.client)
        else:
            with threadpool_limits(limits=1, user_api="blas"):
                out = dask.compute(*collections, **self._scheduler())
        if key is not None:
            self.store.save(key, out)
        self.stats.passes += 1
        self.stats.seconds.append(time.perf_counter() - t0)
        if self._bar is not None:
            self._bar.update(1)
        return out

    def stage(self, name: str, passes: int) -> None:
        """Start a stage of ``passes`` passes (REML, association): the progress bar shows
        its name, its count and the time left; the log says what it will cost."""
        log.info("%s: %d passes over the genotypes.", name, passes)
        if self._bar is not None:
            self._bar.reset(total=passes)
            self._bar.set_description(f"{name}: passes over the genotypes")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ products
    def _vectors(self, V: np.ndarray, dtype):
        """V (float64) as the chunk kernels take it: centred, cast, one dask chunk."""
        import dask.array as da

        vbar = V.mean(axis=0)
        Vw = np.ascontiguousarray(V - vbar, dtype=dtype)
        if self.client is not None:
            # Sent to every worker once, ahead of the graph: embedded in the graph, the block
            # (N x b, 12 MB at N = 100,000) goes through the scheduler on every pass.
            future = self.client.scatter(Vw, broadcast=True, hash=False)
            return da.from_delayed(future, shape=Vw.shape, dtype=Vw.dtype), vbar
        return da.from_array(Vw, chunks=Vw.shape, name=False), vbar

    def product(self, V: np.ndarray):
        """``Z Z' V`` (unscaled, unprojected) as a lazy dask array: one pass when computed."""
        return self._pass_graph(V, self.dtype, half=False)

    def rproduct(self, V: np.ndarray, precision: str | None = None):
        """``Z' V`` (P x b, unscaled) as a lazy dask array: one pass when computed; in
        ``precision`` (default the operator's)."""
        return self._pass_graph(V, self.dtype if precision is None else np.dtype(precision),
                                half=True)

    def _pass_graph(self, V, dtype, half: bool):
        """One (N, 1, b) partial product per chunk, summed over chunks by dask (float64);
        or, ``half``, the (c, b) blocks of Z'V. Its input's digest is kept for the store."""
        import dask.array as da

        V = np.asarray(V, dtype=np.float64)
        Vd, vbar = self._vectors(V, dtype)
        out_ix, kw = ("jk", {}) if half else ("ijk", {"adjust_chunks": {"j": 1}})
        if self.storage == "packed":
            fn, args = packed_product, (self.G, "qj", self.coef, "hj", Vd, "ik")
            kw.update(rows=self._file_rows, n=self.N)
        else:
            fn, args = _chunk_product, (self.G, "ij", self.missing, "j", self.coef, "hj", Vd,
                                        "ik")
        r = da.blockwise(fn, out_ix, *args, vbar=vbar, precision=dtype, half=half,
                         dtype=np.float64, align_arrays=False, concatenate=True,
                         meta=np.empty((0,) * len(out_ix)), **kw)
        if not half:
            r = r.sum(axis=1, dtype=np.float64)
        # one of the two products is half the flops
        self.stats.block_sizes.append(V.shape[1] / 2 if half else V.shape[1])
        if self.store is not None:  # the resume store keys the pass by its input's digest
            self._digests[id(r)] = (r, digest("half" if half else "full",
                                              np.dtype(dtype).str, V))
        return r

    def matmat(self, V: np.ndarray, *, extra=()):
        """``K V`` (projected when X was given) for an ``(N, k)`` block, in one pass.

        ``extra`` dask collections built on the cache are computed in the same pass and
        returned after the product.
        """
        V = np.asarray(V, dtype=np.float64)
        one = V.ndim == 1
        V2 = self.project(V[:, None] if one else V)
        if V2.shape[0] != self.N:
            raise InputError(f"V has {V2.shape[0]} rows; the operator has {self.N} samples")
        self.stats.vectors += V2.shape[1]
        out, *rest = self.compute(self.product(V2), *extra)
        out = self.project(out / self.P)
        out = out[:, 0] if one else out
        return (out, *rest) if extra else out

    def matmat_with_raw(self, V: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K_c V, K R)`` in one pass: the projected product of V and the unprojected one
        of R (e.g. ``R = Q`` for ``tr(Q'KQ)``, so ``tr(K_c)`` costs no pass of its own)."""
        V2 = self.project(np.asarray(V, dtype=np.float64))
        R = np.asarray(R, dtype=np.float64)
        if V2.shape[0] != self.N or R.shape[0] != self.N:
            raise InputError(f"V and R need {self.N} rows")
        self.stats.vectors += V2.shape[1] + R.shape[1]
        (out,) = self.compute(self.product(np.column_stack([V2, R])))
        out /= self.P
        k = V2.shape[1]
        return self.project(out[:, :k]), out[:, k:]

    def matmat_raw(self, V: np.ndarray, *, extra=()):
        """``Z Z' V / P`` without the covariate projection (one pass)."""
        V = np.asarray(V, dtype=np.float64)
        V2 = V[:, None] if V.ndim == 1 else V
        out, *rest = self.compute(self.product(V2), *extra)
        self.stats.vectors += V2.shape[1]
        out = out[:, 0] if V.ndim == 1 else out
        return (out / self.P, *rest)

    def rmatmat(self, V: np.ndarray, *, precision: str | None = None, extra=()):
        """``Z' V`` (P x k, unscaled standardized genotypes; no projection), one pass, in
        ``precision`` (default the operator's)."""
        V = np.asarray(V, dtype=np.float64)
        V2 = V[:, None] if V.ndim == 1 else V
        if V2.shape[0] != self.N:
            raise InputError(f"V has {V2.shape[0]} rows; the operator has {self.N} samples")
        if precision is not None and precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        out, *rest = self.compute(self.rproduct(V2, precision), *extra)
        out = out[:, 0] if V.ndim == 1 else out
        return (out, *rest) if extra else out

    def column_sumsq(self) -> np.ndarray:
        """``diag(Z'Z)``: sum over the rows of each SNP's squared standardized genotype,
        exact from the decoding pass's counts (no pass):
        ``d^2 (S2 - 2 m S1 + n_called m^2)`` over the called rows."""
        called, s1, s2 = self.row_stats
        m, d = self._coef_np[0], self._coef_np[1]
        return d**2 * (s2 - 2.0 * m * s1 + called * m**2)

    def trace_raw(self) -> float:
        """tr(K) = sum of :meth:`column_sumsq` / P, exact, no pass."""
        return float(self.column_sumsq().sum()) / self.P

    def trace(self) -> float:
        """tr(K) (projected when X was given): ``tr(K) - tr(Q'KQ)``; one pass with X."""
        if self.Q is None:
            return self.trace_raw()
        (KQ,) = self.matmat_raw(self.Q)
        return self.trace_raw() - float(np.sum(self.Q * KQ))

    def gram(self) -> np.ndarray:
        """``Z'Z`` (P x P, unscaled, float64), accumulated over chunks in one pass."""
        Z = self.Z
        return self.compute(Z.T @ Z)[0]

    def dense(self) -> np.ndarray:
        """K as a dense N x N matrix (tests and small data only)."""
        return self.matmat(np.eye(self.N))

    def __repr__(self) -> str:
        return (f"GenotypeOperator(N={self.N}, P={self.P}, M={self.M}, "
                f"chunks={self.n_chunks}, precision={self.precision}, "
                f"cache={self.storage}, "
                f"scheduler={'distributed' if self.client is not None else 'threads'})")
