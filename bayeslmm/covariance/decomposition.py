"""The decomposition of one kernel, computed once and shared by every consumer.

With K = U diag(S) U' (notes section 3: K = ZZ'/P), V = sigma_g2 K + sigma_e2 I becomes
diagonal after rotating by U': V_rot = diag(sigma_g2 S + sigma_e2). REML, ML, BLUP, the
association statistics, the quadrature posterior of h2 and the PyMC log-density are then
O(N) per evaluation.

The decomposition is *economic* (as in glimix-core): U holds only the r columns with
non-zero eigenvalue. The orthogonal complement (eigenvalue 0, N - r dimensions) is never
formed; quadratic forms over it use a - U U'a (:mod:`bayeslmm.covariance.structures`). So a low-rank
K = ZZ'/P with P < N (FaST-LMM's case) comes from the thin SVD of Z and costs O(N P^2),
and consumers need not know which case they hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bayeslmm.data import as_kernel, labels_of, sample_index
from bayeslmm.errors import InputError, KernelError

__all__ = ["Decomposition", "check_psd", "decompose", "decompose_genotypes", "psd_by_cholesky"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Decomposition:
    """Economic eigendecomposition K = U diag(S) U' with S != 0.

    Attributes
    ----------
    U : ndarray, shape (N, r)
        Orthonormal eigenvectors with non-zero eigenvalue.
    S : ndarray, shape (r,)
        The non-zero eigenvalues (ascending, LAPACK's order). Negative ones are kept for an
        indefinite K (a GRM from missing genotypes); V = sigma_g2 K + sigma_e2 I is then
        positive definite only for h2 < :attr:`h2_max`.
    N : int
        Number of samples; the complement has dimension N - r and eigenvalue 0.
    samples : ndarray of str or None
        Sample labels, in the order of U's rows.
    """

    U: np.ndarray
    S: np.ndarray
    N: int
    samples: np.ndarray | None = None
    min_eigenvalue: float = 0.0

    @property
    def rank(self) -> int:
        return self.S.shape[0]

    @property
    def full_rank(self) -> bool:
        return self.rank == self.N

    @property
    def h2_max(self) -> float:
        """Largest h2 with V = h2 K + (1 - h2) I positive semi-definite: 1 for a PSD K,
        1 / (1 - s_min) when K's smallest eigenvalue s_min is negative (h2 s + 1 - h2 > 0
        for every eigenvalue s)."""
        s_min = float(self.S[0]) if self.S.size else 0.0
        return 1.0 if s_min >= 0 else 1.0 / (1.0 - s_min)

    def reorder(self, index: np.ndarray) -> Decomposition:
        """The same decomposition with its rows (samples) taken in the order ``index``."""
        index = np.asarray(index, dtype=np.intp)
        return Decomposition(U=self.U[index], S=self.S, N=self.N,
                             samples=None if self.samples is None else self.samples[index],
                             min_eigenvalue=self.min_eigenvalue)

    def aligned_to(self, samples: np.ndarray) -> Decomposition:
        """This decomposition with its rows in the order of ``samples`` (the phenotype's
        labels), by the package's one alignment rule (:func:`bayeslmm.data.sample_index`)."""
        if len(samples) != self.N:
            raise InputError(f"the decomposition has {self.N} samples but y has {len(samples)}")
        idx = sample_index(np.asarray(samples), self.samples, "the decomposition")
        return self if idx is None else self.reorder(idx)

    def rotate(self, a):
        """Moved: rotations live with the covariance object."""
        raise AttributeError("Decomposition.rotate moved to the covariance layer: use "
                             "bayeslmm.covariance.structures.SpectralCovariance(dec).rotate(a)")

    def rescaled(self, factor: float) -> Decomposition:
        """The decomposition of factor * K (same eigenvectors)."""
        return Decomposition(U=self.U, S=self.S * factor, N=self.N, samples=self.samples,
                             min_eigenvalue=self.min_eigenvalue * factor)

    def kernel(self) -> np.ndarray:
        """K rebuilt densely (a reference for tests; O(N^2 r))."""
        return (self.U * self.S) @ self.U.T

    @property
    def S_full(self) -> np.ndarray:
        """Eigenvalues with the complement's zeros appended (length N)."""
        return np.concatenate([self.S, np.zeros(self.N - self.rank)])


def check_psd(S: np.ndarray, psd_tol: float, name: str, indefinite: bool = False) -> float:
    top = float(np.max(np.abs(S))) if S.size else 0.0
    low = float(S.min()) if S.size else 0.0
    if top == 0.0:
        raise KernelError(f"{name} is the zero matrix")
    if low < -psd_tol * top and indefinite and -low >= float(S.max()):
        raise KernelError(
            f"{name} is far from positive semi-definite: its smallest eigenvalue {low:.3g} "
            f"outweighs its largest {float(S.max()):.3g}, which no relationship matrix does; "
            "check the file (a corrupted or mis-scaled entry?)")
    if low < -psd_tol * top and indefinite:
        # GCTA fits such a K: only V = sigma_g2 K + sigma_e2 I must be PD, which holds for
        # h2 < 1 / (1 - s_min) (Decomposition.h2_max).
        n_neg = int(np.sum(S < -psd_tol * top))
        log.warning(
            "%s is indefinite: %d eigenvalue(s) below zero, the smallest %.4g (largest %.4g); "
            "V = sigma_g2 K + sigma_e2 I stays positive definite for h2 < %.6g, the range "
            "searched. To make K PSD instead: --grm-cutoff (drop close relatives) or "
            "--grm-bend (GCTA's bending)", name, n_neg, low, top, 1.0 / (1.0 - low))
    elif low < -psd_tol * top:
        n_neg = int(np.sum(S < -psd_tol * top))
        raise KernelError(
            f"{name} is not positive semi-definite: {n_neg} eigenvalue(s) below zero, the "
            f"smallest {low:.3g} (largest {top:.3g}); a GRM from heavily missing genotypes "
            f"can do this: filter SNPs/samples on missingness or pass a PSD kernel")
    return low


def psd_by_cholesky(K: np.ndarray, psd_tol: float) -> bool:
    """True when a Cholesky factorisation proves that :func:`check_psd` would pass K silently.

    With d = max diag(K) (a lower bound on the largest eigenvalue), a factorisable
    K + psd_tol d I means lambda_min(K) > -psd_tol d >= -psd_tol lambda_max(K). One
    Cholesky is a third of an eigvalsh; False (a kernel that fails) leaves the verdict and
    its message to :func:`check_psd` on the spectrum.
    """
    from scipy.linalg import lapack

    d = float(np.max(np.diagonal(K)))
    if not d > 0:
        return False
    A = np.array(K, dtype=np.float64, order="F")
    A[np.diag_indices_from(A)] += psd_tol * d
    _, info = lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
    return info == 0


def decompose(K, *, psd_tol: float = 1e-6, rank_tol: float | None = None,
              samples=None, name: str = "K", validated: bool = False,
              indefinite: bool = True) -> Decomposition:
    """Eigendecompose a symmetric kernel once (notes section 3).

    Parameters
    ----------
    K : array_like, shape (N, N)
        Symmetric kernel (GRM, ZZ'/P, group indicators...), usually PSD.
    psd_tol : float
        Negative eigenvalues above ``-psd_tol * max|eigenvalue|`` are rounding and are set to
        zero. Eigenvalues below it make K indefinite (a GCTA GRM from missing genotypes).
    indefinite : bool
        Accept an indefinite K (default, as GCTA): its negative eigenvalues are kept, the
        smallest is logged, and V = sigma_g2 K + sigma_e2 I is PD for h2 < ``h2_max``.
        False rejects it with a :class:`~bayeslmm.errors.KernelError`.
    rank_tol : float, optional
        Eigenvalues at or below ``rank_tol * max eigenvalue`` are treated as exactly zero and
        moved to the complement. Default ``N * eps * 10``.
    validated : bool
        Skip the shape/finite/symmetry checks (the caller ran :func:`bayeslmm.data.as_kernel`).

    Returns
    -------
    Decomposition
    """
    labels = labels_of(K) if samples is None else np.asarray(samples).astype(str)
    if np.iscomplexobj(getattr(K, "values", K)):
        raise KernelError(f"{name} is complex; a kernel must be real")
    Karr = np.asarray(K.values if hasattr(K, "values") and not isinstance(K, np.ndarray) else K,
                      dtype=np.float64)
    if not validated:
        Karr, _ = as_kernel(Karr, Karr.shape[0] if Karr.ndim == 2 else -1, name)
    S, U = np.linalg.eigh(Karr)
    low = check_psd(S, psd_tol, name, indefinite)
    log.info("%s: eigenvalues from %.4g to %.4g (N = %d).", name, low, float(S[-1]),
             Karr.shape[0])
    top = float(np.max(np.abs(S)))
    n_neg = int(np.searchsorted(S, -psd_tol * top, side="left"))
    return _economic(U, S, Karr.shape[0], labels, rank_tol, low, n_neg)


def _economic(U, S, N, labels, rank_tol, low, n_neg: int = 0) -> Decomposition:
    # Ascending (LAPACK's order): the kept eigenvalues are a contiguous tail, so U is a view,
    # not an N x N copy.
    if S[0] > S[-1]:  # SVD order; its U is thin, so the copy is cheap
        S, U = S[::-1].copy(), np.ascontiguousarray(U[:, ::-1])
    tol = (N * np.finfo(float).eps * 10 if rank_tol is None else rank_tol) * max(S[-1], 0.0)
    start = int(np.searchsorted(S, tol, side="right"))
    if n_neg:  # indefinite K: keep the negative head too (a copy, only in this case)
        keep = np.r_[0:n_neg, start:S.size]
        return Decomposition(U=U[:, keep], S=S[keep], N=N, samples=labels,
                             min_eigenvalue=low)
    return Decomposition(U=U[:, start:], S=S[start:].copy(), N=N, samples=labels,
                         min_eigenvalue=low)


def decompose_genotypes(Z, *, samples=None, rank_tol: float | None = None) -> Decomposition:
    """Decomposition of K = ZZ'/P from the thin SVD of Z (N x P), O(N P min(N, P)).

    For P < N this is FaST-LMM's low-rank case: only the P non-zero eigenvalues are kept and
    the complement is handled implicitly.
    """
    labels = labels_of(Z) if samples is None else np.asarray(samples).astype(str)
    Zarr = np.asarray(Z.values if hasattr(Z, "values") and not isinstance(Z, np.ndarray) else Z,
                      dtype=np.float64)
    if Zarr.ndim != 2:
        raise InputError(f"genotypes Z must be a matrix, got shape {Zarr.shape}")
    if not np.all(np.isfinite(Zarr)):
        raise InputError("genotypes Z have NaN: impute or standardize (missing -> 0) first")
    N, P = Zarr.shape
    U, s, _ = np.linalg.svd(Zarr / np.sqrt(P), full_matrices=False)
    return _economic(U, s**2, N, labels, rank_tol, 0.0)
