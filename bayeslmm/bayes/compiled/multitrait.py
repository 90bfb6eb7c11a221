"""The two-trait marginal model's log-density, written out and compiled once per machine.

nutpie compiles :func:`~bayeslmm.bayes.models.multitrait.multitrait_marginal`'s PyTensor graph
to numba in every new process: about 28 s at N = 5,000 on a loaded machine, more than the
sampling itself. This module writes the same log-density and its gradient by hand as numba
``cfunc``s cached on disk (``cache=True``), handed to nutpie as
:mod:`bayeslmm.bayes.compiled.marginal` does for one trait.

The density. Unconstrained values, in PyMC's order and with PyMC's transforms: t_h2 (2, logit
or interval transform), t_Vp (2, log), t_g and t_e (logit of the LKJ units (r + 1) / 2).
With h2_t, Vp_t, r_g = 2 u_g - 1, r_e = 2 u_e - 1,

    Sigma_g = [[v_g1, r_g a_g], [r_g a_g, v_g2]],  v_gt = h2_t Vp_t,        a_g = sqrt(v_g1 v_g2)
    Sigma_e = [[v_e1, r_e a_e], [r_e a_e, v_e2]],  v_et = (1 - h2_t) Vp_t,  a_e = sqrt(v_e1 v_e2)

and the log-density is the restricted log-likelihood (notes 4.3.2 with V = Sigma_g (x) K +
Sigma_e (x) I, B integrated out under a flat prior) plus the priors and the log-Jacobians of
the transforms (:mod:`bayeslmm.bayes.compiled.priors`; LKJ(eta) for two traits is
Beta(eta, eta) on u). In the eigenbasis of K eigen-index i carries y_i (2-vector) with
D_i = s_i Sigma_g + Sigma_e, inverted in closed form; with q_i the i-th row of U'Q (Q the
orthonormal basis of X), A = sum_i D_i^-1 (x) q_i q_i' (2M x 2M, index (trait, covariate)),
beta = A^-1 b, r_i = y_i - B q_i, and the complement of a low-rank K (n0 dimensions,
covariance Sigma_e) entering through Gram matrices,

    l = -1/2 [ 2 (N - M) log 2 pi + sum_i log|D_i| + n0 log|Sigma_e| + sum_i r_i'D_i^-1 r_i
               + tr(Sigma_e^-1 R_0) + log|A| ].

Gradient (envelope theorem: the derivative in B vanishes at the GLS estimate), with
u_i = D_i^-1 r_i and W_i[a, b] = q_i' (A^-1)_ab q_i (from d log|A|),

    dl/dD_i = -1/2 (D_i^-1 - u_i u_i' - D_i^-1 W_i D_i^-1),
    dl/dSigma_g = sum_i s_i dl/dD_i,  dl/dSigma_e = sum_i dl/dD_i + complement,

then the chain rule to the unconstrained values. One evaluation is O(N M^2). The test suite
checks value and gradient against PyMC's own compiled log-density of the same model for
every supported prior family, and against finite differences.

:func:`compile_multitrait` returns a nutpie compiled model whose draws carry the names, shapes
and coordinates ``nutpie.compile_pymc_model(model)`` gives; :func:`supported` says why a model
is not covered (fixed covariances, custom PyMC priors, variables added by the user), and then
sampling compiles PyMC's graph.
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
    jittered_initial_point,
    layout,
    logp_status,
    nutpie_model,
    small_cholesky,
    write_expanded,
)
from bayeslmm.bayes.model_info import find_info, model_info
from bayeslmm.bayes.priors import Prior
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["compile_multitrait", "supported"]

_HEADER = 8  # total length, r, M, n0, N, n_expanded, reserved x2
_N_DIM = 6  # t_h2 (2), t_Vp (2), t_g, t_e
_N_EXTRA = 16  # h2 (2), Vp (2), u_g, u_e, r_g, r_e, Sigma_g (4), Sigma_e (4)
_FREE = ("h2", "Vp", "r_g_unit", "r_e_unit")
_TRANSFORMS = {"h2": ("logodds", "interval"), "Vp": ("log",), "r_g_unit": ("logodds",),
               "r_e_unit": ("logodds",)}


# ---------------------------------------------------------------------- eligibility
def _rows(info) -> list[np.ndarray | None]:
    """Prior rows h2_1, h2_2, Vp_1, Vp_2, u_g, u_e (None where a prior is not covered)."""
    lkj = Prior("Beta", {"alpha": float(info.eta), "beta": float(info.eta)})
    h2 = prior_row(info.h2_prior, "unit")
    return [h2, h2, *(prior_row(p, "positive") for p in info.Vp_priors),
            prior_row(lkj, "unit"), prior_row(lkj, "unit")]


def supported(model) -> str | None:
    """Why ``model`` cannot use the compiled log-density, or None when it can."""
    info = find_info(model)
    if info is None or info.kind != "multitrait":
        return "not a two-trait multitrait_marginal model"
    if info.fixed or info.h2_prior is None:
        return "fixed covariances (no free variables)"
    free = tuple(rv.name for rv in model.free_RVs)
    if free != _FREE:
        return f"free variables {list(free)}, expected {list(_FREE)}"
    if _rows(info)[0] is None:
        return f"prior {info.h2_prior} on h2"
    for p, row in zip(info.Vp_priors, _rows(info)[2:4], strict=True):
        if row is None:
            return f"prior {p} on Vp"
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv].name
        if not any(value == f"{rv.name}_{t}__" for t in _TRANSFORMS[rv.name]):
            return f"transform of {rv.name} ({value})"
    expected = {*_FREE, "r_g", "r_e", "Sigma_g", "Sigma_e", "loglik"}
    extra = set(model.named_vars) - expected
    if extra:
        return f"variables added to the model: {sorted(extra)}"
    return None


# ---------------------------------------------------------------------- packing
def _pack(info, out_index: np.ndarray) -> np.ndarray:
    """All data the compiled functions read, in one float64 array (unpacked by _core)."""
    mt = info.model
    r, M = mt.UY.shape[0], mt.M
    parts = [np.zeros(_HEADER), mt.S, mt.UY[:, 0], mt.UY[:, 1],
             np.ascontiguousarray(mt.UQ).ravel(), mt.cQQ.ravel(), mt.cQY.ravel(),
             mt.cYY.ravel(), *_rows(info), out_index]
    flat = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
    flat[:_HEADER] = [flat.size, r, M, mt.n_null, mt.N, out_index.size, 0, 0]
    return flat


# ---------------------------------------------------------------------- compiled code
@njit(cache=True, error_model="numpy")
def _inverse_2x2(a11, a22, a12):
    """(log det, i11, i22, i12) of a symmetric 2 x 2 matrix; det <= 0 gives NaN."""
    det = a11 * a22 - a12 * a12
    if not det > 0.0:
        return np.nan, np.nan, np.nan, np.nan
    return np.log(det), a22 / det, a11 / det, -a12 / det


@njit(cache=True, error_model="numpy")
def _core(x, ud, grad, extra):
    """Log density at the unconstrained x; fills grad and extra = (h2, Vp, u_g, u_e, r_g,
    r_e, Sigma_g, Sigma_e)."""
    r, M, n0, N = int(ud[1]), int(ud[2]), ud[3], ud[4]
    o = _HEADER
    S = ud[o:o + r]
    o += r
    y1 = ud[o:o + r]
    o += r
    y2 = ud[o:o + r]
    o += r
    UQ = ud[o:o + r * M].reshape((r, M))
    o += r * M
    cQQ = ud[o:o + M * M].reshape((M, M))
    o += M * M
    cQY = ud[o:o + 2 * M].reshape((M, 2))
    o += 2 * M
    cYY = ud[o:o + 4].reshape((2, 2))
    o += 4
    rows = ud[o:o + 6 * PRIOR_SLOTS].reshape((6, PRIOR_SLOTS))

    # ---- parameters, priors and Jacobians
    gp = np.empty(6)
    h2 = np.empty(2)
    c2 = np.empty(2)
    dh2 = np.empty(2)
    Vp = np.empty(2)
    lprior = 0.0
    for t in range(2):
        lp, d, h, c, dh = unit_prior(rows[t], x[t])
        lprior += lp
        gp[t] = d
        h2[t], c2[t], dh2[t] = h, c, dh
        lp, d = positive_prior(rows[2 + t], x[2 + t])
        lprior += lp
        gp[2 + t] = d
        Vp[t] = np.exp(x[2 + t])
    lp, d, ug, ug1, dug = unit_prior(rows[4], x[4])
    lprior += lp
    gp[4] = d
    lp, d, ue, ue1, due = unit_prior(rows[5], x[5])
    lprior += lp
    gp[5] = d
    rg, re = ug - ug1, ue - ue1
    vg0, vg1 = h2[0] * Vp[0], h2[1] * Vp[1]
    ve0, ve1 = c2[0] * Vp[0], c2[1] * Vp[1]
    ag, ae = np.sqrt(vg0 * vg1), np.sqrt(ve0 * ve1)
    cg, ce = rg * ag, re * ae
    extra[0], extra[1], extra[2], extra[3] = h2[0], h2[1], Vp[0], Vp[1]
    extra[4], extra[5], extra[6], extra[7] = ug, ue, rg, re
    extra[8], extra[9], extra[10], extra[11] = vg0, cg, cg, vg1
    extra[12], extra[13], extra[14], extra[15] = ve0, ce, ce, ve1

    # ---- A = X_T'V^-1X_T (lower triangle) and b = X_T'V^-1 y, index (trait, covariate)
    P = 2 * M
    A = np.zeros((P, P))
    b = np.zeros(P)
    Di = np.empty((r, 3))  # D_i^-1 entries (11, 22, 12), reused by the second pass
    logdet = 0.0
    for i in range(r):
        ld, i11, i22, i12 = _inverse_2x2(S[i] * vg0 + ve0, S[i] * vg1 + ve1, S[i] * cg + ce)
        Di[i, 0], Di[i, 1], Di[i, 2] = i11, i22, i12
        logdet += ld
        w1 = i11 * y1[i] + i12 * y2[i]
        w2 = i12 * y1[i] + i22 * y2[i]
        for j in range(M):
            q = UQ[i, j]
            b[j] += w1 * q
            b[M + j] += w2 * q
            for k in range(j + 1):
                qq = q * UQ[i, k]
                A[j, k] += i11 * qq
                A[M + j, M + k] += i22 * qq
                A[M + j, k] += i12 * qq
    lde, e11, e22, e12 = _inverse_2x2(ve0, ve1, ce)
    if n0 > 0:
        logdet += n0 * lde
        for j in range(M):
            b[j] += e11 * cQY[j, 0] + e12 * cQY[j, 1]
            b[M + j] += e12 * cQY[j, 0] + e22 * cQY[j, 1]
            for k in range(j + 1):
                A[j, k] += e11 * cQQ[j, k]
                A[M + j, M + k] += e22 * cQQ[j, k]
                A[M + j, k] += e12 * cQQ[j, k]
    for j in range(M):  # the off-diagonal block is symmetric: mirror its lower half
        for k in range(j):
            A[M + k, j] = A[M + j, k]
    if not np.isfinite(logdet):
        return np.nan

    # ---- Cholesky A = L L', beta = A^-1 b, A^-1 (P = 2M is a handful: plain loops)
    L, ok = small_cholesky(A)
    if not ok:
        return np.nan
    logdet_A = 0.0
    for j in range(P):
        logdet_A += 2.0 * np.log(L[j, j])
    Linv = np.zeros((P, P))
    for c in range(P):
        for i in range(c, P):
            s = 1.0 if i == c else 0.0
            for k in range(c, i):
                s -= L[i, k] * Linv[k, c]
            Linv[i, c] = s / L[i, i]
    Ai = np.zeros((P, P))  # A^-1 = Linv' Linv
    for j in range(P):
        for k in range(j + 1):
            s = 0.0
            for q in range(j, P):
                s += Linv[q, j] * Linv[q, k]
            Ai[j, k] = s
            Ai[k, j] = s
    B = np.zeros((2, M))
    for j in range(P):
        s = 0.0
        for k in range(P):
            s += Ai[j, k] * b[k]
        B[j // M, j % M] = s

    # ---- residuals, quadratic form and the gradient in (Sigma_g, Sigma_e)
    quad = 0.0
    gg11 = gg22 = gg12 = 0.0
    ge11 = ge22 = ge12 = 0.0
    for i in range(r):
        i11, i22, i12 = Di[i, 0], Di[i, 1], Di[i, 2]
        r1, r2 = y1[i], y2[i]
        w11 = w22 = w12 = 0.0
        for j in range(M):
            q = UQ[i, j]
            r1 -= B[0, j] * q
            r2 -= B[1, j] * q
            for k in range(M):
                qq = q * UQ[i, k]
                w11 += Ai[j, k] * qq
                w22 += Ai[M + j, M + k] * qq
                w12 += Ai[j, M + k] * qq
        u1 = i11 * r1 + i12 * r2
        u2 = i12 * r1 + i22 * r2
        quad += r1 * u1 + r2 * u2
        # D^-1 W D^-1
        a11, a12 = i11 * w11 + i12 * w12, i11 * w12 + i12 * w22
        a21, a22 = i12 * w11 + i22 * w12, i12 * w12 + i22 * w22
        h11 = a11 * i11 + a12 * i12
        h22 = a21 * i12 + a22 * i22
        h12 = a11 * i12 + a12 * i22
        g11 = i11 - u1 * u1 - h11
        g22 = i22 - u2 * u2 - h22
        g12 = i12 - u1 * u2 - h12
        gg11 += S[i] * g11
        gg22 += S[i] * g22
        gg12 += S[i] * g12
        ge11 += g11
        ge22 += g22
        ge12 += g12
    if n0 > 0:
        # R_0 = C_YY - C_QY'B' - B C_QY + B C_QQ B' and W_0[a, b] = tr(C_QQ (A^-1)_ab).
        R = np.empty((2, 2))
        W = np.zeros((2, 2))
        for a in range(2):
            for c in range(2):
                v = cYY[a, c]
                for j in range(M):
                    v -= cQY[j, a] * B[c, j] + B[a, j] * cQY[j, c]
                    for k in range(M):
                        v += B[a, j] * cQQ[j, k] * B[c, k]
                        W[a, c] += cQQ[j, k] * Ai[a * M + j, c * M + k]
                R[a, c] = v
        quad += e11 * R[0, 0] + 2.0 * e12 * R[0, 1] + e22 * R[1, 1]
        # Sigma_e^-1 (R_0 + W_0) Sigma_e^-1, all 2 x 2 symmetric.
        f11, f22, f12 = R[0, 0] + W[0, 0], R[1, 1] + W[1, 1], 0.5 * (R[0, 1] + R[1, 0]
                                                                    + W[0, 1] + W[1, 0])
        a11, a12 = e11 * f11 + e12 * f12, e11 * f12 + e12 * f22
        a21, a22 = e12 * f11 + e22 * f12, e12 * f12 + e22 * f22
        ge11 += n0 * e11 - (a11 * e11 + a12 * e12)
        ge22 += n0 * e22 - (a21 * e12 + a22 * e22)
        ge12 += n0 * e12 - (a11 * e12 + a12 * e22)
    ll = -0.5 * (2.0 * (N - M) * LOG2PI + logdet + quad + logdet_A)
    # dl = sum_ab G_ab dSigma_ab with G = -1/2 (sums above); an off-diagonal entry counts twice.
    gg11, gg22, gg12 = -0.5 * gg11, -0.5 * gg22, -0.5 * gg12
    ge11, ge22, ge12 = -0.5 * ge11, -0.5 * ge22, -0.5 * ge12

    # ---- chain rule to the unconstrained values
    gg_d = (gg11, gg22)
    ge_d = (ge11, ge22)
    vg = (vg0, vg1)
    ve = (ve0, ve1)
    for t in range(2):
        dlvg = dh2[t] / h2[t]  # d log v_gt / d t_h2
        dlve = -dh2[t] / c2[t]
        grad[t] = (gg_d[t] * dh2[t] * Vp[t] - ge_d[t] * dh2[t] * Vp[t]
                   + gg12 * cg * dlvg + ge12 * ce * dlve + gp[t])
        grad[2 + t] = gg_d[t] * vg[t] + ge_d[t] * ve[t] + gg12 * cg + ge12 * ce + gp[2 + t]
    grad[4] = 4.0 * gg12 * ag * dug + gp[4]
    grad[5] = 4.0 * ge12 * ae * due + gp[5]
    return ll + lprior


def _logp_c(dim, x_, out_, logp_, ud_):
    # nutpie's contract: 0 ok, 3 non-finite gradient, 4 non-finite value (a rejected step).
    if dim != _N_DIM:
        return -1
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    lp = numba.carray(logp_, (1,))
    extra = np.empty(_N_EXTRA)
    val = _core(x, ud, out, extra)
    return logp_status(val, out, lp)


def _expand_c(dim, expanded, x_, out_, ud_):
    n = int(numba.carray(ud_, (1,))[0])
    ud = numba.carray(ud_, (n,))
    if dim != _N_DIM or expanded != int(ud[5]):
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    extra = np.empty(_N_EXTRA)
    grad = np.empty(dim)
    _core(x, ud, grad, extra)
    write_expanded(x, extra, ud, out)
    return 0


@functools.cache
def _functions():
    """The two C callbacks (compiled on first use, from numba's disk cache afterwards)."""
    return compile_callbacks(_logp_c, _expand_c)


# ---------------------------------------------------------------------- nutpie model
def _canonical(model) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Where each stored name sits in the canonical vector (x, then _core's extra)."""
    value = {n: model.rvs_to_values[model[n]].name for n in _FREE}
    o = _N_DIM
    return {value["h2"]: (0, (2,)), value["Vp"]: (2, (2,)), value["r_g_unit"]: (4, ()),
            value["r_e_unit"]: (5, ()), "h2": (o, (2,)), "Vp": (o + 2, (2,)),
            "r_g_unit": (o + 4, ()), "r_e_unit": (o + 5, ()), "r_g": (o + 6, ()),
            "r_e": (o + 7, ()), "Sigma_g": (o + 8, (2, 2)), "Sigma_e": (o + 12, (2, 2))}


def _initial_point_fn(info):
    """A central point (h2 = 1/2, Vp = var(y_t), r = 0) plus U(-1, 1) jitter on every
    unconstrained value, as PyMC's default initialisation does."""
    mt = info.model
    vy = np.sum(mt.Y_res**2, axis=0) / (mt.N - mt.M)
    centre = np.zeros(_N_DIM)
    centre[2:4] = np.log(vy)
    return jittered_initial_point(centre)


def compile_multitrait(model) -> Any | None:
    """A nutpie compiled model for a two-trait ``model`` using the hand-written log-density.

    Returns None when :func:`supported` says the model is not covered.
    """
    if supported(model) is not None:
        return None
    info = model_info(model)
    names, shapes, index, reparam = layout(model, _canonical(model))
    return nutpie_model(model, n_dim=_N_DIM, functions=_functions(),
                        user_data=_pack(info, index), names=names, shapes=shapes,
                        reparam=reparam, initial_point=_initial_point_fn(info))
