"""ML and REML log-likelihoods of the multi-trait mixed model with one shared kernel.

T traits measured on the same N samples, shared covariates X (N x M), one kernel K:

    Y = X B' + G + E,   vec(Y) ~ N(vec(X B'), Sigma_g (x) K + Sigma_e (x) I_N)

with B (T x M), Sigma_g and Sigma_e (T x T). With K = U diag(S) U' (one
:class:`~bayeslmm.spectral.Decomposition`, shared with every other consumer), rotating every
trait by U' makes the samples independent: eigen-index i carries the T-vector y_i = (U'Y)_i
with covariance D_i = s_i Sigma_g + Sigma_e (GEMMA's mvLMM trick). Every quantity below is
therefore a sum over i of T x T algebra, O(N T^3) per evaluation, and the complement of a
low-rank K (eigenvalue 0, N - r dimensions, covariance Sigma_e) enters only through Gram
matrices, as in :mod:`bayeslmm.spectral`.

The log-likelihoods are those of notes eq. (48) and section 4.3.2 written for the NT-vector
vec(Y) with design I_T (x) X, constants included:

    l_ML   = -1/2 [ N T log 2 pi + log|V| + r' V^-1 r ],            r = vec(Y - X B_gls')
    l_REML = -1/2 [ (N - M) T log 2 pi + log|V| + r' V^-1 r + log|X_T' V^-1 X_T|
                    - T log|X'X| ],                                  X_T = I_T (x) X

REML is a function of the residual space of X only. To keep it so in floating point too, X
is replaced once by the orthonormal Q of its QR factorisation (the REML expression above is
invariant to X -> X A, and T log|X'X| becomes 0) and Y by its residual Y - Q Q'Y, so anything
added to Y within span(X) leaves the answer unchanged to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslmm.errors import InputError
from bayeslmm.spectral import Decomposition

__all__ = ["MultiTraitEval", "MultiTraitSpectral", "dense_multitrait_loglik"]

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class MultiTraitEval:
    """One evaluation of the multi-trait likelihood at (Sigma_g, Sigma_e).

    Attributes
    ----------
    loglik : float
        ML or REML log-likelihood, constants included.
    grad_g, grad_e : ndarray (T, T) or None
        Symmetric matrices G with d loglik = tr(G_g dSigma_g) + tr(G_e dSigma_e).
    B : ndarray (T, M)
        GLS estimate of the fixed effects, in the coordinates of the original X.
    B_cov : ndarray (T M, T M)
        Its covariance (X_T' V^-1 X_T)^-1, index (trait, covariate) in row-major order.
    """

    loglik: float
    grad_g: np.ndarray | None
    grad_e: np.ndarray | None
    B: np.ndarray
    B_cov: np.ndarray


class MultiTraitSpectral:
    """Multi-trait one-kernel model with Y and X rotated once by K's eigenvectors.

    Parameters
    ----------
    dec : Decomposition
        Shared decomposition of K (full or low rank).
    Y : ndarray, shape (N, T)
        Traits, complete cases only (aligned with ``dec``'s rows).
    X : ndarray, shape (N, M)
        Shared covariates, full column rank.
    """

    def __init__(self, dec: Decomposition, Y: np.ndarray, X: np.ndarray):
        Y = np.asarray(Y, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or X.ndim != 2 or Y.shape[0] != X.shape[0] or Y.shape[0] != dec.N:
            raise InputError(f"Y {Y.shape}, X {X.shape} and the decomposition ({dec.N} "
                             "samples) do not have the same number of samples")
        self.dec = dec
        self.N, self.T = Y.shape
        self.M = X.shape[1]
        self.Y, self.X = Y, X
        # Covariates projected out once (QR of X): REML lives on the residual space.
        Q, R = np.linalg.qr(X)
        self.Q, self.R = Q, R
        self.logdet_XtX = float(2 * np.sum(np.log(np.abs(np.diag(R)))))
        Yr = Y - Q @ (Q.T @ Y)
        self.Y_res = Yr
        U = dec.U
        self.UQ = U.T @ Q  # (r, M)
        self.UY = U.T @ Yr  # (r, T)
        self.S = dec.S
        self.n_null = self.N - dec.rank
        # Complement Gram matrices: totals minus the rotated part (eigenvalue-0 subspace).
        self.cQQ = np.eye(self.M) - self.UQ.T @ self.UQ
        self.cQY = Q.T @ Yr - self.UQ.T @ self.UY  # (M, T), ~0 - U'Q'U'Y
        self.cYY = Yr.T @ Yr - self.UY.T @ self.UY
        # B_gls for Q and for X: B_X' = R^-1 B_Q'; Q'Y (dropped from Y_res) is added back.
        self.QtY = Q.T @ Y  # (M, T)

    # ------------------------------------------------------------------ core
    def evaluate(self, Sigma_g: np.ndarray, Sigma_e: np.ndarray, reml: bool = True,
                 grad: bool = True) -> MultiTraitEval:
        """Log-likelihood (48)/(4.3.2) of vec(Y), and its gradient in (Sigma_g, Sigma_e).

        Per eigen-index, D_i = s_i Sigma_g + Sigma_e; with u_i = D_i^-1 r_i the ML gradient is
        G_g = -1/2 sum_i s_i (D_i^-1 - u_i u_i') and the same with weight 1 (and the
        complement's Sigma_e^-1 terms) for G_e. REML adds 1/2 sum_i w_i D_i^-1 W_i D_i^-1,
        W_i[a, b] = x_i' C_ab x_i with C = (X_T' V^-1 X_T)^-1, from d log|X_T'V^-1X_T|.
        """
        T, M = self.T, self.M
        Sg = np.asarray(Sigma_g, dtype=np.float64).reshape(T, T)
        Se = np.asarray(Sigma_e, dtype=np.float64).reshape(T, T)
        D = self.S[:, None, None] * Sg + Se
        Lc = np.linalg.cholesky(D)  # raises LinAlgError when not PD
        logdet = 2.0 * np.log(np.diagonal(Lc, axis1=1, axis2=2)).sum()
        Di = np.linalg.inv(D)
        UQ, UY = self.UQ, self.UY
        A = np.einsum("iab,im,in->ambn", Di, UQ, UQ, optimize=True)
        DiY = np.einsum("iab,ib->ia", Di, UY)
        b = np.einsum("ia,im->am", DiY, UQ)
        if self.n_null:
            Lce = np.linalg.cholesky(Se)
            Sei = np.linalg.inv(Se)
            logdet += self.n_null * 2.0 * np.log(np.diag(Lce)).sum()
            A = A + np.einsum("ab,mn->ambn", Sei, self.cQQ)
            b = b + Sei @ self.cQY.T
        A2 = A.reshape(T * M, T * M)
        C = np.linalg.inv(A2)
        BQ = (C @ b.reshape(-1)).reshape(T, M)
        Rr = UY - UQ @ BQ.T  # rotated residuals (r, T)
        u = np.einsum("iab,ib->ia", Di, Rr)
        quad = float(np.einsum("ia,ia->", Rr, u))
        if self.n_null:
            cRR = (self.cYY - self.cQY.T @ BQ.T - BQ @ self.cQY + BQ @ self.cQQ @ BQ.T)
            quad += float(np.sum(Sei * cRR))
        if reml:
            logdet_A = float(np.linalg.slogdet(A2)[1])
            ll = -0.5 * ((self.N - M) * T * LOG2PI + logdet + quad + logdet_A)
        else:
            ll = -0.5 * (self.N * T * LOG2PI + logdet + quad)
        # Fixed effects in the coordinates of X: X B' = Q (R B') and Y_res = Y - Q Q'Y.
        Rinv = np.linalg.inv(self.R)
        B = np.linalg.solve(self.R, (BQ + self.QtY.T).T).T
        J = np.kron(np.eye(T), Rinv)  # vec (trait-major) of B_X = B_Q R^-T
        B_cov = J @ C @ J.T
        if not grad:
            return MultiTraitEval(float(ll), None, None, B, B_cov)
        H = Di - u[:, :, None] * u[:, None, :]
        if reml:
            C4 = C.reshape(T, M, T, M)
            W = np.einsum("im,ambn,in->iab", UQ, C4, UQ, optimize=True)
            H = H - Di @ W @ Di
        Gg = -0.5 * np.einsum("i,iab->ab", self.S, H)
        Ge = -0.5 * H.sum(axis=0)
        if self.n_null:
            He = self.n_null * Sei - Sei @ cRR @ Sei
            if reml:
                Wc = np.einsum("ambn,mn->ab", C4, self.cQQ)
                He = He - Sei @ Wc @ Sei
            Ge = Ge - 0.5 * He
        return MultiTraitEval(float(ll), 0.5 * (Gg + Gg.T), 0.5 * (Ge + Ge.T), B, B_cov)

    def loglik(self, Sigma_g, Sigma_e, reml: bool = True) -> float:
        """Log-likelihood only; -inf where D_i is not positive definite."""
        try:
            return self.evaluate(Sigma_g, Sigma_e, reml, grad=False).loglik
        except np.linalg.LinAlgError:
            return -np.inf

    # ------------------------------------------------------------------ prediction
    def Vinv_residual(self, Sigma_g, Sigma_e, B: np.ndarray) -> np.ndarray:
        """V^-1 vec(Y - X B') as an (N, T) matrix, O(N r T) (the BLUP's common factor)."""
        Sg = np.asarray(Sigma_g, dtype=np.float64)
        Se = np.asarray(Sigma_e, dtype=np.float64)
        Res = self.Y - self.X @ B.T  # (N, T)
        U = self.dec.U
        URes = U.T @ Res
        D = self.S[:, None, None] * Sg + Se
        rot = np.linalg.solve(D, URes[..., None])[..., 0]
        out = U @ rot
        if self.n_null:
            # Complement: covariance Sigma_e, so V^-1 acts there as Sigma_e^-1 per sample.
            out = out + (Res - U @ URes) @ np.linalg.inv(Se)
        return out


def dense_multitrait_loglik(Y, X, K, Sigma_g, Sigma_e, reml: bool = True) -> float:
    """Reference log-likelihood with the NT x NT covariance formed and factorised, O((NT)^3).

    vec(Y) is trait-major (all samples of trait 1, then trait 2...), so
    V = kron(Sigma_g, K) + kron(Sigma_e, I) and the design is kron(I_T, X). Exists to check
    :class:`MultiTraitSpectral`.
    """
    from scipy import linalg, stats

    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    N, T = Y.shape
    M = X.shape[1]
    V = np.kron(Sigma_g, K) + np.kron(Sigma_e, np.eye(N))
    XT = np.kron(np.eye(T), X)
    y = Y.T.reshape(-1)
    cf = linalg.cho_factor(V, lower=True)
    ViX = linalg.cho_solve(cf, XT)
    XtViX = XT.T @ ViX
    beta = np.linalg.solve(XtViX, ViX.T @ y)
    mean = XT @ beta
    ll = float(stats.multivariate_normal(mean=mean, cov=V, allow_singular=False).logpdf(y))
    if not reml:
        return ll
    return ll + 0.5 * (M * T * LOG2PI - np.linalg.slogdet(XtViX)[1]
                       + T * np.linalg.slogdet(X.T @ X)[1])
