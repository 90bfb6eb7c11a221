"""ML and REML log-likelihoods of the multi-trait mixed model with one shared kernel.

T traits measured on the same N samples, shared covariates X (N x M), one kernel K:

    Y = X B' + G + E,   vec(Y) ~ N(vec(X B'), Sigma_g (x) K + Sigma_e (x) I_N)

with B (T x M), Sigma_g and Sigma_e (T x T). With K = U diag(S) U' (one
:class:`~bayeslmm.covariance.decomposition.Decomposition`, shared with every other consumer),
rotating every
trait by U' makes the samples independent: eigen-index i carries the T-vector y_i = (U'Y)_i
with covariance D_i = s_i Sigma_g + Sigma_e (GEMMA's mvLMM trick). Every quantity below is
therefore a sum over i of T x T algebra, O(N T^3) per evaluation, and the complement of a
low-rank K (eigenvalue 0, N - r dimensions, covariance Sigma_e) enters only through Gram
matrices, as in :mod:`bayeslmm.covariance.decomposition`.

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

from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["MultiTraitEval", "MultiTraitSpectral", "dense_multitrait_loglik"]



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

        Sigma_g and Sigma_e are diagonalised together (GEMMA's mvLMM): with Sigma_e = L L'
        and L^-1 Sigma_g L^-T = W diag(lam) W', C = W' L^-1 turns every block into a diagonal,
        D_i^-1 = C' diag(delta_i) C with delta_ik = 1 / (s_i lam_k + 1). In the transformed
        traits C y_i the GLS problem splits into T independent ones (G_k = sum_i delta_ik
        x_i x_i'), so a whole evaluation is O(N T^2 + N M^2 T) elementwise work.

        Gradient: with u_i = D_i^-1 r_i, G_g = -1/2 sum_i s_i (D_i^-1 - u_i u_i') and the
        same with weight 1 (and the complement's Sigma_e^-1 terms) for G_e; REML adds
        1/2 sum_i w_i D_i^-1 W_i D_i^-1, W_i[a, b] = x_i' C_ab x_i, C = (X_T'V^-1X_T)^-1,
        from d log|X_T'V^-1X_T|; in the transformed traits W_i is diagonal,
        omega_ik = x_i' G_k^-1 x_i.
        """
        T, M = self.T, self.M
        Sg = np.asarray(Sigma_g, dtype=np.float64).reshape(T, T)
        Se = np.asarray(Sigma_e, dtype=np.float64).reshape(T, T)
        Le = np.linalg.cholesky(Se)  # raises LinAlgError when Sigma_e is not PD
        Lei = np.linalg.inv(Le)  # T x T (scipy's triangular solve costs ms per call here)
        lam, Wv = np.linalg.eigh(Lei @ Sg @ Lei.T)
        if lam.min() < -1e-10 * max(lam.max(), 1.0):
            raise np.linalg.LinAlgError("Sigma_g is not positive semi-definite")
        lam = np.clip(lam, 0.0, None)
        C = Wv.T @ Lei  # (T, T)
        logdet_Se = 2.0 * np.log(np.diag(Le)).sum()
        dl = self.S[:, None] * lam[None, :] + 1.0  # (r, T)
        delta = 1.0 / dl
        Yt = self.UY @ C.T  # transformed rotated traits (r, T)
        UQ = self.UQ
        Gk = np.einsum("ik,im,in->kmn", delta, UQ, UQ, optimize=True)  # (T, M, M)
        hk = (delta * Yt).T @ UQ  # (T, M)
        if self.n_null:
            cQY = self.cQY @ C.T  # (M, T)
            cYY = C @ self.cYY @ C.T
            Gk = Gk + self.cQQ[None]
            hk = hk + cQY.T
        Gi = np.linalg.inv(Gk)
        Bt = np.einsum("kmn,kn->km", Gi, hk)  # transformed-trait coefficients (T, M)
        Rt = Yt - UQ @ Bt.T
        quad = float(np.sum(delta * Rt**2))
        logdet = self.dec.rank * logdet_Se + np.log(dl).sum()
        if self.n_null:
            cRR = cYY - cQY.T @ Bt.T - Bt @ cQY + Bt @ self.cQQ @ Bt.T
            quad += float(np.trace(cRR))
            logdet += self.n_null * logdet_Se
        if reml:
            # log|X_T'V^-1X_T| = sum_k log|G_k| + 2 M log|det C|, log|det C| = -log|L|.
            logdet_A = float(np.linalg.slogdet(Gk)[1].sum()) - M * logdet_Se
            ll = -0.5 * ((self.N - M) * T * LOG2PI + logdet + quad + logdet_A)
        else:
            ll = -0.5 * (self.N * T * LOG2PI + logdet + quad)
        # Back to the traits: B_Q = C^-1 B~; then X's coordinates, X B' = Q (R B'), and the
        # part Q Q'Y taken out of Y_res added back.
        Ci = np.linalg.inv(C)
        BQ = Ci @ Bt
        B = np.linalg.solve(self.R, (BQ + self.QtY.T).T).T
        Rinv = np.linalg.inv(self.R)
        J = np.kron(Ci, Rinv)  # vec(B_X) (trait-major) from the stacked per-k coefficients
        Gblock = np.zeros((T * M, T * M))
        for k in range(T):  # T blocks of M x M: a loop over traits, not samples
            Gblock[k * M:(k + 1) * M, k * M:(k + 1) * M] = Gi[k]
        B_cov = J @ Gblock @ J.T
        if not grad:
            return MultiTraitEval(float(ll), None, None, B, B_cov)
        Ut = delta * Rt  # transformed u_i
        diag_g = self.S @ delta
        diag_e = delta.sum(axis=0)
        if reml:
            omega = np.einsum("im,kmn,in->ik", UQ, Gi, UQ, optimize=True)
            d2w = delta**2 * omega
            diag_g = diag_g - self.S @ d2w
            diag_e = diag_e - d2w.sum(axis=0)
        Hg = np.diag(diag_g) - (Ut * self.S[:, None]).T @ Ut
        He = np.diag(diag_e) - Ut.T @ Ut
        if self.n_null:
            extra = self.n_null * np.ones(T)
            if reml:
                extra = extra - np.einsum("kmn,mn->k", Gi, self.cQQ)
            He = He + np.diag(extra) - cRR
        Gg = -0.5 * C.T @ Hg @ C
        Ge = -0.5 * C.T @ He @ C
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
