"""V = lambda K + I with a different lambda for every column: the cross-products a per-SNP
re-fit needs, in K's eigenbasis, without forming V or an (n, B) array of weights.

With K = U diag(d) U' and h_i(lambda) = 1 / (lambda d_i + 1) (the diagonal of V^-1 in the
eigenbasis), every quadratic form of a per-SNP mixed-model fit is a weighted sum
sum_i h_i a_i b_i of rotated vectors; :func:`weighted_sums` gives them (and those with h^2)
for one lambda per SNP in one compiled pass over the samples per SNP, and
:func:`logdet_H_per_column` the log-determinants sum_i log(lambda d_i + 1). Used by
:mod:`bayeslmm.association.per_snp` (GEMMA's tests); :func:`gemma_kernel` is GEMMA's
decomposition of the kinship.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["gemma_kernel", "logdet_H_per_column", "weighted_sums"]


def gemma_kernel(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GEMMA's eigendecomposition of a kinship over the analysed samples: K centred,
    (I - 11'/n) K (I - 11'/n), then ``eigh``, eigenvalues below 1e-10 set to 0.

    Returns (d, U), U square (n x n).
    """
    K = np.asarray(K, dtype=np.float64)
    Kc = K - K.mean(axis=0, keepdims=True)
    Kc = Kc - Kc.mean(axis=1, keepdims=True)
    d, U = np.linalg.eigh((Kc + Kc.T) / 2)
    d[d < 1e-10] = 0.0
    return d, U


@njit(parallel=True, cache=True, fastmath=True)
def weighted_sums(lam, d, pairsT, WyT, xt, second):  # pragma: no cover - compiled
    """For each SNP b: h = 1 / (lam_b d + 1), and the sums of h (and h^2) times each [W, y]
    product (rows of ``pairsT``) and times x_b x_b, x_b w_k, x_b y (``WyT``: the rows of
    W' and y'; ``xt``: (B, n), empty for the null model): one pass over the samples per SNP,
    with no (B, n) array of weights or products."""
    B = lam.size
    m0, c1 = pairsT.shape[0], WyT.shape[0]
    mx = 0 if xt.shape[0] == 0 else c1 + 1
    S0 = np.zeros((B, m0))
    S1 = np.zeros((B, mx))
    S0b = np.zeros((B, m0))
    S1b = np.zeros((B, mx))
    tr = np.zeros(B)
    for b in prange(B):
        h = 1.0 / (lam[b] * d + 1.0)
        tr[b] = h.sum()
        for m in range(m0):
            S0[b, m] = np.dot(h, pairsT[m])
        h2 = h * h
        if second:
            for m in range(m0):
                S0b[b, m] = np.dot(h2, pairsT[m])
        if mx:
            x = xt[b]
            hx = h * x
            S1[b, 0] = np.dot(hx, x)
            for m in range(c1):
                S1[b, 1 + m] = np.dot(hx, WyT[m])
            if second:
                h2x = h2 * x
                S1b[b, 0] = np.dot(h2x, x)
                for m in range(c1):
                    S1b[b, 1 + m] = np.dot(h2x, WyT[m])
    return S0, S1, S0b, S1b, tr


@njit(parallel=True, cache=True)
def logdet_H_per_column(lam, d):  # pragma: no cover - compiled
    """sum_i log(lam_b d_i + 1) for each b."""
    out = np.empty(lam.size)
    for b in prange(lam.size):
        out[b] = np.log1p(lam[b] * d).sum()
    return out
