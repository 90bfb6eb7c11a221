"""The BayesC Gibbs chain in numba (docs/sparse-priors.md, eqs. S9-S14).

One call runs one whole chain, burn-in and kept sweeps, so no Python code runs per draw; the
loop over SNPs inside a sweep is the algorithm itself (each delta_j is drawn given the
residual that the previous SNPs left). Compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["TRACE_NAMES", "gibbs_chain"]

#: the columns of the per-draw trace, in order
TRACE_NAMES = ("pi", "sigma_b2", "sigma_e2", "pve", "n_included")


@njit(cache=True)
def _expit(x: float) -> float:
    # Two branches so that exp never overflows for a large |log-odds|.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    ex = math.exp(x)
    return ex / (1.0 + ex)


@njit(cache=True)
def gibbs_chain(Z, ss, y, seed, n_burn, n_draws, n_batches,
                pi_fixed, pi0, a_pi, b_pi,
                sb_fixed, sb0, nu_b, s_b2,
                se_fixed, se0, nu_e, s_e2, dof):
    """One BayesC chain: collapsed Gibbs over (delta_j, a_j), then pi, sigma_b2, sigma_e2.

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
    pi_fixed, sb_fixed, se_fixed : bool
        Hold pi, sigma_b2, sigma_e2 at pi0, sb0, se0 (else those are starting values).
    a_pi, b_pi : float
        Beta prior of pi (S4). ``nu_b, s_b2`` and ``nu_e, s_e2``: Scaled-Inv-chi2 priors
        (S5, S6). ``dof``: N - M, the residual degrees of freedom (S14).

    Returns
    -------
    trace : (n_draws, 5) float64
        pi, sigma_b2, sigma_e2, PVE (S8) and n_included after each kept sweep.
    pip, effect : (n_batches, P) float64
        Batch means of the Rao-Blackwellised P(delta_j = 1 | rest) (S10) and
        E(b_j | rest) = P(delta_j = 1 | rest) rho_j / (s_j + lambda) (S11).
    """
    # numba's own generator (per thread), seeded once per chain from the caller's
    # Generator: the legacy np.random calls are the ones numba compiles.
    np.random.seed(seed)  # noqa: NPY002
    N, P = Z.shape
    b = np.zeros(P)
    r = y.copy()
    pi, sb, se = pi0, sb0, se0
    trace = np.empty((n_draws, 5))
    pip = np.zeros((n_batches, P))
    effect = np.zeros((n_batches, P))
    counts = np.zeros(n_batches)
    for t in range(n_burn + n_draws):
        kept = t >= n_burn
        batch = (t - n_burn) * n_batches // n_draws if kept else 0
        lam = se / sb
        log_odds = math.log(pi) - math.log1p(-pi)
        k = 0
        ssb = 0.0
        for j in range(P):
            bj = b[j]
            rho = 0.0
            for i in range(N):
                rho += Z[i, j] * r[i]
            rho += ss[j] * bj  # z_j'r_-j with r_-j = r + z_j b_j
            d = ss[j] + lam
            log_bf = -0.5 * math.log1p(ss[j] / lam) + rho * rho / (2.0 * se * d)  # (S9)
            p = _expit(log_odds + log_bf)  # (S10)
            if kept:
                pip[batch, j] += p
                effect[batch, j] += p * rho / d
            if np.random.random() < p:  # noqa: NPY002
                new = rho / d + math.sqrt(se / d) * np.random.standard_normal()  # noqa: NPY002 (S11)
                k += 1
                ssb += new * new
            else:
                new = 0.0
            if new != bj:
                step = new - bj
                for i in range(N):
                    r[i] -= Z[i, j] * step
            b[j] = new
        if not pi_fixed:
            pi = np.random.beta(a_pi + k, b_pi + P - k)  # noqa: NPY002 (S12)
            # A Beta draw can round to 0 or 1 in float64; the next sweep's log-odds need
            # an interior value.
            pi = min(max(pi, 1e-300), 1.0 - 1e-16)
        if not sb_fixed:
            chi2 = 2.0 * np.random.gamma(0.5 * (nu_b + k))  # noqa: NPY002
            sb = (nu_b * s_b2 + ssb) / chi2  # (S13)
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
            trace[s, 0] = pi
            trace[s, 1] = sb
            trace[s, 2] = se
            trace[s, 3] = vg / (vg + se)  # (S8)
            trace[s, 4] = k
            counts[batch] += 1.0
    for m in range(n_batches):
        for j in range(P):
            pip[m, j] /= counts[m]
            effect[m, j] /= counts[m]
    return trace, pip, effect
