"""ML and REML log-likelihoods of the linear mixed model (notes eq. 48 and section 4.3.2).

The models here combine the phenotype and the covariates with a covariance object
(:mod:`bayeslmm.covariance.structures`), the only place that knows how V is represented:

* :class:`SpectralLMM`: one kernel, O(N M^2) per evaluation once K = U S U' is known,
  vectorised over a batch of h2 values (REML, the profile CI, the quadrature posterior);
* :class:`DenseLMM`: several kernels, V factorised by Cholesky at each parameter value,
  with the score, average-information and Fisher matrices of GCTA's algorithms;
* :func:`dense_loglik`: V formed and inverted explicitly, O(N^3): the reference the fast
  paths are tested against.

Both models work on the residual space of X (notes 4.3.2): with X = Q R and
y_r = (I - QQ') y, y'Py = y_r'P y_r and log|X'V^-1X| - log|X'X| = log|Q'V^-1Q|, so adding
anything in span(X) to y or reparametrising X leaves REML unchanged to rounding.

All log-likelihoods are *complete*, constants included:

    l_ML   = -1/2 [ N log 2 pi + log|V| + (y - X b)' V^-1 (y - X b) ]                      (48)
    l_REML = -1/2 [ (N - M) log 2 pi + log|V| + log|X'V^-1X| - log|X'X|
                    + (y - X b)' V^-1 (y - X b) ],  b = GLS beta (49)                   (4.3.2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.covariance.structures import (
    Covariates,
    DenseCovariance,
    Rotated,
    SpectralCovariance,
)
from bayeslmm.errors import KernelError
from bayeslmm.likelihood.constants import LOG2PI

__all__ = [
    "GLS",
    "LOG2PI",
    "DenseLMM",
    "Profile",
    "SpectralLMM",
    "dense_loglik",
]



@dataclass(frozen=True)
class Profile:
    """Log-likelihood profiled over beta and the overall scale Vp, at a batch of h2 values.

    V = Vp H(h2) with H = h2 K/c + (1 - h2) I (c = ``scale``, 1 unless asked), so
    sigma_g2 = h2 Vp / c and sigma_e2 = (1 - h2) Vp.
    """

    h2: np.ndarray
    loglik: np.ndarray
    Vp: np.ndarray
    beta: np.ndarray  # (G, M)


@dataclass(frozen=True)
class GLS:
    """The GLS fit at given variance components (notes eq. 49, 54).

    Attributes
    ----------
    beta, beta_cov : the BLUE and (X'V^-1X)^-1, on X's scale.
    Py : P y = V^-1 (y - X beta), the REML projection of y.
    quad : y'Py.
    logdet_V : log|V|.
    logdet_QtViQ : log|X'V^-1X| - log|X'X|.
    """

    beta: np.ndarray
    beta_cov: np.ndarray
    Py: np.ndarray
    quad: float
    logdet_V: float
    logdet_QtViQ: float


def _loglik(N: int, M: int, reml: bool, logdet_V, quad, logdet_QtViQ):
    if not reml:
        return -0.5 * (N * LOG2PI + logdet_V + quad)
    return -0.5 * ((N - M) * LOG2PI + logdet_V + quad + logdet_QtViQ)


class _ResidualSpace:
    """y and X reduced to what REML sees: Q, y_r = (I - QQ')y and a = Q'y."""

    def __init__(self, y: np.ndarray, X: np.ndarray):
        self.y = np.asarray(y, dtype=np.float64)
        self.X = np.asarray(X, dtype=np.float64)
        self.N, self.M = self.X.shape
        self.covariates = Covariates.of(self.X)
        self.y_r = self.covariates.residualize(self.y)
        self.a = self.covariates.Q.T @ self.y
        self.logdet_XtX = self.covariates.logdet_XtX

    def beta_from(self, b_r: np.ndarray) -> np.ndarray:
        """beta on X's scale from the GLS coefficient of y_r on Q: X beta = Q (a + b_r)."""
        return self.covariates.to_X_scale(self.a + b_r)


class SpectralLMM(_ResidualSpace):
    """The one-kernel model Y = X beta + g + e on a :class:`SpectralCovariance`.

    Parameters
    ----------
    dec : Decomposition or SpectralCovariance
        Shared decomposition of K (computed once, e.g. by :func:`bayeslmm.decompose`).
    y : ndarray, shape (N,)
    X : ndarray, shape (N, M)
    """

    def __init__(self, dec: Decomposition | SpectralCovariance, y: np.ndarray, X: np.ndarray):
        super().__init__(y, X)
        self.cov = dec if isinstance(dec, SpectralCovariance) else SpectralCovariance(dec)
        self.dec = self.cov.dec
        self.ry: Rotated = self.cov.rotate(self.y_r)
        self.rQ: Rotated = self.cov.rotate(self.covariates.Q)
        self.n_null = self.cov.n_null

    # ------------------------------------------------------------------ core algebra
    def restricted(self, w: np.ndarray, w0: np.ndarray):
        """Q'V^-1Q (G,M,M), Q'V^-1y_r (G,M), y_r'V^-1y_r (G,) for V^-1 = diag(w, w0)."""
        QtViQ = self.rQ.gram(w, w0)
        Qtviy = self.rQ.gram(w, w0, self.ry)
        yViy = self.ry.gram(w, w0)
        return QtViQ, Qtviy, yViy

    # ------------------------------------------------------------------ profiled (h2)
    def profile(self, h2, reml: bool = True, scale: float = 1.0) -> Profile:
        """Log-likelihood at each h2, maximised over beta and Vp in closed form.

        With H = h2 K/c + (1 - h2) I (c = ``scale``) and Q_y = y_r'H^-1y_r -
        y_r'H^-1Q (Q'H^-1Q)^-1 Q'H^-1y_r (= y'Py for V = H), the scale is
        Vp = Q_y / (N - M) for REML and Q_y / N for ML.
        """
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        sg, se = h2 / scale, 1.0 - h2
        with np.errstate(divide="ignore", invalid="ignore"):
            w, w0 = self.cov.weights(sg, se)
            logdetH = self.cov.logdets(sg, se)
            QtHiQ, QtHiy, yHiy = self.restricted(w, w0)
            b_r = np.linalg.solve(QtHiQ, QtHiy[..., None])[..., 0]
            Qy = yHiy - np.einsum("gm,gm->g", QtHiy, b_r)
            n = self.N - self.M if reml else self.N
            Vp = Qy / n
            ll = -0.5 * (n * (LOG2PI + np.log(Vp)) + logdetH + n)
            if reml:
                ll = ll - 0.5 * np.linalg.slogdet(QtHiQ)[1]
        singular = (self.n_null > 0) & (se <= 0)
        bad = singular | ~np.isfinite(ll) | (np.min(w, axis=1) <= 0)
        ll = np.where(bad, -np.inf, ll)
        beta = self.beta_from(np.where(np.isfinite(b_r), b_r, 0.0))
        return Profile(h2=h2, loglik=ll, Vp=Vp, beta=beta)

    def profile_slope(self, h2: float, reml: bool = True, scale: float = 1.0) -> float:
        """d l_profile / d h2 in closed form (root of it = the optimum, to rounding).

        With H = h2 K/c + (1 - h2) I, dH/dh2 = E = K/c - I (diagonal e = S/c - 1 in the
        eigenbasis, -1 on the complement) and r = y_r - Q b:
        dl/dh2 = -1/2 [ -n r'H^-1 E H^-1 r / Q_y + tr(H^-1 E)
                         - tr((Q'H^-1Q)^-1 Q'H^-1 E H^-1 Q) ]   (the last term for REML).
        Brent on the profile stops where the likelihood is flat to rounding, which moves
        the optimum by ~1e-8 from run to run; the slope's root is well conditioned.
        """
        sg, se = h2 / scale, 1.0 - h2
        w, w0 = (v[0] for v in self.cov.weights(sg, se))
        e, e0 = self.dec.S / scale - 1.0, -1.0
        QtHiQ, QtHiy, yHiy = self.restricted(w, w0)
        C = np.linalg.inv(QtHiQ)
        b = C @ QtHiy
        Qy = yHiy - QtHiy @ b
        we, we0 = w * w * e, w0 * w0 * e0
        GQ = self.rQ.gram(we, we0)
        rEr = self.ry.gram(we, we0) - 2 * b @ self.rQ.gram(we, we0, self.ry) + b @ GQ @ b
        tr = np.sum(w * e) + self.n_null * w0 * e0
        n = self.N - self.M if reml else self.N
        slope = -0.5 * (-n * rEr / Qy + tr)
        if reml:
            slope += 0.5 * np.trace(C @ GQ)
        return float(slope)

    # ------------------------------------------------------------------ unprofiled
    def gls(self, sigma_g2: float, sigma_e2: float) -> GLS:
        """GLS beta (49), its covariance (X'V^-1X)^-1 and the pieces of the likelihood."""
        w, w0 = self.cov.weights(sigma_g2, sigma_e2)
        QtViQ, Qtviy, yViy = (v[0] for v in self.restricted(w, w0))
        C_Q = np.linalg.inv(QtViQ)
        b_r = C_Q @ Qtviy
        Py = self.cov.solve(self.y_r - self.covariates.Q @ b_r, (sigma_g2, sigma_e2))
        return GLS(beta=self.beta_from(b_r), beta_cov=self.covariates.cov_to_X_scale(C_Q),
                   Py=Py, quad=float(yViy - Qtviy @ b_r),
                   logdet_V=float(self.cov.logdets(sigma_g2, sigma_e2)[0]),
                   logdet_QtViQ=float(np.linalg.slogdet(QtViQ)[1]))

    def loglik(self, sigma_g2: float, sigma_e2: float, reml: bool = True,
               beta: np.ndarray | None = None) -> float:
        """ML (48) or REML (4.3.2) log-likelihood at given variance components.

        For ML, ``beta`` defaults to the GLS estimate (49); REML does not depend on beta.
        """
        g = self.gls(sigma_g2, sigma_e2)
        quad = g.quad
        if beta is not None and not reml:
            # y - X beta = y_r + Q (a - R beta): the offset enters through a small vector.
            r = self.y_r + self.covariates.Q @ (self.a - self.covariates.R @ np.asarray(beta))
            quad = float(r @ self.cov.solve(r, (sigma_g2, sigma_e2)))
        return float(_loglik(self.N, self.M, reml, g.logdet_V, quad, g.logdet_QtViQ))

    def apply_Vinv(self, a: np.ndarray, sigma_g2: float, sigma_e2: float) -> np.ndarray:
        """V^-1 a for a vector or matrix a of samples, O(N r) per column."""
        return self.cov.solve(a, (sigma_g2, sigma_e2))

    def information(self, sigma_g2: float, sigma_e2: float, reml: bool = True,
                    kind: str = "ai") -> np.ndarray:
        """2 x 2 information matrix of (sigma_g2, sigma_e2).

        ``kind="ai"`` is the average information 1/2 y'P V_i P V_j P y that GCTA inverts for
        its standard errors; ``"fisher"`` is the expected information 1/2 tr(P V_i P V_j).
        V_g = K, V_e = I. For ML, P is replaced by V^-1.
        """
        dec, cov = self.dec, self.cov
        sigma2 = (sigma_g2, sigma_e2)
        w, w0 = (v[0] for v in cov.weights(sigma_g2, sigma_e2))
        QtViQ = self.rQ.gram(w, w0)
        if kind == "fisher":
            # tr(P A P B) for A, B diagonal in the eigenbasis (a, b; complement a0, b0):
            # T(w^2 a b) - 2 tr(C G(w^3 a b)) + tr(C G(w^2 a) C G(w^2 b)), C = (Q'V^-1Q)^-1.
            diag = [(dec.S, 0.0), (np.ones_like(dec.S), 1.0)]
            C = np.linalg.inv(QtViQ)
            F = np.empty((2, 2))
            for i, (a, a0) in enumerate(diag):
                for j, (b, b0) in enumerate(diag):
                    T = np.sum(w**2 * a * b) + self.n_null * w0**2 * a0 * b0
                    if not reml:
                        F[i, j] = 0.5 * T
                        continue
                    G3 = self.rQ.gram(w**3 * a * b, w0**3 * a0 * b0)
                    Ga = self.rQ.gram(w**2 * a, w0**2 * a0)
                    Gb = self.rQ.gram(w**2 * b, w0**2 * b0)
                    F[i, j] = 0.5 * (T - 2 * np.trace(C @ G3) + np.trace(C @ Ga @ C @ Gb))
            return F
        u = self.gls(sigma_g2, sigma_e2).Py
        W = np.column_stack([cov.apply_kernel(u), u])
        ViW = cov.solve(W, sigma2)
        WPW = W.T @ ViW
        if reml:
            QViW = self.covariates.Q.T @ ViW
            WPW = WPW - QViW.T @ np.linalg.solve(QtViQ, QViW)
        return 0.5 * WPW


class DenseLMM(_ResidualSpace):
    """Several kernels: V = sum_k sigma_k K_k + sigma_e2 I on a :class:`DenseCovariance`,
    with the pieces of GCTA's AI, Fisher-scoring and EM algorithms (O(N^3) per value)."""

    def __init__(self, cov: DenseCovariance, y: np.ndarray, X: np.ndarray, reml: bool = True):
        super().__init__(y, X)
        self.cov = cov
        self.reml = reml

    def evaluate(self, sigma2: np.ndarray, reml: bool | None = None) -> dict | None:
        """Log-likelihood, P (or V^-1 for ML), P y, beta and (X'V^-1X)^-1 at ``sigma2``;
        None where V is not positive definite. ``reml`` defaults to the model's."""
        reml = self.reml if reml is None else reml
        f = self.cov.factor(sigma2)
        if f is None:
            return None
        Q = self.covariates.Q
        Vinv = f.inverse()
        ViQ = Vinv @ Q
        QtViQ = Q.T @ ViQ
        C_Q = np.linalg.inv(QtViQ)
        b_r = C_Q @ (ViQ.T @ self.y_r)
        Py = Vinv @ (self.y_r - Q @ b_r)
        quad = float(self.y_r @ Py)
        ll = _loglik(self.N, self.M, reml, f.logdet, quad, np.linalg.slogdet(QtViQ)[1])
        P = Vinv - ViQ @ C_Q @ ViQ.T if reml else Vinv
        return {"ll": float(ll), "P": P, "Py": Py, "beta": self.beta_from(b_r),
                "C": self.covariates.cov_to_X_scale(C_Q)}

    def _A(self) -> list:
        return [*self.cov.Ks, None]  # None stands for I

    def score(self, ev) -> np.ndarray:
        """dl/dsigma_j = -1/2 [tr(P V_j) - y'P V_j P y], V_j = K_j or I."""
        Pm, Py = ev["P"], ev["Py"]
        out = []
        for A in self._A():
            if A is None:
                out.append(-0.5 * (np.trace(Pm) - Py @ Py))
            else:
                out.append(-0.5 * (np.einsum("ij,ji->", Pm, A) - Py @ A @ Py))
        return np.array(out)

    def ai(self, ev) -> np.ndarray:
        """Average information 1/2 y'P V_i P V_j P y."""
        W = np.column_stack([ev["Py"] if A is None else A @ ev["Py"] for A in self._A()])
        return 0.5 * W.T @ ev["P"] @ W

    def fisher(self, ev) -> np.ndarray:
        """Expected information 1/2 tr(P V_i P V_j)."""
        PA = [ev["P"] if A is None else ev["P"] @ A for A in self._A()]
        return 0.5 * np.array([[np.einsum("ij,ji->", a, b) for b in PA] for a in PA])

    def gls(self, *sigma2: float) -> GLS:
        """GLS at sigma2 = (sigma_1, ..., sigma_k, sigma_e2), as :meth:`SpectralLMM.gls`."""
        ev = self.evaluate(np.asarray(sigma2, dtype=np.float64), reml=True)
        if ev is None:
            raise KernelError(f"V is not positive definite at sigma2 = {list(sigma2)}")
        f = self.cov.factor(sigma2)
        Q = self.covariates.Q
        QtViQ = Q.T @ f.solve(Q)
        return GLS(beta=ev["beta"], beta_cov=ev["C"], Py=ev["Py"],
                   quad=float(self.y_r @ ev["Py"]), logdet_V=f.logdet,
                   logdet_QtViQ=float(np.linalg.slogdet(QtViQ)[1]))

    def apply_Vinv(self, a: np.ndarray, sigma2) -> np.ndarray:
        return self.cov.solve(a, sigma2)


def dense_loglik(y, X, Ks, sigmas, sigma_e2: float, reml: bool = True,
                 beta: np.ndarray | None = None) -> float:
    """Reference log-likelihood with V = sum_k sigma_k K_k + sigma_e2 I inverted explicitly.

    O(N^3), written straight from eq. (48) and (4.3.2) with no shared code: it exists to
    check the fast paths.
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
