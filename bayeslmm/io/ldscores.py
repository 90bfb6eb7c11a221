"""LD score files as ``ldsc.py --h2``/``--rg`` read them: ``--ref-ld``/``--w-ld`` (one prefix,
or several comma-separated ones: their columns side by side) and ``--ref-ld-chr``/
``--w-ld-chr`` (one fileset per chromosome), and the annotation files that
``--overlap-annot`` reads.

Layout (what ``bayeslmm ldscore`` and ``ldsc.py --l2`` write): ``PREFIX.l2.ldscore(.gz)`` with
columns ``CHR SNP BP`` and one LD score column per annotation (``L2``, or ``<name>L2``);
``PREFIX.l2.M`` and ``PREFIX.l2.M_5_50``, one line with one number per LD score column (the
SNPs, or the annotation's sum over them, that the scores sum over; ``_5_50``: those with
MAF > 0.05). ``PREFIX.annot(.gz)``: ``CHR BP SNP CM`` (optional) and the annotation columns,
one row per reference SNP; ``PREFIX.frq(.gz)``: PLINK ``--freq`` (``SNP`` and ``MAF`` or
``FRQ``), in the ``.annot``'s row order.

Per chromosome (ldsc's convention): in a prefix with ``@`` the chromosome number replaces it,
otherwise it is appended (``ld/chr`` -> ``ld/chr1`` ... ``ld/chr22``); the chromosomes read are
those of 1-22 with a file ``<prefix for it>.*``; their M are summed.

As ldsc, the rows are sorted by chromosome and position (``CHR`` and ``BP``; a file without
them keeps its order) (the block jackknife's blocks are runs
of this order) and a duplicated SNP keeps its first row; the LD score columns of the i-th
prefix of a comma-separated list are named ``<column>_<i>`` (``L2_0``, ``L2_1``), and the
prefixes must list the same SNPs in the same order.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.sumstats import number_column, read_table, require_columns
from bayeslmm.io.text import read_text

__all__ = ["N_CHR", "LDScoreSet", "chromosome_prefix", "present_chromosomes", "read_annot",
           "read_annot_overlap", "read_ldscore_set"]

log = logging.getLogger(__name__)

#: the autosomes ldsc's ``-chr`` flags look for
N_CHR = 22
#: columns of an LD score or annotation file that are not scores or annotations
_ID_COLUMNS = ("CHR", "SNP", "BP", "CM", "MAF")


def chromosome_prefix(prefix: str, chrom: int) -> str:
    """``prefix`` with ``@`` replaced by the chromosome, or the chromosome appended (ldsc's
    ``sub_chr``)."""
    return prefix.replace("@", str(chrom)) if "@" in prefix else f"{prefix}{chrom}"


def present_chromosomes(prefix: str) -> list[int]:
    """The chromosomes of 1-22 with a file ``chromosome_prefix(prefix, c).*``."""
    out = [c for c in range(1, N_CHR + 1) if glob.glob(
        glob.escape(chromosome_prefix(prefix, c)) + ".*")]
    if not out:
        raise InputError(f"no per-chromosome file '{chromosome_prefix(prefix, 1)}.*' "
                         f"(chromosomes 1-{N_CHR}; '@' in the prefix stands for the number)")
    return out


def _file(stem: str, what: str) -> Path:
    """``stem.gz`` or ``stem`` (ldsc's ``which_compression``, bz2 aside)."""
    for p in (Path(f"{stem}.gz"), Path(stem)):
        if p.is_file():
            return p
    raise FileFormatError(f"{what} file '{stem}[.gz]' does not exist")


def _scores(prefix: str) -> pd.DataFrame:
    path = _file(f"{prefix}.l2.ldscore", "LD score")
    df = read_table(path, "LD score")
    require_columns(df, ("SNP",), path, "LD score")
    cols = [c for c in df.columns if c not in _ID_COLUMNS]
    if not cols:
        raise FileFormatError(f"LD score file '{path}' has no LD score column")
    out = pd.DataFrame({"SNP": df.SNP})
    if "CHR" in df.columns and "BP" in df.columns:
        out["CHR"], out["BP"] = df.CHR, number_column(df.BP, path, "BP")
    for c in cols:
        out[c] = number_column(df[c], path, c)
        if not np.all(np.isfinite(out[c])):
            raise FileFormatError(f"LD score file '{path}' has missing values in {c}")
    return out


def _counts(prefix: str, n: int, m_5_50: bool) -> np.ndarray:
    path = Path(f"{prefix}.l2.M_5_50" if m_5_50 else f"{prefix}.l2.M")
    try:
        M = np.array([float(v) for v in read_text(path, "LD score M").split()])
    except ValueError:
        M = np.array([])
    if M.size != n:
        raise FileFormatError(f"'{path}' must hold one number per LD score column ({n}), "
                              f"the SNPs the scores sum over; it holds {M.size}")
    return M


def _sort(df: pd.DataFrame) -> pd.DataFrame:
    """By chromosome (numerically where it is a number) and position, duplicates dropped (a
    file without CHR and BP keeps its order)."""
    if "CHR" not in df.columns:
        return df.drop_duplicates("SNP").reset_index(drop=True)
    chrom = pd.to_numeric(df.CHR, errors="coerce")
    key = pd.DataFrame({"c": chrom.fillna(np.inf), "t": df.CHR.astype(str), "b": df.BP})
    order = key.sort_values(["c", "t", "b"], kind="stable").index
    return df.loc[order].drop_duplicates("SNP").reset_index(drop=True)


@dataclass(frozen=True)
class LDScoreSet:
    """LD scores as the regression reads them.

    Attributes
    ----------
    table : pandas.DataFrame
        ``SNP`` and one column per LD score (``names``), sorted by chromosome and position.
    M : numpy.ndarray
        Per column, the SNPs (or the annotation's sum over them) it sums over.
    names : list of str
    """

    table: pd.DataFrame
    M: np.ndarray
    names: list[str]


def read_ldscore_set(spec: str, chromosomes: bool = False, m_5_50: bool = True
                     ) -> LDScoreSet:
    """Read ``--ref-ld``/``--w-ld`` (``chromosomes`` False) or ``--ref-ld-chr``/``--w-ld-chr``
    (True) as ldsc does (module docstring). ``spec``: a prefix, or several separated by
    commas; ``m_5_50``: M from ``.l2.M_5_50`` (ldsc's default) or ``.l2.M``."""
    prefixes = [p for p in str(spec).split(",") if p]
    if not prefixes:
        raise InputError("no LD score prefix given")
    tables, Ms, names = [], [], []
    for i, prefix in enumerate(prefixes):
        if chromosomes:
            chrs = present_chromosomes(prefix)
            parts = [_scores(chromosome_prefix(prefix, c)) for c in chrs]
            cols = [c for c in parts[0].columns if c not in _ID_COLUMNS]
            if any(list(p.columns) != list(parts[0].columns) for p in parts):
                raise FileFormatError(f"the per-chromosome LD score files of '{prefix}' "
                                      "have different columns")
            df = pd.concat(parts, ignore_index=True)
            M = np.sum([_counts(chromosome_prefix(prefix, c), len(cols), m_5_50)
                        for c in chrs], axis=0)
            log.info("LD scores of %d SNPs read from %s (chromosomes %s).", len(df), prefix,
                     ",".join(map(str, chrs)))
        else:
            df = _scores(prefix)
            cols = [c for c in df.columns if c not in _ID_COLUMNS]
            M = _counts(prefix, len(cols), m_5_50)
            log.info("LD scores of %d SNPs read from %s.", len(df), prefix)
        df = _sort(df)
        if i and not df.SNP.equals(tables[0].SNP):
            raise InputError(f"the LD scores of '{prefix}' and '{prefixes[0]}' list different "
                             "SNPs; LD scores side by side must have the same SNPs in the "
                             "same order")
        renamed = {c: f"{c}_{i}" for c in cols}
        tables.append(df[["SNP", *cols]].rename(columns=renamed))
        Ms.append(M)
        names += list(renamed.values())
    table = pd.concat([tables[0]] + [t.drop(columns="SNP") for t in tables[1:]], axis=1)
    return LDScoreSet(table, np.concatenate(Ms), names)


def _annot(prefix: str, frq: str | None) -> np.ndarray:
    """The annotation matrix of ``prefix.annot(.gz)``; with ``frq``, its rows with
    0.05 < FRQ < 0.95 in ``frq.frq(.gz)`` (the same rows, in order)."""
    path = _file(f"{prefix}.annot", "annotation")
    df = read_table(path, "annotation")
    cols = [c for c in df.columns if c not in _ID_COLUMNS]
    A = np.column_stack([number_column(df[c], path, c) for c in cols])
    if frq is not None:
        fpath = _file(f"{frq}.frq", "allele frequency")
        f = read_table(fpath, "allele frequency").rename(columns={"MAF": "FRQ"})
        require_columns(f, ("SNP", "FRQ"), fpath, "allele frequency")
        if len(f) != len(df) or ("SNP" in df.columns and not f.SNP.equals(df.SNP)):
            raise FileFormatError(f"'{fpath}' must list the SNPs of '{path}' in its order")
        p = number_column(f.FRQ, fpath, "FRQ")
        A = A[(p > 0.05) & (p < 0.95)]
    return A


def read_annot_overlap(spec: str, chromosomes: bool = False, frqfile: str | None = None
                       ) -> tuple[np.ndarray, int]:
    """What ``ldsc.py --overlap-annot`` reads next to ``--ref-ld(-chr)`` (ldsc's
    ``parse.annot``): the annotation matrices A of the prefixes ``spec`` (side by side; per
    chromosome with ``chromosomes``), restricted to the SNPs with 0.05 < FRQ < 0.95 when
    ``frqfile`` (a prefix of ``.frq`` files, per chromosome likewise) is given. Returns the
    overlap A'A (the SNPs in two annotations at once) and M_tot, the SNPs counted."""
    prefixes = [p for p in str(spec).split(",") if p]
    if chromosomes:
        runs = [([chromosome_prefix(p, c) for p in prefixes],
                 None if frqfile is None else chromosome_prefix(frqfile, c))
                for c in present_chromosomes(prefixes[0])]
    else:
        runs = [(prefixes, frqfile)]
    overlap, M_tot = 0.0, 0
    for stems, frq in runs:
        A = np.column_stack([_annot(s, frq) for s in stems])
        overlap = overlap + A.T @ A
        M_tot += A.shape[0]
    return np.asarray(overlap, dtype=np.float64), int(M_tot)


def read_annot(path: str) -> pd.DataFrame:
    """An annotation file for ``bayeslmm ldscore --annot`` (ldsc's ``--annot``): ``path``, or
    ``path.annot(.gz)``. Its annotation columns (all but CHR, BP, SNP, CM) as float64,
    indexed by SNP when it has that column (else a thin annotation: one row per reference
    SNP, in the reference's order)."""
    p = Path(path)
    if not p.is_file():
        p = _file(f"{path}.annot", "annotation")
    df = read_table(p, "annotation")
    cols = [c for c in df.columns if c not in _ID_COLUMNS]
    if not cols:
        raise FileFormatError(f"annotation file '{p}' has no annotation column")
    out = pd.DataFrame({c: number_column(df[c], p, c) for c in cols})
    if not np.all(np.isfinite(out.to_numpy())):
        raise FileFormatError(f"annotation file '{p}' has missing values")
    if "SNP" in df.columns:
        if df.SNP.duplicated().any():
            raise FileFormatError(f"annotation file '{p}' lists SNP "
                                  f"{df.SNP[df.SNP.duplicated()].iloc[0]} twice")
        out.index = pd.Index(df.SNP, name="SNP")
    log.info("Read %d annotations for %d SNPs from %s.", len(cols), len(out), p)
    return out
