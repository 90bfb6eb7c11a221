"""What the PLINK 2, BGEN and VCF readers share: the reader protocol, plink2's sample IDs,
and the labelled dataset a reader opens into.

A reader (:class:`GenotypeReader`) is kept in the lazy dataset's ``attrs["genotype_reader"]``
and :func:`bayeslmm.io.plink.iter_variant_blocks` asks it for blocks of variants, so every
consumer of genotypes (GRM, QC, filters, the dask operator, association, BLUP of SNP
effects) reads any format through one call. Values are counts of the format's counted allele
(PLINK 2 and VCF: ALT; BGEN: as ``ref-first``/``ref-last`` says), kept as the dataset's ``a1``
so every table that says "per A1 allele" means the counted one. A hard-call source gives
int8 (or float64) counts equal to the ``.bed`` path; a dosage source (BGEN, VCF ``DS``)
gives expected allele counts as float32 (or float64), ``NaN`` for a missing call.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.plink import MISSING_INT8, genotype_dataset

__all__ = ["GenotypeReader", "as_block", "open_dataset", "plink2_sample_ids"]

log = logging.getLogger("bayeslmm.io")

class GenotypeReader:
    """Reads blocks of variants of one genotype file (subclassed per format).

    Attributes
    ----------
    path : pathlib.Path
        The genotype file (``.pgen``, ``.bgen``, ``.vcf[.gz]``/``.bcf``).
    n_samples, n_variants : int
        Samples and variant records in the file (the dataset's ``fam_index``/``bed_index``
        are positions among them).
    dosage : bool
        True when the values are expected allele counts (float32 path), False for hard calls
        (int8 path).
    counted : str
        Which allele is counted, for the log and the docs.
    """

    format: str = ""
    dosage: bool = False
    counted: str = ""

    def __init__(self, path: str | os.PathLike[str], n_samples: int, n_variants: int):
        self.path = Path(path)
        self.n_samples = int(n_samples)
        self.n_variants = int(n_variants)

    def read_columns(self, cols: np.ndarray) -> np.ndarray:
        """Variants ``cols`` (ascending file positions) of every sample, as a ``(b, n_samples)``
        C-ordered array: int8 with ``MISSING_INT8`` (hard calls) or float32 with NaN
        (dosages)."""
        raise NotImplementedError

    def read(self, rows: np.ndarray | None, cols: np.ndarray, dtype: str) -> np.ndarray:
        """``(len(rows), len(cols))`` values in ``dtype`` (``int8``, ``float32``,
        ``float64``), Fortran order, as :func:`bayeslmm.io.plink.iter_variant_blocks` yields
        them. ``rows`` None: every sample in file order."""
        cols = np.asarray(cols, dtype=np.int64)
        if self.dosage and dtype == "int8":
            raise InputError(f"{self.path}: dosages cannot be read as int8 counts; read them as "
                             "float32 or float64")
        order = np.argsort(cols, kind="stable")
        srt = cols[order]
        uniq, inv = np.unique(srt, return_inverse=True)
        vals = self.read_columns(uniq)  # (u, n)
        if uniq.size != cols.size or not np.array_equal(order, np.arange(cols.size)):
            out = np.empty((cols.size, vals.shape[1]), vals.dtype)
            out[order] = vals[inv]
            vals = out
        if rows is not None:
            vals = vals[:, rows]
        return as_block(vals.T, dtype)

    def __dask_tokenize__(self):
        # The file and how it is read identify a reader: tokenizing its state (a VCF's
        # decoded matrix) would hash N x P bytes at every graph built on the dataset.
        st = self.path.stat() if self.path.exists() else None
        return (type(self).__name__, str(self.path), st and (st.st_size, st.st_mtime_ns),
                self.counted, self.dosage)

    def __deepcopy__(self, memo):
        return self  # read-only: a deep copy of the dataset shares its reader

    def __repr__(self) -> str:
        return (f"{type(self).__name__}('{self.path}', N={self.n_samples}, "
                f"P={self.n_variants}, {'dosages' if self.dosage else 'hard calls'})")


def as_block(values: np.ndarray, dtype: str) -> np.ndarray:
    """``(n, b)`` int8 (``MISSING_INT8``) or float (NaN) values as ``dtype``, Fortran order."""
    if values.dtype == np.int8:
        if dtype == "int8":
            return np.asfortranarray(values)
        out = values.astype(dtype, order="F")
        out[values == MISSING_INT8] = np.nan
        return out
    return np.asfortranarray(values, dtype=dtype)


def plink2_sample_ids(names, *, double_id: bool = False, id_delim: str | None = None,
                      where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(FID, IID) of single-column sample IDs (VCF, BGEN) as plink2 makes them.

    By default FID is ``0`` and IID the ID (plink2's default, ``--const-fid 0``);
    ``double_id``: FID = IID = the ID (``--double-id``); ``id_delim``: the ID is
    ``FID<d>IID`` (``--id-delim``, which like plink2 refuses an ID without the delimiter;
    an ID with two, plink2's FID/IID/SID, is refused: bayeslmm has no SID).
    """
    names = [str(n) for n in names]
    if double_id and id_delim is not None:
        raise InputError("--id-delim cannot be used with --double-id (as plink2)")
    if id_delim is None:
        fid = names if double_id else ["0"] * len(names)
        return np.array(fid, dtype=object), np.array(names, dtype=object)
    if len(id_delim) != 1 or id_delim.isspace():
        raise InputError(f"--id-delim takes one non-space character, got {id_delim!r}")
    fid, iid = [], []
    for n in names:
        parts = n.split(id_delim)
        if len(parts) != 2:
            raise FileFormatError(
                f"{where}sample ID '{n}' has {len(parts) - 1} '{id_delim}' "
                f"(--id-delim reads FID{id_delim}IID: exactly one); use --double-id or no flag")
        fid.append(parts[0])
        iid.append(parts[1])
    return np.array(fid, dtype=object), np.array(iid, dtype=object)


def open_dataset(fam: pd.DataFrame, bim: pd.DataFrame, reader: GenotypeReader, *,
                 keep: np.ndarray | None = None, where: str) -> xr.Dataset:
    """The lazy labelled dataset of a reader (:func:`bayeslmm.io.plink.genotype_dataset`).

    Parameters
    ----------
    fam : DataFrame
        ``fid, iid`` (and optionally ``sex``) of every sample in file order.
    bim : DataFrame
        ``chrom, snp, pos, a1, a2`` of every variant record (``a1`` the counted allele).
    keep : bool array, optional
        The records read (multi-allelic ones are skipped by the caller, who logs them).
    """
    bim = bim.copy()
    bim["bed_index"] = np.arange(len(bim))
    if keep is not None:
        bim = bim.loc[keep].reset_index(drop=True)
    fam = fam.copy()
    fam.attrs["iid_count"] = reader.n_samples
    bim.attrs["sid_count"] = reader.n_variants
    ds = genotype_dataset(fam, bim, reader=reader, where=where)
    log.info("Read %d samples and %d variants from %s; counted allele: %s (%s).",
             ds.sizes["sample"], ds.sizes["variant"], where, reader.counted,
             "dosages, float32" if reader.dosage else "hard calls")
    return ds
