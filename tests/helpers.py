"""Shared test helpers (a module, not a conftest, so that test files can import them by a
name no other conftest.py shadows)."""

from __future__ import annotations

import numpy as np


def simulate(N: int = 300, P: int = 600, h2: float = 0.5, M: int = 2, seed: int = 0,
             Vp: float = 1.0):
    """y = X beta + Z b + e with K = ZZ'/P (notes eq. 43), standardized Z.

    Returns (y, K, X, Z, g) with g = Z b the true genetic values.
    """
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, P)
    G = rng.binomial(2, freq, size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N)] + [rng.standard_normal(N) for _ in range(M - 1)])
    beta = np.arange(1, M + 1, dtype=float)
    b = rng.normal(0, np.sqrt(h2 * Vp / P), P)
    g = Z @ b
    y = X @ beta + g + rng.normal(0, np.sqrt((1 - h2) * Vp), N)
    return y, K, X, Z, g


def two_kernels(N: int, seed: int = 1, groups: int = 15):
    """The several-kernel tests' data: a GRM from 2N standard-normal SNPs, a group-indicator
    kernel, two covariates; true variances (0.4, 0.3, 0.5). Returns (y, K1, K2, X)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, 2 * N))
    K1 = Z @ Z.T / Z.shape[1]
    grp = rng.integers(0, groups, N)
    K2 = (grp[:, None] == grp[None, :]).astype(float)
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    V = 0.4 * K1 + 0.3 * K2 + 0.5 * np.eye(N)
    y = X @ [1.0, 0.5] + np.linalg.cholesky(V) @ rng.standard_normal(N)
    return y, K1, K2, X


def gemma_log_values(path) -> dict:
    """The ``## key = value`` lines of a GEMMA log as floats where they parse."""
    values = {}
    for line in open(path):
        if line.startswith("##") and "=" in line:
            key, _, val = line[2:].partition("=")
            try:
                values[key.strip()] = float(val.split()[0])
            except (ValueError, IndexError):
                pass
    return values


def simulate_two(N=200, P=400, h2=(0.6, 0.4), rg=0.5, re=0.2, seed=0):
    """Two traits with genetic correlation rg from one kernel K = ZZ'/P."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    Cg = np.array([[1, rg], [rg, 1]]) * np.sqrt(np.outer(h2, h2))
    e2 = 1 - np.asarray(h2)
    Ce = np.array([[1, re], [re, 1]]) * np.sqrt(np.outer(e2, e2))
    b = rng.standard_normal((P, 2)) @ np.linalg.cholesky(Cg).T / np.sqrt(P)
    G = Z @ b
    E = rng.standard_normal((N, 2)) @ np.linalg.cholesky(Ce).T
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    Y = X @ np.array([[1.0, 2.0], [-1.0, 0.5]]) + G + E
    return Y, K, X, G


def run_cli(argv: list[str]) -> int:
    """``bayeslmm`` in-process: the exit status whether main() returns or exits."""
    from bayeslmm.cli.app import main

    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def gemma_se_pve(fit, K) -> float:
    """GEMMA's se(pve) from a fit's covariance of (sigma_g2, sigma_e2): the SE of lambda =
    sigma_g2 / sigma_e2 by the delta method, mapped to pve = t lambda / (t lambda + 1) with
    GEMMA's trace_G t, the mean eigenvalue of the centred kernel (negatives set to 0)."""
    lam = fit.sigma_g2 / fit.sigma_e2
    grad = np.array([1 / fit.sigma_e2, -fit.sigma_g2 / fit.sigma_e2**2])
    se_lam = float(np.sqrt(grad @ fit.cov @ grad))
    Kc = K - K.mean(0) - K.mean(1)[:, None] + K.mean()
    tg = float(np.clip(np.linalg.eigvalsh(Kc), 0, None).mean())
    return tg / (tg * lam + 1) ** 2 * se_lam


def ldsc_two_traits(n: int, seed: int):
    """Two traits' Z for the same n SNPs with LDSC's moments: h2 0.4 and 0.3, gencov 0.2
    (rg 0.58), 15,000 shared samples with phenotypic correlation 0.3, unequal N. Returns
    z1, z2, ld, wld, N1, N2, M."""
    rng = np.random.default_rng(seed)
    M = 1e6
    ld = rng.gamma(2.0, 40.0, n) + 1
    wld = ld * rng.uniform(0.6, 1.0, n)
    N1, N2 = rng.integers(40_000, 60_000, n) * 1.0, rng.integers(20_000, 30_000, n) * 1.0
    v1, v2 = 1 + N1 * 0.4 * ld / M, 1 + N2 * 0.3 * ld / M
    r = (np.sqrt(N1 * N2) * 0.2 * ld / M + 15_000 * 0.3 / np.sqrt(N1 * N2)) / np.sqrt(v1 * v2)
    e1 = rng.standard_normal(n)
    z1 = np.sqrt(v1) * e1
    z2 = np.sqrt(v2) * (r * e1 + np.sqrt(1 - r**2) * rng.standard_normal(n))
    return z1, z2, ld, wld, N1, N2, M


def ld_cohort(N: int = 600, P: int = 120, n_causal: int = 8, h2: float = 0.6, seed: int = 5):
    """Genotypes in LD along one chromosome (thresholds of a latent random walk), a sparse
    trait and its standardized form: ``(G, y_std, causal)`` (the LDpred tests)."""
    rng = np.random.default_rng(seed)
    u = np.cumsum(rng.normal(0, 0.35, size=(N, P)), axis=1) + rng.normal(0, 1, (N, 1))
    G = (u > rng.normal(0, 1, P)).astype(float) + (u + rng.normal(0, 1, (N, P)) > 0.5)
    causal = rng.choice(P, n_causal, replace=False)
    Z = (G - G.mean(axis=0)) / G.std(axis=0)
    g = Z[:, causal] @ rng.normal(0, 1, n_causal)
    y = g + rng.normal(0, np.sqrt(g.var() * (1 - h2) / h2), N)
    return G, (y - y.mean()) / y.std(), causal
