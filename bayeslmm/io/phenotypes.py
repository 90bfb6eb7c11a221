"""Phenotype and covariate files the GCTA/PLINK way, and sample alignment by (FID, IID).

File layout: whitespace-separated, one sample per line, ``FID IID value1 value2 ...``.
An optional header line is detected (see :func:`read_phenotypes`).  Missing values
are ``NA``, ``-9``, ``nan`` and ``.`` (case-insensitive).

* phenotype files (``--pheno``, ``--mpheno k`` 1-based): :func:`read_phenotypes`,
  :func:`read_phenotype`;
* quantitative covariates (``--qcovar``): :func:`read_qcovar`;
* discrete covariates (``--covar``), dummy-coded with the first (sorted) level
  dropped: :func:`read_covar`.

All readers return pandas objects indexed by a ``(fid, iid)`` MultiIndex;
:func:`align_samples` intersects any number of inputs in the order of the first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import AlignmentError, FileFormatError, InputError
from bayeslmm.io.grm_files import GRM
from bayeslmm.io.text import read_lines

__all__ = [
    "MISSING_TOKENS",
    "AlignedSamples",
    "align_samples",
    "read_covar",
    "read_phenotype",
    "read_phenotypes",
    "read_qcovar",
    "sample_ids",
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
            "or take the phenotype from the .fam's sixth column")


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


# --------------------------------------------------------------------------- alignment


def sample_ids(obj: Any) -> pd.MultiIndex:
    """The ``(fid, iid)`` IDs of any input :func:`align_samples` accepts.

    Accepted: a :class:`~bayeslmm.io.GRM`; an xarray Dataset/DataArray with ``fid``
    and ``iid`` coordinates on ``sample`` (e.g. from ``read_plink``); a pandas
    Series/DataFrame indexed by a 2-level ``(fid, iid)`` MultiIndex (phenotypes,
    covariates); a DataFrame with ``fid`` and ``iid`` columns (e.g. ``read_fam``);
    a 2-level MultiIndex.
    """
    if isinstance(obj, GRM):
        f, i = obj.ids["fid"], obj.ids["iid"]
    elif isinstance(obj, (xr.Dataset, xr.DataArray)):
        f, i = obj["fid"].to_numpy(), obj["iid"].to_numpy()
    elif isinstance(obj, pd.MultiIndex):
        f, i = obj.get_level_values(0), obj.get_level_values(1)
    elif isinstance(obj, (pd.Series, pd.DataFrame)) and isinstance(obj.index, pd.MultiIndex):
        f, i = obj.index.get_level_values(0), obj.index.get_level_values(1)
    elif isinstance(obj, pd.DataFrame) and {"fid", "iid"} <= set(obj.columns):
        f, i = obj["fid"], obj["iid"]
    else:
        raise InputError(
            f"cannot find (FID, IID) sample IDs in an object of type {type(obj).__name__}"
        )
    return pd.MultiIndex.from_arrays(
        [np.asarray(f).astype(str), np.asarray(i).astype(str)], names=["fid", "iid"]
    )


def _missing_mask(obj: Any) -> np.ndarray | None:
    if isinstance(obj, (pd.Series, pd.DataFrame)) and isinstance(obj.index, pd.MultiIndex):
        v = obj.to_numpy(dtype=float, na_value=np.nan)
        return np.isnan(v) if v.ndim == 1 else np.isnan(v).any(axis=1)
    return None


def _take(obj: Any, pos: np.ndarray) -> Any:
    if isinstance(obj, GRM):
        return obj.subset(pos)
    if isinstance(obj, (xr.Dataset, xr.DataArray)):
        return obj.isel(sample=pos)
    if isinstance(obj, pd.MultiIndex):
        return obj[pos]
    if isinstance(obj, (pd.Series, pd.DataFrame)) and isinstance(obj.index, pd.MultiIndex):
        return obj.iloc[pos]
    return obj.iloc[pos].reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class AlignedSamples:
    """Inputs restricted to their common, complete samples, in one order.

    Attributes
    ----------
    ids : pandas.DataFrame
        ``fid``, ``iid`` of the kept samples, in the order of the first input.
    positions : dict[str, numpy.ndarray]
        For each input, the row positions of ``ids`` in it.
    data : dict[str, Any]
        Each input subset and reordered (same type as given).
    report : pandas.DataFrame
        One row per input: ``n_input``, ``n_missing`` (dropped for a missing
        value in that input), ``n_not_shared`` (dropped because absent or
        incomplete in another input) and ``n_kept``.
    """

    ids: pd.DataFrame
    positions: dict[str, np.ndarray]
    data: dict[str, Any]
    report: pd.DataFrame

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    @property
    def N(self) -> int:  # noqa: N802 - the notes' name
        """Number of kept samples."""
        return len(self.ids)

    def summary(self) -> pd.DataFrame:
        """The drop-count report table."""
        return self.report


def align_samples(
    inputs: Mapping[str, Any],
    *,
    phenotype: str | Iterable[str] | None = None,
    drop_missing: bool = True,
) -> AlignedSamples:
    """Match samples by (FID, IID) across inputs and drop incomplete ones.

    Parameters
    ----------
    inputs : mapping of name -> object
        E.g. ``{"GRM": grm, "phenotype": y, "covariates": X, "fam": fam}``; any
        object :func:`sample_ids` accepts.  The **first** input fixes the order
        of the result.  The names are used in messages and the report.
    phenotype : str or list of str, optional
        Input(s) holding phenotypes, which must not be constant after alignment.
        Default: every input whose name contains ``"pheno"`` (case-insensitive).
    drop_missing : bool, default True
        Drop samples with a NaN in any pandas input indexed by (fid, iid)
        (phenotypes, covariates).

    Returns
    -------
    AlignedSamples

    Raises
    ------
    AlignmentError
        Duplicated IDs within an input, or no sample shared, e.g. "GRM and phenotype
        share 0 of 1410 sample IDs; first GRM ID is '1_3 A048005080', first
        phenotype ID is 'A048005080 A048005080'".
    InputError
        A phenotype is constant over the kept samples.
    """
    if not inputs:
        raise InputError("align_samples needs at least one input")
    names = list(inputs)
    labels: dict[str, np.ndarray] = {}
    for name in names:
        mi = sample_ids(inputs[name])
        lab = np.array([f"{f} {i}" for f, i in mi], dtype=object)
        if len(set(lab)) != len(lab):
            u, c = np.unique(lab.astype(str), return_counts=True)
            raise AlignmentError(f"{name}: sample ID '{u[c > 1][0]}' appears more than once")
        labels[name] = lab
    first = names[0]
    set0 = set(labels[first])
    for name in names[1:]:
        shared = len(set0.intersection(labels[name]))
        if shared == 0:
            raise AlignmentError(
                f"{first} and {name} share 0 of {len(labels[name])} sample IDs; "
                f"first {first} ID is '{_first(labels[first])}', first {name} ID is "
                f"'{_first(labels[name])}'. Check that both use the same FID and IID "
                "columns."
            )
    complete: dict[str, set] = {}
    n_missing: dict[str, int] = {}
    for name in names:
        mask = _missing_mask(inputs[name]) if drop_missing else None
        lab = labels[name]
        if mask is None:
            complete[name] = set(lab)
            n_missing[name] = 0
        else:
            complete[name] = set(lab[~mask])
            n_missing[name] = int(mask.sum())
    keep_set = set.intersection(*complete.values())
    order = np.array([lab for lab in labels[first] if lab in keep_set], dtype=object)
    rows = []
    positions: dict[str, np.ndarray] = {}
    for name in names:
        where = {lab: k for k, lab in enumerate(labels[name])}
        positions[name] = np.array([where[lab] for lab in order], dtype=np.int64)
        n_in = len(labels[name])
        rows.append(
            {
                "n_input": n_in,
                "n_missing": n_missing[name],
                "n_not_shared": n_in - n_missing[name] - len(order),
                "n_kept": len(order),
            }
        )
    report = pd.DataFrame(rows, index=pd.Index(names, name="input"))
    for name, r in report.iterrows():
        log.info(
            "%s: %d samples, %d dropped for missing values, %d not in every other input, %d kept",
            name,
            r.n_input,
            r.n_missing,
            r.n_not_shared,
            r.n_kept,
        )
    if len(order) == 0:
        raise AlignmentError(
            "no sample has complete data in all inputs: "
            + "; ".join(
                f"{n}: {r.n_input} samples, {r.n_missing} with missing values"
                for n, r in report.iterrows()
            )
        )
    data = {name: _take(inputs[name], positions[name]) for name in names}
    ids = pd.DataFrame([lab.split(" ", 1) for lab in order], columns=["fid", "iid"], dtype=str)
    if phenotype is None:
        pheno_names = [n for n in names if "pheno" in n.lower()]
    else:
        pheno_names = [phenotype] if isinstance(phenotype, str) else list(phenotype)
    for pn in pheno_names:
        if pn not in data:
            raise InputError(f"phenotype input '{pn}' is not among the inputs {names}")
        obj = data[pn]
        frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
        if not isinstance(frame, pd.DataFrame):
            continue
        for col in frame.columns:
            v = frame[col].to_numpy(dtype=float, na_value=np.nan)
            v = v[~np.isnan(v)]
            if v.size and np.all(v == v[0]):
                raise InputError(
                    f"phenotype '{col}' ({pn}) is constant (= {v[0]:g}) over the "
                    f"{len(order)} aligned samples; nothing to model"
                )
    return AlignedSamples(ids, positions, data, report)


def _first(lab: np.ndarray) -> str:
    return str(lab[0]) if len(lab) else "<none>"
