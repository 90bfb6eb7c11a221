"""BayesC: the point-normal SNP prior, sampled exactly (docs/sparse-priors.md).

    y = X beta + Z b + e,  b_j = delta_j a_j,  delta_j ~ Bernoulli(pi),  a_j ~ N(0, sigma_b2)

The family has no PyMC model: its inclusion indicators are discrete, which NUTS cannot
sample, and the collapsed Gibbs sampler with residual updating (Habier et al. 2011; the
sparse part of GEMMA's BSLMM, Zhou et al. 2013) is exact and O(N) per SNP. So its builder is
its sampler: :func:`bayesc` takes the data and returns the posterior, and registers itself as
the ``bayesc`` family's ``build`` (:mod:`bayeslmm.bayes.families` declares the family). The
chain is the two-component case of the sparse priors' one mixture kernel
(:func:`bayeslmm.bayes.sparse.kernel.mixture_chain`, gamma = (0, 1), w = (1 - pi, pi)).
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.diagnostics import check_diagnostics
from bayeslmm.bayes.sparse.shared import (
    H2_GUESS,
    NU_B,
    as_used,
    check_counts,
    run_chains,
    sparse_data,
    sparse_tree,
    variance_prior,
)
from bayeslmm.errors import InputError
from bayeslmm.registry import attach_family_hooks

__all__ = ["bayesc", "default_sigma_b2_prior"]

log = logging.getLogger(__name__)


def default_sigma_b2_prior(var_y: float, P: int, pi_mean: float) -> tuple[float, float]:
    """(nu_b, s_b2) of docs/sparse-priors.md eq. S7: the prior mean of the genetic variance,
    about P pi sigma_b2 for standardized genotypes, set to ``H2_GUESS`` of Var(y)."""
    return NU_B, H2_GUESS * var_y * (NU_B - 2.0) / (NU_B * pi_mean * P)


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
    check_counts(seed, draws, tune, chains, batches)
    data = sparse_data(y, Z, X)
    N, M, P = data.N, data.M, data.P
    pi_fixed, pi0, a_pi, b_pi = _pi_prior(pi)
    pi_mean = pi0 if pi_fixed else a_pi / (a_pi + b_pi)
    sb_fixed, sb0, nu_b, s_b2 = variance_prior(
        sigma_b2, "sigma_b2", default_sigma_b2_prior(data.var_y, P, pi_mean))
    se_fixed, se0, nu_e, s_e2 = variance_prior(sigma_e2, "sigma_e2", (0.0, 0.0))
    if not sb_fixed and nu_b == 0.0:
        raise InputError("sigma_b2's prior needs nu > 0: with nu = 0 and no SNP included "
                         "its full conditional is improper")
    # Starting values where not fixed: the prior guess (S7) and the phenotype's variance.
    sb_start = sb0 if sb_fixed else (s_b2 if s_b2 > 0 else
                                     H2_GUESS * data.var_y / (pi_mean * P))
    se_start = se0 if se_fixed else data.var_y
    # the two-component mixture gamma = (0, 1), w = (1 - pi, pi): pi's Beta(a, b) prior is
    # the Dirichlet(b, a) prior on w
    p0 = pi0 if pi_fixed else pi_mean
    traces, pips, effects = run_chains(
        data, seed=seed, chains=chains, tune=tune, draws=draws, batches=batches,
        gammas=(0.0, 1.0), w_fixed=pi_fixed, w0=(1.0 - p0, p0), alpha=(b_pi, a_pi),
        sb=(sb_fixed, sb_start, nu_b, s_b2), se=(se_fixed, se_start, nu_e, s_e2))
    dims = ("chain", "draw")  # the trace's columns: w0, w1, n0, n1, sigma_b2, sigma_e2, pve
    post = xr.Dataset({"pi": (dims, traces[:, :, 1]), "sigma_b2": (dims, traces[:, :, 4]),
                       "sigma_e2": (dims, traces[:, :, 5]), "pve": (dims, traces[:, :, 6]),
                       "n_included": (dims, traces[:, :, 3].astype(np.int64))},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    tree = sparse_tree(post, pips, effects, data)
    tree.attrs.update(
        model_family="bayesc", N=N, M=M, P=P,
        priors="; ".join([
            f"pi: {as_used(pi_fixed, pi0, f'Beta({a_pi:g}, {b_pi:g})')}",
            f"sigma_b2: {as_used(sb_fixed, sb0, f'Scaled-Inv-chi2({nu_b:g}, {s_b2:.4g})')}",
            f"sigma_e2: {as_used(se_fixed, se0, f'Scaled-Inv-chi2({nu_e:g}, {s_e2:.4g})')}"]))
    log.info("BayesC: %d chains x %d draws (%d burn-in), N = %d, P = %d; priors %s.",
             chains, draws, tune, N, P, tree.attrs["priors"])
    if check:
        check_diagnostics(tree)
    return tree


attach_family_hooks("bayesc", build=bayesc)
