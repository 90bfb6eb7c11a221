"""BayesR: a mixture of normals for the SNP effects, sampled exactly (docs/sparse-priors.md,
"BayesR", eqs. R1-R7).

    y = X beta + Z b + e,   b_j | k_j ~ N(0, gamma_{k_j} sigma_g2),   P(k_j = k) = w_k
    gamma = (0, 1e-4, 1e-3, 1e-2),   w ~ Dirichlet(alpha),   sigma_g2 ~ Scaled-Inv-chi2

(Erbe et al. 2012; Moser et al. 2015, GCTB's BayesR, Lloyd-Jones et al. 2019). Most SNPs have
no effect (k = 0) and the others a small, moderate or large one. Like BayesC it has no PyMC
model (the component labels are discrete); the sampler is the sparse priors' one Gibbs
kernel (:func:`bayeslmm.bayes.sparse.kernel.mixture_chain`) with four components: each SNP's
component drawn with its effect integrated out, its effect from its normal full conditional,
the residual updated in place, then the weights, sigma_g2 and sigma_e2 from their conjugate
full conditionals. :func:`bayesr` registers itself as the ``bayesr`` family's ``build``.
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

__all__ = ["GAMMAS", "bayesr"]

log = logging.getLogger(__name__)

#: the components' variances as fractions of sigma_g2 (Erbe et al. 2012; GCTB's default)
GAMMAS = (0.0, 1e-4, 1e-3, 1e-2)


def _vector(values, what: str, K: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (K,) or not np.all(np.isfinite(v)):
        raise InputError(f"{what} must be {K} finite numbers (one per component), got "
                         f"{values!r}")
    return v


def bayesr(y, Z, X=None, *, gammas=GAMMAS, dirichlet=None, weights=None,
           sigma_g2: float | tuple[float, float] | None = None,
           sigma_e2: float | tuple[float, float] | None = (0.0, 0.0),
           draws: int = 1000, tune: int = 500, chains: int = 4,
           seed: int | np.random.Generator | None = None, batches: int = 20,
           check: bool = True) -> xr.DataTree:
    """The posterior of the BayesR model (docs/sparse-priors.md, eqs. R1-R7).

    Parameters
    ----------
    y, Z, X
        As :func:`bayeslmm.bayes.sparse.bayesc.bayesc`: the phenotype, standardized
        genotypes (N, P) and covariates (projected out once, flat prior on beta).
    gammas : sequence of float
        The components' variances in units of sigma_g2 (R1); 0 is the point mass. Default
        :data:`GAMMAS`.
    dirichlet : sequence of float, optional
        The Dirichlet prior of the mixing weights (R3); default all ones (uniform on the
        simplex).
    weights : sequence of float, optional
        Fix the mixing weights instead (positive, summing to 1).
    sigma_g2 : float or (nu, s2), optional
        A number fixes sigma_g2; a pair is its Scaled-Inv-chi2(nu, s2) prior (R2); default
        nu = 4 and s2 giving the prior mean ``H2_GUESS`` Var(y) (R7).
    sigma_e2 : float or (nu, s2)
        Likewise for sigma_e2; default (0, 0), the prior p(sigma_e2) ∝ 1/sigma_e2.
    draws, tune, chains, seed, batches, check
        As :func:`~bayeslmm.bayes.sparse.bayesc.bayesc`.

    Returns
    -------
    xarray.DataTree
        ``posterior``: ``weights`` and ``n_snps`` (the number of SNPs in each component) by
        (chain, draw, component); sigma_g2, sigma_e2, pve (S8), pi = 1 - w_0 and n_included
        (the SNPs with a non-zero effect) by (chain, draw). ``snp_summary``: pip
        (P(k_j > 0 | y)) and effect_mean (E(b_j | y)), Rao-Blackwellised (R4, R5), with their
        batch-means SEs; root attrs name the family and the priors as used.
    """
    check_counts(seed, draws, tune, chains, batches)
    g = _vector(gammas, "gammas", len(gammas))
    K = g.size
    if K < 2 or np.any(g < 0) or not np.any(g > 0):
        raise InputError(f"gammas must be 2 or more variances >= 0, one of them positive; got "
                         f"{gammas!r}")
    alpha = np.ones(K) if dirichlet is None else _vector(dirichlet, "dirichlet", K)
    if np.any(alpha <= 0):
        raise InputError(f"the Dirichlet prior needs every alpha > 0, got {dirichlet!r}")
    w_fixed = weights is not None
    w0 = alpha / alpha.sum() if not w_fixed else _vector(weights, "weights", K)
    if w_fixed and (np.any(w0 <= 0) or abs(w0.sum() - 1.0) > 1e-9):
        raise InputError(f"fixed weights must be positive and sum to 1, got {weights!r}")
    data = sparse_data(y, Z, X)
    N, M, P = data.N, data.M, data.P
    sg_fixed, sg0, nu_g, s_g2 = variance_prior(
        sigma_g2, "sigma_g2", (NU_B, H2_GUESS * data.var_y * (NU_B - 2.0) / NU_B))
    se_fixed, se0, nu_e, s_e2 = variance_prior(sigma_e2, "sigma_e2", (0.0, 0.0))
    if not sg_fixed and nu_g == 0.0:
        raise InputError("sigma_g2's prior needs nu > 0: with nu = 0 and no SNP included "
                         "its full conditional is improper")
    sg_start = sg0 if sg_fixed else (s_g2 if s_g2 > 0 else H2_GUESS * data.var_y)
    se_start = se0 if se_fixed else data.var_y
    traces, pips, effects = run_chains(
        data, seed=seed, chains=chains, tune=tune, draws=draws, batches=batches, gammas=g,
        w_fixed=w_fixed, w0=w0, alpha=alpha, sb=(sg_fixed, sg_start, nu_g, s_g2),
        se=(se_fixed, se_start, nu_e, s_e2))
    dims, dims_k = ("chain", "draw"), ("chain", "draw", "component")
    n_snps = traces[:, :, K:2 * K].astype(np.int64)
    post = xr.Dataset({"weights": (dims_k, traces[:, :, :K]), "n_snps": (dims_k, n_snps),
                       "sigma_g2": (dims, traces[:, :, 2 * K]),
                       "sigma_e2": (dims, traces[:, :, 2 * K + 1]),
                       "pve": (dims, traces[:, :, 2 * K + 2]),
                       "pi": (dims, 1.0 - traces[:, :, :K][:, :, g == 0].sum(axis=2)),
                       "n_included": (dims, n_snps[:, :, g > 0].sum(axis=2))},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws),
                              "component": [f"{x:g}" for x in g]})
    tree = sparse_tree(post, pips, effects, data)
    w_prior = f"Dirichlet({', '.join(f'{a:g}' for a in alpha)})"
    tree.attrs.update(
        model_family="bayesr", N=N, M=M, P=P, gammas=g,
        priors="; ".join([
            f"weights: {'fixed ' + str(list(w0)) if w_fixed else w_prior}",
            f"sigma_g2: {as_used(sg_fixed, sg0, f'Scaled-Inv-chi2({nu_g:g}, {s_g2:.4g})')}",
            f"sigma_e2: {as_used(se_fixed, se0, f'Scaled-Inv-chi2({nu_e:g}, {s_e2:.4g})')}"]))
    log.info("BayesR: %d chains x %d draws (%d burn-in), N = %d, P = %d, gammas %s; priors "
             "%s.", chains, draws, tune, N, P, list(g), tree.attrs["priors"])
    if check:
        check_diagnostics(tree)
    return tree


attach_family_hooks("bayesr", build=bayesr)
