"""Summary statistics and LD scores, read for LD score regression (``bayeslmm ldsc``).

Three association layouts give one table ``SNP A1 A2 Z N`` (Z signed for A1):

* LDSC's ``.sumstats`` / ``.sumstats.gz`` (``munge_sumstats.py``): ``SNP A1 A2 Z N``.
* plink2's ``.glm.linear`` (and ours, ``bayeslmm assoc --test linear``): Z = T_STAT for the
  counted allele A1, A2 the other of REF/ALT, N = OBS_CT; only ``TEST == ADD`` rows, rows
  with an ERRCODE other than ``.`` dropped (logged).
* GEMMA's ``.assoc.txt``: Z = beta / se for allele1 (A2 = allele0); the layout has no N, so
  N is given (``--N``).
* GCTA-COJO's ``.ma`` (``SNP A1 A2 freq b se p N``): Z = b / se for A1.

Where the layout has the A1 frequency (``freq`` of ``.ma``, ``af`` of GEMMA, ``A1_FREQ`` of
plink2's ``--glm`` with ``cols=+a1freq``) or an imputation ``INFO`` column, SNPs with a minor
allele frequency below ``maf_min`` (0.01) or an INFO below ``info_min`` (0.9) are dropped,
LDSC ``munge_sumstats.py``'s defaults.

Munging as LDSC's ``munge_sumstats.py`` does, each step logged with its count: rows with a
missing Z or N dropped; alleles that are not one of A, C, G, T dropped; strand-ambiguous
SNPs (A/T, C/G: their strand cannot be told from the alleles) dropped; duplicated SNP IDs
keep their first row. A value that is present but not a number is an error naming the file,
its line and column; so is N <= 0.

:func:`align_alleles` matches the table to a reference's alleles (``--merge-alleles``: an
LDSC ``SNP A1 A2`` list or a PLINK ``.bim``): SNPs absent from it are dropped; A1/A2 equal
to the reference's (or to their complements: the other strand) are kept; swapped ones have Z
negated; any other pair is a mismatch, dropped. All logged.

LD score files are read by :mod:`bayeslmm.io.ldscores`.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.text import read_text

__all__ = ["SUMSTATS_FORMATS", "align_alleles", "munge", "number_column", "read_alleles",
           "read_sumstats", "read_table", "require_columns", "sumstats_format"]

log = logging.getLogger(__name__)

#: format name -> file name ending that identifies it
SUMSTATS_FORMATS = {"ldsc": (".sumstats", ".sumstats.gz"), "glm": (".glm.linear",),
                    "gemma": (".assoc.txt",), "cojo": (".ma",)}
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
_MISSING = ("", "NA", "NaN", "nan", ".", "-nan", "inf", "-inf")


def sumstats_format(path: str | os.PathLike[str]) -> str:
    """The layout of ``path`` from its name (``SUMSTATS_FORMATS``)."""
    name = str(path)
    for fmt, ends in SUMSTATS_FORMATS.items():
        if name.endswith(ends):
            return fmt
    raise InputError(f"summary statistics file '{path}': the layout is told by the name's "
                     "ending, one of .sumstats(.gz), .glm.linear, .assoc.txt, .ma")


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A whitespace-separated text table with a header (gzip'd when the name ends in .gz),
    every column as text; a missing, empty or undecodable file is a one-line error."""
    if path.name.endswith(".gz"):
        if not path.is_file():
            raise FileFormatError(f"{what} file '{path}' does not exist")
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{what} file '{path}' is not gzip'd UTF-8 text: {exc}"
                                  ) from None
    else:
        text = read_text(path, what)
    if not text.strip():
        raise FileFormatError(f"{what} file '{path}' is empty")
    # every column as text: numbers are parsed below, where a bad one can be named
    return pd.read_csv(io.StringIO(text), sep=r"\s+", dtype=str, keep_default_na=False)


def require_columns(df: pd.DataFrame, cols: tuple[str, ...], path: Path, what: str) -> None:
    """A one-line error naming the columns of ``cols`` that ``df`` (read from ``path``) lacks."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise FileFormatError(f"{what} file '{path}' has no column {', '.join(missing)} "
                              f"(its header: {' '.join(df.columns)})")


def number_column(s: pd.Series, path: Path | str, col: str) -> np.ndarray:
    """Column ``col`` as float64, missing values NaN; a value that is not a number is an
    error naming its line (the header is line 1)."""
    miss = s.isin(_MISSING)
    v = pd.to_numeric(s.where(~miss), errors="coerce")
    bad = np.flatnonzero(v.isna() & ~miss)
    if bad.size:
        i = bad[0]
        raise FileFormatError(f"'{path}' line {s.index[i] + 2}, column {col}: "
                              f"'{s.iloc[i]}' is not a number")
    return v.to_numpy(np.float64)


def read_sumstats(path: str | os.PathLike[str], N: float | None = None, *,
                  maf_min: float = 0.01, info_min: float = 0.9) -> pd.DataFrame:
    """Read summary statistics as ``SNP A1 A2 Z N`` and munge them (module docstring).

    Parameters
    ----------
    path : path
        ``.sumstats(.gz)``, ``.glm.linear`` or ``.assoc.txt``.
    N : float, optional
        Samples per SNP where the layout has none (GEMMA); replaces the file's N otherwise.
    maf_min, info_min : float
        Filters applied where the layout has the A1 frequency / an INFO column.

    Returns
    -------
    pandas.DataFrame
        Columns SNP, A1, A2 (upper case), Z, N, in file order.
    """
    path = Path(path)
    fmt, what = sumstats_format(path), "summary statistics"
    df = read_table(path, what)
    if fmt == "ldsc":
        require_columns(df, ("SNP", "A1", "A2", "Z", "N"), path, what)
        out = pd.DataFrame({"SNP": df.SNP, "A1": df.A1, "A2": df.A2,
                            "Z": number_column(df.Z, path, "Z")})
        n = number_column(df.N, path, "N") if N is None else np.full(len(df), float(N))
    elif fmt == "glm":
        df = df.rename(columns={"#CHROM": "CHROM"})
        require_columns(df, ("ID", "REF", "ALT", "A1", "OBS_CT", "T_STAT"), path, what)
        if "TEST" in df.columns:
            keep = df.TEST == "ADD"
            if (~keep).any():
                log.info("%s: %d rows of other terms than ADD (covariates) left out.",
                         path.name, int((~keep).sum()))
            df = df[keep]
        if "ERRCODE" in df.columns:
            err = df.ERRCODE != "."
            if err.any():
                log.info("%s: %d SNPs with a plink2 ERRCODE dropped.", path.name,
                         int(err.sum()))
            df = df[~err]
        out = pd.DataFrame({"SNP": df.ID, "A1": df.A1,
                            "A2": df.REF.where(df.A1 == df.ALT, df.ALT),
                            "Z": number_column(df.T_STAT, path, "T_STAT")})
        n = number_column(df.OBS_CT, path, "OBS_CT") if N is None else np.full(len(df), float(N))
    elif fmt == "gemma":
        require_columns(df, ("rs", "allele1", "allele0", "beta", "se"), path, what)
        if N is None:
            raise InputError(f"'{path}' (GEMMA .assoc.txt) holds no sample size: give it "
                             "with --N")
        beta, se = number_column(df.beta, path, "beta"), number_column(df.se, path, "se")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, beta / se, np.nan)  # se = 0: no test, dropped as missing
        out = pd.DataFrame({"SNP": df.rs, "A1": df.allele1, "A2": df.allele0, "Z": z})
        n = np.full(len(df), float(N))
    else:  # cojo
        require_columns(df, ("SNP", "A1", "A2", "freq", "b", "se", "N"), path, what)
        beta, se = number_column(df.b, path, "b"), number_column(df.se, path, "se")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, beta / se, np.nan)
        out = pd.DataFrame({"SNP": df.SNP, "A1": df.A1, "A2": df.A2, "Z": z})
        n = number_column(df.N, path, "N") if N is None else np.full(len(df), float(N))
    out["N"] = n
    freq = next((c for c in ("freq", "af", "A1_FREQ") if c in df.columns), None)
    if freq is not None:
        out["FRQ"] = number_column(df[freq], path, freq)
    if "INFO" in df.columns:
        out["INFO"] = number_column(df.INFO, path, "INFO")
    out = out.reset_index(drop=True)
    log.info("Read %d SNPs from %s (%s layout).", len(out), path, fmt)
    return munge(out, str(path), maf_min=maf_min, info_min=info_min)


def munge(df: pd.DataFrame, name: str = "summary statistics", *, maf_min: float = 0.01,
          info_min: float = 0.9) -> pd.DataFrame:
    """LDSC's munging of a ``SNP A1 A2 Z N`` table (module docstring), each step logged; the
    MAF and INFO filters where the table has ``FRQ`` / ``INFO`` columns (then dropped)."""
    bad_n = np.isfinite(df.N) & (df.N <= 0)
    if bad_n.any():
        raise InputError(f"{name}: N must be > 0; SNP {df.SNP[bad_n].iloc[0]} has "
                         f"N = {df.N[bad_n].iloc[0]:g}")
    df = df.assign(A1=df.A1.str.upper(), A2=df.A2.str.upper())
    steps = (  # applied in turn, each to what the previous left
        ("with a missing Z or N", lambda d: ~(np.isfinite(d.Z) & np.isfinite(d.N))),
        (f"with a minor allele frequency below {maf_min:g} (or none)",
         lambda d: ~(np.minimum(d.FRQ, 1 - d.FRQ) >= maf_min) if "FRQ" in d else d.Z != d.Z),
        (f"with INFO below {info_min:g} (or none)",
         lambda d: ~(d.INFO >= info_min) if "INFO" in d else d.Z != d.Z),
        ("with alleles other than A, C, G, T (indels, multi-allelic)",
         lambda d: ~(d.A1.isin(_COMPLEMENT) & d.A2.isin(_COMPLEMENT) & (d.A1 != d.A2))),
        ("strand-ambiguous (A/T, C/G)", lambda d: d.A1.map(_COMPLEMENT).eq(d.A2)),
        ("with a duplicated SNP ID (the first row kept)", lambda d: d.SNP.duplicated()),
    )
    for why, rule in steps:
        drop = rule(df).to_numpy(bool)
        if drop.any():
            log.info("%s: %d SNPs %s dropped.", name, int(drop.sum()), why)
        df = df[~drop]
    if df.empty:
        raise InputError(f"{name}: no SNP is left after munging (see the log)")
    log.info("%s: %d SNPs remain after munging.", name, len(df))
    return df.drop(columns=[c for c in ("FRQ", "INFO") if c in df]).reset_index(drop=True)


def read_alleles(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Reference alleles ``SNP A1 A2``: a PLINK ``.bim`` (columns 2, 5, 6) or a file with a
    ``SNP A1 A2`` header (LDSC's ``--merge-alleles`` list, e.g. w_hm3.snplist)."""
    path = Path(path)
    if path.name.endswith(".bim"):
        df = pd.read_csv(io.StringIO(read_text(path, "reference alleles")), sep=r"\s+",
                         header=None, dtype=str, usecols=[1, 4, 5])
        df.columns = ["SNP", "A1", "A2"]
    else:
        df = read_table(path, "reference alleles")
        require_columns(df, ("SNP", "A1", "A2"), path, "reference alleles")
    return pd.DataFrame({"SNP": df.SNP, "A1": df.A1.str.upper(), "A2": df.A2.str.upper()})


def align_alleles(ss: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Align ``SNP A1 A2 Z N`` to the reference's A1/A2 (module docstring).

    Returns
    -------
    pandas.DataFrame
        The SNPs in both, in ``ss``'s order, with the reference's A1, A2 and Z negated
        where the alleles were swapped.
    """
    ref = ref.drop_duplicates("SNP").set_index("SNP")
    inref = ss.SNP.isin(ref.index).to_numpy()
    if (~inref).any():
        log.info("Alignment: %d SNPs not in the reference dropped.", int((~inref).sum()))
    ss = ss[inref].reset_index(drop=True)
    r1 = ref.A1.reindex(ss.SNP).to_numpy()
    r2 = ref.A2.reindex(ss.SNP).to_numpy()
    c1, c2 = ss.A1.map(_COMPLEMENT).to_numpy(), ss.A2.map(_COMPLEMENT).to_numpy()
    a1, a2 = ss.A1.to_numpy(), ss.A2.to_numpy()
    same = ((a1 == r1) & (a2 == r2)) | ((c1 == r1) & (c2 == r2))
    # a strand-ambiguous pair (A/T, C/G) matches both ways: taken as it is, not swapped
    swap = (((a1 == r2) & (a2 == r1)) | ((c1 == r2) & (c2 == r1))) & ~same
    bad = ~(same | swap)
    log.info("Alignment: %d SNPs match the reference's alleles, %d swapped (Z negated), "
             "%d mismatched dropped.", int(same.sum()), int(swap.sum()), int(bad.sum()))
    out = ss.assign(A1=r1, A2=r2, Z=np.where(swap, -ss.Z, ss.Z))[~bad]
    if out.empty:
        raise InputError("no SNP of the summary statistics matches the reference's alleles")
    return out.reset_index(drop=True)

