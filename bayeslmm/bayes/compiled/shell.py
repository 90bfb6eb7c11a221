"""A hand-written, numba-compiled log-density handed to nutpie in place of PyMC's graph.

nutpie samples any model given two C callbacks: the log-density with its gradient at an
unconstrained point, and an "expand" function that turns that point into the named values
stored in the trace. :func:`nutpie_model` wraps a pair of such callbacks (numba ``cfunc``s
with the signatures :data:`LOGP_SIG` and :data:`EXPAND_SIG`, reading all data from one
float64 array whose first entry is its length) in nutpie's own container, with the names,
shapes, dims and coordinates ``nutpie.compile_pymc_model`` would give for the same PyMC
model, so that the DataTree is the same whichever route compiled it.

Callback contract (nutpie's): the log-density returns 0 when fine, 3 for a non-finite
gradient, 4 for a non-finite value (a rejected step), anything else for an error.

Used by :mod:`bayeslmm.bayes.compiled.marginal` (one kernel),
:mod:`bayeslmm.bayes.compiled.multitrait` (two traits) and
:mod:`bayeslmm.bayes.compiled.threshold` (the liability-threshold model).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numba import njit, types

__all__ = ["EXPAND_SIG", "LOGP_SIG", "compile_callbacks", "evaluate", "expand",
           "jittered_initial_point", "layout", "logp_status", "nutpie_model",
           "small_cholesky", "write_expanded"]

LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                       types.CPointer(types.double), types.CPointer(types.double),
                       types.CPointer(types.double))
EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                         types.CPointer(types.double), types.CPointer(types.double))


def layout(model, canon: Mapping[str, tuple[int, tuple[int, ...]]]
           ) -> tuple[list[str], list[tuple[int, ...]], np.ndarray, list[str]]:
    """Names and shapes nutpie stores (free values, then every other unobserved value, in
    PyMC's order) and where each comes from in a canonical vector.

    Parameters
    ----------
    model : pymc.Model
    canon : mapping
        Name -> (start in the canonical vector, shape) for every stored name.

    Returns
    -------
    names, shapes, index (float64, positions in the canonical vector), reparameterised names
    """
    free = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    rest = [v.name for v in model.unobserved_value_vars if v.name not in free]
    names = free + rest
    shapes, index = [], []
    for n in names:
        start, shape = canon[n]
        shapes.append(tuple(shape))
        index.extend(range(start, start + int(np.prod(shape, dtype=int))))
    reparam = [model.rvs_to_values[rv].name for rv in model.free_RVs
               if model.rvs_to_transforms.get(rv) is not None]
    return names, shapes, np.asarray(index, dtype=np.float64), reparam


@njit(cache=True)
def write_expanded(x, extra, ud, out):
    """The expand callback's last step: the stored values, gathered from the canonical vector
    (the unconstrained point ``x``, then the family's derived values ``extra``) at the
    positions :func:`layout` packed at the end of the user data ``ud``."""
    canon = np.concatenate((x, extra))
    expanded = out.size
    idx = ud[ud.size - expanded:]
    for k in range(expanded):
        out[k] = canon[int(idx[k])]


@njit(cache=True)
def logp_status(val, grad, lp):
    """Store the log-density ``val`` in ``lp`` and return nutpie's status for it: 0 fine,
    3 a non-finite gradient, 4 a non-finite value (a rejected step)."""
    lp[0] = val
    if not np.isfinite(val):
        return 4
    for j in range(grad.size):
        if not np.isfinite(grad[j]):
            return 3
    return 0


@njit(cache=True)
def small_cholesky(A):
    """(L, True) with A = L L' for a small symmetric matrix (plain loops: a handful of
    covariates or parameters, no LAPACK inside a compiled density); (L, False) when A is not
    positive definite."""
    M = A.shape[0]
    L = np.zeros((M, M))
    for j in range(M):
        d = A[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 0.0:
            return L, False
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, M):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
    return L, True


def jittered_initial_point(centre: np.ndarray) -> Callable[[int], np.ndarray]:
    """PyMC's default initialisation: a central point plus U(-1, 1) jitter on every
    unconstrained value, seeded per chain."""
    centre = np.asarray(centre, dtype=np.float64)

    def initial_point(seed: int) -> np.ndarray:
        return centre + np.random.default_rng(seed).uniform(-1.0, 1.0, centre.size)

    return initial_point


def compile_callbacks(logp_c: Callable, expand_c: Callable) -> tuple[Any, Any]:
    """The two C callbacks of a hand-written density (numba ``cfunc`` with :data:`LOGP_SIG`
    and :data:`EXPAND_SIG`), from numba's disk cache after the first compilation; callers
    keep the result (``functools.cache``) so each process compiles or loads it once."""
    import numba

    with warnings.catch_warnings():
        # A read-only install cannot write the cache: numba then compiles in memory.
        warnings.filterwarnings("ignore", message=".*[Cc]annot cache.*")
        return (numba.cfunc(LOGP_SIG, cache=True)(logp_c),
                numba.cfunc(EXPAND_SIG, cache=True)(expand_c))


def nutpie_model(model, *, n_dim: int, functions: tuple[Any, Any], user_data: np.ndarray,
                 names: list[str], shapes: list[tuple[int, ...]], reparam: list[str],
                 initial_point: Callable[[int], np.ndarray]) -> Any | None:
    """nutpie's compiled-model container around the two callbacks, or None (with a
    warning) when nutpie's interface is not the one this was written for (nutpie 0.16)."""
    try:
        from nutpie.compile_pymc import CompiledPyMCModel, _prepare_dims_and_coords
    except ImportError as err:
        warnings.warn(f"nutpie's compiled-model interface changed ({err}); compiling PyMC's "
                      "graph instead", RuntimeWarning, stacklevel=4)
        return None
    fields = {f.name for f in dataclasses.fields(CompiledPyMCModel)}
    needed = {"_n_dim", "compiled_logp_func", "compiled_expand_func", "initial_point_func",
              "user_data", "n_expanded", "shape_info"}
    if not needed <= fields:
        warnings.warn(f"nutpie's CompiledPyMCModel lacks {sorted(needed - fields)}; "
                      "compiling PyMC's graph instead", RuntimeWarning, stacklevel=4)
        return None
    slices, count = [], 0
    for shp in shapes:
        n = int(np.prod(shp, dtype=int))
        slices.append(slice(count, count + n))
        count += n
    shape_info = (names, slices, shapes)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparam)
    user_data.flags.writeable = False
    logp_cfunc, expand_cfunc = functions
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shapes, strict=True)},
        compiled_logp_func=logp_cfunc, compiled_expand_func=expand_cfunc,
        initial_point_func=initial_point, shared_data={}, shared_var_keys={},
        user_data=user_data, n_expanded=count, shape_info=shape_info,
        logp_func=None, expand_func=None, reparameterized_names=reparam)


def evaluate(compiled, x: np.ndarray) -> tuple[float, np.ndarray]:
    """(log density, gradient) of a hand-compiled model at the unconstrained x (for tests)."""
    import ctypes

    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.empty_like(x)
    lp = np.empty(1)
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_logp_func.ctypes(
        x.size, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), lp.ctypes.data_as(dbl),
        compiled.user_data.ctypes.data_as(dbl))
    if rc not in (0, 3, 4):
        raise RuntimeError(f"compiled log density returned code {rc}")
    return float(lp[0]), grad


def expand(compiled, x: np.ndarray) -> dict[str, np.ndarray]:
    """The named values the sampler stores for the unconstrained point x (for tests)."""
    import ctypes

    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(compiled.n_expanded)
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_expand_func.ctypes(
        x.size, out.size, x.ctypes.data_as(dbl), out.ctypes.data_as(dbl),
        compiled.user_data.ctypes.data_as(dbl))
    if rc != 0:
        raise RuntimeError(f"compiled expand returned code {rc}")
    names, slices, shapes = compiled.shape_info
    return {n: out[s].reshape(shp) for n, s, shp in zip(names, slices, shapes, strict=True)}
