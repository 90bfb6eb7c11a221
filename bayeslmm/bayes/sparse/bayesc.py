"""BayesC: the point-normal SNP prior, sampled exactly (docs/sparse-priors.md).

    y = X beta + Z b + e,  b_j = delta_j a_j,  delta_j ~ Bernoulli(pi),  a_j ~ N(0, sigma_b2)

The family has no PyMC model: its inclusion indicators are discrete, which NUTS cannot
sample, and the collapsed Gibbs sampler with residual updating (Habier et al. 2011; the
sparse part of GEMMA's BSLMM, Zhou et al. 2013) is exact and O(N) per SNP. So its builder is
its sampler: :func:`bayesc` takes the data and returns the posterior, and registers itself as
the ``bayesc`` family's ``build`` (:mod:`bayeslmm.bayes.families` declares the family).
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.diagnostics import check_diagnostics
from bayeslmm.bayes.sparse.kernel import TRACE_NAMES, gibbs_chain
from bayeslmm.covariance.structures import Covariates
from bayeslmm.data import as_design, as_phenotype, check_seed, labels_of, sample_index
from bayeslmm.errors import InputError
from bayeslmm.registry import attach_family_hooks

__all__ = ["bayesc", "default_sigma_b2_prior"]

log = logging.getLogger(__name__)

#: Habier et al. (2011)'s degrees of freedom for sigma_b2 (S5): a finite prior mean, heavy tail
NU_B = 4.0
#: the prior guess of h2 that scales sigma_b2's prior (S7)
H2_GUESS = 0.5


def default_sigma_b2_prior(var_y: float, P: int, pi_mean: float) -> tuple[float, float]:
    """(nu_b, s_b2) of docs/sparse-priors.md eq. S7: the prior mean of the genetic variance,
    about P pi sigma_b2 for standardized genotypes, set to ``H2_GUESS`` of Var(y)."""
    return NU_B, H2_GUESS * var_y * (NU_B - 2.0) / (NU_B * pi_mean * P)


def _positive(value: float, what: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive number, got {value!r}")
    return value


def _variance_prior(spec, what: str, default: tuple[float, float]
                    ) -> tuple[bool, float, float, float]:
    """(fixed, value, nu, s2) from a number (fixed), a (nu, s2) pair or None (the default)."""
    if spec is None:
        spec = default
    if np.ndim(spec) == 0:
        v = _positive(spec, what)
        return True, v, 0.0, 0.0
    if len(spec) != 2:
        raise InputError(f"{what} must be a number (fixed) or a (nu, s2) pair for its "
                         f"scaled inverse chi2 prior, got {spec!r}")
    nu, s2 = float(spec[0]), float(spec[1])
    if not (np.isfinite(nu) and np.isfinite(s2) and nu >= 0 and s2 >= 0):
        raise InputError(f"{what}'s scaled inverse chi2 prior needs nu >= 0 and s2 >= 0, got "
                         f"({nu:g}, {s2:g})")
    return False, float("nan"), nu, s2


def _pi_prior(pi) -> tuple[bool, float, float, float]:
    if np.ndim(pi) == 0:
        v = float(pi)
        if not 0.0 < v < 1.0:
            raise InputError(f"pi fixed at {v!r} must lie strictly between 0 and 1")
        return True, v, 1.0, 1.0
    if len(pi) != 2 or not all(np.isfinite(a) and a > 0 for a in map(float, pi)):
        raise InputError(f"pi must be a number in (0, 1) (fixed) or the (a, b) > 0 of its "
                         f"Beta prior, got {pi!r}")
    return False, float("nan"), float(pi[0]), float(pi[1])


def _genotypes(Z, y_labels: np.ndarray | None, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Z as float64 in the phenotype's sample order (the one alignment rule) and its variant
    names."""
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
        raise InputError("Z has missing or non-finite values; standardize it first (missing "
                         "calls at 0, bayeslmm.genotypes.kinship.standardized_genotype_matrix)")
    if names is None:
        names = np.array([str(j) for j in range(arr.shape[1])])
    return arr, names


def bayesc(y, Z, X=None, *, pi: float | tuple[float, float] = (1.0, 1.0),
           sigma_b2: float | tuple[float, float] | None = None,
           sigma_e2: float | tuple[float, float] | None = (0.0, 0.0),
           draws: int = 1000, tune: int = 500, chains: int = 4,
           seed: int | np.random.Generator | None = None, batches: int = 20,
           check: bool = True) -> xr.DataTree:
    """The posterior of the BayesC model (docs/sparse-priors.md, eqs. S1-S6).

    Parameters
    ----------
    y : array-like (N,)
        Phenotype (labelled by sample, or positional).
    Z : array-like (N, P)
        Standardized genotypes (e.g. ``standardized_genotype_matrix``: columns centred and
        scaled, missing calls 0), put in y's sample order by their labels when both have
        them. Held densely: P up to ~50,000 at small N.
    X : array-like (N, M), optional
        Covariates, projected out once with a flat prior on beta (S3); default an intercept.
    pi : float or (a, b)
        A number in (0, 1) fixes pi; a pair is its Beta(a, b) prior (S4; default uniform).
    sigma_b2 : float or (nu, s2), optional
        A number fixes sigma_b2; a pair is its Scaled-Inv-chi2(nu, s2) prior (S5); default
        nu = 4 and s2 from eq. S7.
    sigma_e2 : float or (nu, s2)
        Likewise for sigma_e2 (S6); default (0, 0), the prior p(sigma_e2) ∝ 1/sigma_e2.
    draws, tune, chains : int
        Kept sweeps per chain, burn-in sweeps per chain, number of chains.
    seed : int or numpy.random.Generator, optional
        Each chain's seed is drawn from it: same seed, same draws.
    batches : int
        Batches per chain for the Monte Carlo SE of the per-SNP summaries (batch means).
    check : bool
        Warn (:class:`~bayeslmm.errors.SamplingWarning`) on R-hat or bulk ESS.

    Returns
    -------
    xarray.DataTree
        ``posterior``: pi, sigma_b2, sigma_e2, pve (S8), n_included by (chain, draw);
        ``snp_summary``: by variant, pip (P(delta_j = 1 | y)) and effect_mean (E(b_j | y)),
        Rao-Blackwellised (S10, S11), with their batch-means SEs pip_mcse and
        effect_mcse; root attrs name the family and the priors as used.
    """
    check_seed(seed)
    for what, v, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1),
                         ("batches", batches, 1)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < low:
            raise InputError(f"{what} must be an integer >= {low}, got {v!r}")
    if batches > draws:
        raise InputError(f"batches ({batches}) cannot exceed draws ({draws})")
    y_arr, y_labels = as_phenotype(y)
    N = y_arr.size
    Z_arr, variants = _genotypes(Z, y_labels, N)
    X_arr, _, X_labels = as_design(X, N)
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
    ss = np.einsum("ij,ij->j", Z_r, Z_r)
    dof = N - M
    var_y = float(y_r @ y_r) / dof

    pi_fixed, pi0, a_pi, b_pi = _pi_prior(pi)
    pi_mean = pi0 if pi_fixed else a_pi / (a_pi + b_pi)
    sb_fixed, sb0, nu_b, s_b2 = _variance_prior(
        sigma_b2, "sigma_b2", default_sigma_b2_prior(var_y, P, pi_mean))
    se_fixed, se0, nu_e, s_e2 = _variance_prior(sigma_e2, "sigma_e2", (0.0, 0.0))
    if not sb_fixed and nu_b == 0.0:
        raise InputError("sigma_b2's prior needs nu > 0: with nu = 0 and no SNP included "
                         "its full conditional is improper")
    # Starting values where not fixed: the prior guess (S7) and the phenotype's variance.
    sb_start = sb0 if sb_fixed else (s_b2 if s_b2 > 0 else H2_GUESS * var_y / (pi_mean * P))
    se_start = se0 if se_fixed else var_y

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    chain_seeds = rng.integers(0, 2**31 - 1, size=chains)
    traces, pips, effects = [], [], []
    for c in range(chains):  # chains, not draws: each call runs a whole chain in numba
        tr, pb, eb = gibbs_chain(Z_r, ss, y_r, int(chain_seeds[c]), int(tune), int(draws),
                                 int(batches), pi_fixed, pi0 if pi_fixed else pi_mean,
                                 a_pi, b_pi, sb_fixed, sb_start, nu_b, s_b2,
                                 se_fixed, se_start, nu_e, s_e2, float(dof))
        traces.append(tr)
        pips.append(pb)
        effects.append(eb)
    tree = _tree(np.stack(traces), np.stack(pips), np.stack(effects), variants)
    tree.attrs.update(
        model_family="bayesc", N=N, M=M, P=P,
        priors="; ".join([
            f"pi: {_as_used(pi_fixed, pi0, f'Beta({a_pi:g}, {b_pi:g})')}",
            f"sigma_b2: {_as_used(sb_fixed, sb0, f'Scaled-Inv-chi2({nu_b:g}, {s_b2:.4g})')}",
            f"sigma_e2: {_as_used(se_fixed, se0, f'Scaled-Inv-chi2({nu_e:g}, {s_e2:.4g})')}"]))
    log.info("BayesC: %d chains x %d draws (%d burn-in), N = %d, P = %d; priors %s.",
             chains, draws, tune, N, P, tree.attrs["priors"])
    if check:
        check_diagnostics(tree)
    return tree


def _as_used(fixed: bool, value: float, prior: str) -> str:
    return f"fixed {value:g}" if fixed else prior


def _tree(traces: np.ndarray, pips: np.ndarray, effects: np.ndarray,
          variants: np.ndarray) -> xr.DataTree:
    """posterior (chain, draw) and snp_summary (variant) groups from the chains' outputs."""
    chains, draws, _ = traces.shape
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    post = xr.Dataset({name: (("chain", "draw"), traces[:, :, i])
                       for i, name in enumerate(TRACE_NAMES)}, coords=coords)
    post["n_included"] = post["n_included"].astype(np.int64)

    def mean_and_se(batched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = batched.reshape(-1, batched.shape[-1])  # every chain's batches together
        if flat.shape[0] < 2:
            return flat.mean(axis=0), np.full(flat.shape[1], np.nan)
        return flat.mean(axis=0), flat.std(axis=0, ddof=1) / np.sqrt(flat.shape[0])

    pip, pip_se = mean_and_se(pips)
    eff, eff_se = mean_and_se(effects)
    summary = xr.Dataset({"pip": ("variant", pip), "pip_mcse": ("variant", pip_se),
                          "effect_mean": ("variant", eff), "effect_mcse": ("variant", eff_se)},
                         coords={"variant": variants})
    return xr.DataTree.from_dict({"posterior": post, "snp_summary": summary})


attach_family_hooks("bayesc", build=bayesc)
