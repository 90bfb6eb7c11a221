"""Exact draws and integrals the augmented samplers need: normals truncated at zero, and the
one-dimensional integral over the working scale of a parameter-expanded model with its
exact draws (:mod:`bayeslmm.bayes.augmented.threshold`, module docstring)."""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["draw_scale", "log_scale_integral", "truncated_normal_sign"]


def truncated_normal_sign(eta: np.ndarray, positive: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
    """Draws of N(eta, 1) truncated to (0, inf) where ``positive``, to (-inf, 0] elsewhere.

    Inversion in log space: z = -Phi^-1(v Phi(eta)) for the lower bound -eta, through
    ``ndtri_exp(log v + log_ndtr(eta))``, which stays exact where Phi(eta) underflows (a case
    with eta = -40 gets l ~ 0+ with the right exponential tail, not NaN).
    """
    v = np.log(rng.uniform(size=eta.shape))
    s = np.where(positive, 1.0, -1.0)
    # l = eta + z with s z > -s eta: s z is N(0,1) truncated below at -s eta
    z = -special.ndtri_exp(v + special.log_ndtr(s * eta))
    return eta + s * z


def log_scale_integral(n: float, a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """log of int_0^inf alpha^(n-1) exp(-a alpha^2 / 2 + B alpha) d alpha (a > 0).

    In u = log alpha the integrand exp(n u - a e^2u / 2 + B e^u) is log-concave with its
    mode at e^u* = (B + sqrt(B^2 + 4 a n)) / (2 a) and curvature -(2 n + B e^u*) there:
    Gauss-Hermite quadrature about that mode (exact to rounding for n >= 10; the closed form
    Gamma(n/2) 2^(n/2-1) a^(-n/2) at B = 0 is the test).
    """
    x = (B + np.sqrt(B * B + 4.0 * a * n)) / (2.0 * a)
    u0 = np.log(x)
    s = np.sqrt(2.0) / np.sqrt(2.0 * n + B * x)
    z, W = _GH
    ex = np.exp(s[..., None] * z)                  # e^(u - u0) at the nodes
    # f(u) - f(u0) <= 0 about the mode: no overflow, and Gauss-Hermite's weights times
    # e^(z^2) integrate against 1
    df = (n * s[..., None] * z - 0.5 * (a * x * x)[..., None] * (ex * ex - 1.0)
          + (B * x)[..., None] * (ex - 1.0))
    f0 = n * u0 - 0.5 * a * x * x + B * x
    return f0 + np.log(s) + np.log(np.exp(df) @ W)


def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = np.polynomial.hermite.hermgauss(n)
    return z, np.exp(np.log(w) + z * z)


_GH = _hermite(40)


def draw_scale(n: float, a: np.ndarray, B: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
    """Exact draws of alpha with density proportional to alpha^(n-1) exp(-a alpha^2/2 +
    B alpha) on alpha > 0: log-concave (n > 1), so rejection from the envelope of its tangents
    at the mode and one curvature radius either side (acceptance about 0.8)."""
    m = (B + np.sqrt(B * B + 4.0 * a * (n - 1.0))) / (2.0 * a)
    s = 1.0 / np.sqrt((n - 1.0) / m**2 + a)
    x1 = np.where(m - s > 0, m - s, 0.5 * m)
    x2 = m + s

    def h(x, a=a, B=B):
        return (n - 1.0) * np.log(x) - 0.5 * a * x * x + B * x

    def dh(x):
        return (n - 1.0) / x - a * x + B

    hm = h(m)
    h1, k1 = h(x1) - hm, dh(x1)                 # > 0 slope left of the mode
    h2_, k2 = h(x2) - hm, dh(x2)                # < 0 slope right of it
    z1 = x1 - h1 / k1                           # where the tangents reach the mode's height
    z2 = x2 - h2_ / k2
    # masses of the three pieces (heights relative to exp(hm))
    m1 = np.exp(h1 - k1 * x1) * np.expm1(k1 * z1) / k1
    m2 = z2 - z1
    m3 = 1.0 / -k2
    out = np.full(a.shape, np.nan)
    todo = np.ones(a.shape, dtype=bool)
    while todo.any():
        idx = np.flatnonzero(todo)
        u = rng.uniform(size=(3, idx.size))
        tot = m1[idx] + m2[idx] + m3[idx]
        pick = u[0] * tot
        k1i, k2i, x1i, z1i, z2i = k1[idx], k2[idx], x1[idx], z1[idx], z2[idx]
        # inverse CDFs of the exponential pieces (left: on (0, z1); right: on (z2, inf))
        left = np.log1p(u[1] * np.expm1(k1i * z1i)) / k1i
        mid = z1i + u[1] * (z2i - z1i)
        right = z2i - np.log1p(-u[1]) / -k2i
        x = np.where(pick < m1[idx], left, np.where(pick < m1[idx] + m2[idx], mid, right))
        env = np.where(x < z1i, h1[idx] + k1i * (x - x1i),
                       np.where(x < z2i, 0.0, h2_[idx] + k2i * (x - x2[idx])))
        ok = np.log(u[2]) < h(x, a[idx], B[idx]) - hm[idx] - env
        out[idx[ok]] = x[ok]
        todo[idx[ok]] = False
    return out
