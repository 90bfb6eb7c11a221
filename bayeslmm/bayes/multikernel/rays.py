"""The several-kernel posterior along rays: one Cholesky per ray, the scale integrated exactly.

Write the variances as sigma = sigma_e2 (e^u_1, ..., e^u_k, 1): u_j = log(sigma_j / sigma_e2)
(= -log delta_j in the notes' delta = sigma_e2 / sigma_g2) fixes a ray through the origin and
s = log sigma_e2 the position on it. Along a ray V = sigma_e2 H(u), H = sum_j e^u_j K_j + I,
so ONE Cholesky of H gives, for every s at once,

    log|V| = N s + log|H|,   y'V^-1y = y'H^-1y / sigma_e2,   X'V^-1[y X] = X'H^-1[y X] / sigma_e2

and with them the exact density of (s, beta) on the ray in O(M^3) (beta's Normal or flat
prior included). The map t = log sigma -> (s, u) has unit Jacobian (t_e = s, t_j = s + u_j),
so the density of (s, u) is :class:`~bayeslmm.bayes.multikernel.logp.MultiKernelDensity`'s
density of t at t(s, u). The expensive part of the posterior, the density of u, is only
k-dimensional; s and beta are drawn exactly from their conditionals.

The pieces of a ray (:meth:`MultiKernelDensity.ray`) are log|H|, the GLS residual quadratic
q = (y - X mu)'H^-1(y - X mu), the GLS estimate mu and C = X'H^-1X. With C = R'R, G = R^-T
Lambda_0 R^-1 = W diag(gamma) W', e1 = W'R mu and e2 = W'R^-T Lambda_0 m_0, beta | s, u, y ~
N(mu_s, A^-1) with A = C / sigma_e2 + Lambda_0 = R'W diag(1 / sigma_e2 + gamma) W'R (notes eq.
13-14) and beta's integral (the module docstring of :mod:`~bayeslmm.bayes.multikernel.logp`)
becomes, with sigma = sigma_e2,

    log p(y | s, u) = c(u) - [N s + q / sigma + sum_i (gamma_i e1_i^2 - 2 e1_i e2_i
                      - sigma e2_i^2) / (1 + sigma gamma_i)] / 2 + M s / 2
                      - sum_i log(1 + sigma gamma_i) / 2,
    c(u) = -[N log 2 pi + log|H| + m_0'Lambda_0 m_0 + log|C|] / 2
           + sum_{Normal} log(lambda_i / 2 pi) / 2 + M log(2 pi) / 2,

O(M) per value of s (no cancellation: the flat directions, gamma_i = 0, contribute 0
exactly). The s-integral log p(u | y) = log int exp(log p(y | s, u) + log p(t(s, u))) ds is a
trapezoid sum on a fine grid around the conditional mode of s (a smooth, log-concave-like
integrand: the trapezoid rule is spectrally accurate), and s | u is drawn by inverting the
piecewise linear interpolant of its density on an 8x finer grid (its variance is then exact to
about 4e-4, relative).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["Rays", "RayTerms", "draw_scale_and_beta", "log_integrand", "log_marginal",
           "loglik_at", "rays_at", "terms_of"]

COARSE_NODES = 25  # first search for the conditional mode of s: +- 12 sd0, spacing sd0
NODES = 33  # the integration grid: mode +- HALF_WIDTH local SDs of s | u (spacing 0.5 SD)
HALF_WIDTH = 8.0
REFINE = 8  # s | u is drawn on an 8x finer grid (cubic spline of log f): variance error
#             ~ (spacing / SD)^2 / 12 < 4e-4
TAIL_DROP = 25.0  # the integrand at the grid's ends must be this far below its maximum
CHUNK = 512  # rays per block: bounds the (rays x nodes x M) temporaries to a few MB


@dataclass(frozen=True)
class Rays:
    """The pieces of n rays (batched): u (n, k), log|H| (n,), q (n,), mu (n, M), C (n, M, M).
    ``ok`` is False where H was not positive definite (those rows hold NaN)."""

    u: np.ndarray
    logdet: np.ndarray
    q: np.ndarray
    mu: np.ndarray
    C: np.ndarray
    ok: np.ndarray

    def __len__(self) -> int:
        return self.u.shape[0]

    def take(self, idx) -> Rays:
        return Rays(self.u[idx], self.logdet[idx], self.q[idx], self.mu[idx], self.C[idx],
                    self.ok[idx])

    @staticmethod
    def concat(parts: list[Rays]) -> Rays:
        return Rays(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                      ("u", "logdet", "q", "mu", "C", "ok")))


def rays_at(density: MultiKernelDensity, U: np.ndarray) -> Rays:
    """The pieces at each row of U (one Cholesky of H each: LAPACK does the work)."""
    U = np.atleast_2d(np.asarray(U, dtype=np.float64))
    n, M = U.shape[0], density.M
    logdet, q = np.full(n, np.nan), np.full(n, np.nan)
    mu, C = np.full((n, M), np.nan), np.full((n, M, M), np.nan)
    ok = np.zeros(n, dtype=bool)
    for i, u in enumerate(U):
        if not np.all(np.isfinite(u)) or np.any(np.abs(u) > 300):
            continue
        r = density.ray(u)
        if r is None:
            continue
        logdet[i], q[i], mu[i], C[i] = r
        ok[i] = True
    return Rays(U, logdet, q, mu, C, ok)


@dataclass(frozen=True)
class RayTerms:
    """What the s-integral and the draws need per ray (module docstring): the constant c(u),
    gamma, e1, e2 (n, M) and T = R^-1 W (n, M, M), beta = T (D^-1 (e1 / sigma + e2) +
    D^-1/2 z) with D = diag(1 / sigma + gamma)."""

    const: np.ndarray
    gamma: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    T: np.ndarray
    ok: np.ndarray

    def take(self, idx) -> RayTerms:
        return RayTerms(self.const[idx], self.gamma[idx], self.e1[idx], self.e2[idx],
                        self.T[idx], self.ok[idx])


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def terms_of(density: MultiKernelDensity, rays: Rays) -> RayTerms:
    """:class:`RayTerms` of every ray, batched O(M^3) linear algebra."""
    n, M = len(rays), density.M
    ok = rays.ok & np.isfinite(rays.q) & (rays.q > 0)
    C = np.where(ok[:, None, None], rays.C, np.eye(M))
    try:
        L = np.linalg.cholesky(C)  # C = L L', R = L'
    except np.linalg.LinAlgError:
        L = np.empty_like(C)
        for i in range(n):
            try:
                L[i] = np.linalg.cholesky(C[i])
            except np.linalg.LinAlgError:
                L[i] = np.eye(M)
                ok[i] = False
    Li = np.linalg.inv(L)
    lam = density.lam
    G = (Li * lam[None, None, :]) @ np.swapaxes(Li, 1, 2)
    gamma, W = np.linalg.eigh(0.5 * (G + np.swapaxes(G, 1, 2)))
    gamma = np.maximum(gamma, 0.0)
    mu = np.where(ok[:, None], rays.mu, 0.0)
    Rmu = np.einsum("nji,nj->ni", L, mu)  # R mu = L' mu
    e1 = np.einsum("nji,nj->ni", W, Rmu)
    e2 = np.einsum("nji,nj->ni", W, Li @ (lam * density.m0))
    T = np.swapaxes(Li, 1, 2) @ W
    pos = lam > 0
    logdetC = 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
    const = (-0.5 * (density.N * LOG2PI + rays.logdet + float(density.m0 @ (lam * density.m0))
                     + logdetC)
             + 0.5 * float(np.sum(np.log(lam[pos]) - LOG2PI)) + 0.5 * M * LOG2PI)
    const = np.where(ok, const, -np.inf)
    return RayTerms(const, gamma, e1, e2, T, ok)


def log_integrand(density: MultiKernelDensity, rays: Rays, terms: RayTerms, S: np.ndarray
                  ) -> np.ndarray:
    """log p(y | s, u) + log p(t(s, u)) - c(u) at S (n, G): rows are rays."""
    N, M = density.N, density.M
    q = np.where(terms.ok, rays.q, 1.0)[:, None]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sig = np.exp(S)
        g = terms.gamma[:, None, :]
        e1, e2 = terms.e1[:, None, :], terms.e2[:, None, :]
        sg = sig[..., None] * g
        quad = np.sum((g * e1 * e1 - 2.0 * e1 * e2 - sig[..., None] * e2 * e2) / (1.0 + sg),
                      axis=-1)
        out = (-0.5 * (N * S + q * np.exp(-S) + quad) + 0.5 * M * S
               - 0.5 * np.sum(np.log1p(sg), axis=-1))
        u = np.where(terms.ok[:, None], rays.u, 0.0)
        T = np.concatenate([S[..., None] + u[:, None, :], S[..., None]], axis=-1)
        out = out + density.log_prior_values(T)
    return np.where(np.isfinite(out), out, -np.inf)


def _scale_grid(density: MultiKernelDensity, rays: Rays, terms: RayTerms
                ) -> tuple[np.ndarray, np.ndarray]:
    """The integration grid of s for each ray, (n, NODES), and log f on it.

    The conditional of sigma_e2 given u is close to an inverse gamma with shape (N - M) / 2
    (the likelihood's part with beta flat), so s is near log(q / (N - M)) with SD about sd0
    = sqrt(2 / (N - M)). The grid spans +- 8 SDs around that guess; it is re-centred,
    re-scaled and widened until the integrand falls by TAIL_DROP at both ends and the
    spacing resolves its curvature. Rays where that guess is far off (a prior that
    dominates) are first searched on a coarse grid (25 nodes, +- 12 sd0, moved while the
    maximum sits at an edge).
    """
    n = len(rays)
    rows = np.arange(n)
    nu = max(density.N - density.M, 1)
    sd0 = np.sqrt(2.0 / nu)
    q = np.where(terms.ok, rays.q, 1.0)
    centre = np.log(q / nu)
    sd = np.full(n, sd0)
    xf = np.linspace(-HALF_WIDTH, HALF_WIDTH, NODES)
    S = centre[:, None] + sd[:, None] * xf[None, :]
    f = log_integrand(density, rays, terms, S)
    j = np.argmax(f, axis=1)
    lost = (j == 0) | (j == NODES - 1) | ~np.isfinite(f[rows, j])
    if lost.any():  # the guess is far off: a coarse search for the mode on those rays
        sub = np.flatnonzero(lost)
        r, t = rays.take(sub), terms.take(sub)
        c = centre[sub]
        x = np.linspace(-12.0, 12.0, COARSE_NODES) * sd0
        for _ in range(8):
            Sc = c[:, None] + x[None, :]
            fc = log_integrand(density, r, t, Sc)
            jc = np.argmax(fc, axis=1)
            c = Sc[np.arange(sub.size), jc]
            if not (((jc == 0) | (jc == x.size - 1)) & np.isfinite(fc.max(axis=1))).any():
                break
        c, sdc = _vertex(fc, Sc, jc, c, np.full(sub.size, sd0))
        centre[sub], sd[sub] = c, sdc
        S[sub] = c[:, None] + sdc[:, None] * xf[None, :]
        f[sub] = log_integrand(density, r, t, S[sub])
    width = np.ones(n)
    todo = np.ones(n, dtype=bool)
    for _ in range(8):
        j = np.argmax(f, axis=1)
        top = f[rows, j]
        live = np.isfinite(top)
        c2, sd2 = _vertex(f, S, j, centre, sd * width)
        short = (np.maximum(f[:, 0], f[:, -1]) > top - TAIL_DROP) & live
        scale = sd2 / (sd * width)
        redo = todo & (short | (live & ((scale < 0.5) | (scale > 2.0))))
        if not redo.any():
            break
        centre = np.where(redo, c2, centre)
        sd = np.where(redo & ~short, sd2, sd)
        width = np.where(redo & short, 2.0 * width, width)
        sub = np.flatnonzero(redo)
        S[sub] = centre[sub, None] + (sd * width)[sub, None] * xf[None, :]
        f[sub] = log_integrand(density, rays.take(sub), terms.take(sub), S[sub])
        todo = redo
    return S, f


def _vertex(f, S, j, centre, sd):
    """Mode and SD of the parabola through the maximum and its neighbours (the previous
    values where that parabola is not concave)."""
    n = f.shape[0]
    rows = np.arange(n)
    jj = np.clip(j, 1, f.shape[1] - 2)
    h = S[rows, jj + 1] - S[rows, jj]
    fm, f0, fp = f[rows, jj - 1], f[rows, jj], f[rows, jj + 1]
    curv = -(fp - 2.0 * f0 + fm) / h**2
    good = np.isfinite(curv) & (curv > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(good, 0.5 * (fp - fm) / (h * curv), 0.0)
        sd_new = np.where(good, 1.0 / np.sqrt(np.where(good, curv, 1.0)), sd)
    return np.where(good, S[rows, jj] + np.clip(shift, -h, h), centre), sd_new


def log_marginal(density: MultiKernelDensity, rays: Rays, terms: RayTerms | None = None
                 ) -> np.ndarray:
    """log p(u | y) up to the constant that log p(t | y) omits (the s-integral by the
    trapezoid rule); -inf where H was not PD."""
    terms = terms_of(density, rays) if terms is None else terms
    if len(rays) > CHUNK:
        return np.concatenate([log_marginal(density, rays.take(sl), terms.take(sl))
                               for sl in _chunks(len(rays))])
    S, f = _scale_grid(density, rays, terms)
    top = f.max(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(f - top[:, None])
        area = np.sum(0.5 * (w[:, 1:] + w[:, :-1]) * np.diff(S, axis=1), axis=1)
        out = terms.const + top + np.log(area)
    return np.where(terms.ok & np.isfinite(out), out, -np.inf)


@functools.lru_cache(maxsize=1)
def _refiner() -> np.ndarray:
    """The linear map from log f on the NODES grid to its not-a-knot cubic spline on the
    REFINE-times finer grid (the same for every ray: the grids are affine images of one)."""
    from scipy.interpolate import make_interp_spline

    x = np.arange(NODES, dtype=np.float64)
    xf = np.linspace(0.0, NODES - 1.0, REFINE * (NODES - 1) + 1)
    return make_interp_spline(x, np.eye(NODES), k=3)(xf)


def draw_scale_and_beta(density: MultiKernelDensity, rays: Rays, rng: np.random.Generator,
                        terms: RayTerms | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One draw of (s = log sigma_e2, beta) from their exact conditional per ray.

    s by inverting the piecewise linear interpolant of its density on an 8x finer grid
    than the integration grid (log f there by cubic spline); beta ~ N(mu_s, A^-1) given s
    (module docstring).
    """
    terms = terms_of(density, rays) if terms is None else terms
    if len(rays) > CHUNK:
        parts = [draw_scale_and_beta(density, rays.take(sl), rng, terms.take(sl))
                 for sl in _chunks(len(rays))]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    S, f = _scale_grid(density, rays, terms)
    n = len(rays)
    rows = np.arange(n)
    top = f.max(axis=1)
    # far tails (and any -inf) flattened at exp(-60): no mass there, and no jump to ring
    ff = np.maximum(np.where(np.isfinite(f), f - top[:, None], -np.inf), -60.0)
    fine = ff @ _refiner().T
    Sf = S[:, :1] + (S[:, -1:] - S[:, :1]) * np.linspace(0.0, 1.0, fine.shape[1])[None, :]
    w = np.exp(np.minimum(fine, 0.0))
    dS = np.diff(Sf, axis=1)
    mass = 0.5 * (w[:, 1:] + w[:, :-1]) * dS
    cum = np.cumsum(mass, axis=1)
    target = rng.uniform(size=n) * cum[:, -1]
    cell = np.minimum(np.sum(cum < target[:, None], axis=1), mass.shape[1] - 1)
    before = np.where(cell > 0, cum[rows, np.maximum(cell - 1, 0)], 0.0)
    rest = target - before  # mass still to cover inside the cell
    a, b, h = w[rows, cell], w[rows, cell + 1], dS[rows, cell]
    # density a + (b - a) x / h on [0, h]: solve a x + (b - a) x^2 / (2h) = rest (stable root)
    slope = (b - a) / h
    disc = np.maximum(a * a + 2.0 * slope * rest, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(np.abs(slope) * h > 1e-12 * a, 2.0 * rest / (a + np.sqrt(disc)),
                     rest / a)
    s = Sf[rows, cell] + np.clip(np.nan_to_num(x), 0.0, h)
    sig = np.exp(s)[:, None]
    D = 1.0 / sig + terms.gamma
    z = rng.standard_normal((n, density.M))
    inner = (terms.e1 / sig + terms.e2) / D + z / np.sqrt(D)
    beta = np.einsum("nij,nj->ni", terms.T, inner)
    return s, beta


def loglik_at(density: MultiKernelDensity, rays: Rays, s: np.ndarray, beta: np.ndarray
              ) -> np.ndarray:
    """log N(y | X beta, V) at sigma = e^s (e^u, 1): with d = beta - mu,
    (y - X beta)'H^-1(y - X beta) = q + d'C d (mu is H's GLS estimate)."""
    d = beta - rays.mu
    quad = rays.q + np.einsum("ni,nij,nj->n", d, rays.C, d)
    return -0.5 * (density.N * (LOG2PI + s) + rays.logdet + quad * np.exp(-s))
