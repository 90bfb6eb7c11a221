"""Block Lanczos on a symmetric operator given by its products: the Krylov space that the
matrix-free engine shares across every h2 (see :mod:`bayeslmm.likelihood.krylov`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslmm.errors import InputError

__all__ = ["Lanczos", "block_lanczos"]


@dataclass(frozen=True)
class Lanczos:
    """Result of a block-Lanczos run: T = B'KB (d x d), its Ritz pairs, and the coordinates
    of the starting block in the basis (``start``, d x b), Ritz residual norms."""

    T: np.ndarray
    theta: np.ndarray  # Ritz values, ascending
    W: np.ndarray  # T's eigenvectors
    start: np.ndarray  # coordinates of the starting vectors in the basis
    residual: np.ndarray  # ||K u_l - theta_l u_l|| per Ritz pair
    block_sizes: tuple[int, ...]
    steps: int
    basis: np.ndarray | None = None  # (N, d) orthonormal Krylov basis B


def _orth_block(W: np.ndarray, ref: float, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """W = Qn B with Qn orthonormal; directions below tol * ref dropped (block deflation)."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    keep = s > tol * max(ref, np.finfo(float).tiny)
    return U[:, keep], s[keep, None] * Vt[keep]


def block_lanczos(matmat, V0: np.ndarray, n_steps: int, *, tol: float = 1e-10) -> Lanczos:
    """Block Lanczos with full reorthogonalization: ``n_steps`` products ``matmat(Q_j)``.

    Parameters
    ----------
    matmat : callable
        ``V -> K V`` for an (N, b) block (one pass over the genotypes).
    V0 : ndarray, shape (N, b)
        Starting block.
    n_steps : int
        Number of products (passes).
    tol : float
        Directions whose norm falls below ``tol * ||K Q_j||`` are dropped (the Krylov space
        is exhausted along them, e.g. when K has low rank).
    """
    N, b = V0.shape
    Q1, R0 = _orth_block(V0, float(np.linalg.norm(V0, 2)), 1e-12)
    if Q1.shape[1] < b:
        raise InputError("the starting vectors of the Lanczos run are linearly dependent")
    basis = np.empty((N, b * (n_steps + 1)))
    basis[:, :b] = Q1
    sizes = [b]
    A, B = [], []
    Qj, Qprev, Bprev = Q1, None, None
    d = b
    resid_block = np.zeros((0, b))
    steps = 0
    for step in range(n_steps):
        W = matmat(Qj)
        steps += 1
        ref = float(np.linalg.norm(W, 2))
        Aj = Qj.T @ W
        Aj = (Aj + Aj.T) / 2
        W = W - Qj @ Aj
        if Qprev is not None:
            W = W - Qprev @ Bprev.T
        # Full reorthogonalization, twice ("twice is enough", Parlett): keeps the basis
        # orthonormal to rounding, which SLQ and the Galerkin solve assume.
        for _rep in range(2):
            W = W - basis[:, :d] @ (basis[:, :d].T @ W)
        A.append(Aj)
        Qn, Bj = _orth_block(W, ref, tol)
        resid_block = Bj
        if Qn.shape[1] == 0 or step == n_steps - 1:
            break
        basis[:, d:d + Qn.shape[1]] = Qn
        B.append(Bj)
        Qprev, Bprev, Qj = Qj, Bj, Qn
        d += Qn.shape[1]
        sizes.append(Qn.shape[1])
    T = np.zeros((d, d))
    off = np.cumsum([0, *sizes])
    for j, Aj in enumerate(A):
        T[off[j]:off[j + 1], off[j]:off[j + 1]] = Aj
    for j, Bj in enumerate(B):
        T[off[j + 1]:off[j + 2], off[j]:off[j + 1]] = Bj
        T[off[j]:off[j + 1], off[j + 1]:off[j + 2]] = Bj.T
    theta, Wt = np.linalg.eigh(T)
    start = np.zeros((d, b))
    start[:b] = R0
    # Ritz residual ||K u - theta u|| = ||B_last W[last block]|| (zero once exhausted).
    last = Wt[off[-2]:off[-1]]
    residual = (np.linalg.norm(resid_block @ last, axis=0) if resid_block.size
                else np.zeros(d))
    return Lanczos(T=T, theta=theta, W=Wt, start=start, residual=residual,
                   block_sizes=tuple(sizes), steps=steps, basis=basis[:, :d])
