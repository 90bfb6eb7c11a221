"""Validation and alignment of in-memory inputs.

Every public estimator passes its inputs through this module first, so that the numerical
core can assume clean, aligned float64 arrays. Inputs may be numpy arrays, pandas objects or
xarray DataArrays; their labels (sample IDs, covariate names) are kept and carried through
to the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import AlignmentError, CollinearityError, InputError, KernelError
from bayeslmm.io.plink import sample_labels

__all__ = [
    "LMMData",
    "labels_of",
    "as_design",
    "as_kernel",
    "as_phenotype",
    "check_full_rank",
    "covariate_design",
    "positional_labels",
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
    eigenvalues when the kernel is decomposed (:mod:`bayeslmm.spectral`), so it costs nothing
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


def _duplicates(labels: np.ndarray) -> list[str]:
    u, c = np.unique(labels, return_counts=True)
    return [str(x) for x in u[c > 1]]


def positional_labels(N: int) -> np.ndarray:
    """The labels given to unlabelled samples: "0", "1", ..."""
    return np.array([str(i) for i in range(N)])


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
    dup = _duplicates(have)
    if dup:
        raise AlignmentError(f"{what} has duplicated sample IDs: {dup[:5]!r}")
    pos = {s: i for i, s in enumerate(have)}
    missing = [s for s in want if s not in pos]
    if missing:
        if len(missing) == len(want) and np.array_equal(want, positional_labels(len(want))) \
                and len(have) == len(want):
            return None  # unlabelled phenotype: positional
        raise AlignmentError(
            f"{what} lacks {len(missing)} of the {len(want)} phenotyped samples, e.g. "
            f"{missing[0]!r}; align the inputs first (bayeslmm.io.align does this for files)")
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


def prepare(y, K=None, X=None, component_names: Sequence[str] | None = None) -> LMMData:
    """Validate y, X and K (a matrix or a list of matrices) and align them by sample label.

    When y carries sample labels (pandas index or xarray ``sample`` coordinate) and X or K
    carry labels too, X and K are reordered to y's order; samples of K absent from y are
    dropped, samples of y absent from K are an error.
    """
    y_arr, y_labels = as_phenotype(y)
    N = y_arr.size
    if y_labels is not None and _duplicates(y_labels):
        raise AlignmentError(f"y has duplicated sample IDs: {_duplicates(y_labels)[:5]!r}")
    samples = y_labels if y_labels is not None else positional_labels(N)
    if K is None:
        Ks_in: list = []
    elif isinstance(K, list | tuple):
        Ks_in = list(K)
    else:
        Ks_in = [K]
    Ks = []
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
