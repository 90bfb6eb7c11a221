"""Products with the standardized genotypes straight from PLINK 1's 2-bit packing.

At biobank size the int8 cache of :class:`bayeslmm.genotypes.operator.GenotypeOperator`
(one byte a call: 50 GB at 500,000 x 100,000) does not fit; the ``.bed`` itself (a quarter
of that) stays in the operating system's page cache when the process stays small. Here a
pass reads the ``.bed``'s bytes through a read-only memory map (no copy, no bed-reader
decoding) and decodes them inside the product kernel:

* each SNP's four 2-bit codes map to the four values its standardized column can take,
  ``z = (g - m) d`` with ``g`` the A1 count (PLINK's ``00`` = two A1 alleles, ``10`` = one,
  ``11`` = none, ``01`` = missing), ``m = 2p``, ``d = 1/sqrt(2p(1-p))`` and a missing call 0
  *after* standardizing (GCTA's convention, notes eq. 44-47), so the standardization is
  folded into the look-up and no correction for missing calls remains;
* a sub-block of ``SUB_BLOCK`` SNPs is decoded (numba, no GIL) into one reused float buffer
  ``F`` and the two dense products ``F' V`` and ``F Y`` are BLAS calls, as on the int8 path.

With ``V`` centred at its column means ``vbar`` (the intercept loses nothing to a float32
cast), ``Z'V = Z'(V - 1 vbar') + s vbar'`` where ``s = Z'1`` is exact in float64 from the
allele counts: ``s_j = d_j (S1_j - n_j m_j)`` over the called rows.

The counting pass (allele frequencies, call rates, PLINK's ``--maf/--geno``) reads the same
bytes: per SNP the number of each code over all samples and over the analysed rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SUB_BLOCK", "code_values", "count_codes", "decode_standardized", "file_rows",
           "packed_columns", "packed_graph", "packed_product", "packed_source",
           "packed_standardized", "row_stats"]

#: SNPs decoded per dense product (a float buffer of N x this, reused)
SUB_BLOCK = 256
#: the 2-bit codes, low bits first: 00 two A1 alleles, 01 missing, 10 one, 11 none
_A1_COUNT = np.array([2.0, np.nan, 1.0, 0.0])
#: how many of each code a byte holds (a look-up instead of four comparisons per call)
_BYTE_CODES = np.array([[sum(((b >> (2 * k)) & 3) == code for k in range(4))
                         for code in range(4)] for b in range(256)], dtype=np.int64)


def packed_columns(bed_path: str, n_file: int, p_file: int, cols: np.ndarray) -> np.ndarray:
    """The ``.bed`` bytes of variants ``cols`` as a ``(bytes_per_variant, c)`` uint8 array.

    A view of a read-only memory map when ``cols`` are consecutive (the pages come from the
    page cache; nothing is copied), a copy of those columns otherwise.
    """
    nbytes = (n_file + 3) // 4
    mm = np.memmap(bed_path, dtype=np.uint8, mode="r", offset=3, shape=(p_file, nbytes))
    cols = np.asarray(cols, dtype=np.int64)
    if cols.size and np.all(np.diff(cols) == 1):
        block = mm[int(cols[0]):int(cols[-1]) + 1]
    else:
        block = mm[cols]
    return np.asarray(block).T


@njit(cache=True, nogil=True)
def count_codes(packed, rows, n_file):
    """Per SNP (column of ``packed``) the number of each 2-bit code, over all ``n_file``
    samples (row 0-3) and over ``rows`` (rows 4-7; all samples when ``rows`` is empty)."""
    nbytes, c = packed.shape
    out = np.zeros((8, c), np.int64)
    full = n_file // 4
    for j in range(c):
        a0 = a1 = a2 = a3 = 0
        for q in range(full):
            b = packed[q, j]
            a0 += _BYTE_CODES[b, 0]
            a1 += _BYTE_CODES[b, 1]
            a2 += _BYTE_CODES[b, 2]
            a3 += _BYTE_CODES[b, 3]
        for i in range(4 * full, n_file):  # the last byte's padding bits are not samples
            code = (packed[i >> 2, j] >> ((i & 3) << 1)) & 3
            a0 += code == 0
            a1 += code == 1
            a2 += code == 2
            a3 += code == 3
        out[0, j], out[1, j], out[2, j], out[3, j] = a0, a1, a2, a3
        if rows.size == 0:
            out[4, j], out[5, j], out[6, j], out[7, j] = a0, a1, a2, a3
            continue
        for i in range(rows.size):
            r = rows[i]
            code = (packed[r >> 2, j] >> ((r & 3) << 1)) & 3
            out[4 + code, j] += 1
    return out


def row_stats(counts: np.ndarray) -> np.ndarray:
    """The operator's five per-variant statistics from :func:`count_codes`: calls and A1
    allele count over all samples, then calls, allele count and sum of squared counts over
    the rows (the same float64 integers as the int8 path's)."""
    c = counts.astype(np.float64)
    return np.array([c[0] + c[2] + c[3], 2 * c[0] + c[2],
                     c[4] + c[6] + c[7], 2 * c[4] + c[6], 4 * c[4] + c[6]])


def code_values(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``(c, 4)`` standardized value of each code: ``(g - m) d``, 0 for a missing call (and
    for a monomorphic SNP, whose ``d`` is 0)."""
    vals = (_A1_COUNT[None, :] - m[:, None]) * d[:, None]
    vals[:, 1] = 0.0
    return vals


@njit(cache=True, nogil=True)
def decode_standardized(packed, rows, vals, out):
    """Write the standardized genotypes of ``packed``'s columns into ``out`` (n, c), Fortran
    order: ``out[i, j] = vals[j, code of sample rows[i] at SNP j]`` (all samples in file
    order when ``rows`` is empty).

    Unrolled over the four codes of a byte and indexed, not branched: 0.6 ns a call on one
    core, an eighth of the two dense products' time at 31 vectors.
    """
    n, c = out.shape
    full = n // 4 if rows.size == 0 else 0
    for j in range(c):
        v = vals[j]
        for q in range(full):
            b = packed[q, j]
            i = 4 * q
            out[i, j] = v[b & 3]
            out[i + 1, j] = v[(b >> 2) & 3]
            out[i + 2, j] = v[(b >> 4) & 3]
            out[i + 3, j] = v[b >> 6]
        if rows.size == 0:
            for i in range(4 * full, n):
                out[i, j] = v[(packed[i >> 2, j] >> ((i & 3) << 1)) & 3]
        else:
            for i in range(n):
                r = rows[i]
                out[i, j] = v[(packed[r >> 2, j] >> ((r & 3) << 1)) & 3]


def packed_standardized(packed, coef, rows, n: int) -> np.ndarray:
    """The chunk of Z (n x c, float64) from its packed bytes; ``coef`` rows ``m, d, s``."""
    out = np.empty((n, packed.shape[1]), order="F")
    decode_standardized(packed, rows, code_values(coef[0], coef[1]), out)
    return out


def packed_product(packed, coef, Vw, vbar, rows, n: int, precision, half: bool = False):
    """One chunk's ``Z_c (Z_c' V)`` (n, 1, b), or ``Z_c' V`` (c, b) if ``half``.

    ``coef`` rows: ``m``, ``d`` and ``s = Z_c'1`` (float64); ``Vw`` is ``V`` centred at its
    column means ``vbar``, already in ``precision``. The decoded sub-blocks and the dense
    products are in ``precision``, the rank-one term and the sums in float64.
    """
    c = packed.shape[1]
    b = Vw.shape[1]
    vals = code_values(coef[0], coef[1]).astype(precision)
    s = coef[2]
    Y = np.empty((c, b))
    out = None if half else np.zeros((n, b))
    buf = np.empty((n, min(SUB_BLOCK, c)), dtype=precision, order="F")
    for a in range(0, c, SUB_BLOCK):
        e = min(a + SUB_BLOCK, c)
        F = buf[:, :e - a]
        decode_standardized(packed[:, a:e], rows, vals[a:e], F)
        Y[a:e] = (F.T @ Vw).astype(np.float64) + np.outer(s[a:e], vbar)
        if not half:
            out += F @ Y[a:e].astype(precision)
    return Y if half else out[:, None, :]


def packed_source(ds) -> tuple[str, int, int] | None:
    """``(bed_path, n_file, p_file)`` when ``ds`` reads a PLINK 1 ``.bed`` (the only format
    with the 2-bit packing), else None."""
    if "genotype" in ds or ds.attrs.get("genotype_reader") is not None \
            or "bed_path" not in ds.attrs:
        return None
    return (str(ds.attrs["bed_path"]), int(ds.attrs["bed_iid_count"]),
            int(ds.attrs["bed_sid_count"]))


def file_rows(ds, rows: np.ndarray | None, n_file: int) -> np.ndarray:
    """Positions in the ``.bed`` of the dataset's ``rows`` (all of its samples if None); an
    empty array when they are all of the file's samples in file order (the kernels' fast
    path)."""
    fam = ds["fam_index"].to_numpy().astype(np.int64)
    r = fam if rows is None else fam[np.asarray(rows, dtype=np.int64)]
    if r.size == n_file and np.array_equal(r, np.arange(n_file)):
        return np.empty(0, np.int64)
    return np.ascontiguousarray(r)


def _chunk_counts(source, cols, rows):
    path, n_file, p_file = source
    return count_codes(packed_columns(path, n_file, p_file, cols), rows, n_file)


def packed_graph(ds, variants: np.ndarray, rows: np.ndarray, bounds):
    """Lazy dask arrays over the ``.bed``: the packed bytes ``(bytes_per_variant, c)`` of
    each chunk of ``variants`` (positions in ``ds``; read afresh on every pass, through the
    page cache) and the per-chunk code counts ``(8, c)`` (:func:`count_codes`)."""
    import dask
    import dask.array as da

    source = packed_source(ds)
    path, n_file, p_file = source
    nbytes = (n_file + 3) // 4
    bed_index = ds["bed_index"].to_numpy()[variants]
    rows_d = dask.delayed(rows, pure=True)
    G, counts = [], []
    for a, b in bounds:
        cols = bed_index[a:b]
        g = dask.delayed(packed_columns, pure=True)(path, n_file, p_file, cols)
        G.append(da.from_delayed(g, shape=(nbytes, b - a), dtype=np.uint8,
                                 meta=np.empty((0, 0), np.uint8)))
        k = dask.delayed(_chunk_counts, pure=True)(source, cols, rows_d)
        counts.append(da.from_delayed(k, shape=(8, b - a), dtype=np.int64,
                                      meta=np.empty((0, 0), np.int64)))
    return da.concatenate(G, axis=1), da.concatenate(counts, axis=1)
