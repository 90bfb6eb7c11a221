"""The covariance of the phenotype, V(theta), and the covariates' projection.

This is the one module that knows how V = sum_k sigma_k K_k + sigma_e2 I is represented.
Every consumer (REML/ML and their AI/Fisher/EM algorithms, BLUE/BLUP/PEV, prediction, the
association tests, empirical Bayes, the quadrature posterior and the PyMC log-densities)
talks to V through the small protocol below, with ``sigma2 = (sigma_1, ..., sigma_k,
sigma_e2)``:

``solve(a, sigma2)``             V^-1 a for a vector or a matrix of samples
``logdet(sigma2)``               log|V|
``matrix(sigma2)``               V itself, densely (references, the Cholesky strategy)
``apply_kernel(a, j)``           K_j a;  ``kernel_diag(j)``: diag(K_j)
``rotate(a)``                    a in the basis where the restricted pieces are computed
``weights(sigma2)``              the diagonal of V^-1 in that basis (spectral only), batched

Implementations:

* :class:`SpectralCovariance`: one kernel with its economic eigendecomposition (or the thin
  SVD of its genotypes) K = U diag(S) U'. V^-1 is diagonal in the eigenbasis, so every
  quantity costs O(N r) and is batched over parameter values.
* :class:`DenseCovariance`: several kernels, factorised by Cholesky at each parameter
  value (O(N^3)); GCTA's case.

A matrix-free implementation (block Lanczos over a genotype operator) plugs in behind the
same protocol.

:class:`Covariates` projects the covariates out once (thin QR, X = Q R). REML is defined on
the residual space of X (notes 4.3.2: the likelihood of B'y for any orthonormal basis B of
span(X)'s complement), so the restricted pieces are computed from y_r = (I - QQ') y and Q:
adding anything in span(X) to y, or reparametrising X, changes nothing, to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import linalg
from scipy.linalg import blas, lapack

from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.errors import InputError, KernelError

__all__ = [
    "Covariance",
    "Covariates",
    "DenseCovariance",
    "Rotated",
    "SpectralCovariance",
    "covariance_for",
    "inverse_cholesky",
]


# ----------------------------------------------------------------------------- covariates
@dataclass(frozen=True, eq=False)
class Covariates:
    """The fixed-effect design X = Q R (thin QR), computed once.

    Attributes
    ----------
    X : ndarray (N, M)
    Q : ndarray (N, M)
        Orthonormal basis of span(X).
    R : ndarray (M, M)
        Upper triangular, X = Q R.
    """

    X: np.ndarray
    Q: np.ndarray
    R: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> Covariates:
        X = np.asarray(X, dtype=np.float64)
        Q, R = np.linalg.qr(X)
        return cls(X=X, Q=Q, R=R)

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def M(self) -> int:
        return self.X.shape[1]

    @property
    def logdet_XtX(self) -> float:
        """log|X'X| = 2 log|det R|."""
        return float(2.0 * np.sum(np.log(np.abs(np.diag(self.R)))))

    def residualize(self, a: np.ndarray) -> np.ndarray:
        """(I - QQ') a: the part of a orthogonal to span(X)."""
        a = np.asarray(a, dtype=np.float64)
        return a - self.Q @ (self.Q.T @ a)

    def coefficients(self, a: np.ndarray) -> np.ndarray:
        """Least-squares coefficients of a on X: R^-1 Q'a."""
        return linalg.solve_triangular(self.R, self.Q.T @ a, lower=False)

    def to_X_scale(self, b_Q: np.ndarray) -> np.ndarray:
        """Coefficients on Q mapped to X's: X b = Q b_Q gives b = R^-1 b_Q (last axis)."""
        b_Q = np.asarray(b_Q, dtype=np.float64)
        return linalg.solve_triangular(self.R, b_Q.T, lower=False).T

    def cov_to_X_scale(self, C_Q: np.ndarray) -> np.ndarray:
        """A covariance of Q-coefficients mapped to X's: R^-1 C_Q R^-T."""
        Ri = linalg.solve_triangular(self.R, np.eye(self.M), lower=False)
        return Ri @ C_Q @ Ri.T


# ----------------------------------------------------------------------------- spectral
@dataclass(frozen=True, eq=False)
class Rotated:
    """U'a for one input a, and its part in K's complement a0 = a - U U'a (eigenvalue 0).

    The complement part is kept as a vector (computed once, O(N r)), not recovered from
    totals a'a - (U'a)'(U'a), which cancel catastrophically when a lies mostly in the
    complement (a large intercept and a centred GRM).
    """

    values: np.ndarray          # U'a, shape (r,) or (r, k)
    null: np.ndarray | None     # a - U U'a, or None when K is full rank

    def gram(self, w: np.ndarray, w_null, other: Rotated | None = None) -> np.ndarray:
        """a' U_full diag(w, w_null) U_full' b = sum_i w_i (U'a)_i (U'b)_i + w_null a0'b0.

        ``w`` may be batched, shape (G, r) with ``w_null`` (G,): the result then has a leading
        axis G. With w = 1 / (sigma_g2 S + sigma_e2) and w_null = 1 / sigma_e2 this is
        a'V^-1 b.
        """
        o = self if other is None else other
        A, B = self.values, o.values
        A2 = A if A.ndim == 2 else A[:, None]
        B2 = B if B.ndim == 2 else B[:, None]
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 1:
            out = (A2 * w[:, None]).T @ B2
            if self.null is not None:
                a0 = self.null if self.null.ndim == 2 else self.null[:, None]
                b0 = o.null if o.null.ndim == 2 else o.null[:, None]
                out = out + w_null * (a0.T @ b0)
        else:
            out = np.einsum("gi,ij,ik->gjk", w, A2, B2, optimize=True)
            if self.null is not None:
                a0 = self.null if self.null.ndim == 2 else self.null[:, None]
                b0 = o.null if o.null.ndim == 2 else o.null[:, None]
                out = out + np.asarray(w_null)[:, None, None] * (a0.T @ b0)[None]
        if A.ndim == 1 and B.ndim == 1:
            return out[..., 0, 0]
        if A.ndim == 1:
            return out[..., 0, :]
        if B.ndim == 1:
            return out[..., :, 0]
        return out


@dataclass(frozen=True, eq=False)
class SpectralCovariance:
    """V = sigma_g2 K + sigma_e2 I with K = U diag(S) U' (economic: S > 0, or S < 0 for an
    indefinite kernel; the complement has eigenvalue 0).

    In the eigenbasis V = diag(sigma_g2 S + sigma_e2) on K's column space and sigma_e2 I on
    its complement (notes section 3, eq. 46), so solves and determinants are O(N r).
    """

    dec: Decomposition
    components: tuple[str, ...] = ("G",)
    #: K itself when the caller has it: V formed densely costs O(N^2) then, not U S U'
    kernel: np.ndarray | None = field(default=None, repr=False)

    @property
    def N(self) -> int:
        return self.dec.N

    @property
    def k(self) -> int:
        return 1

    @property
    def rank(self) -> int:
        return self.dec.rank

    @property
    def n_null(self) -> int:
        return self.dec.N - self.dec.rank

    @property
    def scale(self) -> float:
        """Mean eigenvalue over all N dimensions, tr(K) / N: K's natural unit."""
        return float(self.dec.S.sum() / self.dec.N)

    # --------------------------------------------------------------- diagonal of V
    def eigenvalues(self, sigma2) -> tuple[np.ndarray, float]:
        """(sigma_g2 S + sigma_e2, sigma_e2): V on K's column space and on its complement."""
        sg, se = float(sigma2[0]), float(sigma2[-1])
        return sg * self.dec.S + se, se

    def weights(self, sigma_g2, sigma_e2) -> tuple[np.ndarray, np.ndarray]:
        """Batched diagonal of V^-1: w (G, r) and w_null (G,), for arrays of variances."""
        sg = np.atleast_1d(np.asarray(sigma_g2, dtype=np.float64))
        se = np.atleast_1d(np.asarray(sigma_e2, dtype=np.float64))
        with np.errstate(divide="ignore"):
            d = sg[:, None] * self.dec.S[None, :] + se[:, None]
            return 1.0 / d, np.where(self.n_null > 0, 1.0 / se, 0.0)

    def logdets(self, sigma_g2, sigma_e2) -> np.ndarray:
        """Batched log|V|."""
        sg = np.atleast_1d(np.asarray(sigma_g2, dtype=np.float64))
        se = np.atleast_1d(np.asarray(sigma_e2, dtype=np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = sg[:, None] * self.dec.S[None, :] + se[:, None]
            out = np.log(d).sum(axis=1)
            if self.n_null:
                out = out + self.n_null * np.log(se)
        return out

    # --------------------------------------------------------------- the protocol
    def rotate(self, a: np.ndarray) -> Rotated:
        a = np.asarray(a, dtype=np.float64)
        if a.shape[0] != self.N:
            raise InputError(
                f"cannot rotate {a.shape[0]} rows by a decomposition of {self.N} samples")
        Ua = self.dec.U.T @ a
        null = (a - self.dec.U @ Ua) if self.n_null else None
        return Rotated(Ua, null)

    def solve(self, a: np.ndarray, sigma2) -> np.ndarray:
        """V^-1 a, O(N r) per column."""
        a = np.asarray(a, dtype=np.float64)
        d, se = self.eigenvalues(sigma2)
        U = self.dec.U
        Ua = U.T @ a
        out = U @ (Ua / (d if Ua.ndim == 1 else d[:, None]))
        if self.n_null:
            out = out + (a - U @ Ua) / se
        return out

    def logdet(self, sigma2) -> float:
        return float(self.logdets(sigma2[0], sigma2[-1])[0])

    def matrix(self, sigma2) -> np.ndarray:
        if self.kernel is not None:
            V = np.multiply(self.kernel, float(sigma2[0]))
        else:
            V = (self.dec.U * (float(sigma2[0]) * self.dec.S)) @ self.dec.U.T
        V[np.diag_indices(self.N)] += float(sigma2[-1])
        return V

    def apply_kernel(self, a: np.ndarray, j: int = 0) -> np.ndarray:
        """K a = U diag(S) U' a (the complement has eigenvalue 0)."""
        Ua = self.dec.U.T @ a
        return self.dec.U @ (Ua * (self.dec.S if Ua.ndim == 1 else self.dec.S[:, None]))

    def kernel_diag(self, j: int = 0) -> np.ndarray:
        return np.einsum("ij,j,ij->i", self.dec.U, self.dec.S, self.dec.U)

    def kernel_solve_kernel_diag(self, sigma2, coef) -> np.ndarray:
        """diag(G V^-1 G) for G = coef[0] K: sum_j U_ij^2 (c S_j)^2 / d_j (the complement
        adds nothing, S = 0 there)."""
        d, _ = self.eigenvalues(sigma2)
        c = float(np.atleast_1d(coef)[0])
        return np.einsum("ij,j,ij->i", self.dec.U, (c * self.dec.S) ** 2 / d, self.dec.U)

    def kernel_solve(self, sigma2, coef, a: np.ndarray) -> np.ndarray:
        """G V^-1 a for G = coef[0] K, in the eigenbasis: U diag(c S / d) U'a."""
        d, _ = self.eigenvalues(sigma2)
        c = float(np.atleast_1d(coef)[0])
        Ua = self.dec.U.T @ a
        f = c * self.dec.S / d
        return self.dec.U @ (Ua * (f if Ua.ndim == 1 else f[:, None]))

    def draw(self, sigma_g2: np.ndarray, sigma_e2: np.ndarray, rng: np.random.Generator
             ) -> np.ndarray:
        """One draw of N(0, V) per row of (sigma_g2, sigma_e2), shape (S, N): U sqrt(d) z on
        K's column space plus sqrt(sigma_e2) times the complement part of white noise."""
        d = sigma_g2[:, None] * self.dec.S[None, :] + sigma_e2[:, None]
        U = self.dec.U
        out = (np.sqrt(d) * rng.standard_normal(d.shape)) @ U.T
        if self.n_null:
            w = rng.standard_normal((d.shape[0], self.N))
            out += np.sqrt(sigma_e2)[:, None] * (w - (w @ U) @ U.T)
        return out

    def cross_solve(self, K21: np.ndarray, y: np.ndarray, X: np.ndarray, beta: np.ndarray,
                    sigma_g2: np.ndarray, sigma_e2: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """For a cross-kernel K21 (new x training), batched over S draws of (beta, sigma_g2,
        sigma_e2): K21 V^-1 (y - X beta_s) (S, N_new) and diag(K21 V^-1 K12) (S, N_new).

        y and X are rotated once, so a draw costs O((N_new + M) r): K21 is split into its
        part on K's column space (B = K21 U) and the rest, whose weight is 1 / sigma_e2.
        """
        U = self.dec.U
        d = sigma_g2[:, None] * self.dec.S[None, :] + sigma_e2[:, None]
        B = K21 @ U
        UR = (U.T @ y)[None, :] - beta @ (U.T @ X).T  # U'(y - X beta), (S, r)
        KV = (UR / d) @ B.T
        B2 = B**2
        quad = (1.0 / d) @ B2.T
        if self.n_null:
            K21R = (K21 @ y)[None, :] - beta @ (K21 @ X).T  # K21 (y - X beta)
            KV += (K21R - UR @ B.T) / sigma_e2[:, None]
            quad += ((K21**2).sum(1) - B2.sum(1))[None, :] / sigma_e2[:, None]
        return KV, quad

    def block_quadratics(self, G: np.ndarray, B: np.ndarray, sigma2
                         ) -> tuple[np.ndarray, np.ndarray]:
        """diag(G'V^-1G) and B'V^-1G for a block of columns G (N, b), O(N r b).

        The complement enters through totals g'g - (U'g)'(U'g) per column: for association
        blocks that is the cheap form (no N x b complement is formed), and callers project
        the covariates out of G first, which removes the large components that would cancel.
        """
        d, se = self.eigenvalues(sigma2)
        w = 1.0 / d
        UG = self.dec.U.T @ G
        UB = self.dec.U.T @ B
        xVx = w @ (UG * UG)
        BVx = (UB * w[:, None]).T @ UG
        if self.n_null:
            xVx = xVx + (np.einsum("ij,ij->j", G, G) - np.einsum("ij,ij->j", UG, UG)) / se
            BVx = BVx + (B.T @ G - UB.T @ UG) / se
        return xVx, BVx

    def reorder(self, index: np.ndarray) -> SpectralCovariance:
        K = None if self.kernel is None else self.kernel[np.ix_(index, index)]
        return SpectralCovariance(self.dec.reorder(index), self.components, K)


# ----------------------------------------------------------------------------- dense
@dataclass(frozen=True, eq=False)
class DenseFactor:
    """Cholesky factor of V at one parameter value: V = L L', L lower (C order).

    Its memory, read in Fortran order, is U = L' with V = U'U: LAPACK's potrs / potri take it
    that way without the transposing copy scipy's ``cho_solve`` makes of the N x N factor on
    every call.
    """

    L: np.ndarray

    def solve(self, a: np.ndarray) -> np.ndarray:
        """V^-1 a (N^2 per column)."""
        a = np.asarray(a, dtype=np.float64)
        out, info = lapack.dpotrs(self.L.T, a, lower=0)
        if info != 0:
            raise KernelError(f"LAPACK dpotrs failed (info = {info})")
        return out

    @property
    def logdet(self) -> float:
        return float(2.0 * np.log(np.diag(self.L)).sum())

    def inverse(self) -> np.ndarray:
        """V^-1 by LAPACK dpotri (N^3 / 3 flops after the factor, a third of solving against
        the identity)."""
        Ui, info = lapack.dpotri(self.L.T, lower=0)
        if info != 0:
            raise KernelError(f"LAPACK dpotri failed (info = {info})")
        # dpotri fills the upper triangle of the Fortran-ordered result, which read in C
        # order is the lower triangle: mirror it.
        Vi = Ui.T
        iu = np.triu_indices(Vi.shape[0], 1)
        Vi[iu] = Vi.T[iu]
        return Vi


@dataclass(frozen=True, eq=False)
class DenseCovariance:
    """V = sum_k sigma_k K_k + sigma_e2 I for several kernels, factorised densely."""

    Ks: tuple[np.ndarray, ...]
    components: tuple[str, ...] = field(default=())
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        # matrix() accumulates in place with BLAS axpy, which needs contiguous float64.
        object.__setattr__(self, "Ks", tuple(np.ascontiguousarray(K, dtype=np.float64)
                                             for K in self.Ks))

    @property
    def N(self) -> int:
        return self.Ks[0].shape[0]

    @property
    def k(self) -> int:
        return len(self.Ks)

    def matrix(self, sigma2) -> np.ndarray:
        """V, formed in one output array (axpy in place: no N x N temporaries)."""
        sigma2 = np.asarray(sigma2, dtype=np.float64)
        V = np.multiply(self.Ks[0], sigma2[0])
        flat = V.reshape(-1)
        for s, K in zip(sigma2[1:-1], self.Ks[1:], strict=True):
            flat = blas.daxpy(K.reshape(-1), flat, a=float(s))
        V = flat.reshape(V.shape)
        V.reshape(-1)[:: self.N + 1] += sigma2[-1]
        return V

    def factor(self, sigma2) -> DenseFactor | None:
        """Cholesky of V, or None when V is not positive definite. The last factor is kept,
        since consumers ask for several products at the same parameter value."""
        key = tuple(np.asarray(sigma2, dtype=np.float64).tolist())
        hit = self._cache.get("factor")
        if hit is not None and hit[0] == key:
            return hit[1]
        # V is symmetric, so its C-ordered array read in Fortran order is V itself: LAPACK
        # factors it in place (V = U'U, U = L') with no copy.
        U, info = lapack.dpotrf(self.matrix(sigma2).T, lower=0, clean=1, overwrite_a=1)
        if info != 0 or not np.all(np.isfinite(np.diag(U))):
            return None
        f = DenseFactor(U.T)
        self._cache["factor"] = (key, f)
        return f

    def _factor(self, sigma2) -> DenseFactor:
        f = self.factor(sigma2)
        if f is None:
            raise KernelError(f"V is not positive definite at sigma2 = {list(sigma2)}")
        return f

    def solve(self, a: np.ndarray, sigma2) -> np.ndarray:
        return self._factor(sigma2).solve(np.asarray(a, dtype=np.float64))

    def logdet(self, sigma2) -> float:
        return self._factor(sigma2).logdet

    def inverse(self, sigma2) -> np.ndarray:
        return self._factor(sigma2).inverse()

    def draw_one(self, sigma2, rng: np.random.Generator) -> np.ndarray:
        """One draw of N(0, V) at sigma2."""
        return self._factor(sigma2).L @ rng.standard_normal(self.N)

    def apply_kernel(self, a: np.ndarray, j: int = 0) -> np.ndarray:
        return self.Ks[j] @ a

    def kernel_diag(self, j: int = 0) -> np.ndarray:
        return np.diag(self.Ks[j]).copy()

    def _G(self, coef) -> np.ndarray:
        coef = np.atleast_1d(np.asarray(coef, dtype=np.float64))
        return sum(c * K for c, K in zip(coef, self.Ks, strict=True) if c != 0)

    def kernel_solve_kernel_diag(self, sigma2, coef) -> np.ndarray:
        """diag(G V^-1 G), G = sum_j coef_j K_j."""
        G = self._G(coef)
        return np.einsum("ij,ji->i", G, self.solve(G, sigma2))

    def kernel_solve(self, sigma2, coef, a: np.ndarray) -> np.ndarray:
        return self._G(coef) @ self.solve(a, sigma2)

    def reorder(self, index: np.ndarray) -> DenseCovariance:
        return DenseCovariance(tuple(K[np.ix_(index, index)] for K in self.Ks), self.components)


class Covariance(Protocol):
    """What every consumer may ask of V(theta) (see the module docstring)."""

    N: int
    k: int
    components: tuple[str, ...]

    def solve(self, a: np.ndarray, sigma2) -> np.ndarray: ...
    def logdet(self, sigma2) -> float: ...
    def matrix(self, sigma2) -> np.ndarray: ...
    def apply_kernel(self, a: np.ndarray, j: int = 0) -> np.ndarray: ...
    def kernel_diag(self, j: int = 0) -> np.ndarray: ...
    def kernel_solve(self, sigma2, coef, a: np.ndarray) -> np.ndarray: ...
    def kernel_solve_kernel_diag(self, sigma2, coef) -> np.ndarray: ...


def covariance_for(kernels, components: tuple[str, ...]) -> SpectralCovariance | DenseCovariance:
    """The covariance object for a Decomposition (spectral) or a tuple of dense kernels."""
    if isinstance(kernels, Decomposition):
        return SpectralCovariance(kernels, components or ("G",))
    return DenseCovariance(tuple(kernels), components)


def inverse_cholesky(cov: Covariance, sigma2) -> np.ndarray | None:
    """U^-1 with V = U'U (U = L', upper), in Fortran order, or None if V is not PD.

    x'V^-1x = |U^-T x|^2: with U^-1 formed once (N^3 / 3) the per-SNP product of the
    association tests is a triangular matrix product (dtrmm) at matrix-multiply speed.
    Backward stable here: cond(V) <= 1 + sigma_g2 max(S) / sigma_e2.
    """
    V = cov.matrix(sigma2)
    # V is symmetric, so its C-ordered array is, read in Fortran order, V itself: LAPACK
    # factors it in place as V = U'U with no transposing copy.
    Ut, info = lapack.dpotrf(V.T, lower=0, clean=1, overwrite_a=1)
    if info != 0:
        return None
    Uinv, info = lapack.dtrtri(Ut, lower=0, overwrite_c=1)
    return Uinv if info == 0 else None
