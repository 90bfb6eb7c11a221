"""Validation and alignment of in-memory inputs: the package's one alignment rule.

:func:`sample_index` is the rule (labels in, an index out); :func:`prepare` applies it to a
fit's phenotype, kernel(s) and covariates, :func:`align_samples` to any number of labelled
inputs at once (files as read, GRMs, genotypes), keeping the samples all of them share.

Every public estimator passes its inputs through this module first, so that the numerical
core can assume clean, aligned float64 arrays. Inputs may be numpy arrays, pandas objects or
xarray DataArrays; their labels (sample IDs, covariate names) are kept and carried through
to the results.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import AlignmentError, CollinearityError, InputError, KernelError
from bayeslmm.io.grm_files import GRM
from bayeslmm.labels import duplicated_labels, positional_labels, sample_labels

log = logging.getLogger("bayeslmm.data")

__all__ = [
    "AlignedSamples",
    "LMMData",
    "align_samples",
    "sample_ids",
    "labels_of",
    "as_design",
    "as_kernel",
    "as_phenotype",
    "check_full_rank",
    "check_seed",
    "covariate_design",
    "prepare",
    "sample_index",
]


def labels_of(obj, axis: int = 0) -> np.ndarray | None:
    """Sample (or column) labels of a pandas/xarray object, or None for a bare array."""
    if isinstance(obj, pd.Series | pd.DataFrame):
        index = obj.index if axis == 0 else obj.columns
        if isinstance(index, pd.MultiIndex) and index.nlevels == 2:
            # (FID, IID) pairs: the package's one labelling rule, which refuses IDs whose
            # join could collide ("a b" + "c" vs "a" + "b c").
            return sample_labels(index.get_level_values(0), index.get_level_values(1))
        return np.asarray(index.map(str) if not isinstance(index, pd.MultiIndex)
                          else [" ".join(map(str, t)) for t in index])
    if isinstance(obj, xr.DataArray):
        dim = obj.dims[axis]
        if dim in obj.coords:
            return np.asarray(obj.coords[dim].values).astype(str)
    return None


#: largest seed: numpy's SeedSequence takes any size, but nutpie, PyMC and the command
#: line's peers take 32 bits
SEED_MAX = 2**32 - 1


def check_seed(seed, what: str = "seed") -> None:
    """Refuse a seed that is not None, a :class:`numpy.random.Generator` or an integer in
    [0, 2^32 - 1] (the command line's ``--seed`` range), before any work is done.

    Raises
    ------
    InputError
        Naming ``what``, the value given and the range (nutpie would otherwise stop with an
        OverflowError or TypeError after compiling the model).
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return
    ok = isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_)
    if not ok or not 0 <= int(seed) <= SEED_MAX:
        raise InputError(f"{what} must be an integer from 0 to 2^32 - 1 = {SEED_MAX} (or a "
                         f"numpy.random.Generator), got {seed!r}")


def _as_float(obj, what: str) -> np.ndarray:
    if np.iscomplexobj(getattr(obj, "values", obj)):
        raise InputError(f"{what} is complex; it must be real")
    try:
        arr = np.asarray(obj.values if hasattr(obj, "values") and not isinstance(obj, np.ndarray)
                         else obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numeric: {exc}") from None
    return arr


def as_phenotype(y) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the phenotype as a 1-D float64 array and its sample labels (or None).

    Raises
    ------
    InputError
        If y is not one-dimensional, has fewer than 3 values, contains NaN/inf or is constant.
    """
    labels = labels_of(y)
    arr = _as_float(y, "the phenotype y")
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"the phenotype y must be one-dimensional, got shape {arr.shape}")
    if arr.size < 3:
        raise InputError(f"the phenotype y has {arr.size} values; at least 3 are needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = f" (sample {labels[first]!r})" if labels is not None else ""
        raise InputError(
            f"the phenotype y has {int(bad.sum())} missing or non-finite values, the first at "
            f"position {first}{where}; drop those samples first"
        )
    if np.ptp(arr) == 0:
        raise InputError(f"the phenotype y is constant (every value is {arr[0]:g})")
    return arr, labels


def as_design(X, N: int) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Return the fixed-effect design matrix, its column names and its sample labels.

    ``X=None`` gives an intercept column named ``"intercept"``. A 1-D input is one column.
    """
    if X is None:
        return np.ones((N, 1)), ["intercept"], None
    labels = labels_of(X)
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
    elif isinstance(X, pd.Series):
        names = [str(X.name) if X.name is not None else "x0"]
    elif isinstance(X, xr.DataArray) and X.ndim == 2 and X.dims[1] in X.coords:
        names = [str(c) for c in X.coords[X.dims[1]].values]
    else:
        names = None
    arr = _as_float(X, "the covariate matrix X")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"the covariate matrix X must be two-dimensional, got shape {arr.shape}")
    if names is None:
        names = ["intercept" if np.all(arr[:, j] == 1.0) else f"x{j}" for j in range(arr.shape[1])]
    if arr.shape[0] != N:
        raise InputError(f"X has {arr.shape[0]} rows but y has {N} samples")
    if not np.all(np.isfinite(arr)):
        rows = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise InputError(f"X has missing or non-finite values in {rows.size} rows, "
                         f"the first at row {int(rows[0])}")
    from bayeslmm.identifiability import check_magnitude

    check_magnitude(arr, "the covariates X")  # before the rank check, which it would fool
    check_full_rank(arr, names)
    return arr, names, labels


def covariate_design(index, *blocks: pd.DataFrame) -> pd.DataFrame:
    """The fixed-effect design of the command line: an intercept, then the columns of each
    block (quantitative covariates, dummy-coded discrete ones) joined by sample label."""
    X = pd.DataFrame({"intercept": 1.0}, index=index)
    for b in blocks:
        X = X.join(b)
    return X


def check_full_rank(X: np.ndarray, names: Sequence[str]) -> None:
    """Raise :class:`CollinearityError` naming the columns of X that are linear combinations.

    A rank-deficient X has no unique beta-hat (notes 2.1.1); we refuse it rather than use a
    pseudo-inverse silently.
    """
    N, M = X.shape
    if M > N:
        raise CollinearityError(f"X has {M} columns but only {N} samples; beta is not identifiable")
    if M == 0:
        raise InputError("X has no columns")
    # Pivoted QR orders columns by how much new direction each adds; the trailing ones whose
    # diagonal of R is negligible are combinations of the leading ones.
    from scipy.linalg import qr

    scale = np.linalg.norm(X, axis=0)
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise CollinearityError(
            "X has all-zero columns: " + ", ".join(repr(names[j]) for j in zero))
    R, piv = qr(X / scale, mode="r", pivoting=True)
    d = np.abs(np.diag(R))
    tol = max(N, M) * np.finfo(float).eps * 100 * d[0]
    rank = int(np.sum(d > tol))
    if rank < M:
        redundant = sorted(int(j) for j in piv[rank:])
        basis = sorted(int(j) for j in piv[:rank])
        # Say which kept columns each redundant one is made of.
        coef, *_ = np.linalg.lstsq(X[:, basis], X[:, redundant], rcond=None)
        parts = []
        for k, j in enumerate(redundant):
            used = [names[basis[i]] for i in np.flatnonzero(np.abs(coef[:, k]) > 1e-8)]
            parts.append(f"{names[j]!r} = combination of {used}")
        raise CollinearityError(
            f"X is rank deficient (rank {rank} < {M} columns): " + "; ".join(parts)
            + ". Drop the redundant columns.")


def as_kernel(K, N: int, name: str = "K") -> tuple[np.ndarray, np.ndarray | None]:
    """Return a kernel as a symmetric float64 array and its sample labels.

    Checks shape, finiteness and symmetry here; positive semi-definiteness is checked on the
    eigenvalues when the kernel is decomposed (:mod:`bayeslmm.covariance.decomposition`), so it
    costs nothing
    extra.
    """
    labels = labels_of(K)
    arr = _as_float(K, f"the kernel {name}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise KernelError(f"{name} must be a square matrix, got shape {arr.shape}")
    if arr.shape[0] != N:
        raise InputError(f"{name} is {arr.shape[0]} x {arr.shape[0]} but y has {N} samples")
    if not np.all(np.isfinite(arr)):
        raise KernelError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN or infinite entries")
    scale = max(float(np.max(np.abs(arr))), np.finfo(float).tiny)
    diff = arr - arr.T
    np.abs(diff, out=diff)
    asym = float(diff.max())
    if asym > 1e-8 * scale:
        i, j = np.unravel_index(np.argmax(diff), arr.shape)
        raise KernelError(
            f"{name} is not symmetric: {name}[{i},{j}] = {arr[i, j]:.6g} but "
            f"{name}[{j},{i}] = {arr[j, i]:.6g}")
    # Asymmetry below the tolerance is rounding; eigh reads one triangle only, so no copy.
    return arr, labels


@dataclass(frozen=True)
class LMMData:
    """Validated, aligned inputs of a mixed model: y, X and the kernels, all float64."""

    y: np.ndarray
    X: np.ndarray
    Ks: tuple[np.ndarray, ...]
    covariates: tuple[str, ...]
    samples: np.ndarray
    components: tuple[str, ...]

    @property
    def N(self) -> int:
        return self.y.shape[0]

    @property
    def M(self) -> int:
        return self.X.shape[1]


def sample_index(want: np.ndarray, have: np.ndarray | None, what: str) -> np.ndarray | None:
    """Index into ``have`` giving the samples ``want``, in that order; None when no reordering
    is needed (same labels in the same order, or ``have`` unlabelled: positional).

    This is the one alignment rule of the package: every input that carries sample labels
    (kernels, decompositions, covariates, genotypes, cross-kernels) is put in the order of
    the phenotype's labels through it. Duplicated labels are an error naming them; samples
    of ``want`` missing from ``have`` are an error naming the first. Unlabelled ``want``
    (positional labels that match none of ``have``'s) is taken in ``have``'s order.
    """
    if have is None:
        return None
    have = np.asarray(have)
    if np.array_equal(want, have):
        return None
    dup = duplicated_labels(have)
    if dup:
        raise AlignmentError(f"{what} has duplicated sample IDs: {dup[:5]!r}")
    pos = {s: i for i, s in enumerate(have)}
    missing = [s for s in want if s not in pos]
    if missing:
        if len(missing) == len(want) and np.array_equal(want, positional_labels(len(want))) \
                and len(have) == len(want):
            return None  # unlabelled phenotype: positional
        if len(missing) == len(want):
            raise AlignmentError(
                f"{what} and the phenotype share 0 of the {len(want)} sample IDs; first "
                f"phenotyped ID is {want[0]!r}, first ID of {what} is "
                f"{have[0] if len(have) else None!r}. Check that both use the same FID and "
                "IID")
        raise AlignmentError(
            f"{what} lacks {len(missing)} of the {len(want)} phenotyped samples, e.g. "
            f"{missing[0]!r}; align the inputs first (bayeslmm.data.align_samples, or "
            "bayeslmm.load_inputs for files)")
    return np.fromiter((pos[s] for s in want), dtype=np.intp, count=len(want))


def _kernel_labels(K, name: str) -> np.ndarray | None:
    """Row labels of a labelled kernel, checked against its column labels."""
    rows = labels_of(K, 0)
    if getattr(K, "ndim", 2) != 2:
        return rows
    cols = labels_of(K, 1)
    if rows is not None and cols is not None and not np.array_equal(rows, cols):
        bad = next((i for i, (a, b) in enumerate(zip(rows, cols, strict=False)) if a != b),
                   min(len(rows), len(cols)))
        raise AlignmentError(
            f"{name}'s row and column sample labels disagree (first at position {bad}: "
            f"{rows[bad] if bad < len(rows) else None!r} vs "
            f"{cols[bad] if bad < len(cols) else None!r})")
    return rows if rows is not None else cols


def _drop_missing_phenotypes(y, K, X):
    """A labelled phenotype (pandas or xarray with sample labels) loses its missing values,
    with a logged count, as the command line does; kernels and covariates without labels
    lose the same rows by position. An unlabelled array with NaN stays an error
    (:func:`as_phenotype`): which sample it was cannot be said."""
    if labels_of(y) is None:
        return y, K, X
    try:
        arr = np.asarray(y.values if hasattr(y, "values") else y, dtype=np.float64)
    except (TypeError, ValueError):
        return y, K, X  # as_phenotype says what is wrong
    arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1 or not np.isnan(arr).any():
        return y, K, X
    keep = ~np.isnan(arr)  # missing; an infinite value stays an error (as_phenotype)
    log.info("%d of %d samples dropped for a missing phenotype.", int((~keep).sum()), arr.size)
    N0 = arr.size
    y = y[keep] if isinstance(y, pd.Series) else y.isel({y.dims[0]: np.flatnonzero(keep)})

    def positional(a, two_d: bool):
        if a is None or isinstance(a, GRM) or labels_of(a) is not None:
            return a  # labelled: aligned by label later
        if hasattr(a, "shape") and len(a.shape) >= 1 and a.shape[0] == N0:
            arr_ = np.asarray(a)
            return arr_[np.ix_(keep, keep)] if two_d and arr_.ndim == 2 else arr_[keep]
        return a

    if isinstance(K, list | tuple):
        K = [positional(Kk, True) for Kk in K]
    elif not hasattr(K, "aligned_to"):  # a Decomposition cannot be subset: it says so later
        K = positional(K, True)
    X = positional(X, False)
    return y, K, X


def prepare(y, K=None, X=None, component_names: Sequence[str] | None = None) -> LMMData:
    """Validate y, X and K (a matrix or a list of matrices) and align them by sample label.

    When y carries sample labels (pandas index or xarray ``sample`` coordinate) and X or K
    carry labels too (a :class:`~bayeslmm.io.GRM` always does), X and K are reordered to y's
    order; samples of K absent from y are dropped, samples of y absent from K are an error.
    A labelled y loses its missing values (logged); an unlabelled one with NaN is an error.
    """
    y, K, X = _drop_missing_phenotypes(y, K, X)
    y_arr, y_labels = as_phenotype(y)
    N = y_arr.size
    if y_labels is not None and duplicated_labels(y_labels):
        raise AlignmentError(f"y has duplicated sample IDs: {duplicated_labels(y_labels)[:5]!r}")
    samples = y_labels if y_labels is not None else positional_labels(N)
    if K is None:
        Ks_in: list = []
    elif isinstance(K, list | tuple):
        Ks_in = list(K)
    else:
        Ks_in = [K]
    Ks = []
    Ks_in = [Kk.K if isinstance(Kk, GRM) else Kk for Kk in Ks_in]  # GRM: its labelled matrix
    for k, Kk in enumerate(Ks_in):
        name = "K" if len(Ks_in) == 1 else f"K[{k}]"
        labels = _kernel_labels(Kk, name)
        arr_full = _as_float(Kk, f"the kernel {name}")
        if y_labels is not None and labels is not None and arr_full.ndim == 2:
            idx = sample_index(y_labels, labels, name)
            if idx is not None:
                arr_full = arr_full[np.ix_(idx, idx)]
        arr, _ = as_kernel(arr_full, N, name)
        Ks.append(arr)
    if X is not None and y_labels is not None:
        idx = sample_index(y_labels, labels_of(X), "X")
        if idx is not None:
            X = X.iloc[idx] if isinstance(X, pd.DataFrame | pd.Series) else X[idx]
    X_arr, names, _ = as_design(X, N)
    if component_names is None:
        component_names = ["G"] if len(Ks) == 1 else [f"G{k + 1}" for k in range(len(Ks))]
    if len(component_names) != len(Ks):
        raise InputError(f"{len(component_names)} component names for {len(Ks)} kernels")
    if X_arr.shape[1] >= N:
        raise InputError(f"X has {X_arr.shape[1]} columns for {N} samples; REML needs N > M")
    return LMMData(y=y_arr, X=X_arr, Ks=tuple(Ks), covariates=tuple(names),
                   samples=np.asarray(samples), components=tuple(component_names))


# --------------------------------------------------------------------------- several inputs


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


def labels_of_ids(obj: Any) -> np.ndarray:
    """The sample labels (:func:`bayeslmm.labels.sample_labels`) of an input's IDs."""
    mi = sample_ids(obj)
    return sample_labels(mi.get_level_values(0), mi.get_level_values(1))


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
        lab = labels_of_ids(inputs[name])
        dup = duplicated_labels(lab)
        if dup:
            raise AlignmentError(f"{name}: sample ID '{dup[0]}' appears more than once")
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
        idx = sample_index(order, labels[name], name)
        positions[name] = (np.arange(len(order), dtype=np.int64) if idx is None
                           else idx.astype(np.int64))
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
