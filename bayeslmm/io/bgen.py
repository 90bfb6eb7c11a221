"""BGEN 1.1-1.3 files (with an Oxford ``.sample``) through cbgen, as expected allele counts.

Each variant's genotype probabilities become the dosage of the counted allele,
``P(het) + 2 P(hom counted)`` (phased: the sum of the two haplotypes' probabilities), a
float32 value in [0, 2] with NaN for a missing call: the dosage path of the genotype
operator. The counted allele is ALT, which the file does not record: as plink2's ``--bgen F
MODE``, ``ref-first`` makes the second allele ALT and ``ref-last``/``ref-unknown`` the
first (plink2 exports BGEN with ALT first unless told ``ref-first``). Records with more than
two alleles are skipped and counted in the log.

Sample IDs come from the ``.sample`` file (``ID_1`` = FID, ``ID_2`` = IID, as plink2), or
without one from the IDs stored in the file, read as plink2 reads single-column IDs
(:func:`bayeslmm.io.formats.plink2_sample_ids`).

cbgen (the C library bgen of the limix project) decodes the probabilities; it is used rather
than bgen-reader, which would downgrade dask, pandas and xarray. The common layout (zlib or
uncompressed layout 2, 8 or 16 bits, unphased biallelic diploid) is decoded a block of variants
at a time by :mod:`bayeslmm.io.bgen_decode` with cbgen's arithmetic (the same float32 values,
about twice as fast as cbgen's one call per variant); every other record goes to cbgen.
The variant table and offsets come from walking the variant blocks' headers here (no metafile
written), which also refuses a truncated file before cbgen could crash on it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.bgen_decode import fast_dosages
from bayeslmm.io.catalogue import values as flag_values
from bayeslmm.io.formats import GenotypeReader, open_dataset, plink2_sample_ids
from bayeslmm.io.text import read_lines

__all__ = ["REF_MODES", "BgenReader", "open_flag", "read_bgen", "read_oxford_sample"]

log = logging.getLogger(__name__)

#: plink2's REF/ALT modes of --bgen, and whether the first allele is the counted (ALT) one
REF_MODES = {"ref-first": False, "ref-last": True, "ref-unknown": True}


def read_oxford_sample(path: str | os.PathLike[str]) -> pd.DataFrame:
    """An Oxford ``.sample`` file: ``fid`` (``ID_1``), ``iid`` (``ID_2``) in file order."""
    path = Path(path)
    lines = [ln.split() for ln in read_lines(path, "Oxford .sample") if ln.strip()]
    if len(lines) < 2 or lines[0][:2] != ["ID_1", "ID_2"]:
        raise FileFormatError(f"Oxford .sample file '{path}' does not start with an 'ID_1 ID_2' "
                              "header line and a line of column types")
    rows = lines[2:]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(lines[0])), None)
    if bad is not None:
        raise FileFormatError(f"Oxford .sample file '{path}': line {bad + 3} has "
                              f"{len(rows[bad])} fields; the header has {len(lines[0])}")
    return pd.DataFrame({"fid": [r[0] for r in rows], "iid": [r[1] for r in rows]})


class BgenReader(GenotypeReader):
    """Dosages of the counted allele from a BGEN file's probabilities (cbgen)."""

    format = "bgen"
    dosage = True

    def __init__(self, path, n_samples: int, n_variants: int, offsets: np.ndarray,
                 first_counted: bool, mode: str, compression: int = -1, layout: int = -1):
        super().__init__(path, n_samples, n_variants)
        self.offsets = np.asarray(offsets, dtype=np.uint64)
        self.first_counted = first_counted
        self.compression, self.layout = compression, layout
        self.counted = (f"ALT = the {'first' if first_counted else 'second'} allele of each "
                        f"record (--bgen {mode})")

    def read_columns(self, cols: np.ndarray, dtype=np.float32) -> np.ndarray:
        import mmap

        if cols.size:  # the common layout, all variants at once (bgen_decode); else cbgen
            with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0,
                                                        access=mmap.ACCESS_READ) as m:
                fast = fast_dosages(m, self.offsets[cols], self.n_samples, self.compression,
                                    self.layout, self.first_counted, f"BGEN file '{self.path}'")
            if fast is not None:
                return fast if dtype == np.float32 else fast.astype(dtype)
        return self._read_cbgen(cols, dtype)

    def _read_cbgen(self, cols: np.ndarray, dtype) -> np.ndarray:
        from cbgen import bgen_file

        out = np.empty((cols.size, self.n_samples), dtype=dtype)
        with bgen_file(self.path) as bf:
            for k, j in enumerate(cols):
                try:
                    p = bf.read_probability(int(self.offsets[j]), precision=32)
                except RuntimeError:
                    raise FileFormatError(f"BGEN file '{self.path}': variant {j + 1} cannot be "
                                          "read (the file is truncated or corrupt)") from None
                if p.shape[1] == 3:  # unphased diploid: hom first, het, hom second
                    out[k] = p[:, 1] + 2.0 * (p[:, 0] if self.first_counted else p[:, 2])
                elif p.shape[1] == 4:  # phased diploid: each haplotype's two alleles
                    c = 0 if self.first_counted else 1
                    out[k] = p[:, c] + p[:, 2 + c]
                else:
                    raise FileFormatError(f"BGEN file '{self.path}': variant {j + 1} has "
                                          f"{p.shape[1]} probabilities per sample; bayeslmm "
                                          "reads diploid biallelic calls")
        return out


def _variants(path: Path, n_variants: int, n_samples: int) -> pd.DataFrame:
    """The variant table of a BGEN file, walking its variant blocks' headers (BGEN spec,
    layouts 1 and 2) so that a truncated or corrupt file is refused here, in one line:
    cbgen's own index (its metafile) crashes the process on a truncated file."""
    import mmap
    import struct

    def bad(what: str) -> FileFormatError:
        return FileFormatError(f"BGEN file '{path}' is truncated or corrupt ({what})")

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)
        first, lh = struct.unpack_from("<II", m, 0)
        if lh < 20 or 4 + lh > size or 4 + first > size:
            raise bad("its header block runs past the end")
        flags = struct.unpack_from("<I", m, 4 + lh - 4)[0]
        compressed, layout = flags & 3, (flags >> 2) & 15
        if layout not in (1, 2):
            raise FileFormatError(f"BGEN file '{path}': layout {layout} is not BGEN 1.1-1.3")
        at, rows = 4 + first, []

        def take(fmt: str) -> tuple:
            nonlocal at
            k = struct.calcsize(fmt)
            if at + k > size:
                raise bad(f"variant {len(rows) + 1} of {n_variants} runs past the end")
            out = struct.unpack_from(fmt, m, at)
            at += k
            return out

        def text(width: str) -> str:
            nonlocal at
            (k,) = take(width)
            if at + k > size:
                raise bad(f"variant {len(rows) + 1} of {n_variants} runs past the end")
            at += k
            return m[at - k:at].decode("utf-8", "replace")

        for _ in range(n_variants):
            if layout == 1:
                take("<I")
            varid, rsid, chrom = text("<H"), text("<H"), text("<H")
            (pos,) = take("<I")
            k = take("<H")[0] if layout == 2 else 2
            alleles = [text("<I") for _ in range(k)]
            offset = at  # cbgen's offset of a variant: where its genotype block starts
            c = take("<I")[0] if layout == 2 or compressed else 6 * n_samples
            at += c
            if at > size:
                raise bad(f"variant {len(rows) + 1} of {n_variants} runs past the end")
            rows.append((varid, rsid, chrom, pos, k, ",".join(alleles), offset))
    var = pd.DataFrame(rows, columns=["varid", "rsid", "chrom", "pos", "nalleles", "alleles",
                                      "offset"])
    var.attrs.update(compression=compressed, layout=layout)
    return var


def read_bgen(path: str | os.PathLike[str], mode: str | None = None, *,
              sample: str | os.PathLike[str] | None = None, double_id: bool = False,
              id_delim: str | None = None) -> xr.Dataset:
    """Open a BGEN file as a lazy labelled dataset of dosages.

    Parameters
    ----------
    path : path
        The ``.bgen`` file.
    mode : {"ref-first", "ref-last", "ref-unknown"}
        plink2's REF/ALT mode: which allele of each record is REF; the other (ALT) is
        counted and becomes the dataset's ``a1``.
    sample : path, optional
        Oxford ``.sample`` file; without it the IDs stored in the file are read (plink2's
        ``double_id``/``id_delim`` rules).
    """
    from cbgen import bgen_file

    path = Path(path)
    if mode not in REF_MODES:
        raise InputError(f"--bgen {path} needs plink2's REF/ALT mode after the file name: "
                         f"{', '.join(REF_MODES)} (got {mode!r})")
    if not path.is_file():
        raise FileFormatError(f"BGEN file '{path}' does not exist")
    with open(path, "rb") as fh:
        head = fh.read(24)
    # The spec lets very old writers leave the magic number 0; such a file is refused here
    # rather than handed to cbgen, which trusts the header.
    if len(head) < 24 or head[16:20] != b"bgen":
        raise FileFormatError(f"'{path}' is not a BGEN file (no 'bgen' magic number in its "
                              "header)")
    try:
        bf = bgen_file(path)
    except RuntimeError:
        raise FileFormatError(f"BGEN file '{path}' cannot be opened: its header is corrupt"
                              ) from None
    with bf:
        n, p = bf.nsamples, bf.nvariants
        if sample is not None:
            fam = read_oxford_sample(sample)
            if len(fam) != n:
                raise FileFormatError(f"Oxford .sample file '{sample}' lists {len(fam)} "
                                      f"samples; BGEN file '{path}' holds {n}")
        elif bf.contain_samples:
            fid, iid = plink2_sample_ids(bf.read_samples().astype(str), double_id=double_id,
                                         id_delim=id_delim, where=f"BGEN file '{path}': ")
            fam = pd.DataFrame({"fid": fid, "iid": iid})
        else:
            raise InputError(f"BGEN file '{path}' stores no sample IDs: give --sample FILE")
    var = _variants(path, p, n)
    first = REF_MODES[mode]
    two = var["nalleles"].to_numpy() == 2
    if (~two).any():
        log.info("%s: %d record(s) with other than two alleles skipped (bayeslmm reads "
                 "biallelic records, as plink2 --max-alleles 2).", path, int((~two).sum()))
    alleles = var["alleles"].str.split(",", n=1, expand=True).reindex(columns=[0, 1])
    a_first, a_second = alleles[0].fillna(""), alleles[1].fillna("")
    snp = var["rsid"].where(var["rsid"].str.len() > 0, var["varid"])
    bim = pd.DataFrame({"chrom": var["chrom"], "snp": snp, "pos": var["pos"],
                        "a1": a_first if first else a_second,
                        "a2": a_second if first else a_first})
    reader = BgenReader(path, n, p, var["offset"].to_numpy(), first, mode,
                        var.attrs["compression"], var.attrs["layout"])
    return open_dataset(fam, bim, reader, keep=two, where=f"BGEN file '{path}'")



def open_flag(value, *, sample=None, double_id=False, id_delim=None, **_) -> xr.Dataset:
    """``--bgen FILE MODE [--sample S] [--double-id | --id-delim D]``
    (:mod:`bayeslmm.io.catalogue`)."""
    vals = flag_values(value)
    if len(vals) > 2:
        raise InputError(f"--bgen takes a file and a REF/ALT mode; got {' '.join(vals)}")
    return read_bgen(vals[0], vals[1] if len(vals) > 1 else None, sample=sample,
                     double_id=bool(double_id), id_delim=id_delim)
