"""The threshold model's log-density, written out and compiled once per machine.

nutpie compiles a PyMC graph to numba in every new process: 10-15 s for
:func:`~bayeslmm.bayes.models.threshold.threshold`, as long as sampling a few hundred samples. As
:mod:`bayeslmm.bayes.compiled.marginal` does for the linear model, this module writes the
probit threshold model's log-density and gradient by hand as a numba ``cfunc`` cached on
disk (compiled the first time, loaded in a fraction of a second afterwards). The model and
its parametrisation are exactly those of :func:`~bayeslmm.bayes.models.threshold.threshold`; the
test suite checks value and gradient against PyMC's compiled graph.

The density. With t = logit(h2) (so sigma_g2 = e^t, the residual variance being 1),
a = sqrt(sigma_g2 S) * z, mu = m sqrt(1 + sigma_g2) (m = Phi^-1(K) for a fixed prevalence,
the sampled ``intercept_std`` otherwise) and eta = mu + U a + X_c beta_x,

    log p = log Beta(h2; alpha, beta) + log h2 + log(1 - h2) - z'z / 2
            + sum_j log Phi(s_j eta_j) [+ log N(mu; mu_0, sd_0) + log sqrt(1 + sigma_g2)]
            + sum_k log N(beta_x,k; 0, scale_k),        s_j = 2 y_j - 1.

Gradient, with r_j = s_j phi(eta_j) / Phi(s_j eta_j) and c = U'r (two products with U,
O(N r) each, as PyMC's graph needs): d/dz = sqrt(sigma_g2 S) c - z; d/dt of the likelihood
= c'a / 2 + sum(r) mu h2 / 2 (d a / dt = a / 2, d mu / dt = mu h2 / 2); d/dm = sum(r) sd_l;
d/d beta_x = X_c' r.

Covered: the probit link with a Beta or Uniform(0, 1) prior on h2 and either a fixed
prevalence or a free intercept with a Normal prior; anything else (logit, a prior on the
prevalence, another prior family, variables added to the model) returns ``None`` from
:func:`compile_threshold`, and sampling goes through PyMC's graph.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numba
import numpy as np
from numba import njit
from scipy import special, stats

from bayeslmm.bayes.compiled.shell import (
    compile_callbacks,
    jittered_initial_point,
    layout,
    logp_status,
    nutpie_model,
    write_expanded,
)
from bayeslmm.bayes.model_info import find_info
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["compile_threshold", "supported", "threshold_parts"]

_HEADER = 12  # length, N, r, Mx, M, free intercept, icol, store_g, n_expanded, 3 reserved
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------------- eligibility
def _h2_beta(prior) -> tuple[float, float] | None:
    if prior.family == "Beta":
        return prior.params["alpha"], prior.params["beta"]
    if prior.family == "Uniform" and prior.params["lower"] == 0.0 \
            and prior.params["upper"] == 1.0:
        return 1.0, 1.0  # PyMC's interval transform on (0, 1) is the logodds transform
    return None


def supported(model) -> str | None:
    """Why ``model`` cannot use the compiled log-density, or None when it can."""
    info = find_info(model)
    if info is None or getattr(info, "kind", None) != "threshold":
        return "not a threshold model"
    if info.link != "probit":
        return f"link {info.link!r}"
    if _h2_beta(info.priors["h2"]) is None:
        return f"prior {info.priors['h2']} on h2"
    if "prevalence" in info.priors:
        return "a prior on the prevalence"
    free_mu = info.prevalence is None
    if free_mu and info.priors["intercept"].family != "Normal":
        return f"prior {info.priors['intercept']} on the intercept"
    expected = {"h2", "sigma_g2", "g_raw", "g", "intercept", "beta", "y", "beta_x"}
    if free_mu:
        expected |= {"intercept_std", "intercept_prior", "prevalence"}
    extra = set(model.named_vars) - expected
    if extra:
        return f"variables added to the model: {sorted(extra)}"
    return None


# ---------------------------------------------------------------------- packing
def threshold_parts(info):
    """The pieces the model is built from, recomputed as :func:`threshold` does: the
    decomposition, the data, the intercept column, the centred other covariates X_c and
    1 / sd of each (the scale of beta_x's default prior). Shared with the augmented sampler."""
    data, dec = info.data, info.decomposition
    const = np.flatnonzero(np.ptp(data.X, axis=0) == 0)
    icol = int(const[0])
    others = [j for j in range(data.M) if j != icol]
    Xc = data.X[:, others] - info.x_mean
    x_sd = Xc.std(axis=0)
    scale = 1.0 / np.where(x_sd > 0, x_sd, 1.0)
    return dec, data, icol, Xc, scale


def _pack(info, out_index: np.ndarray, store_g: bool) -> np.ndarray:
    """All data the compiled functions read, in one float64 array (unpacked by _unpack)."""
    dec, data, icol, Xc, scale = threshold_parts(info)
    N, r = dec.U.shape
    Mx = Xc.shape[1]
    a, b = _h2_beta(info.priors["h2"])
    free_mu = info.prevalence is None
    if free_mu:
        p = info.priors["intercept"].params
        m_fixed, mu0, sd0 = 0.0, p["mu"], p["sigma"]
    else:
        m_fixed, mu0, sd0 = float(stats.norm.ppf(info.prevalence)), 0.0, 1.0
    consts = [a, b, -special.betaln(a, b), m_fixed, mu0, sd0]
    sign = 2.0 * np.asarray(data.y, dtype=np.float64) - 1.0
    head = np.zeros(_HEADER)
    parts = [head, consts, dec.S, sign, np.ascontiguousarray(dec.U).ravel(),
             np.ascontiguousarray(Xc).ravel(), scale, info.x_mean, out_index]
    flat = np.concatenate([np.asarray(q, dtype=np.float64).ravel() for q in parts])
    flat[:_HEADER] = [flat.size, N, r, Mx, data.M, float(free_mu), icol, float(store_g),
                      out_index.size, 0, 0, 0]
    return flat


# ---------------------------------------------------------------------- compiled code
@njit(cache=True, error_model="numpy")
def _log_cdf(x):
    # log Phi(x) as PyMC's graph computes it (threshold._log_cdf), so that both agree.
    return math.log(0.5 * math.erfc(-x / _SQRT2))


@njit(cache=True, error_model="numpy")
def _core(x, ud, grad, extra):
    """Log density at x = (t, z, [m], beta_x); fills grad and
    extra = (h2, sigma_g2, g (N, when stored), intercept, [prevalence], beta (M))."""
    N, r, Mx, M = int(ud[1]), int(ud[2]), int(ud[3]), int(ud[4])
    free_mu, icol, store_g = ud[5] > 0.5, int(ud[6]), ud[7] > 0.5
    o = _HEADER
    a_h, b_h, lbeta, m_fixed, mu0, sd0 = ud[o], ud[o + 1], ud[o + 2], ud[o + 3], ud[o + 4], \
        ud[o + 5]
    o += 6
    S = ud[o:o + r]
    o += r
    sgn = ud[o:o + N]
    o += N
    U = ud[o:o + N * r].reshape((N, r))
    o += N * r
    Xc = ud[o:o + N * Mx].reshape((N, Mx))
    o += N * Mx
    scale = ud[o:o + Mx]
    o += Mx
    x_mean = ud[o:o + Mx]
    t = x[0]
    z = x[1:1 + r]
    k = 1 + r
    if free_mu:
        m = x[k]
        k += 1
    else:
        m = m_fixed
    bx = x[k:k + Mx]
    # h2 = expit(t) and 1 - h2 without cancellation; sigma_g2 = e^t (residual variance 1)
    if t >= 0:
        e = math.exp(-t)
        h2, c2 = 1.0 / (1.0 + e), e / (1.0 + e)
    else:
        e = math.exp(t)
        h2, c2 = e / (1.0 + e), 1.0 / (1.0 + e)
    sg = math.exp(t)
    sd_l = math.sqrt(1.0 + sg)
    mu = m * sd_l
    lp = (a_h - 1.0) * math.log(h2) + (b_h - 1.0) * math.log(c2) + lbeta
    lp += math.log(h2) + math.log(c2)
    g_t = a_h * c2 - b_h * h2
    a = np.empty(r)
    rs = math.sqrt(sg)
    for i in range(r):
        a[i] = rs * math.sqrt(S[i]) * z[i]
        lp -= 0.5 * z[i] * z[i] + 0.5 * LOG2PI
    eta = np.dot(U, a)
    if store_g:
        extra[2:2 + N] = eta
    for j in range(N):
        eta[j] += mu
    if Mx > 0:
        eta += np.dot(Xc, bx)
    rv = np.empty(N)
    sum_r = 0.0
    for j in range(N):
        q = sgn[j] * eta[j]
        lc = _log_cdf(q)
        lp += lc
        rv[j] = sgn[j] * math.exp(-0.5 * q * q - lc) * _INV_SQRT2PI
        sum_r += rv[j]
    c = np.dot(U.T, rv)
    ca = 0.0
    for i in range(r):
        grad[1 + i] = rs * math.sqrt(S[i]) * c[i] - z[i]
        ca += c[i] * a[i]
    g_t += 0.5 * ca + 0.5 * sum_r * mu * h2
    k = 1 + r
    if free_mu:
        d = (mu - mu0) / sd0
        lp += -0.5 * d * d - math.log(sd0) - 0.5 * LOG2PI + math.log(sd_l)
        dmu = -d / sd0  # d log N(mu) / d mu
        g_t += dmu * mu * h2 / 2.0 + 0.5 * h2
        grad[k] = (sum_r + dmu) * sd_l
        k += 1
    if Mx > 0:
        gx = np.dot(Xc.T, rv)
        for q in range(Mx):
            w = bx[q] / scale[q]
            lp += -0.5 * w * w - math.log(scale[q]) - 0.5 * LOG2PI
            grad[k + q] = gx[q] - bx[q] / (scale[q] * scale[q])
    grad[0] = g_t
    extra[0], extra[1] = h2, sg
    o = 2 + (N if store_g else 0)
    extra[o] = mu
    o += 1
    if free_mu:
        extra[o] = 0.5 * math.erfc(-m / _SQRT2)
        o += 1
    shift = 0.0
    q = 0
    for j in range(M):
        if j == icol:
            continue
        extra[o + j] = bx[q]
        shift += bx[q] * x_mean[q]
        q += 1
    extra[o + icol] = mu - shift
    return lp


@njit(cache=True)
def _sizes(ud):
    N, r, Mx, M = int(ud[1]), int(ud[2]), int(ud[3]), int(ud[4])
    free_mu, store_g = ud[5] > 0.5, ud[7] > 0.5
    n_dim = 1 + r + (1 if free_mu else 0) + Mx
    n_extra = 2 + (N if store_g else 0) + 1 + (1 if free_mu else 0) + M
    return n_dim, n_extra


def _logp_c(dim, x_, out_, logp_, ud_):
    # nutpie's contract: 0 ok, 3 non-finite gradient, 4 non-finite value (a rejected step).
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    n_dim, n_extra = _sizes(ud)
    if dim != n_dim:
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    lp = numba.carray(logp_, (1,))
    extra = np.empty(n_extra)
    val = _core(x, ud, out, extra)
    return logp_status(val, out, lp)


def _expand_c(dim, expanded, x_, out_, ud_):
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    n_dim, n_extra = _sizes(ud)
    if dim != n_dim or expanded != int(ud[8]):
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    extra = np.empty(n_extra)
    grad = np.empty(dim)
    _core(x, ud, grad, extra)
    write_expanded(x, extra, ud, out)
    return 0


@functools.cache
def _functions():
    """The two C callbacks (compiled on first use, from numba's disk cache afterwards)."""
    return compile_callbacks(_logp_c, _expand_c)


# ---------------------------------------------------------------------- nutpie model
def _layout(model, info, store_g: bool):
    """Names and shapes nutpie expects (free values, then the rest) and where each comes from
    in the canonical vector (t, z, [m], beta_x, h2, sigma_g2, [g], intercept, [prevalence],
    beta)."""
    dec, data = info.decomposition, info.data
    N, r, M = data.N, dec.rank, data.M
    Mx = M - 1
    free_mu = info.prevalence is None
    canon: dict[str, tuple[int, tuple[int, ...]]] = {
        model.rvs_to_values[model["h2"]].name: (0, ()), "g_raw": (1, (r,))}
    k = 1 + r
    if free_mu:
        canon["intercept_std"] = (k, ())
        k += 1
    if Mx:
        canon["beta_x"] = (k, (Mx,))
    k += Mx
    canon["h2"] = (k, ())
    canon["sigma_g2"] = (k + 1, ())
    k += 2
    if store_g:
        canon["g"] = (k, (N,))
        k += N
    canon["intercept"] = (k, ())
    k += 1
    if free_mu:
        canon["prevalence"] = (k, ())
        k += 1
    canon["beta"] = (k, (M,))
    names, shapes, index, reparam = layout(model, canon)
    return names, shapes, index, reparam, 1 + r + int(free_mu) + Mx


def compile_threshold(model) -> Any | None:
    """A nutpie compiled model for a :func:`~bayeslmm.bayes.models.threshold.threshold` model using
    the hand-written log-density; None when :func:`supported` says it is not covered."""
    if supported(model) is not None:
        return None
    info = find_info(model)
    store_g = "g" in model.named_vars
    names, shapes, index, reparam, n_dim = _layout(model, info, store_g)
    return nutpie_model(model, n_dim=n_dim, functions=_functions(),
                        user_data=_pack(info, index, store_g), names=names, shapes=shapes,
                        reparam=reparam, initial_point=jittered_initial_point(np.zeros(n_dim)))
