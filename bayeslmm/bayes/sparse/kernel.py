"""The Gibbs chain of the sparse SNP priors in numba (docs/sparse-priors.md, eqs. S9-S14 and
R1-R6): one kernel for every scale mixture of normals with a point mass at zero.

Each SNP's effect is drawn from a mixture of K normals N(0, gamma_k sigma_b2) with weights
w_k (gamma_k = 0: the point mass). BayesC is the mixture gamma = (0, 1), w = (1 - pi, pi),
its Beta(a, b) prior on pi the Dirichlet(b, a) prior on w; BayesR is gamma = (0, 1e-4, 1e-3,
1e-2) with a Dirichlet prior on w (:mod:`bayeslmm.bayes.sparse.bayesc`,
:mod:`bayeslmm.bayes.sparse.bayesr`).

One call runs one whole chain, burn-in and kept sweeps, so no Python code runs per draw; the
loop over SNPs inside a sweep is the algorithm itself (each component is drawn given the
residual that the previous SNPs left). Compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["mixture_chain", "trace_columns"]


def trace_columns(K: int) -> tuple[str, ...]:
    """The columns of :func:`mixture_chain`'s per-draw trace for K components, in order."""
    return (*(f"w{k}" for k in range(K)), *(f"n{k}" for k in range(K)), "sigma_b2",
            "sigma_e2", "pve")


@njit(cache=True)
def mixture_chain(Z, ss, y, seed, n_burn, n_draws, n_batches,
                  gammas, w_fixed, w0, alpha,
                  sb_fixed, sb0, nu_b, s_b2,
                  se_fixed, se0, nu_e, s_e2, dof):
    """One chain: collapsed Gibbs over each SNP's (component, effect), then the weights,
    sigma_b2 and sigma_e2.

    Parameters
    ----------
    Z : (N, P) float64, Fortran order
        Standardized genotypes with the covariates projected out (columns contiguous).
    ss : (P,) float64
        z_j'z_j.
    y : (N,) float64
        The phenotype with the covariates projected out.
    seed : int
        Seeds numba's generator for this chain.
    n_burn, n_draws, n_batches : int
        Sweeps discarded, sweeps kept, and the batches the kept sweeps are cut into for the
        batch-means Monte Carlo SE of the per-SNP summaries.
    gammas : (K,) float64
        The components' variances in units of sigma_b2 (0: the point mass at zero).
    w_fixed, sb_fixed, se_fixed : bool
        Hold the weights, sigma_b2, sigma_e2 at w0, sb0, se0 (else those are starting values).
    alpha : (K,) float64
        Dirichlet prior of the weights (S4, R3). ``nu_b, s_b2`` and ``nu_e, s_e2``:
        Scaled-Inv-chi2 priors (S5, S6). ``dof``: N - M, the residual degrees of freedom.

    Returns
    -------
    trace : (n_draws, 2 K + 3) float64
        The weights, the number of SNPs in each component, sigma_b2, sigma_e2 and PVE (S8)
        after each kept sweep (:func:`trace_columns`).
    pip, effect : (n_batches, P) float64
        Batch means of the Rao-Blackwellised P(gamma_{k_j} > 0 | rest) (S10, R4) and
        E(b_j | rest) = sum_k P(k_j = k | rest) rho_j / (s_j + sigma_e2 / (gamma_k sigma_b2))
        (S11, R5).
    """
    # numba's own generator (per thread), seeded once per chain from the caller's
    # Generator: the legacy np.random calls are the ones numba compiles.
    np.random.seed(seed)  # noqa: NPY002
    N, P = Z.shape
    K = gammas.size
    b = np.zeros(P)
    r = y.copy()
    w = w0.copy()
    sb, se = sb0, se0
    trace = np.empty((n_draws, 2 * K + 3))
    pip = np.zeros((n_batches, P))
    effect = np.zeros((n_batches, P))
    counts = np.zeros(n_batches)
    logw = np.empty(K)
    lp = np.empty(K)
    prec = np.empty(K)  # s_j + sigma_e2 / (gamma_k sigma_b2), the posterior precision x se
    n_k = np.zeros(K)
    for t in range(n_burn + n_draws):
        kept = t >= n_burn
        batch = (t - n_burn) * n_batches // n_draws if kept else 0
        for k in range(K):
            logw[k] = math.log(w[k]) if w[k] > 0.0 else -math.inf
            n_k[k] = 0.0
        n_nz = 0
        ssb = 0.0  # sum over included SNPs of b_j^2 / gamma_{k_j}
        for j in range(P):
            bj = b[j]
            rho = 0.0
            for i in range(N):
                rho += Z[i, j] * r[i]
            rho += ss[j] * bj  # z_j'r_-j with r_-j = r + z_j b_j
            top = -math.inf
            for k in range(K):
                if gammas[k] > 0.0:
                    lam = se / (gammas[k] * sb)
                    prec[k] = ss[j] + lam
                    # the log Bayes factor of component k against b_j = 0 (S9, R4)
                    lp[k] = logw[k] - 0.5 * math.log1p(ss[j] / lam) \
                        + rho * rho / (2.0 * se * prec[k])
                else:
                    prec[k] = 0.0
                    lp[k] = logw[k]
                top = max(top, lp[k])
            tot = 0.0
            for k in range(K):
                lp[k] = math.exp(lp[k] - top)
                tot += lp[k]
            for k in range(K):
                lp[k] /= tot  # P(k_j = k | rest) (S10, R4)
            if kept:
                for k in range(K):
                    if gammas[k] > 0.0:
                        pip[batch, j] += lp[k]
                        effect[batch, j] += lp[k] * rho / prec[k]
            u = np.random.random()  # noqa: NPY002
            kj = K - 1
            acc = 0.0
            for k in range(K):
                acc += lp[k]
                if u < acc:
                    kj = k
                    break
            n_k[kj] += 1.0
            if gammas[kj] > 0.0:  # (S11, R5)
                new = rho / prec[kj] + math.sqrt(se / prec[kj]) * np.random.standard_normal()  # noqa: NPY002
                n_nz += 1
                ssb += new * new / gammas[kj]
            else:
                new = 0.0
            if new != bj:
                step = new - bj
                for i in range(N):
                    r[i] -= Z[i, j] * step
            b[j] = new
        if not w_fixed:  # Dirichlet(alpha + n) by normalised gammas (S12, R6)
            tot = 0.0
            for k in range(K):
                w[k] = np.random.gamma(alpha[k] + n_k[k])  # noqa: NPY002
                tot += w[k]
            for k in range(K):
                # a weight can underflow to 0 in float64; the next sweep needs it positive
                w[k] = max(w[k] / tot, 1e-300)
        if not sb_fixed:
            chi2 = 2.0 * np.random.gamma(0.5 * (nu_b + n_nz))  # noqa: NPY002
            sb = (nu_b * s_b2 + ssb) / chi2  # (S13, R6)
        rr = 0.0
        for i in range(N):
            rr += r[i] * r[i]
        if not se_fixed:
            chi2 = 2.0 * np.random.gamma(0.5 * (nu_e + dof))  # noqa: NPY002
            se = (nu_e * s_e2 + rr) / chi2  # (S14)
        if kept:
            s = t - n_burn
            g_mean = 0.0
            for i in range(N):
                g_mean += y[i] - r[i]
            g_mean /= N
            vg = 0.0
            for i in range(N):
                vg += (y[i] - r[i] - g_mean) ** 2
            vg /= N
            for k in range(K):
                trace[s, k] = w[k]
                trace[s, K + k] = n_k[k]
            trace[s, 2 * K] = sb
            trace[s, 2 * K + 1] = se
            trace[s, 2 * K + 2] = vg / (vg + se)  # (S8)
            counts[batch] += 1.0
    for m in range(n_batches):
        for j in range(P):
            pip[m, j] /= counts[m]
            effect[m, j] /= counts[m]
    return trace, pip, effect
