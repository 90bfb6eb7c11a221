"""The exact low-rank tier: K = Z Z'/P decomposed through the P x P matrix Z'Z (P < N).

With Z'Z / P = W diag(S) W' (P x P, accumulated over variant chunks in one dask pass), the
non-zero eigenpairs of K = Z Z'/P are S and U = Z W diag(S)^-1/2 / sqrt(P) (one more pass):
the thin SVD of Z / sqrt(P) (notes section 3; FaST-LMM's low-rank case). The result is an
ordinary economic :class:`bayeslmm.covariance.decomposition.Decomposition`, so REML, BLUP,
association and
the posterior run on it unchanged and exactly. Cost: O(N P^2) flops, P^2 + N P floats.
"""

from __future__ import annotations

import numpy as np

from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.errors import InputError
from bayeslmm.genotypes.operator import GenotypeOperator

__all__ = ["decompose_lowrank"]


def decompose_lowrank(op: GenotypeOperator, *, rank_tol: float | None = None) -> Decomposition:
    """Economic eigendecomposition of ``K = Z Z'/P`` from ``Z'Z`` (two passes).

    Parameters
    ----------
    op : GenotypeOperator
        The genotype operator (its covariate projection, if any, is not applied: the
        decomposition is of K itself, as :func:`bayeslmm.decompose` of the GRM).
    rank_tol : float, optional
        Eigenvalues at or below ``rank_tol * max`` are dropped (default ``P * eps * 10``,
        as :func:`bayeslmm.covariance.decomposition.decompose`).

    Returns
    -------
    Decomposition
        ``U`` (N x r), ``S`` (r,) ascending, labelled by the operator's samples.
    """
    if op.P >= op.N:
        raise InputError(f"the low-rank tier needs fewer SNPs than samples (P={op.P}, "
                         f"N={op.N}); use engine='eigen' or 'krylov'")
    G = op.gram() / op.P
    G = (G + G.T) / 2.0
    S, W = np.linalg.eigh(G)
    tol = (op.P * np.finfo(float).eps * 10 if rank_tol is None else rank_tol) * max(S[-1], 0.0)
    start = int(np.searchsorted(S, tol, side="right"))
    S, W = S[start:], W[:, start:]
    # U = Z W S^-1/2 / sqrt(P): Z W is one more pass.
    (ZW,) = op.compute(op.Z @ (W / np.sqrt(S * op.P)))
    # Rounding in U grows like eps / sqrt(S / S_max): small for the eigenvalues kept above.
    return Decomposition(U=ZW, S=S.copy(), N=op.N, samples=op.samples, min_eigenvalue=0.0)
