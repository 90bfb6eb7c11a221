"""BSLMM: GEMMA's Bayesian sparse linear mixed model (Zhou, Carbonetto & Stephens 2013),
sampled exactly (docs/sparse-priors.md, "BSLMM", eqs. B1-B12).

    y = X b + Z beta + u + e,  beta_j ~ pi N(0, sigma_a2 / tau) + (1 - pi) delta_0,
    u ~ N(0, sigma_b2 K / tau),  e ~ N(0, I / tau),  K = Z Z' / P

with GEMMA's hyperparameters h (about the PVE), rho (about the PGE, the sparse share of it)
and pi, and its priors: h ~ U(0, 1), rho ~ U(0, 1), log pi ~ U(log(1/P), 0), p(tau) ∝ 1/tau,
a flat prior on the covariates' effects b. The polygenic term u is integrated out in the
eigenbasis of K (with the covariates projected out, :func:`bayeslmm.covariance.
decompose_genotypes`), where the residual covariance is diagonal; the sparse effects are then
BayesC's point-normal model on whitened data, drawn SNP by SNP by the collapsed update of the
BayesC family with residual updating, and (h, rho, log pi) by random-walk Metropolis with tau
and beta's normal constants handled exactly (:mod:`bayeslmm.bayes.sparse.bslmm_kernel`).
GEMMA explores the same posterior by Metropolis-Hastings over the whole inclusion vector
(add/delete/switch moves, ``-bslmm 1``); this sampler visits every SNP each sweep.

The family has no PyMC model (discrete indicators); :func:`bslmm` is its builder and
sampler, registered as the ``bslmm`` family's ``build``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.diagnostics import check_diagnostics
from bayeslmm.bayes.sparse.bslmm_kernel import TRACE_NAMES, bslmm_chain
from bayeslmm.bayes.sparse.shared import aligned_genotypes, check_counts
from bayeslmm.covariance import Covariates, decompose, decompose_genotypes
from bayeslmm.data import as_design, as_phenotype, sample_index
from bayeslmm.errors import InputError
from bayeslmm.registry import attach_family_hooks

__all__ = ["bslmm"]

log = logging.getLogger(__name__)


def _fixed_or_prior(value, what: str, lo: float, hi: float) -> tuple[bool, float]:
    if value is None:
        return False, float("nan")
    v = float(value)
    if not (np.isfinite(v) and lo <= v <= hi):
        raise InputError(f"{what} fixed at {value!r} must lie in [{lo:g}, {hi:g}]; None "
                         "gives it GEMMA's prior")
    return True, v


def _aligned(y, Z, X):
    """y, Z, X as float64 arrays in y's sample order (the one alignment rule)."""
    y_arr, y_labels = as_phenotype(y)
    N = y_arr.size
    Z_arr, variants = aligned_genotypes(Z, y_labels, N,
                                        "impute them first (GEMMA: the SNP's mean)")
    X_arr, _, X_labels = as_design(X, N)
    if X_labels is not None and y_labels is not None:
        xi = sample_index(y_labels, X_labels, "the covariates X")
        X_arr = X_arr if xi is None else X_arr[xi]
    samples = y_labels if y_labels is not None else np.array([str(i) for i in range(N)])
    return y_arr, Z_arr, X_arr, variants, samples


def _batch_mean(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = a.reshape(-1, a.shape[-1])  # every chain's batches together
    if flat.shape[0] < 2:
        return flat.mean(axis=0), np.full(flat.shape[1], np.nan)
    return flat.mean(axis=0), flat.std(axis=0, ddof=1) / np.sqrt(flat.shape[0])


def bslmm(y, Z, X=None, *, h: float | None = None, rho: float | None = None,
          pi: float | None = None, log_pi_bounds: tuple[float, float] | None = None,
          draws: int = 1000, tune: int = 500, chains: int = 2, mh_steps: int = 10,
          seed: int | np.random.Generator | None = None, batches: int = 20,
          check: bool = True) -> xr.DataTree:
    """The posterior of GEMMA's BSLMM (docs/sparse-priors.md, eqs. B1-B12).

    Parameters
    ----------
    y : array-like (N,)
        Phenotype (labelled by sample, or positional).
    Z : array-like (N, P)
        Genotypes without missing values, on the scale the effects should have: GEMMA's are
        allele counts, mean-imputed (centring is done here: the covariates, an intercept by
        default, are projected out of Z). The polygenic kernel is K = Z_r Z_r' / P with
        Z_r the projected genotypes (GEMMA's ``-gk 1`` centred kinship).
    X : array-like (N, M), optional
        Covariates with a flat prior, projected out exactly (B5); default an intercept.
    h, rho, pi : float, optional
        None (default) samples the parameter under GEMMA's prior (h, rho uniform on (0, 1),
        log pi uniform on ``log_pi_bounds``); a number holds it fixed (rho = 0 or h = 0:
        no sparse effects, the LMM).
    log_pi_bounds : (float, float), optional
        log pi's uniform prior; default GEMMA's (log(1/P), 0).
    draws, tune, chains : int
        Kept sweeps per chain, burn-in sweeps per chain (the Metropolis widths adapt during
        them), number of chains.
    mh_steps : int
        Metropolis proposals of each hyperparameter per sweep (each O(N)).
    seed : int or numpy.random.Generator, optional
        Each chain's seed is drawn from it: same seed, same draws.
    batches : int
        Batches per chain for the batch-means Monte Carlo SE of the per-SNP summaries.
    check : bool
        Warn (:class:`~bayeslmm.errors.SamplingWarning`) on R-hat or bulk ESS.

    Returns
    -------
    xarray.DataTree
        ``posterior`` by (chain, draw): h, rho, pi, n_gamma, pve and pge (GEMMA's, B12),
        tau, sigma_a2, sigma_b2. ``snp_summary`` by variant: pip (P(gamma_j = 1 | y)),
        beta (E(beta_j | gamma_j = 1, y), GEMMA's ``beta``), effect_mean (E(beta_j | y)),
        alpha (the polygenic effect per SNP, Z_r' E(K^+ u) / P, GEMMA's ``alpha``), with
        batch-means SEs pip_mcse and effect_mcse. ``sample_summary`` by sample: bv, E(u | y)
        (GEMMA's ``.bv.txt``). Root attrs: family, sizes, priors, acceptance rates.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> Z = rng.binomial(2, 0.3, size=(60, 8)).astype(float)
    >>> y = Z[:, 0] + rng.normal(size=60)
    >>> tree = bslmm(y, Z, draws=200, tune=100, chains=1, seed=1, batches=5, check=False)
    >>> sorted(tree["posterior"].data_vars)[:3]
    ['h', 'n_gamma', 'pge']
    """
    check_counts(seed, draws, tune, chains, batches, mh_steps=mh_steps)
    y_arr, Z_arr, X_arr, variants, samples = _aligned(y, Z, X)
    N, P = Z_arr.shape
    M = X_arr.shape[1]
    if N - M < 2:
        raise InputError(f"{N} samples leave too few residual degrees of freedom after {M} "
                         "covariates")
    h_fixed, h0 = _fixed_or_prior(h, "h", 0.0, 1.0 - 1e-12)
    rho_fixed, rho0 = _fixed_or_prior(rho, "rho", 0.0, 1.0)
    pi_fixed, pi0 = _fixed_or_prior(pi, "pi", 1e-300, 1.0 - 1e-12)
    lo, hi = (math.log(1.0 / P), 0.0) if log_pi_bounds is None else map(float, log_pi_bounds)
    if not (np.isfinite(lo) and lo < hi <= 0.0):
        raise InputError(f"log_pi_bounds must satisfy lo < hi <= 0, got ({lo}, {hi})")
    hi_open = min(hi, math.log1p(-1e-9))  # pi = 1 would leave no point mass
    # Covariates projected out once (B5), then K_r = Z_r Z_r' / P decomposed by thin SVD.
    cov = Covariates.of(X_arr)
    y_r = cov.residualize(y_arr)
    Z_r = cov.residualize(Z_arr)
    # P >= N: eigh of the N x N kernel (the thin SVD would also form V, P x N: 30x slower)
    dec = decompose_genotypes(Z_r) if P < N else \
        decompose(Z_r @ Z_r.T / P, name="K = ZZ'/P", validated=True, indefinite=False)
    U, S = dec.U, dec.S
    Xt = np.asfortranarray(U.T @ Z_r)
    yt = U.T @ y_r
    y0 = y_r - U @ yt
    trace_G = float(S.sum()) / N
    if trace_G <= 0:
        raise InputError("the genotypes are constant after projecting out the covariates")
    # starting values (GEMMA starts from the LMM's PVE and its top SNPs; here the middle)
    start = np.array([h0 if h_fixed else 0.5, rho0 if rho_fixed else 0.5,
                      math.log(pi0) if pi_fixed else min(max(math.log(10.0 / P), lo),
                                                          hi_open)])
    fixed = np.array([h_fixed, rho_fixed, pi_fixed])
    steps = np.array([0.1, 0.1, min(1.0, hi_open - lo)])
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = [bslmm_chain(Xt, S, yt, float(y0 @ y0), float(N - M), float(N), trace_G, int(s),
                       int(tune), int(draws), int(batches), int(mh_steps), fixed, start,
                       np.array([lo, hi_open]), steps)
           for s in rng.integers(0, 2**31 - 1, size=chains)]
    traces, pips, bsums, aprimes, umeans, accepts = (np.stack(p) for p in zip(*out,
                                                                               strict=True))
    dims = ("chain", "draw")
    post = xr.Dataset({name: (dims, traces[:, :, k].astype(np.int64) if name == "n_gamma"
                              else traces[:, :, k]) for k, name in enumerate(TRACE_NAMES)},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    pip, pip_se = _batch_mean(pips)
    eff, eff_se = _batch_mean(bsums)
    beta = np.divide(eff, pip, out=np.zeros(P), where=pip > 0)
    alpha = Xt.T @ aprimes.mean(axis=0) / P
    bv = U @ umeans.mean(axis=0)
    snp = xr.Dataset({"pip": ("variant", pip), "pip_mcse": ("variant", pip_se),
                      "beta": ("variant", beta), "effect_mean": ("variant", eff),
                      "effect_mcse": ("variant", eff_se), "alpha": ("variant", alpha)},
                     coords={"variant": np.asarray(variants).astype(str)})
    per_sample = xr.Dataset({"bv": ("sample", bv)},
                            coords={"sample": np.asarray(samples).astype(str)})
    tree = xr.DataTree.from_dict({"posterior": post, "snp_summary": snp,
                                  "sample_summary": per_sample})
    acc = accepts.mean(axis=0)

    def used(flag, v, prior):
        return f"fixed {v:g}" if flag else prior

    tree.attrs.update(
        model_family="bslmm", N=N, M=M, P=P, trace_G=trace_G,
        priors="; ".join([used(h_fixed, h0, "h: U(0, 1)"),
                          used(rho_fixed, rho0, "rho: U(0, 1)"),
                          used(pi_fixed, pi0, f"log pi: U({lo:.4g}, {hi:g})"),
                          "tau: 1/tau", "covariates: flat"]),
        acceptance=f"h {acc[0]:.2f}, rho {acc[1]:.2f}, log pi {acc[2]:.2f}")
    log.info("BSLMM: %d chains x %d draws (%d burn-in), N = %d, P = %d; acceptance %s.",
             chains, draws, tune, N, P, tree.attrs["acceptance"])
    if check:
        check_diagnostics(tree)
    return tree


attach_family_hooks("bslmm", build=bslmm)
