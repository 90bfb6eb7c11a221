"""VCF/BCF files (plain, bgzipped or BCF) through cyvcf2 (htslib): hard calls from GT, or
dosages from a FORMAT field such as DS (plink2's ``--vcf F dosage=DS``).

The counted allele is ALT, as plink2 counts it. GT gives int8 counts (``./.`` missing;
a haploid call counts as homozygous, as plink2 imports it; a half-missing call such as
``./1`` is missing, counted in the log: plink2's ``--vcf-half-call missing``, where plink2
by default stops, and htslib alone would read it as heterozygous); ``dosage=FIELD`` gives float32
expected ALT counts (a record without the field falls back to its GT, as plink2 does).
Records with more than one ALT allele are skipped and counted in the log (plink2's
``--max-alleles 2``). Sample IDs follow plink2: IID = the VCF's sample name and FID ``0``,
or ``--double-id``, or ``--id-delim D`` (:func:`bayeslmm.io.formats.plink2_sample_ids`).

A VCF is text, read in order: it is decoded once when opened, into memory (N x P bytes for
GT, 4 N x P for dosages), and every later pass over the genotypes reads that copy.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.catalogue import values as flag_values
from bayeslmm.io.formats import GenotypeReader, open_dataset, plink2_sample_ids
from bayeslmm.io.plink import MISSING_INT8

__all__ = ["VcfReader", "open_flag", "read_vcf"]

log = logging.getLogger(__name__)

#: cyvcf2's gts012 codes (hom REF, het, hom ALT, unknown) to ALT counts
_GT_TO_COUNT = np.array([0, 1, 2, MISSING_INT8], dtype=np.int8)


class VcfReader(GenotypeReader):
    """The decoded values of a VCF (``(P, N)``: int8 counts or float32 dosages)."""

    format = "vcf"

    def __init__(self, path, values: np.ndarray, field: str | None):
        super().__init__(path, values.shape[1], values.shape[0])
        self.values = values
        self.dosage = field is not None
        self.counted = f"ALT ({field or 'GT'})"

    def read_columns(self, cols: np.ndarray) -> np.ndarray:
        return self.values[cols]


def _open_vcf(path: Path):
    from cyvcf2 import VCF

    if not path.is_file():
        raise FileFormatError(f"VCF file '{path}' does not exist")
    try:
        return VCF(str(path), gts012=True, lazy=True)
    except Exception as exc:  # htslib: OSError, or a bare Exception on a bad header
        raise FileFormatError(f"'{path}' is not a readable VCF/BCF file (htslib: "
                              f"{' '.join(str(exc).split()) or type(exc).__name__})") from None


def read_vcf(path: str | os.PathLike[str], field: str | None = None, *,
             double_id: bool = False, id_delim: str | None = None) -> xr.Dataset:
    """Open a VCF/BCF as a labelled dataset (decoded into memory, see the module docstring).

    Parameters
    ----------
    path : path
        ``.vcf``, ``.vcf.gz`` (bgzip or gzip) or ``.bcf``.
    field : str, optional
        A FORMAT field of ALT dosages (``"DS"``); None reads hard calls from GT.
    double_id, id_delim
        plink2's sample ID rules (:func:`bayeslmm.io.formats.plink2_sample_ids`).
    """
    path = Path(path)
    vcf = _open_vcf(path)
    names = list(vcf.samples)
    if not names:
        raise FileFormatError(f"VCF file '{path}' has no sample column")
    fid, iid = plink2_sample_ids(names, double_id=double_id, id_delim=id_delim,
                                 where=f"VCF file '{path}': ")
    if field is not None and vcf.contains(field) is False:
        raise InputError(f"VCF file '{path}' declares no FORMAT field '{field}' (dosage="
                         f"{field})")
    rows, values, n_multi, n_half = [], [], 0, 0
    try:
        for rec in vcf:
            alt = rec.ALT
            if len(alt) > 1:
                n_multi += 1
                continue
            if field is not None:
                ds = rec.format(field)
                v = (ds[:, 0].astype(np.float32) if ds is not None
                     else _GT_TO_COUNT[rec.gt_types].astype(np.float32))
                if ds is None:
                    v[v == MISSING_INT8] = np.nan
            else:
                v = _GT_TO_COUNT[rec.gt_types]
                if rec.num_het:  # htslib types a half call ./1 as heterozygous
                    a = rec.genotype.array()
                    half = (v == 1) & ((a[:, 0] == -1) | (a[:, 1] == -1))
                    if half.any():
                        v = v.copy()
                        v[half] = MISSING_INT8
                        n_half += int(half.sum())
            values.append(v)
            rows.append((rec.CHROM, rec.ID or ".", rec.POS, alt[0] if alt else ".", rec.REF))
    except Exception as exc:  # htslib's parse errors surface as bare Exceptions
        raise FileFormatError(f"VCF file '{path}' is truncated or malformed after "
                              f"{len(rows) + n_multi} records ({' '.join(str(exc).split())})"
                              ) from None
    finally:
        vcf.close()
    if not rows:
        raise FileFormatError(f"VCF file '{path}' holds no biallelic record")
    if n_half:
        log.warning("%s: %d half-missing genotype call(s) such as './1' read as missing "
                    "(plink2 --vcf-half-call missing).", path, n_half)
    if n_multi:
        log.info("%s: %d multi-allelic record(s) skipped (bayeslmm reads biallelic records, "
                 "as plink2 --max-alleles 2).", path, n_multi)
    bim = pd.DataFrame(rows, columns=["chrom", "snp", "pos", "a1", "a2"])
    reader = VcfReader(path, np.stack(values), field)
    fam = pd.DataFrame({"fid": fid, "iid": iid})
    return open_dataset(fam, bim, reader, where=f"VCF file '{path}'")



def open_flag(value, *, double_id=False, id_delim=None, **_) -> xr.Dataset:
    """``--vcf FILE [dosage=FIELD] [--double-id | --id-delim D]``
    (:mod:`bayeslmm.io.catalogue`)."""
    vals = flag_values(value)
    field = None
    for mod in vals[1:]:
        key, sep, val = mod.partition("=")
        if key != "dosage" or not sep or not val:
            raise InputError(f"--vcf modifier '{mod}' is not 'dosage=FIELD' (e.g. dosage=DS)")
        field = val
    return read_vcf(vals[0], field, double_id=bool(double_id), id_delim=id_delim)
