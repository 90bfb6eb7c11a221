"""Phenotype and covariate files the GCTA/PLINK way.

File layout: whitespace-separated, one sample per line, ``FID IID value1 value2 ...``.
An optional header line is detected (see :func:`read_phenotypes`).  Missing values
are ``NA``, ``-9``, ``nan`` and ``.`` (case-insensitive).

* phenotype files (``--pheno``, ``--mpheno k`` 1-based): :func:`read_phenotypes`,
  :func:`read_phenotype`;
* quantitative covariates (``--qcovar``): :func:`read_qcovar`;
* discrete covariates (``--covar``), dummy-coded with the first (sorted) level
  dropped: :func:`read_covar`.

All readers return pandas objects indexed by a ``(fid, iid)`` MultiIndex;
:func:`bayeslmm.data.align_samples` intersects any number of inputs in the order of the
first.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.errors import AlignmentError, FileFormatError, InputError
from bayeslmm.io.text import read_lines

__all__ = [
    "MISSING_TOKENS",
    "read_covar",
    "read_phenotype",
    "read_phenotypes",
    "read_qcovar",
]

log = logging.getLogger(__name__)

#: tokens read as a missing value (compared case-insensitively); -9 also as a number
MISSING_TOKENS = frozenset({"na", "nan", "-9", "."})
_FID_NAMES = frozenset({"fid", "#fid", "famid", "family_id", "fam_id"})
_IID_NAMES = frozenset({"iid", "id", "indid", "individual_id", "ind_id", "sample"})


def _is_missing(tok: str) -> bool:
    return tok.lower() in MISSING_TOKENS


def _to_float(tok: str) -> float | None:
    """The number in ``tok`` (NaN if a missing token), or None if not numeric."""
    if _is_missing(tok):
        return np.nan
    try:
        v = float(tok)
    except ValueError:
        return None
    if v == -9.0 or np.isnan(v):
        return np.nan
    return v


@dataclass(frozen=True)
class _Table:
    path: Path
    names: list[str] | None  # header names of the value columns, or None
    rows: list[list[str]]
    linenos: list[int]


def _read_table(
    path: str | os.PathLike[str], what: str, header: bool | None, numeric: bool
) -> _Table:
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{what} file '{path}' does not exist")
    rows: list[list[str]] = []
    linenos: list[int] = []
    # UTF-8 with a byte-order mark removed; other encodings are one clear error.
    for lineno, line in enumerate(read_lines(path, what), 1):
        parts = line.split()
        if parts:
            rows.append(parts)
            linenos.append(lineno)
    if not rows:
        raise FileFormatError(f"{what} file '{path}' is empty")
    if what == "phenotype" and path.suffix == ".fam":
        rows, header = _fam_phenotype(rows, linenos, path), False
    if numeric:
        _check_ids_present(rows, linenos, path, what)
    first = rows[0]
    if header is None:
        id_like = (len(first) >= 2 and first[0].lower() in _FID_NAMES
                   and first[1].lower() in _IID_NAMES)
        values = first[2:]
        from_values = not id_like and (
            numeric and len(values) > 0 and all(_to_float(v) is None for v in values)
        )
        header = id_like or from_values
        if from_values:
            # Not silent: a sample whose values are all typos would otherwise vanish.
            log.warning(
                "%s file '%s': line %d ('%s') is read as a header because none of its values "
                "is a number; if it is a sample, correct its values (or write the header as "
                "'FID IID ...')",
                what,
                path,
                linenos[0],
                " ".join(first)[:80],
            )
    names = None
    if header:
        names = first[2:]
        rows, linenos = rows[1:], linenos[1:]
        if not rows:
            raise FileFormatError(f"{what} file '{path}' has a header but no data line")
    ncol = len(names) + 2 if names is not None else len(rows[0])
    if ncol < 3:
        raise FileFormatError(
            f"{what} file '{path}', line {linenos[0]}: expected FID, IID and at least one "
            f"value column, found {ncol} field(s)"
        )
    for r, ln in zip(rows, linenos, strict=True):
        if len(r) != ncol:
            raise FileFormatError(
                f"{what} file '{path}', line {ln}: {len(r)} fields, expected {ncol} "
                "(like the first line)"
            )
    seen: dict[tuple[str, str], int] = {}
    for r, ln in zip(rows, linenos, strict=True):
        key = (r[0], r[1])
        if key in seen:
            raise AlignmentError(
                f"{what} file '{path}': sample '{r[0]} {r[1]}' appears on lines "
                f"{seen[key]} and {ln}"
            )
        seen[key] = ln
    return _Table(path, names, rows, linenos)


def _fam_phenotype(rows, linenos, path: Path) -> list[list[str]]:
    """A PLINK .fam given as the phenotype file (``--pheno data.fam``): FID, IID and the
    sixth column, as PLINK reads it when no --pheno is given (-9 missing; 0 too for a 1/2
    case-control coding, where --prevalence reads it); columns 7, 8, ... are phenotypes 2,
    3, ... as GEMMA reads them (``-n k`` is ``--mpheno k``; its mouse_hs1940.fam has six)."""
    for r, ln in zip(rows, linenos, strict=True):
        if len(r) < 6 or len(r) != len(rows[0]):
            raise FileFormatError(f"PLINK .fam file '{path}', line {ln}: {len(r)} fields, "
                                  f"expected {max(6, len(rows[0]))} (FID IID father mother "
                                  "sex phenotype ...)")
    log.info("phenotypes from the sixth column on of the PLINK .fam file '%s'", path)
    return [[r[0], r[1], *r[5:]] for r in rows]


def _looks_like_value(tok: str) -> bool:
    """A token no FID/IID would be: a missing-value code or a non-integer number."""
    if tok.lower() in ("na", "nan", "."):
        return True
    return _to_float(tok) is not None and any(c in tok.lower() for c in ".e")


def _check_ids_present(rows, linenos, path, what) -> None:
    """GEMMA's phenotype files (e.g. mouse_hs1940.pheno.txt) have no FID/IID columns; say so
    instead of reporting duplicated 'NA NA' samples or ragged lines."""
    head = rows[: min(len(rows), 50)]
    idless = sum(_looks_like_value(r[0]) or (len(r) > 1 and _looks_like_value(r[1]))
                 for r in head)
    if idless > len(head) // 2:
        raise FileFormatError(
            f"{what} file '{path}' has no FID and IID columns (line {linenos[0]} starts with "
            f"'{' '.join(rows[0][:2])}', values, not IDs): it looks like GEMMA's ID-less "
            "format; add FID IID as the first two columns (in the order of the .fam file), "
            "or put the phenotype in the .fam's sixth column and give --pheno PREFIX.fam")


def _index(t: _Table) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays(
        [[r[0] for r in t.rows], [r[1] for r in t.rows]], names=["fid", "iid"]
    )


def _numeric_column(t: _Table, j: int, what: str) -> np.ndarray:
    """Column ``j`` (0-based among the value columns) as float64, NaN = missing."""
    out = np.empty(len(t.rows))
    for k, (r, ln) in enumerate(zip(t.rows, t.linenos, strict=True)):
        v = _to_float(r[2 + j])
        if v is None:
            col = t.names[j] if t.names else f"column {3 + j}"
            raise InputError(
                f"{what} file '{t.path}', line {ln} ({col}, sample '{r[0]} {r[1]}'): "
                f"value '{r[2 + j]}' is not a number; missing values must be NA, -9, "
                "nan or '.'"
            )
        out[k] = v
    # -9 is PLINK's and GCTA's missing value; say so, since it can also be a real value.
    n9 = sum(_is_float(r[2 + j], -9.0) for r in t.rows)
    if n9:
        col = t.names[j] if t.names else f"column {3 + j}"
        log.info("%s file '%s' (%s): %d value(s) -9 read as missing (PLINK/GCTA convention)",
                 what, t.path, col, n9)
    return out


def _is_float(tok: str, value: float) -> bool:
    try:
        return float(tok) == value
    except ValueError:
        return False


def _names(t: _Table, prefix: str) -> list[str]:
    n = len(t.rows[0]) - 2
    return list(t.names) if t.names is not None else [f"{prefix}{k}" for k in range(1, n + 1)]


def read_phenotypes(path: str | os.PathLike[str], *, header: bool | None = None) -> pd.DataFrame:
    """Read every phenotype column of a PLINK/GCTA phenotype file.

    Parameters
    ----------
    path : path
        ``FID IID y1 y2 ...`` per line, whitespace separated.
    header : bool, optional
        Whether the first line is a header.  Default: detected; it is a header when
        its first two fields look like ``FID IID`` or all its value fields are
        neither numbers nor missing-value tokens.

    Returns
    -------
    pandas.DataFrame
        float64 columns (header names, or ``pheno1``, ``pheno2``...), NaN for
        missing (``NA``, ``-9``, ``nan``, ``.``), indexed by ``(fid, iid)``.

    Raises
    ------
    InputError
        A value is not numeric (the message names the file, line and value).
    """
    t = _read_table(path, "phenotype", header, numeric=True)
    names = _names(t, "pheno")
    data = {n: _numeric_column(t, j, "phenotype") for j, n in enumerate(names)}
    return pd.DataFrame(data, index=_index(t))


def read_phenotype(
    path: str | os.PathLike[str], *, mpheno: int = 1, header: bool | None = None
) -> pd.Series:
    """Read phenotype number ``mpheno`` (1-based, as GCTA/PLINK ``--mpheno``).

    Only that column is checked for non-numeric values.  Returns a float64 Series
    indexed by ``(fid, iid)``, NaN for missing.
    """
    t = _read_table(path, "phenotype", header, numeric=True)
    names = _names(t, "pheno")
    if not isinstance(mpheno, (int, np.integer)) or not 1 <= mpheno <= len(names):
        raise InputError(
            f"mpheno={mpheno!r} but phenotype file '{t.path}' has {len(names)} "
            f"phenotype column(s) (mpheno is 1-based)"
        )
    y = _numeric_column(t, mpheno - 1, "phenotype")
    return pd.Series(y, index=_index(t), name=names[mpheno - 1])


def read_qcovar(path: str | os.PathLike[str], *, header: bool | None = None) -> pd.DataFrame:
    """Read a quantitative covariate file (GCTA ``--qcovar``).

    Same layout and header detection as :func:`read_phenotypes`; columns are named
    from the header or ``Q1``, ``Q2``...
    """
    t = _read_table(path, "quantitative covariate", header, numeric=True)
    names = _names(t, "Q")
    data = {n: _numeric_column(t, j, "quantitative covariate") for j, n in enumerate(names)}
    return pd.DataFrame(data, index=_index(t))


def read_covar(path: str | os.PathLike[str], *, header: bool | None = None) -> pd.DataFrame:
    """Read a discrete covariate file (GCTA ``--covar``) and dummy-code it.

    Every value column is a factor; its levels are sorted (numerically if all are
    numbers, else as strings), the first level is the reference and dropped, and
    each other level gets a 0/1 column named ``<column>_<level>`` where
    ``<column>`` is the header name or ``C1``, ``C2``...  (e.g. ``C1_levelB``).
    A missing value (``NA``, ``-9``, ``nan``, ``.``) gives NaN in all the column's
    dummies.  The header is detected only from ``FID IID`` names in the first line
    (values are not numeric anyway); pass ``header=True`` otherwise.
    """
    t = _read_table(path, "discrete covariate", header, numeric=False)
    names = _names(t, "C")
    idx = _index(t)
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        raw = np.array([r[2 + j] for r in t.rows], dtype=object)
        miss = np.array([_to_float(v) is not None and np.isnan(_to_float(v)) for v in raw])
        levels = sorted(set(raw[~miss]), key=_level_key)
        if len(levels) < 2:
            log.warning(
                "discrete covariate '%s' in '%s' has %d level(s); it adds no column",
                name,
                t.path,
                len(levels),
            )
        for lev in levels[1:]:
            d = (raw == lev).astype(np.float64)
            d[miss] = np.nan
            cols[f"{name}_{lev}"] = d
    return pd.DataFrame(cols, index=idx)


def _level_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)
