"""What the sparse SNP priors share around their one Gibbs kernel
(:func:`bayeslmm.bayes.sparse.kernel.mixture_chain`; docs/sparse-priors.md): the checks of
their arguments, the data with the covariates projected out once (eq. S3), the chains run one
numba call each, and the DataTree they return (``posterior`` by (chain, draw),
``snp_summary`` by variant with batch-means Monte Carlo SEs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayeslmm.bayes.sparse.kernel import mixture_chain
from bayeslmm.covariance.structures import Covariates
from bayeslmm.data import as_design, as_phenotype, check_seed, labels_of, sample_index
from bayeslmm.errors import InputError

__all__ = ["SparseData", "aligned_genotypes", "as_used", "check_counts", "positive",
           "run_chains", "sparse_data", "sparse_tree", "variance_prior"]

#: Habier et al. (2011)'s degrees of freedom of a variance's prior (S5): a finite prior mean
NU_B = 4.0
#: the prior guess of h2 that scales the effect variance's prior (S7, R7)
H2_GUESS = 0.5


def positive(value: float, what: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive number, got {value!r}")
    return value


def variance_prior(spec, what: str, default: tuple[float, float]
                   ) -> tuple[bool, float, float, float]:
    """(fixed, value, nu, s2) from a number (fixed), a (nu, s2) pair or None (the default)."""
    if spec is None:
        spec = default
    if np.ndim(spec) == 0:
        v = positive(spec, what)
        return True, v, 0.0, 0.0
    if len(spec) != 2:
        raise InputError(f"{what} must be a number (fixed) or a (nu, s2) pair for its "
                         f"scaled inverse chi2 prior, got {spec!r}")
    nu, s2 = float(spec[0]), float(spec[1])
    if not (np.isfinite(nu) and np.isfinite(s2) and nu >= 0 and s2 >= 0):
        raise InputError(f"{what}'s scaled inverse chi2 prior needs nu >= 0 and s2 >= 0, got "
                         f"({nu:g}, {s2:g})")
    return False, float("nan"), nu, s2


def check_counts(seed, draws: int, tune: int, chains: int, batches: int,
                 **more: int) -> None:
    """The seed and the sampler's counts (``more``: a family's own counts, each >= 1)."""
    check_seed(seed)
    for what, v, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1),
                         ("batches", batches, 1), *((k, v, 1) for k, v in more.items())):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < low:
            raise InputError(f"{what} must be an integer >= {low}, got {v!r}")
    if batches > draws:
        raise InputError(f"batches ({batches}) cannot exceed draws ({draws})")


def as_used(fixed: bool, value: float, prior: str) -> str:
    return f"fixed {value:g}" if fixed else prior


_STANDARDIZE = ("standardize it first (missing calls at 0, "
                "bayeslmm.genotypes.kinship.standardized_genotype_matrix)")


def aligned_genotypes(Z, y_labels: np.ndarray | None, N: int, missing_hint: str = _STANDARDIZE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Z as float64 in the phenotype's sample order (the one alignment rule) and its variant
    names (positions when Z carries none); ``missing_hint`` ends the error on non-finite
    values."""
    names = labels_of(Z, axis=1) if np.ndim(Z) == 2 else None
    idx = sample_index(y_labels, labels_of(Z), "the genotypes Z") \
        if y_labels is not None else None
    arr = np.asarray(getattr(Z, "values", Z), dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"the genotypes Z must be an (N, P) matrix, got shape {arr.shape}")
    if idx is not None:
        arr = arr[idx]
    if arr.shape[0] != N:
        raise InputError(f"Z has {arr.shape[0]} rows but y has {N} samples")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"Z has missing or non-finite values; {missing_hint}")
    if names is None:
        names = np.array([str(j) for j in range(arr.shape[1])])
    return arr, names


@dataclass(frozen=True)
class SparseData:
    """y and Z with the covariates projected out (eq. S3), as the kernel takes them.

    ``ss``: z_j'z_j; ``dof``: N - M; ``var_y``: y'y / (N - M) after the projection.
    ``beta0`` (M,) and ``H`` (M, P): the least squares of y and of Z on X, so that
    E(beta | b, y) = beta0 - H b under the flat prior (S3) and, that being linear in b,
    E(beta | y) = beta0 - H E(b | y) (eq. S15); ``covariates``: X's column names."""

    y: np.ndarray
    Z: np.ndarray
    ss: np.ndarray
    dof: int
    var_y: float
    variants: np.ndarray
    N: int
    M: int
    P: int
    beta0: np.ndarray
    H: np.ndarray
    covariates: list


def sparse_data(y, Z, X=None) -> SparseData:
    """Align ``Z`` and ``X`` to ``y`` by their labels and project the covariates out once."""
    y_arr, y_labels = as_phenotype(y)
    N = y_arr.size
    Z_arr, variants = aligned_genotypes(Z, y_labels, N)
    X_arr, x_names, X_labels = as_design(X, N)
    if X_labels is not None and y_labels is not None:
        idx = sample_index(y_labels, X_labels, "the covariates X")
        X_arr = X_arr if idx is None else X_arr[idx]
    P, M = Z_arr.shape[1], X_arr.shape[1]
    if N - M < 1:
        raise InputError(f"{N} samples leave no residual degrees of freedom after {M} "
                         "covariates")
    cov = Covariates.of(X_arr)
    # Projected once (docs eq. S3): every inner product of the sampler is then Q_2's.
    y_r = cov.residualize(y_arr)
    Z_r = np.asfortranarray(cov.residualize(Z_arr))
    coef = np.linalg.lstsq(X_arr, np.column_stack([y_arr, Z_arr]), rcond=None)[0]
    return SparseData(y_r, Z_r, np.einsum("ij,ij->j", Z_r, Z_r), N - M,
                      float(y_r @ y_r) / (N - M), variants, N, M, P, coef[:, 0], coef[:, 1:],
                      list(x_names))


def run_chains(data: SparseData, *, seed, chains: int, tune: int, draws: int, batches: int,
               gammas, w_fixed: bool, w0, alpha, sb: tuple[bool, float, float, float],
               se: tuple[bool, float, float, float]):
    """Every chain of :func:`~bayeslmm.bayes.sparse.kernel.mixture_chain` (each one numba
    call, seeded from ``seed``), stacked: trace (chains, draws, 2K + 3), pip and effect
    (chains, batches, P). ``sb``, ``se``: (fixed, start, nu, s2) of sigma_b2 and sigma_e2."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    chain_seeds = rng.integers(0, 2**31 - 1, size=chains)
    f64 = np.asarray
    out = [mixture_chain(data.Z, data.ss, data.y, int(s), int(tune), int(draws), int(batches),
                         f64(gammas, dtype=np.float64), bool(w_fixed),
                         f64(w0, dtype=np.float64), f64(alpha, dtype=np.float64),
                         bool(sb[0]), float(sb[1]), float(sb[2]), float(sb[3]),
                         bool(se[0]), float(se[1]), float(se[2]), float(se[3]),
                         float(data.dof))
           for s in chain_seeds]  # chains, not draws: each call runs a whole chain in numba
    return tuple(np.stack(parts) for parts in zip(*out, strict=True))


def sparse_tree(post: xr.Dataset, pips: np.ndarray, effects: np.ndarray,
                data: SparseData) -> xr.DataTree:
    """The ``posterior`` group as given, ``snp_summary`` by variant: pip and effect_mean
    (every chain's batch means averaged) with their batch-means SEs pip_mcse, effect_mcse,
    and ``fixed_effects``: beta_mean by covariate, E(beta | y) (eq. S15)."""

    def mean_and_se(batched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = batched.reshape(-1, batched.shape[-1])  # every chain's batches together
        if flat.shape[0] < 2:
            return flat.mean(axis=0), np.full(flat.shape[1], np.nan)
        return flat.mean(axis=0), flat.std(axis=0, ddof=1) / np.sqrt(flat.shape[0])

    pip, pip_se = mean_and_se(pips)
    eff, eff_se = mean_and_se(effects)
    summary = xr.Dataset({"pip": ("variant", pip), "pip_mcse": ("variant", pip_se),
                          "effect_mean": ("variant", eff), "effect_mcse": ("variant", eff_se)},
                         coords={"variant": data.variants})
    fixed = xr.Dataset({"beta_mean": ("covariate", data.beta0 - data.H @ eff)},
                       coords={"covariate": data.covariates})
    return xr.DataTree.from_dict({"posterior": post, "snp_summary": summary,
                                  "fixed_effects": fixed})
