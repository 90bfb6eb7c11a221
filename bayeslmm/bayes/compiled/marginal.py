"""The one-kernel marginal model's log-density, written out and compiled once per machine.

nutpie compiles a PyMC model's PyTensor graph to numba in every new process: 3-4 s even for
a two-parameter model, about 5 s for :func:`~bayeslmm.models.marginal_grm`, against 1-2 s
of sampling. For the model everyone fits -- one kernel, free variances, beta non-centred on
its conditional posterior (the default) -- the log-density has a short closed form, so this
module writes it and its gradient by hand as a numba ``cfunc`` cached on disk
(``cache=True``): compiled the first time, loaded in a fraction of a second afterwards.

The closed form. With d_i = sigma_g2 S_i + sigma_e2, w_i = 1 / d_i and the data rotated by
K's eigenvectors (notes eq. 46, section 4), beta | variances, y is Gaussian with precision
A = X'V^-1X + Lambda_0 and mean mu = A^-1 (X'V^-1 y + Lambda_0 m_0) (eq. 13-14, the prior
N(m_0, Lambda_0^-1) included; Lambda_0 = 0 for a flat prior). The model samples z with
beta = mu + L^-T z, A = L L', and adds the Jacobian -log|L|. Because log p(y | beta) + log
p(beta) is a quadratic in beta with curvature A and peak mu,

    log p(theta, z | y) = l(mu) - z'z / 2 - log|A| / 2 + log p(theta) + log|d theta / d t|

where l(mu) is the log-likelihood plus log-prior at beta = mu: z is exactly standard normal
and independent of the variances, and the variance part is the restricted (REML-like)
likelihood with beta's prior. Its gradient needs no derivative of the Cholesky: by the
envelope theorem (dl/dbeta = 0 at mu), with residuals r = U'y - U'X mu and
h_i = (U'X)_i A^-1 (U'X)_i',

    d/d sigma_g2 = -1/2 sum_i S_i (w_i - w_i^2 r_i^2 - w_i^2 h_i)
    d/d sigma_e2 = -1/2 [sum_i (w_i - w_i^2 r_i^2 - w_i^2 h_i)
                        + n0 / sigma_e2 - q0 / sigma_e2^2 - tr(A^-1 C_XX) / sigma_e2^2]

(n0 = N - rank K, q0 and C_XX the complement's residual square and covariate cross-product).
O(r M^2) per evaluation. The test suite checks value and gradient against PyMC's own
compiled log-density of the same model for every supported prior family.

:func:`compile_marginal` returns a nutpie compiled model whose draws carry the same names,
shapes and coordinates as ``nutpie.compile_pymc_model(model)`` would give, so everything
downstream (log-likelihood and log-prior groups, prediction, sensitivity) is unchanged.
Models it does not cover (several kernels, latent g, fixed variances, custom PyMC priors,
non-Gaussian priors on beta, variables added by the user) return ``None`` from
:func:`compile_marginal`, and sampling goes through PyMC's graph.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import njit

from bayeslmm.bayes.compiled.priors import PRIOR_SLOTS, positive_prior, prior_row, unit_prior
from bayeslmm.bayes.compiled.shell import (
    compile_callbacks,
    evaluate,
    expand,
    jittered_initial_point,
    layout,
    logp_status,
    nutpie_model,
    small_cholesky,
    write_expanded,
)
from bayeslmm.bayes.model_info import find_info, model_info
from bayeslmm.bayes.spectral_data import SpectralData, beta_normal_prior
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["compile_marginal", "evaluate", "expand", "supported"]


_HEADER = 8  # total length, r, M, n0, parameterisation, n_expanded, reserved x2


# ---------------------------------------------------------------------- eligibility
def supported(model) -> str | None:
    """Why ``model`` cannot use the compiled log-density, or None when it can."""
    info = find_info(model)
    if info is None or info.kind != "marginal":
        return "not a one-kernel marginal_grm model"
    if info.latent or info.fixed:
        return "latent genetic values or fixed variances"
    if "beta_z" not in model.named_vars:
        return "beta sampled directly (beta_param='direct')"
    pri = info.priors
    if pri.parameterisation not in ("h2", "variances"):
        return f"parameterisation {pri.parameterisation!r}"
    names = ("h2", "Vp") if pri.parameterisation == "h2" else ("sigma_g2", "sigma_e2")
    for n in names:
        if prior_row(pri[n]) is None:
            return f"prior {pri[n]} on {n}"
    if not pri.beta_mu.size and pri["beta"].family not in ("Normal", "Flat"):
        return f"non-Gaussian prior {pri['beta']} on beta"
    expected = {*names, "beta_z", "sigma_g2", "sigma_e2", "h2", "Vp", "beta", "beta_jacobian",
                "beta_prior", "y_rot", "y_null"}
    extra = set(model.named_vars) - expected
    if extra:
        return f"variables added to the model: {sorted(extra)}"
    return None


# ---------------------------------------------------------------------- packing
def _pack(info, out_index: np.ndarray) -> np.ndarray:
    """All data the compiled functions read, in one float64 array (unpacked by _core)."""
    data, dec, pri = info.data, info.decomposition, info.priors
    sd = info.extra.get("spectral_data") or SpectralData.of(data, dec)
    r, M = dec.U.shape[1], data.M
    lam, m0 = beta_normal_prior(pri, M)
    names = ("h2", "Vp") if pri.parameterisation == "h2" else ("sigma_g2", "sigma_e2")
    head = np.zeros(_HEADER)
    # The data are y_r = y - X b0 and the compiled density is written for beta - b0
    # (SpectralData); the prior mean moves with it and b0 is added back to beta on output.
    parts = [head, dec.S, sd.Uy, np.ascontiguousarray(sd.UX).ravel(), sd.cXX.ravel(), sd.cXy,
             [sd.cyy], lam, m0 - sd.b0, sd.b0,
             prior_row(pri[names[0]]), prior_row(pri[names[1]]), out_index]
    flat = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
    flat[:_HEADER] = [flat.size, r, M, sd.n0, 0 if pri.parameterisation == "h2" else 1,
                      out_index.size, 0, 0]
    return flat


# ---------------------------------------------------------------------- compiled code
# Module-level functions with cache=True: numba stores the machine code next to this file
# (or in NUMBA_CACHE_DIR), so only the first process on a machine pays for compilation.
@njit(cache=True, error_model="numpy")
def _variances(x, param, p1, p2, J, gprior):
    """sigma_g2, sigma_e2, h2, Vp and the priors (+ Jacobians) at the unconstrained x.

    Fills J[a, b] = d(sigma_g2, sigma_e2)[b] / dt_a and gprior = d(log prior) / dt.
    """
    if param == 0:  # (h2, Vp)
        lp1, d1, h2, c2, dh2 = unit_prior(p1, x[0])
        lp2, d2 = positive_prior(p2, x[1])
        Vp = np.exp(x[1])
        sg, se = h2 * Vp, c2 * Vp
        J[0, 0], J[0, 1] = dh2 * Vp, -dh2 * Vp
        J[1, 0], J[1, 1] = sg, se
    else:  # (sigma_g2, sigma_e2)
        lp1, d1 = positive_prior(p1, x[0])
        lp2, d2 = positive_prior(p2, x[1])
        sg, se = np.exp(x[0]), np.exp(x[1])
        J[0, 0], J[0, 1], J[1, 0], J[1, 1] = sg, 0.0, 0.0, se
        Vp = sg + se
        h2 = sg / Vp
    gprior[0], gprior[1] = d1, d2
    return sg, se, h2, Vp, lp1 + lp2


@njit(cache=True, error_model="numpy")
def _core(x, ud, grad, extra):
    """Log density at the unconstrained x = (t1, t2, z); fills grad and
    extra = (sigma_g2, sigma_e2, h2, Vp, beta = mu + L^-T z)."""
    # Unpack the data (layout: _pack).
    r, M, n0 = int(ud[1]), int(ud[2]), ud[3]
    o = _HEADER
    S = ud[o:o + r]
    o += r
    uy = ud[o:o + r]
    o += r
    UX = ud[o:o + r * M].reshape((r, M))
    o += r * M
    cXX = ud[o:o + M * M].reshape((M, M))
    o += M * M
    cXy = ud[o:o + M]
    o += M
    cyy = ud[o]
    o += 1
    lam = ud[o:o + M]
    o += M
    m0 = ud[o:o + M]
    o += M
    b0 = ud[o:o + M]
    o += M
    p1 = ud[o:o + PRIOR_SLOTS]
    o += PRIOR_SLOTS
    p2 = ud[o:o + PRIOR_SLOTS]
    J = np.empty((2, 2))
    gprior = np.empty(2)
    sg, se, h2, Vp, lprior = _variances(x, int(ud[4]), p1, p2, J, gprior)
    extra[0], extra[1], extra[2], extra[3] = sg, se, h2, Vp
    beta = extra[4:]
    z = x[2:2 + M]
    # A = X'V^-1X + Lambda_0 and b = X'V^-1y + Lambda_0 m_0 in one pass over the eigenvalues.
    A = np.zeros((M, M))
    b = np.zeros(M)
    sum_logd = 0.0
    for i in range(r):
        d = sg * S[i] + se
        sum_logd += np.log(d)
        wi = 1.0 / d
        for j in range(M):
            a = wi * UX[i, j]
            b[j] += a * uy[i]
            for k in range(j + 1):
                A[j, k] += a * UX[i, k]
    for j in range(M):
        if n0 > 0:
            b[j] += cXy[j] / se
            for k in range(j + 1):
                A[j, k] += cXX[j, k] / se
        b[j] += lam[j] * m0[j]
        A[j, j] += lam[j]
    # Cholesky A = L L' (M is a handful of covariates: plain loops).
    L, ok = small_cholesky(A)
    if not ok:
        return np.nan
    v = np.empty(M)  # L^-1 b
    for i in range(M):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * v[k]
        v[i] = s / L[i, i]
    mu = np.empty(M)  # A^-1 b = L^-T v
    for i in range(M - 1, -1, -1):
        s = v[i]
        t = v[i] + z[i]
        for k in range(i + 1, M):
            s -= L[k, i] * mu[k]
            t -= L[k, i] * beta[k]
        mu[i] = s / L[i, i]
        beta[i] = t / L[i, i]
    # Second pass: residuals r_i and h_i = |L^-1 ux_i|^2 give value and gradient.
    hv = np.empty(M)
    sum_wr2 = 0.0
    dsg = 0.0
    dse = 0.0
    for i in range(r):
        d = sg * S[i] + se
        wi = 1.0 / d
        ri = uy[i]
        hi = 0.0
        for j in range(M):
            ri -= UX[i, j] * mu[j]
            s = UX[i, j]
            for k in range(j):
                s -= L[j, k] * hv[k]
            hv[j] = s / L[j, j]
            hi += hv[j] * hv[j]
        wr2 = wi * ri * ri
        sum_wr2 += wr2
        e = wi - wi * wr2 - wi * wi * hi
        dsg += S[i] * e
        dse += e
    lp = -0.5 * (r * LOG2PI + sum_logd + sum_wr2)
    dsg *= -0.5
    dse *= -0.5
    if n0 > 0:
        q0 = cyy
        for j in range(M):
            q0 -= 2.0 * mu[j] * cXy[j]
            for k in range(M):
                q0 += mu[j] * cXX[j, k] * mu[k]
        lp += -0.5 * (n0 * (LOG2PI + np.log(se)) + q0 / se)
        # tr(A^-1 C_XX) = |L^-1 C_XX^(1/2)|^2 without the square root: sum_jk Ainv_jk C_jk.
        Linv = np.zeros((M, M))
        for c in range(M):
            for i in range(M):
                s = 1.0 if i == c else 0.0
                for k in range(i):
                    s -= L[i, k] * Linv[k, c]
                Linv[i, c] = s / L[i, i]
        tr = 0.0
        for j in range(M):
            for k in range(M):
                a = 0.0
                for q in range(M):
                    a += Linv[q, j] * Linv[q, k]
                tr += a * cXX[j, k]
        dse += -0.5 * (n0 / se - q0 / (se * se) - tr / (se * se))
    for j in range(M):
        if lam[j] > 0.0:
            lp += -0.5 * LOG2PI + 0.5 * np.log(lam[j]) - 0.5 * lam[j] * (mu[j] - m0[j]) ** 2
        lp -= np.log(L[j, j]) + 0.5 * z[j] * z[j]
        grad[2 + j] = -z[j]
    lp += lprior
    for j in range(M):
        beta[j] += b0[j]
    grad[0] = J[0, 0] * dsg + J[0, 1] * dse + gprior[0]
    grad[1] = J[1, 0] * dsg + J[1, 1] * dse + gprior[1]
    return lp


def _logp_c(dim, x_, out_, logp_, ud_):
    # nutpie's contract: 0 ok, 3 non-finite gradient, 4 non-finite value (a rejected step).
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    M = int(ud[2])
    if dim != 2 + M:
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    lp = numba.carray(logp_, (1,))
    extra = np.empty(4 + M)
    val = _core(x, ud, out, extra)
    return logp_status(val, out, lp)


def _expand_c(dim, expanded, x_, out_, ud_):
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    M = int(ud[2])
    if dim != 2 + M or expanded != int(ud[5]):
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    extra = np.empty(4 + M)
    grad = np.empty(dim)
    _core(x, ud, grad, extra)
    # The canonical order: t1, t2, z (M), then extra = sigma_g2, sigma_e2, h2, Vp, beta (M).
    write_expanded(x, extra, ud, out)
    return 0


@functools.cache
def _functions():
    """The two C callbacks (compiled on first use, from numba's disk cache afterwards)."""
    return compile_callbacks(_logp_c, _expand_c)


# ---------------------------------------------------------------------- nutpie model
def _canonical(model, M: int) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Where each stored name sits in the canonical vector (t1, t2, z, sigma_g2, sigma_e2,
    h2, Vp, beta)."""
    p1, p2 = [rv.name for rv in model.free_RVs if rv.name != "beta_z"]
    return {
        model.rvs_to_values[model[p1]].name: (0, ()),
        model.rvs_to_values[model[p2]].name: (1, ()),
        "beta_z": (2, (M,)), "sigma_g2": (2 + M, ()), "sigma_e2": (3 + M, ()),
        "h2": (4 + M, ()), "Vp": (5 + M, ()), "beta": (6 + M, (M,)),
    }


def _initial_point_fn(info, n_dim: int):
    """PyMC's default: a central point (h2 = 1/2 or equal variances, Vp = var(y)) plus
    U(-1, 1) jitter on every unconstrained value."""
    vy = float(np.var(info.data.y))
    centre = np.zeros(n_dim)
    if info.priors.parameterisation == "h2":
        centre[1] = np.log(vy)
    else:
        centre[:2] = np.log(vy / 2)
    return jittered_initial_point(centre)


def compile_marginal(model) -> Any | None:
    """A nutpie compiled model for ``model`` using the hand-written log-density.

    Returns None when :func:`supported` says the model is not covered.
    """
    if supported(model) is not None:
        return None
    info = model_info(model)
    M = info.data.M
    names, shapes, index, reparam = layout(model, _canonical(model, M))
    return nutpie_model(model, n_dim=2 + M, functions=_functions(),
                        user_data=_pack(info, index), names=names, shapes=shapes,
                        reparam=reparam, initial_point=_initial_point_fn(info, 2 + M))
