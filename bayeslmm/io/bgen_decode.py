"""Dosages of many BGEN variants at once, for the common layout (a vectorised fast path).

UK Biobank-style BGEN (layout 2, zlib-compressed or uncompressed, 8 or 16 bits, biallelic,
unphased diploid calls) is decoded here with NumPy over a block of variants: the genotype
blocks are inflated (Python's zlib) and their probabilities turned into dosages in one array
operation. The arithmetic is cbgen's (the bgen library's ``read_unphased_genotype32``), so
the values are the same float32 numbers bit for bit: P(first hom) = u0 / d, P(het) = u1 / d,
P(second hom) = (d - (u0 + u1)) / d with d = 2^bits - 1, each rounded to float32, and the
dosage P(het) + 2 P(hom counted) in float32. Any other record (layout 1, zstd, phased, other
ploidy or bit depths) returns None, and the caller reads it with cbgen.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from bayeslmm.errors import FileFormatError

__all__ = ["fast_dosages"]

_SIMPLE_BITS = {8: np.dtype("<u1"), 16: np.dtype("<u2")}


def _payload(m, offset: int, compression: int, where: str) -> bytes:
    """The uncompressed genotype block of the variant whose block starts at ``offset``."""
    (c,) = np.frombuffer(m, dtype="<u4", count=1, offset=offset)
    if compression == 0:
        return m[offset + 4:offset + 4 + int(c)]
    try:
        return zlib.decompress(m[offset + 8:offset + 4 + int(c)])
    except zlib.error:
        raise FileFormatError(f"{where} cannot be decompressed (the file is corrupt)") from None


def fast_dosages(m, offsets: np.ndarray, n_samples: int, compression: int, layout: int,
                 first_counted: bool, where: str) -> np.ndarray | None:
    """``(len(offsets), n_samples)`` float32 dosages of the counted allele (NaN missing), or
    None when a record is not of the layout this path decodes.

    Parameters
    ----------
    m : buffer
        The BGEN file (an ``mmap``).
    offsets : array of int
        Where each variant's genotype block starts (the block-length field).
    compression : int
        The header's compression flag (0 none, 1 zlib; 2, zstd, is not decoded here).
    first_counted : bool
        The first allele is the counted (ALT) one.
    """
    if layout != 2 or compression not in (0, 1):
        return None
    N = n_samples
    head = 8 + N + 2  # N, K, min and max ploidy, ploidy bytes, phased, bits
    out = np.empty((len(offsets), N), dtype=np.float32)
    raw, bits = [], None
    for p in _payloads(m, offsets, compression):
        if len(p) < head:
            return None
        n, K, lo, hi = np.frombuffer(p, dtype="<u4", count=1)[0], p[4] | p[5] << 8, p[6], p[7]
        b = p[head - 1]
        if (n != N or K != 2 or lo != 2 or hi != 2 or p[head - 2] != 0
                or b not in _SIMPLE_BITS or (bits is not None and b != bits)):
            return None
        bits = b
        need = head + 2 * N * _SIMPLE_BITS[b].itemsize
        if len(p) < need:
            return None
        raw.append(p[8:8 + N])
        raw.append(p[head:need])
    ploidy = np.frombuffer(b"".join(raw[0::2]), dtype=np.uint8).reshape(len(offsets), N)
    u = np.frombuffer(b"".join(raw[1::2]), dtype=_SIMPLE_BITS[bits]).reshape(len(offsets), N, 2)
    if bits == 8:  # every (u0, u1) pair looked up: the pair read as one little-endian u16
        np.take(_table(first_counted), u.view("<u2")[..., 0], out=out)
    else:
        _dosage(u[..., 0], u[..., 1], 2**bits - 1, first_counted, out)
    out[ploidy >= 128] = np.nan  # the missing flag of a sample's ploidy byte
    return out


def _dosage(u0, u1, denom: int, first_counted: bool, out=None) -> np.ndarray:
    """cbgen's float32 arithmetic: P(het) + 2 P(hom counted) from the stored integers."""
    d = np.float32(denom)
    het = u1.astype(np.float32) / d
    if first_counted:
        hom = u0.astype(np.float32) / d
    else:
        hom = (d - (u0.astype(np.float32) + u1.astype(np.float32))) / d
    return np.add(het, np.float32(2.0) * hom, out=out)


@lru_cache(maxsize=2)
def _table(first_counted: bool) -> np.ndarray:
    """The dosage of every 8-bit pair, indexed by u0 + 256 u1."""
    u = np.arange(65536, dtype=np.uint32)
    return _dosage(u & 255, u >> 8, 255, first_counted)


def _payloads(m, offsets: np.ndarray, compression: int):
    """The uncompressed genotype blocks in order. (Inflating in two threads was measured no
    faster on a loaded 2-core machine, so it is not done.)"""
    for o in offsets:
        yield _payload(m, int(o), compression, f"BGEN variant block at byte {int(o)}")
