"""PLINK 2 binary filesets (``.pgen/.pvar/.psam``) through pgenlib, plink2's own reader.

The counted allele is ALT, as plink2 counts it (a ``.pgen`` made from a ``.bed`` has ALT =
A1, so the counts equal the ``.bed`` path's). A ``.pgen`` of hard calls is read as int8 counts
(-9 -> missing); one that stores dosages (plink2 ``--import-dosage``, or ``--make-pgen`` from a
BGEN or a VCF read with ``dosage=DS``) is read as ALT dosages, float32 expected allele counts
with NaN missing: the dosage path, as BGEN's (a variant or sample without a stored dosage reads
as its hard call).
Multi-allelic records (ALT holding a comma) are skipped and counted in the log, as plink2's
``--max-alleles 2`` would; a ``.psam`` without an FID column gives FID ``0``, as plink2.
"""

from __future__ import annotations

import logging
import os
import struct
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError
from bayeslmm.io.formats import GenotypeReader, open_dataset
from bayeslmm.io.plink import MISSING_INT8
from bayeslmm.io.text import read_text

__all__ = ["PgenReader", "open_flag", "read_pgen", "read_psam", "read_pvar", "stores_dosages"]

log = logging.getLogger(__name__)

_PGEN_MAGIC = b"\x6c\x1b"


def _prefix(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".pgen", ".pvar", ".psam") else p


def _table(path: Path, what: str) -> tuple[list[str] | None, pd.DataFrame]:
    """The header columns (None without a ``#`` header) and the body of a .pvar/.psam."""
    lines = [ln for ln in read_text(path, what).splitlines() if not ln.startswith("##")]
    header = None
    if lines and lines[0].startswith("#"):
        header = lines[0][1:].split()
        lines = lines[1:]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise FileFormatError(f"{what} file '{path}' has no data line")
    try:
        df = pd.read_csv(StringIO("\n".join(lines)), sep=r"\s+", header=None, dtype=str,
                         keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise FileFormatError(f"{what} file '{path}' could not be parsed: {exc}") from None
    if header is not None:
        if df.shape[1] != len(header):
            raise FileFormatError(f"{what} file '{path}' has {df.shape[1]} columns but its "
                                  f"header names {len(header)}")
        df.columns = header
    return header, df


def read_pvar(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``.pvar`` (or headerless, ``.bim``-like) variant table.

    Returns
    -------
    pandas.DataFrame
        ``chrom, snp, pos, ref, alt`` (str, ``pos`` int64), one row per record.
    """
    path = Path(path)
    header, df = _table(path, "PLINK 2 .pvar")
    if header is None:  # a .bim: CHROM ID CM POS ALT REF
        if df.shape[1] != 6:
            raise FileFormatError(f"PLINK 2 .pvar file '{path}' has no #CHROM header and "
                                  f"{df.shape[1]} columns (a headerless .pvar has .bim's 6)")
        df.columns = ["CHROM", "ID", "CM", "POS", "ALT", "REF"]
    missing = [c for c in ("CHROM", "POS", "ID", "REF", "ALT") if c not in df.columns]
    if missing:
        raise FileFormatError(f"PLINK 2 .pvar file '{path}' lacks the column(s) "
                              f"{', '.join(missing)}")
    try:
        pos = df["POS"].astype(np.int64)
    except ValueError:
        raise FileFormatError(f"PLINK 2 .pvar file '{path}': non-integer POS") from None
    return pd.DataFrame({"chrom": df["CHROM"], "snp": df["ID"], "pos": pos,
                         "ref": df["REF"], "alt": df["ALT"]})


def read_psam(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``.psam`` (or headerless, ``.fam``-like) sample table: ``fid, iid`` (FID ``0``
    when the header has no FID column, as plink2)."""
    path = Path(path)
    header, df = _table(path, "PLINK 2 .psam")
    if header is None:  # a .fam: FID IID PAT MAT SEX PHENO
        if df.shape[1] < 2:
            raise FileFormatError(f"PLINK 2 .psam file '{path}' has {df.shape[1]} column(s)")
        return pd.DataFrame({"fid": df.iloc[:, 0], "iid": df.iloc[:, 1]})
    if "IID" not in df.columns:
        raise FileFormatError(f"PLINK 2 .psam file '{path}': the header names no IID column")
    fid = df["FID"] if "FID" in df.columns else pd.Series(["0"] * len(df))
    return pd.DataFrame({"fid": fid.to_numpy(), "iid": df["IID"].to_numpy()})


def _message(exc: Exception) -> str:
    """pgenlib's error message on one line (it passes plink2's C message as bytes)."""
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split())


def stores_dosages(path: str | os.PathLike[str]) -> bool:
    """Whether a ``.pgen`` stores dosages for any variant (pgenlib's global dosage flag, which
    its Python API does not expose), from the file's header as pgenlib's
    ``PgfiInitPhase1/2`` read it: storage modes 0x03/0x04 are fixed-width dosages; in the
    variable-width modes (0x10/0x11, header in a ``.pgi`` for 0x20/0x21) a variant record type
    with bit 5 or 6 set holds dosages, and such types are written only where the header's
    low nibble is 4-7 (8-bit record types)."""
    path = Path(path)
    with open(path, "rb") as fh:
        mode = (fh.read(3)[2:] or b"\0")[0]
    if mode in (0x03, 0x04):
        return True
    if mode not in (0x10, 0x11, 0x20, 0x21):
        return False  # a PLINK 1 .bed layout (0x01) or fixed-width hard calls (0x02)
    head = Path(f"{path}.pgi") if mode >= 0x20 else path
    with open(head, "rb") as fh:
        fixed = fh.read(12)
        if len(fixed) < 12:
            raise FileFormatError(f"PLINK 2 .pgen header '{head}' is truncated")
        n_var, _, ctrl = struct.unpack_from("<IIB", fixed, 3)
        storage = ctrl & 15
        if not 4 <= storage < 8:
            return False
        # per block of 2^16 variants: record types (1 byte), record lengths, ALT counts,
        # and (header_ctrl >> 6 == 3) the nonref flags; the blocks follow their offsets
        n_blocks = -(-n_var // 65536)
        width = 1 + (1 + (storage & 3)) + ((ctrl >> 4) & 3)
        at = 12 + 8 * n_blocks
        for b in range(n_blocks):
            n = min(65536, n_var - 65536 * b)
            fh.seek(at)
            vrtypes = np.frombuffer(fh.read(n), dtype=np.uint8)
            if vrtypes.size < n:
                raise FileFormatError(f"PLINK 2 .pgen header '{head}' is truncated")
            if (vrtypes & 0x60).any():
                return True
            at += n * width + (-(-n // 8) if ctrl >> 6 == 3 else 0)
    return False


class PgenReader(GenotypeReader):
    """ALT counts of a ``.pgen`` through pgenlib: hard calls (int8), or ALT dosages (float32)
    where the file stores dosages."""

    format = "pgen"
    counted = "ALT (PLINK 2)"

    def __init__(self, path, n_samples: int, n_variants: int,
                 allele_idx_offsets: np.ndarray | None = None, dosage: bool = False):
        super().__init__(path, n_samples, n_variants)
        self.allele_idx_offsets = allele_idx_offsets
        self.dosage = bool(dosage)

    def _open(self):
        import pgenlib

        try:
            return pgenlib.PgenReader(str(self.path).encode(), raw_sample_ct=self.n_samples,
                                      variant_ct=self.n_variants,
                                      allele_idx_offsets=self.allele_idx_offsets)
        except Exception as exc:  # pgenlib raises RuntimeError with plink2's message
            raise FileFormatError(f"PLINK 2 .pgen file '{self.path}' cannot be read with its "
                                  f".psam ({self.n_samples} samples) and .pvar "
                                  f"({self.n_variants} variants): {_message(exc)}") from None

    def read_columns(self, cols: np.ndarray) -> np.ndarray:
        out = np.empty((cols.size, self.n_samples),
                       dtype=np.float32 if self.dosage else np.int8)
        if cols.size == 0:
            return out
        r = self._open()
        rng, lst = ((r.read_dosages_range, r.read_dosages_list) if self.dosage
                    else (r.read_range, r.read_list))
        try:
            if cols[-1] - cols[0] + 1 == cols.size:
                rng(int(cols[0]), int(cols[-1]) + 1, out, allele_idx=1)
            else:
                lst(cols.astype(np.uint32), out, allele_idx=1)
        except Exception as exc:
            raise FileFormatError(f"PLINK 2 .pgen file '{self.path}' is truncated or "
                                  f"corrupt: {_message(exc)}") from None
        finally:
            r.close()
        out[out == -9] = np.nan if self.dosage else MISSING_INT8  # pgenlib's missing call
        return out


def _check_pgen(path: Path) -> None:
    if not path.is_file():
        raise FileFormatError(f"PLINK 2 .pgen file '{path}' does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] != _PGEN_MAGIC or len(magic) < 3:
        raise FileFormatError(f"'{path}' is not a PLINK 2 .pgen file (first bytes "
                              f"{magic.hex() or 'none'})")


def read_pgen(prefix: str | os.PathLike[str]) -> xr.Dataset:
    """Open a PLINK 2 fileset ``prefix.pgen/.pvar/.psam`` as a lazy labelled dataset
    (:func:`bayeslmm.io.plink.genotype_dataset`; ``a1`` = ALT, ``a2`` = REF)."""
    pre = _prefix(prefix)
    pgen = Path(f"{pre}.pgen")
    _check_pgen(pgen)
    psam = read_psam(Path(f"{pre}.psam"))
    pvar = read_pvar(Path(f"{pre}.pvar"))
    n_alt = pvar["alt"].str.count(",").to_numpy() + 1
    multi = n_alt > 1
    offsets = None
    if multi.any():
        offsets = np.concatenate([[0], np.cumsum(n_alt + 1)]).astype(np.uintp)
        log.info("%s.pvar: %d multi-allelic variant(s) skipped (bayeslmm reads biallelic "
                 "records, as plink2 --max-alleles 2).", pre, int(multi.sum()))
    reader = PgenReader(pgen, len(psam), len(pvar), offsets)
    reader._open().close()  # a mismatched .psam/.pvar fails here, before any work
    reader.dosage = stores_dosages(pgen)
    bim = pvar.rename(columns={"alt": "a1", "ref": "a2"})
    return open_dataset(psam, bim, reader, keep=~multi, where=f"PLINK 2 fileset '{pre}'")



def open_flag(value, **_) -> xr.Dataset:
    """``--pfile PREFIX`` (:mod:`bayeslmm.io.catalogue`)."""
    return read_pgen(value)
