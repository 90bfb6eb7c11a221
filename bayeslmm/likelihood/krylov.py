"""Matrix-free REML and posterior of h2: one block-Lanczos run serves every h2.

With the covariates projected out (Q an orthonormal basis of X, n = N - M), the REML
likelihood (notes 4.3.2) is that of y_c ~ N(0, Vp H_c), H_c(h2) = h2 K_c + (1 - h2) I on the
residual space, and profiling Vp = y_c' H_c^-1 y_c / n gives

    l(h2) = -1/2 [ n log(2 pi) + n log(y_c' H_c^-1 y_c / n) + log|H_c(h2)| + n ],

equal to :meth:`bayeslmm.likelihood.single.SpectralLMM.profile` (log|H| + log|X'H^-1X| - log|X'X|
= log|H_c|). H_c(h2) is a polynomial of degree 1 in K_c, so its Krylov spaces do not depend
on h2: one block-Lanczos run on K_c started at [y_c, z_1, ..., z_m] (Rademacher probes,
seeded) gives T = B'K_cB = W diag(theta) W' and, for every h2 at once,

* y_c' H_c^-1 y_c ~= sum_l (W_l' c_y)^2 / (h2 theta_l + 1 - h2), the block-CG (Galerkin)
  solve, exact once the space holds y's component of the spectrum (its change over the
  last Lanczos step is reported);
* log|H_c| by stochastic Lanczos quadrature (Ubaru, Chen and Saad 2017; for REML, Border and
  Becker 2019), with the top Ritz pairs deflated (population structure dominates the top
  of a GRM's spectrum and the variance of a Hutchinson estimate) and a linear control
  variate whose trace is known exactly (tr(D) and tr(D K D)):

      log|H_c| ~= sum_top f(theta_l) + a (n - k) + b tr(D K D)
                  + mean_i sum_{l not top} [f(theta_l) - a - b theta_l] (W_l' c_i)^2,

  f(t) = log(h2 t + 1 - h2), D the projector off span(X, top Ritz vectors), (a, b) the
  tangent of f at the mean eigenvalue of D K D. Its Monte Carlo error is estimated from
  independent probe batches and propagated to h2 and the posterior by a jackknife over the
  batches.
"""

from __future__ import annotations

import numpy as np

from bayeslmm.covariance.lanczos import Lanczos
from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI
from bayeslmm.likelihood.single import Profile, SpectralLMM

__all__ = ["H2_MAX", "KrylovLMM"]

H2_MAX = 1.0 - 1e-5


class KrylovLMM(SpectralLMM):
    """The one-kernel REML model profiled over Vp, evaluated from one Lanczos run.

    Offers ``profile(h2)`` (the interface :func:`bayeslmm.bayes.posterior_h2_quadrature`
    integrates) with ``log|H_c|`` from deflated SLQ; ``profile_batches`` gives the
    leave-one-batch-out versions used for the Monte Carlo error. Only the profiled
    likelihood is available (no GLS beta: X is projected out).

    Parameters
    ----------
    lanczos : Lanczos
        Run started at ``[y_c, z_1..z_m]``.
    y, X : ndarray
        Phenotype and covariates (for the priors' scaling and the constants).
    trace_Kc : float
        tr(K_c) = tr((I - QQ') K (I - QQ')), exact.
    n_deflate : int
        At most this many top Ritz pairs are deflated (those with relative residual below
        ``deflate_tol``).
    n_batches : int
        Probe batches for the Monte Carlo error.
    """

    def __init__(self, lanczos: Lanczos, y: np.ndarray, X: np.ndarray, trace_Kc: float, *,
                 n_deflate: int = 50, deflate_tol: float = 1e-6, n_batches: int = 10):
        self.lanczos = lanczos
        self.y = np.asarray(y, dtype=np.float64)
        self.X = np.asarray(X, dtype=np.float64)
        self.N, self.M = self.X.shape
        self.n = self.N - self.M
        self.logdet_XtX = float(np.linalg.slogdet(self.X.T @ self.X)[1])
        th, Wt = lanczos.theta, lanczos.W
        self.theta = th
        coords = Wt.T @ lanczos.start  # (d, b): starting vectors in the Ritz basis
        self.wy = coords[:, 0] ** 2
        order = np.argsort(th)[::-1]
        ok = lanczos.residual[order] <= deflate_tol * max(th[order[0]], 1e-300)
        # Deflate the leading run of converged Ritz pairs only (a converged pair inside the
        # bulk would not lower the variance and its complement would be less accurate).
        k = int(np.argmin(ok)) if not ok.all() else ok.size
        k = min(k, n_deflate, self.n)
        top = np.zeros(th.size, dtype=bool)
        top[order[:k]] = True
        self.top = top
        self.k = k
        self.wz = coords[:, 1:] ** 2
        self.wz[top] = 0.0
        self.m = self.wz.shape[1]
        if self.m < 2:
            raise InputError("SLQ needs at least 2 probes")
        self.trace_D = float(self.n - k)
        self.trace_DKD = float(trace_Kc - th[top].sum())
        # All of the spectrum deflated (an exhausted Krylov space): nothing stochastic left.
        self.lam_bar = self.trace_DKD / self.trace_D if self.trace_D > 0 else 1.0
        nb = max(2, min(n_batches, self.m))
        self.batches = np.array_split(np.arange(self.m), nb)
        #: probe batch left out of every estimate (the jackknife sets it on a copy)
        self.drop_batch: int | None = None

    # ------------------------------------------------------------------ pieces
    def _f(self, h2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(h2[:, None] * self.theta[None, :] + (1.0 - h2)[:, None])

    def logdet_probes(self, h2) -> tuple[np.ndarray, np.ndarray]:
        """Deflated-part SLQ terms: the exact part (G,) and per-probe terms (G, m)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        F = self._f(h2)
        b = h2 / (h2 * self.lam_bar + 1.0 - h2)
        a = np.log(h2 * self.lam_bar + 1.0 - h2) - b * self.lam_bar
        exact = (np.where(self.top[None, :], F, 0.0).sum(axis=1) + a * self.trace_D
                 + b * self.trace_DKD)
        R = np.where(self.top[None, :], 0.0, F - a[:, None] - b[:, None] * self.theta[None])
        return exact, R @ self.wz

    def logdet(self, h2, drop_batch: int | None = None) -> np.ndarray:
        """SLQ estimate of log|H_c(h2)| (all probes, or all but one batch)."""
        exact, per = self.logdet_probes(h2)
        drop_batch = self.drop_batch if drop_batch is None else drop_batch
        if drop_batch is not None:
            per = np.delete(per, self.batches[drop_batch], axis=1)
        return exact + per.mean(axis=1)

    def logdet_se(self, h2) -> np.ndarray:
        """Monte Carlo standard error of :meth:`logdet` from the batch means."""
        _, per = self.logdet_probes(h2)
        means = np.stack([per[:, b].mean(axis=1) for b in self.batches], axis=1)
        return means.std(axis=1, ddof=1) / np.sqrt(means.shape[1])

    def yHy(self, h2) -> np.ndarray:
        """y_c' H_c^-1 y_c (Galerkin solve in the Krylov space)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        with np.errstate(divide="ignore"):
            return (self.wy[None, :] / (h2[:, None] * self.theta[None, :]
                                        + (1.0 - h2)[:, None])).sum(axis=1)

    def profile(self, h2, reml: bool = True, drop_batch: int | None = None) -> Profile:
        """REML log-likelihood profiled over Vp (and beta) at each h2 (module docstring)."""
        if not reml:
            raise InputError("the Krylov engine gives the REML likelihood only")
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        Q = self.yHy(h2)
        with np.errstate(divide="ignore", invalid="ignore"):
            Vp = Q / self.n
            ll = -0.5 * (self.n * (LOG2PI + np.log(Vp)) + self.logdet(h2, drop_batch) + self.n)
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        return Profile(h2=h2, loglik=ll, Vp=Vp, beta=np.full((h2.size, self.M), np.nan))

    def loglik2(self, h2: float, Vp: float) -> float:
        """REML log-likelihood at (h2, Vp), not profiled."""
        ld = float(self.logdet(h2)[0])
        q = float(self.yHy(h2)[0])
        return -0.5 * (self.n * (LOG2PI + np.log(Vp)) + ld + q / Vp)

    def solve_y(self, h2: float) -> np.ndarray:
        """H_c(h2)^-1 y_c as an N-vector (orthogonal to X), from the Krylov basis."""
        lz = self.lanczos
        d = 1.0 / (h2 * self.theta + 1.0 - h2)
        return lz.basis @ (lz.W @ (d * (lz.W.T @ lz.start[:, 0])))

    def gls(self, *args, **kwargs):
        raise InputError("the Krylov engine projects X out; it has no GLS beta")

    def loglik(self, *args, **kwargs):
        raise InputError("use KrylovLMM.profile or loglik2")

    def information(self, *args, **kwargs):
        raise InputError("use the curvature of KrylovLMM.profile")

    def apply_Vinv(self, *args, **kwargs):
        raise InputError("the Krylov engine holds no V^-1 for arbitrary vectors")
