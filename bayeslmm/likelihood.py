"""ML and REML log-likelihoods of the linear mixed model (notes eq. 48 and section 4.3.2).

Two implementations of the same quantities:

* the spectral one, O(N M^2) per evaluation once K = U S U' is known, vectorised over a batch
  of h2 values (used by REML, the profile CI and the quadrature posterior);
* a dense one that forms V and inverts it explicitly, O(N^3): the reference the spectral
  path is tested against, and the engine for several kernels.

All log-likelihoods are *complete*, constants included:

    l_ML   = -1/2 [ N log 2 pi + log|V| + (y - X b)' V^-1 (y - X b) ]                      (48)
    l_REML = -1/2 [ (N - M) log 2 pi + log|V| + log|X'V^-1X| - log|X'X|
                    + (y - X b)' V^-1 (y - X b) ],  b = GLS beta (49)                   (4.3.2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslmm.spectral import Decomposition, Rotated

__all__ = [
    "Profile",
    "SpectralLMM",
    "dense_loglik",
]

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class Profile:
    """Log-likelihood profiled over beta and the overall scale Vp, at a batch of h2 values.

    V = Vp H(h2) with H = h2 K + (1 - h2) I, so sigma_g2 = h2 Vp and sigma_e2 = (1 - h2) Vp.
    """

    h2: np.ndarray
    loglik: np.ndarray
    Vp: np.ndarray
    beta: np.ndarray  # (G, M)


class SpectralLMM:
    """The one-kernel model Y = X beta + g + e with y and X rotated once by K's eigenvectors.

    Parameters
    ----------
    dec : Decomposition
        Shared decomposition of K (computed once, e.g. by :func:`bayeslmm.decompose`).
    y : ndarray, shape (N,)
    X : ndarray, shape (N, M)
    """

    def __init__(self, dec: Decomposition, y: np.ndarray, X: np.ndarray):
        self.dec = dec
        self.y = np.asarray(y, dtype=np.float64)
        self.X = np.asarray(X, dtype=np.float64)
        self.N, self.M = self.X.shape
        self.ry: Rotated = dec.rotate(self.y)
        self.rX: Rotated = dec.rotate(self.X)
        self.logdet_XtX = float(np.linalg.slogdet(self.X.T @ self.X)[1])
        # Complement Gram matrices (eigenvalue-0 subspace), fixed once.
        Uy, UX = self.ry.values, self.rX.values
        self._c_XX = self.X.T @ self.X - UX.T @ UX
        self._c_Xy = self.X.T @ self.y - UX.T @ Uy
        self._c_yy = float(self.y @ self.y - Uy @ Uy)
        self.n_null = self.N - dec.rank

    # ------------------------------------------------------------------ core algebra
    def _gls(self, d: np.ndarray, d_null: np.ndarray):
        """GLS pieces for covariance diag(d) (rotated) and d_null (complement), batched.

        d : (G, r), d_null : (G,). Returns X'V^-1X (G,M,M), X'V^-1y (G,M), y'V^-1y (G,),
        log|V| (G,).
        """
        S_UX, Uy = self.rX.values, self.ry.values
        w = 1.0 / d
        with np.errstate(divide="ignore"):
            w0 = np.where(self.n_null > 0, 1.0 / d_null, 0.0)
        XtViX = np.einsum("gi,ij,ik->gjk", w, S_UX, S_UX, optimize=True)
        XtViy = (w * Uy) @ S_UX
        ytViy = w @ (Uy * Uy)
        if self.n_null:
            XtViX = XtViX + w0[:, None, None] * self._c_XX
            XtViy = XtViy + w0[:, None] * self._c_Xy
            ytViy = ytViy + w0 * self._c_yy
            with np.errstate(divide="ignore"):
                logdet = np.log(d).sum(axis=1) + self.n_null * np.log(d_null)
        else:
            logdet = np.log(d).sum(axis=1)
        return XtViX, XtViy, ytViy, logdet

    def _h(self, h2: np.ndarray):
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        d = h2[:, None] * self.dec.S[None, :] + (1.0 - h2)[:, None]
        return h2, d, 1.0 - h2

    # ------------------------------------------------------------------ profiled (h2)
    def profile(self, h2, reml: bool = True) -> Profile:
        """Log-likelihood at each h2, maximised over beta and Vp in closed form.

        With H = h2 K + (1 - h2) I and Q = y'H^-1 y - y'H^-1X (X'H^-1X)^-1 X'H^-1y, the
        scale is Vp = Q / (N - M) for REML and Q / N for ML.
        """
        h2, d, d0 = self._h(h2)
        with np.errstate(divide="ignore", invalid="ignore"):
            XtHiX, XtHiy, ytHiy, logdetH = self._gls(d, d0)
            beta = np.linalg.solve(XtHiX, XtHiy[..., None])[..., 0]
            Q = ytHiy - np.einsum("gm,gm->g", XtHiy, beta)
            n = self.N - self.M if reml else self.N
            Vp = Q / n
            ll = -0.5 * (n * (LOG2PI + np.log(Vp)) + logdetH + n)
            if reml:
                ll = ll - 0.5 * (np.linalg.slogdet(XtHiX)[1] - self.logdet_XtX)
        singular = (self.n_null > 0) & (d0 <= 0)
        ll = np.where(singular | ~np.isfinite(ll), -np.inf, ll)
        return Profile(h2=h2, loglik=ll, Vp=Vp, beta=beta)

    # ------------------------------------------------------------------ unprofiled
    def gls(self, sigma_g2: float, sigma_e2: float):
        """GLS beta (49), its covariance (X'V^-1X)^-1 and the pieces of the likelihood."""
        d = (sigma_g2 * self.dec.S + sigma_e2)[None, :]
        XtViX, XtViy, ytViy, logdet = self._gls(d, np.array([sigma_e2]))
        XtViX, XtViy = XtViX[0], XtViy[0]
        beta = np.linalg.solve(XtViX, XtViy)
        return beta, np.linalg.inv(XtViX), XtViX, float(ytViy[0]), XtViy, float(logdet[0])

    def loglik(self, sigma_g2: float, sigma_e2: float, reml: bool = True,
               beta: np.ndarray | None = None) -> float:
        """ML (48) or REML (4.3.2) log-likelihood at given variance components.

        For ML, ``beta`` defaults to the GLS estimate (49); REML does not depend on beta.
        """
        b_gls, _, XtViX, ytViy, XtViy, logdet = self.gls(sigma_g2, sigma_e2)
        if beta is None or reml:
            quad = ytViy - XtViy @ b_gls
        else:
            beta = np.asarray(beta, dtype=np.float64)
            quad = ytViy - 2 * XtViy @ beta + beta @ XtViX @ beta
        if not reml:
            return float(-0.5 * (self.N * LOG2PI + logdet + quad))
        return float(-0.5 * ((self.N - self.M) * LOG2PI + logdet + quad
                             + np.linalg.slogdet(XtViX)[1] - self.logdet_XtX))

    def apply_Vinv(self, a: np.ndarray, sigma_g2: float, sigma_e2: float) -> np.ndarray:
        """V^-1 a for a vector or matrix a of samples, O(N r) per column."""
        Ua = self.dec.U.T @ a
        w = 1.0 / (sigma_g2 * self.dec.S + sigma_e2)
        wU = Ua * (w if Ua.ndim == 1 else w[:, None])
        out = self.dec.U @ wU
        if self.n_null:
            out = out + (a - self.dec.U @ Ua) / sigma_e2
        return out

    def information(self, sigma_g2: float, sigma_e2: float, reml: bool = True,
                    kind: str = "ai") -> np.ndarray:
        """2 x 2 information matrix of (sigma_g2, sigma_e2).

        ``kind="ai"`` is the average information 1/2 y'P V_i P V_j P y that GCTA inverts for
        its standard errors; ``"fisher"`` is the expected information 1/2 tr(P V_i P V_j).
        V_g = K, V_e = I. For ML, P is replaced by V^-1.
        """
        dec = self.dec
        beta, _, XtViX, *_ = self.gls(sigma_g2, sigma_e2)
        d = sigma_g2 * dec.S + sigma_e2
        if kind == "fisher":
            # tr(P A P B) for A, B diagonal in the eigenbasis (a, b; complement a0, b0):
            # T(w^2 a b) - 2 tr(C G(w^3 a b)) + tr(C G(w^2 a) C G(w^2 b)), C = (X'V^-1X)^-1.
            w = 1.0 / d
            w0 = 1.0 / sigma_e2
            diag = [(dec.S, 0.0), (np.ones_like(dec.S), 1.0)]
            C = np.linalg.inv(XtViX)
            F = np.empty((2, 2))
            for i, (a, a0) in enumerate(diag):
                for j, (b, b0) in enumerate(diag):
                    T = np.sum(w**2 * a * b) + self.n_null * w0**2 * a0 * b0
                    if not reml:
                        F[i, j] = 0.5 * T
                        continue
                    G3 = self.rX.gram(w**3 * a * b, w0**3 * a0 * b0)
                    Ga = self.rX.gram(w**2 * a, w0**2 * a0)
                    Gb = self.rX.gram(w**2 * b, w0**2 * b0)
                    F[i, j] = 0.5 * (T - 2 * np.trace(C @ G3) + np.trace(C @ Ga @ C @ Gb))
            return F
        u = self.apply_Vinv(self.y - self.X @ beta, sigma_g2, sigma_e2)  # P y
        Ku = dec.U @ (dec.S * (dec.U.T @ u))
        W = np.column_stack([Ku, u])
        ViW = self.apply_Vinv(W, sigma_g2, sigma_e2)
        WPW = W.T @ ViW
        if reml:
            XViW = self.X.T @ ViW
            WPW = WPW - XViW.T @ np.linalg.solve(XtViX, XViW)
        return 0.5 * WPW


def dense_loglik(y, X, Ks, sigmas, sigma_e2: float, reml: bool = True,
                 beta: np.ndarray | None = None) -> float:
    """Reference log-likelihood with V = sum_k sigma_k K_k + sigma_e2 I inverted explicitly.

    O(N^3); exists to check the fast paths, and to serve several kernels.
    """
    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    N, M = X.shape
    V = sigma_e2 * np.eye(N)
    for s, K in zip(np.atleast_1d(sigmas), Ks, strict=True):
        V = V + s * np.asarray(K)
    Vinv = np.linalg.inv(V)
    logdetV = np.linalg.slogdet(V)[1]
    XtViX = X.T @ Vinv @ X
    b = np.linalg.solve(XtViX, X.T @ Vinv @ y) if (beta is None or reml) else np.asarray(beta)
    r = y - X @ b
    quad = r @ Vinv @ r
    if not reml:
        return float(-0.5 * (N * LOG2PI + logdetV + quad))
    return float(-0.5 * ((N - M) * LOG2PI + logdetV + quad + np.linalg.slogdet(XtViX)[1]
                         - np.linalg.slogdet(X.T @ X)[1]))
