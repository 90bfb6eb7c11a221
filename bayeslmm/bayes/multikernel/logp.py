"""The several-kernel marginal model's log-density over the variances, with beta integrated.

Model (notes eq. 46 with k kernels): y ~ N(X beta, V), V = sum_j sigma_j K_j + sigma_e2 I,
beta ~ N(m_0, Lambda_0^-1) (Lambda_0 = 0 for a flat prior). Given the variances beta | y is
Gaussian with precision A = X'V^-1X + Lambda_0 and mean mu = A^-1 (X'V^-1y + Lambda_0 m_0)
(notes eq. 13-14), so beta is integrated out exactly and drawn afterwards from that
conditional:

    log p(y | sigma) = l(mu) - log|A| / 2 + M/2 log(2 pi)

where l(mu) = log N(y | X mu, V) + log N(mu | m_0, Lambda_0^-1). With a proper Normal prior
this is log N(y | X m_0, V + X Lambda_0^-1 X') (the test checks it against scipy to 1e-9);
with a flat prior it is the restricted likelihood (notes 4.3.2) up to a constant.

The sampler sees t = log(sigma_1, ..., sigma_k, sigma_e2) (k + 1 numbers, whatever N and M
are). The gradient needs one factorisation of V and no derivative of it: by the envelope
theorem (the derivative of l at mu in beta is 0), with a = V^-1 (y - X mu) and B = V^-1 X,

    d log p(y | sigma) / d sigma_j = -1/2 [tr(V^-1 K_j) - a'K_j a - tr(A^-1 B'K_j B)]

(K_e = I for sigma_e2): one Cholesky and one inverse of V, then O(N^2 (M + 1)) per kernel.
The value alone needs only the Cholesky (N^3 / 3 flops).

Priors: independent priors on each sigma_j (the one-kernel builder's ``sigma_g2`` prior,
applied to every component) and on sigma_e2, or a Dirichlet prior on the variance
proportions pi = (sigma_1, ..., sigma_k, sigma_e2) / Vp with a prior on Vp. In the second
case, since the map sigma -> (Vp, pi_1..pi_k) has Jacobian Vp^-k,

    log p(sigma) = log p_Vp(Vp) + sum_j (alpha_j - 1) log sigma_j - (sum alpha - 1) log Vp
                   - log B(alpha).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, special

from bayeslmm.bayes.priors import Prior, ResolvedPriors
from bayeslmm.covariance.structures import DenseCovariance
from bayeslmm.data import LMMData
from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["MultiKernelDensity", "dlog_prior_dlog"]


_POSITIVE = ("HalfNormal", "HalfStudentT", "HalfCauchy", "InverseGamma", "Exponential",
             "Gamma", "LogNormal", "HalfFlat", "Jeffreys")


def dlog_prior_dlog(prior: Prior, x: np.ndarray) -> np.ndarray:
    """x d log p(x) / dx for a prior on a positive quantity (the derivative in log x).

    Raises
    ------
    InputError
        For families the several-kernel sampler does not cover (custom PyMC priors).
    """
    x = np.asarray(x, dtype=np.float64)
    p, f = prior.params, prior.family
    if f == "HalfNormal":
        return -x * x / p["sigma"] ** 2
    if f == "HalfStudentT":
        nu, s2 = p["nu"], p["sigma"] ** 2
        return -(nu + 1.0) * x * x / (nu * s2 + x * x)
    if f == "HalfCauchy":
        return -2.0 * x * x / (p["beta"] ** 2 + x * x)
    if f == "InverseGamma":
        return -(p["alpha"] + 1.0) + p["beta"] / x
    if f == "Exponential":
        return -p["lam"] * x
    if f == "Gamma":
        return (p["alpha"] - 1.0) - p["beta"] * x
    if f == "LogNormal":
        return -1.0 - (np.log(x) - p["mu"]) / p["sigma"] ** 2
    if f == "HalfFlat":
        return np.zeros_like(x)
    if f == "Jeffreys":
        return -np.ones_like(x)
    raise InputError(f"prior {prior} on a variance is not covered by the several-kernel "
                     f"sampler; use one of {', '.join(_POSITIVE)} (or sampler='pymc')")


def _beta_prior(pri: ResolvedPriors, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Precisions and means of beta's Normal prior; zeros (flat) when it is Flat."""
    if pri.beta_mu.size:
        return 1.0 / pri.beta_sigma**2, pri.beta_mu.astype(np.float64)
    prior = pri["beta"]
    if prior.family == "Normal":
        return (np.full(M, 1.0 / prior.params["sigma"] ** 2),
                np.full(M, prior.params.get("mu", 0.0)))
    if prior.family == "Flat":
        return np.zeros(M), np.zeros(M)
    raise InputError(f"prior {prior} on beta is not covered by the several-kernel sampler "
                     "(Normal or Flat); use sampler='pymc'")


@dataclass(frozen=True, eq=False)
class MultiKernelDensity:
    """log p(sigma | y) up to a constant, on t = log(sigma_1..sigma_k, sigma_e2).

    Build it with :meth:`of`; call :meth:`logp` (value, one Cholesky) or :meth:`logp_grad`
    (value and gradient in t). ``components`` names the kernels.
    """

    y: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    Ks: np.ndarray = field(repr=False)  # (k, N, N)
    components: tuple[str, ...]
    covariates: tuple[str, ...]
    lam: np.ndarray
    m0: np.ndarray
    priors: tuple[Prior, ...]  # k + 1: sigma_1..k, sigma_e2 (independent priors)
    dirichlet: np.ndarray | None = None  # alpha, k + 1 values
    vp_prior: Prior | None = None
    #: V(sigma) and its Cholesky factor (bayeslmm.covariance.structures owns forming and factoring
    #: V)
    cov: DenseCovariance = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "cov", DenseCovariance(tuple(self.Ks), self.components))

    @classmethod
    def of(cls, data: LMMData, pri: ResolvedPriors, *, dirichlet=None,
           vp_prior: Prior | None = None) -> MultiKernelDensity:
        """From aligned data (``bayeslmm.data.prepare``) and resolved priors.

        Parameters
        ----------
        data : LMMData
            With ``data.Ks`` the k kernels.
        pri : ResolvedPriors
            ``sigma_g2`` (each component) and ``sigma_e2`` priors, and beta's.
        dirichlet : float or sequence of k + 1 floats, optional
            Dirichlet concentration on (sigma_1, ..., sigma_k, sigma_e2) / Vp; replaces the
            independent priors. A scalar is repeated.
        vp_prior : Prior, optional
            Prior on Vp with ``dirichlet``; default HalfNormal(2.5 var(y)).
        """
        k = len(data.Ks)
        lam, m0 = _beta_prior(pri, data.M)
        priors = (pri["sigma_g2"],) * k + (pri["sigma_e2"],)
        alpha = None
        if dirichlet is not None:
            alpha = np.broadcast_to(np.asarray(dirichlet, dtype=np.float64), (k + 1,)).copy()
            if not np.all(alpha > 0):
                raise InputError(f"Dirichlet concentrations must be positive, got {alpha}")
            if vp_prior is None:
                vp_prior = Prior("HalfNormal", {"sigma": 2.5 * float(np.var(data.y, ddof=1))})
            dlog_prior_dlog(vp_prior, np.ones(1))  # fail early on an unsupported family
        else:
            for p in priors:
                dlog_prior_dlog(p, np.ones(1))
        return cls(np.ascontiguousarray(data.y, dtype=np.float64),
                   np.ascontiguousarray(data.X, dtype=np.float64),
                   np.stack([np.asarray(K, dtype=np.float64) for K in data.Ks]),
                   tuple(map(str, data.components)), tuple(map(str, data.covariates)),
                   lam, m0, priors, alpha, vp_prior)

    @property
    def k(self) -> int:
        return self.Ks.shape[0]

    @property
    def N(self) -> int:
        return self.y.shape[0]

    @property
    def M(self) -> int:
        return self.X.shape[1]

    # ------------------------------------------------------------------ pieces
    def covariance(self, sigma: np.ndarray) -> np.ndarray:
        """V = sum_j sigma_j K_j + sigma_e2 I."""
        return self.cov.matrix(sigma)

    def _factor(self, sigma: np.ndarray):
        """Cholesky of V, V^-1 [y X], A's Cholesky and mu; None where V or A is not PD."""
        c = self.cov.factor(sigma)
        if c is None:
            return None
        Vi_yX = c.solve(np.column_stack([self.y, self.X]))
        Viy, ViX = Vi_yX[:, 0], Vi_yX[:, 1:]
        A = self.X.T @ ViX + np.diag(self.lam)
        b = self.X.T @ Viy + self.lam * self.m0
        try:
            LA = linalg.cholesky(A, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        mu = linalg.cho_solve((LA, True), b, check_finite=False)
        return c, Viy, ViX, LA, mu

    def ray(self, u: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray] | None:
        """The pieces of V along the ray sigma = sigma_e2 (e^u, 1), i.e. of H(u) = V / sigma_e2
        = sum_j e^(u_j) K_j + I: (log|H|, y'P_H y, the GLS beta mu = (X'H^-1X)^-1 X'H^-1y,
        X'H^-1X), with y'P_H y = (y - X mu)'H^-1(y - X mu) formed from the residual (no
        cancellation when y has a large mean). One Cholesky of H; None where it fails.
        """
        c = self.cov.factor(np.append(np.exp(np.asarray(u, dtype=np.float64)), 1.0))
        if c is None:
            return None
        Hi_yX = c.solve(np.column_stack([self.y, self.X]))  # one pass over the factor
        a, B = Hi_yX[:, 0], Hi_yX[:, 1:]
        C = self.X.T @ B
        C = 0.5 * (C + C.T)
        try:
            mu = linalg.solve(C, self.X.T @ a, assume_a="pos", check_finite=False)
        except linalg.LinAlgError:
            return None
        r = self.y - self.X @ mu
        return c.logdet, float(r @ (a - B @ mu)), mu, C

    def loglik(self, sigma: np.ndarray) -> float:
        """log p(y | sigma) with beta integrated over its prior (see the module docstring)."""
        f = self._factor(np.asarray(sigma, dtype=np.float64))
        if f is None:
            return -np.inf
        return self._loglik(*f)

    def _loglik(self, c, Viy, ViX, LA, mu) -> float:
        return self._loglik_parts(c, Viy, ViX, LA, mu)[0]

    def _loglik_parts(self, c, Viy, ViX, LA, mu) -> tuple[float, float]:
        """(log p(y | sigma) with beta integrated, log N(y | X mu, V))."""
        r = self.y - self.X @ mu
        a = Viy - ViX @ mu  # V^-1 r
        logdetV = c.logdet
        ll_mu = float(-0.5 * (self.N * LOG2PI + logdetV + r @ a))
        return (ll_mu + self.log_prior_beta(mu) - float(np.sum(np.log(np.diag(LA))))
                + 0.5 * self.M * LOG2PI), ll_mu

    def log_prior_beta(self, beta: np.ndarray) -> np.ndarray:
        """log N(beta | m0, Lambda_0^-1) over the coordinates with a Normal prior (the
        last axis); 0 for flat ones."""
        pos = self.lam > 0
        lam = np.where(pos, self.lam, 1.0)
        lp = np.where(pos, -0.5 * LOG2PI + 0.5 * np.log(lam)
                      - 0.5 * self.lam * (beta - self.m0) ** 2, 0.0)
        return lp.sum(axis=-1)

    def loglik_at_beta(self, ll_mu: float, mu: np.ndarray, L: np.ndarray,
                       beta: np.ndarray) -> np.ndarray:
        """log N(y | X beta, V) from the pieces at mu, without V: with d = beta - mu,
        X'V^-1X = A - Lambda_0 and X'V^-1 (y - X mu) = Lambda_0 (mu - m_0) (since A mu = b),

            log N(y | X beta, V) = log N(y | X mu, V) + d'Lambda_0 (mu - m_0)
                                   - d'(A - Lambda_0) d / 2.
        """
        d = np.atleast_2d(beta) - mu
        Ld = d @ L  # rows d'L, |d'L|^2 = d'A d
        return (ll_mu + d @ (self.lam * (mu - self.m0)) - 0.5 * np.sum(Ld * Ld, axis=1)
                + 0.5 * np.sum(self.lam * d * d, axis=1))

    def log_prior(self, t: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(sigma) + sum(t) (the log transform's Jacobian) and its gradient in t."""
        t = np.asarray(t, dtype=np.float64)
        s = np.exp(t)
        if self.dirichlet is None:
            lp = sum(float(p.logpdf(si)) for p, si in zip(self.priors, s, strict=True))
            g = np.array([float(dlog_prior_dlog(p, si))
                          for p, si in zip(self.priors, s, strict=True)])
            return lp + float(t.sum()), g + 1.0
        alpha = self.dirichlet
        Vp = float(s.sum())
        a0 = float(alpha.sum())
        lp = (float(self.vp_prior.logpdf(Vp)) + float(np.sum((alpha - 1.0) * t))
              - (a0 - 1.0) * np.log(Vp) - (float(np.sum(special.gammaln(alpha)))
                                           - float(special.gammaln(a0))))
        dvp = float(dlog_prior_dlog(self.vp_prior, Vp))
        g = s / Vp * dvp + (alpha - 1.0) - (a0 - 1.0) * s / Vp
        return lp + float(t.sum()), g + 1.0

    def log_prior_values(self, T: np.ndarray) -> np.ndarray:
        """:meth:`log_prior`'s value (with the Jacobian sum(t)) for an array of points,
        t on the last axis; -inf outside the support."""
        T = np.asarray(T, dtype=np.float64)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            s = np.exp(T)
            if self.dirichlet is None:
                lp = sum(p.logpdf(s[..., j]) for j, p in enumerate(self.priors))
            else:
                alpha = self.dirichlet
                a0 = float(alpha.sum())
                Vp = s.sum(axis=-1)
                lp = (self.vp_prior.logpdf(Vp) + T @ (alpha - 1.0) - (a0 - 1.0) * np.log(Vp)
                      - (float(np.sum(special.gammaln(alpha))) - float(special.gammaln(a0))))
            out = lp + T.sum(axis=-1)
        return np.where(np.isnan(out), -np.inf, out)

    # ------------------------------------------------------------------ density
    def logp(self, t: np.ndarray) -> float:
        """log p(t | y) up to a constant: log-likelihood + log prior + log Jacobian."""
        t = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(np.abs(t) > 700):
            return -np.inf
        lp, _ = self.log_prior(t)
        if not np.isfinite(lp):
            return -np.inf
        return self.loglik(np.exp(t)) + lp

    def logp_grad(self, t: np.ndarray) -> tuple[float, np.ndarray]:
        """(log p(t | y), its gradient in t); (-inf, nan) outside the support."""
        t = np.asarray(t, dtype=np.float64)
        nan = np.full(t.shape, np.nan)
        if not np.all(np.isfinite(t)) or np.any(np.abs(t) > 700):
            return -np.inf, nan
        s = np.exp(t)
        f = self._factor(s)
        if f is None:
            return -np.inf, nan
        c, Viy, ViX, LA, mu = f
        ll = self._loglik(*f)
        a = Viy - ViX @ mu
        Vi = c.inverse()
        Ainv = linalg.cho_solve((LA, True), np.eye(self.M), check_finite=False)
        g = np.empty(self.k + 1)
        for j in range(self.k):
            K = self.Ks[j]
            KB = K @ ViX
            g[j] = -0.5 * (np.sum(Vi * K) - a @ (K @ a) - np.sum(Ainv * (ViX.T @ KB)))
        g[-1] = -0.5 * (np.trace(Vi) - a @ a - np.sum(Ainv * (ViX.T @ ViX)))
        lp, gp = self.log_prior(t)
        return ll + lp, g * s + gp

    # ------------------------------------------------------------------ beta
    def logp_beta(self, t: np.ndarray):
        """(log p(t | y), mu, L, log N(y | X mu, V)) with beta | sigma, y ~ N(mu, A^-1),
        A = L L' (notes eq. 13-14): the value and beta's conditional from one Cholesky of V.
        """
        t = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(np.abs(t) > 700):
            return -np.inf, None, None, -np.inf
        lp, _ = self.log_prior(t)
        f = self._factor(np.exp(t)) if np.isfinite(lp) else None
        if f is None:
            return -np.inf, None, None, -np.inf
        ll, ll_mu = self._loglik_parts(*f)
        return ll + lp, f[4], f[3], ll_mu
