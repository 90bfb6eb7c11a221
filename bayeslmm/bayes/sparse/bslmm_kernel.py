"""The BSLMM chain in numba (docs/sparse-priors.md, "BSLMM", eqs. B1-B12).

In K's eigenbasis (K_r = U diag(S) U', the kernel with the covariates projected out) the
polygenic term is integrated out and the residual covariance is diagonal,
tau^-1 diag(1 + lambda S) with lambda = sigma_b2 (B4). Given the hyperparameters, the sparse
effects are then BayesC's point-normal model on the whitened data, and each SNP's
(gamma_j, beta_j) is drawn by the same collapsed single-site update as the BayesC kernel
(:func:`bayeslmm.bayes.sparse.kernel`; eqs. S9-S11 with z_j -> D^1/2 U'x_j, B6-B7). That
kernel runs a whole chain on fixed data from b = 0, while here the whitening D changes with
every (h, rho) and the chain must carry beta across those changes, so the sweep is written
again here around the shared update.

One call runs one whole chain (burn-in and kept sweeps): per sweep, random-walk Metropolis
on (h, rho, log pi) with tau and the polygenic term integrated out (B8-B9; half of the
proposals also rescale beta to keep beta / sigma_a constant, B10), tau from its
conditional (B11), then the SNP sweep (B6-B7) with residual updating, and GEMMA's PVE and
PGE from a draw of the polygenic term (B12). Compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["TRACE_NAMES", "bslmm_chain"]

#: the columns of the per-draw trace, in order
TRACE_NAMES = ("h", "rho", "pi", "n_gamma", "pve", "pge", "tau", "sigma_a2", "sigma_b2")


@njit(cache=True)
def _sigmas(h, rho, logp, trace_G, P):
    """(sigma_a2, sigma_b2) from (h, rho, log pi), GEMMA's BSLMM::CalcPosterior (B3)."""
    sa = h * rho / (trace_G * (1.0 - h) * math.exp(logp) * P)
    sb = h * (1.0 - rho) / (trace_G * (1.0 - h))
    return sa, sb


@njit(cache=True)
def _log_target(h, rho, logp, c, S, yt, g, y0sq, ssb, n_gamma, P, dof, trace_G):
    """log p(h, rho, log pi | gamma, beta) up to a constant, tau integrated out (B9), at
    beta scaled by c (1: beta as it is; the Jacobian and the prior quadratic of the rescaling
    move B10 are accounted for by the caller). ``ssb``: sum of beta_j^2 / sigma_a2 at c = 1
    with the current sigma_a2 ... passed as the quadratic to use."""
    sa, sb = _sigmas(h, rho, logp, trace_G, P)
    logdet = 0.0
    q = y0sq + ssb
    for i in range(S.size):
        v = 1.0 + sb * S[i]
        logdet += math.log(v)
        e = yt[i] - c * g[i]
        q += e * e / v
    out = -0.5 * logdet - 0.5 * (dof + n_gamma) * math.log(q)
    out += n_gamma * logp + (P - n_gamma) * math.log1p(-math.exp(logp))
    return out, sa


@njit(cache=True)
def _reflect(x, lo, hi):
    # GEMMA's reflecting random walk (BSLMM::ProposeHnRho): symmetric on [lo, hi]
    while x < lo or x > hi:
        if x < lo:
            x = 2.0 * lo - x
        if x > hi:
            x = 2.0 * hi - x
    return x


@njit(cache=True)
def bslmm_chain(Xt, S, yt, y0sq, dof, n_pve, trace_G, seed, n_burn, n_draws, n_batches,
                n_mh, fixed, start, bounds, steps):
    """One BSLMM chain.

    Parameters
    ----------
    Xt : (r, P) float64, Fortran order
        U'x_j for every SNP: the genotypes with the covariates projected out, rotated.
    S : (r,) float64
        The non-zero eigenvalues of K_r.
    yt : (r,) float64
        U'y_r. ``y0sq``: |y_r - U U'y_r|^2, the phenotype's part in K_r's null space (where
        the rotated genotypes are 0 and the residual variance is tau^-1).
    dof : float
        N - M. ``n_pve``: GEMMA's n in its PVE (B12). ``trace_G``: tr(K_r) / N.
    seed, n_burn, n_draws, n_batches : int
        numba's generator seed; sweeps discarded and kept; batches of the kept sweeps (the
        batch-means Monte Carlo SE of the per-SNP summaries).
    n_mh : int
        Metropolis proposals of each hyperparameter per sweep.
    fixed : (3,) bool
        Hold h, rho, log pi at their ``start`` values.
    start : (3,) float64
        Starting (or fixed) h, rho, log pi.
    bounds : (2,) float64
        log pi's uniform prior on [bounds[0], bounds[1]] (GEMMA: [log(1/P), 0]).
    steps : (3,) float64
        Initial random-walk widths of h, rho, log pi; adapted during burn-in towards an
        acceptance rate of 0.3 and frozen after it.

    Returns
    -------
    trace : (n_draws, 9) float64
        :data:`TRACE_NAMES` after each kept sweep.
    pip, beta_sum : (n_batches, P) float64
        Batch means of the Rao-Blackwellised P(gamma_j = 1 | rest) (B6) and of
        P(gamma_j = 1 | rest) E(beta_j | gamma_j = 1, rest) (B7).
    alpha_prime, u_mean : (r,) float64
        Posterior means of sigma_b2 D (yt - U'X beta) (GEMMA's alpha', whose X'alpha' / P
        is its per-SNP polygenic effect) and of U'u.
    accept : (3,) float64
        Acceptance rates of the kept sweeps' h, rho, log pi proposals.
    """
    np.random.seed(seed)  # noqa: NPY002
    r, P = Xt.shape
    h, rho, logp = start[0], start[1], start[2]
    beta = np.zeros(P)
    gam = np.zeros(P, dtype=np.bool_)
    g = np.zeros(r)  # U'X beta
    d = np.empty(r)
    step = steps.copy()
    n_acc = np.zeros(3)
    n_try = np.zeros(3)
    acc_w = np.zeros(3)
    trace = np.empty((n_draws, 9))
    pip = np.zeros((n_batches, P))
    beta_sum = np.zeros((n_batches, P))
    counts = np.zeros(n_batches)
    alpha_prime = np.zeros(r)
    u_mean = np.zeros(r)
    n_gamma = 0
    ssb_raw = 0.0  # sum over included SNPs of beta_j^2
    lo = np.array([1e-6, 1e-6, bounds[0]])
    hi = np.array([1.0 - 1e-6, 1.0 - 1e-6, bounds[1]])
    for t in range(n_burn + n_draws):
        kept = t >= n_burn
        batch = (t - n_burn) * n_batches // n_draws if kept else 0
        # ---- hyperparameters, tau integrated out (B8-B10)
        for _ in range(n_mh):
            for k in range(3):
                if fixed[k]:
                    continue
                sa_old, _ = _sigmas(h, rho, logp, trace_G, P)
                cur = np.array([h, rho, logp])
                prop = cur.copy()
                prop[k] = _reflect(cur[k] + (np.random.random() - 0.5) * step[k],  # noqa: NPY002
                                   lo[k], hi[k])
                sa_new, _ = _sigmas(prop[0], prop[1], prop[2], trace_G, P)
                rescale = n_gamma > 0 and np.random.random() < 0.5  # noqa: NPY002
                if n_gamma == 0 or sa_old <= 0.0 or sa_new <= 0.0:
                    rescale = False
                if rescale:
                    # beta' = c beta keeps beta' sigma_a'^-1 = beta sigma_a^-1 (B10)
                    c = math.sqrt(sa_new / sa_old)
                    quad = ssb_raw / sa_old
                    lt_old, _ = _log_target(h, rho, logp, 1.0, S, yt, g, y0sq, quad,
                                            n_gamma, P, dof, trace_G)
                    lt_new, _ = _log_target(prop[0], prop[1], prop[2], c, S, yt, g, y0sq,
                                            quad, n_gamma, P, dof, trace_G)
                    # prior normal constants sa^(-n/2) and the Jacobian c^n cancel
                    log_ratio = lt_new - lt_old
                else:
                    c = 1.0
                    q_old = ssb_raw / sa_old if n_gamma > 0 else 0.0
                    q_new = ssb_raw / sa_new if n_gamma > 0 else 0.0
                    lt_old, _ = _log_target(h, rho, logp, 1.0, S, yt, g, y0sq, q_old,
                                            n_gamma, P, dof, trace_G)
                    lt_new, _ = _log_target(prop[0], prop[1], prop[2], 1.0, S, yt, g, y0sq,
                                            q_new, n_gamma, P, dof, trace_G)
                    if n_gamma > 0:
                        log_ratio = lt_new - lt_old - 0.5 * n_gamma * (math.log(sa_new)
                                                                       - math.log(sa_old))
                    else:
                        log_ratio = lt_new - lt_old
                ok = math.log(np.random.random()) < log_ratio  # noqa: NPY002
                n_try[k] += 1.0
                if ok:
                    n_acc[k] += 1.0
                    h, rho, logp = prop[0], prop[1], prop[2]
                    if c != 1.0:
                        for i in range(r):
                            g[i] *= c
                        for j in range(P):
                            beta[j] *= c
                        ssb_raw *= c * c
                if not kept:  # Robbins-Monro on the log width, towards 0.3 acceptance
                    step[k] *= math.exp(((1.0 if ok else 0.0) - 0.3) / math.sqrt(1.0 + t))
                    step[k] = min(step[k], hi[k] - lo[k])
                elif ok:
                    acc_w[k] += 1.0
        sa, sb = _sigmas(h, rho, logp, trace_G, P)
        # ---- tau | everything (B11)
        q = y0sq
        for i in range(r):
            d[i] = 1.0 / (1.0 + sb * S[i])
            e = yt[i] - g[i]
            q += d[i] * e * e
        if n_gamma > 0:
            q += ssb_raw / sa
        tau = np.random.gamma(0.5 * (dof + n_gamma)) * 2.0 / q  # noqa: NPY002
        # ---- the SNP sweep: collapsed single-site Gibbs on the whitened data (B6-B7)
        pi = math.exp(logp)
        prior_lo = logp - math.log1p(-pi)
        n_gamma = 0
        ssb_raw = 0.0
        for j in range(P):
            bj = beta[j]
            if sa <= 0.0:  # rho = 0 or h = 0 held fixed: no sparse part at all
                if bj != 0.0:
                    for i in range(r):
                        g[i] -= Xt[i, j] * bj
                    beta[j] = 0.0
                gam[j] = False
                continue
            s = 0.0
            rj = 0.0
            for i in range(r):
                x = Xt[i, j]
                dx = d[i] * x
                s += dx * x
                rj += dx * (yt[i] - g[i])
            rj += s * bj  # x_j'D(yt - g_-j)
            prec = s + 1.0 / sa
            lo_j = prior_lo - 0.5 * math.log1p(sa * s) + 0.5 * tau * rj * rj / prec
            p1 = 1.0 / (1.0 + math.exp(-lo_j)) if lo_j > -700.0 else 0.0
            if kept:
                pip[batch, j] += p1
                beta_sum[batch, j] += p1 * rj / prec
            if np.random.random() < p1:  # noqa: NPY002
                new = rj / prec + np.random.standard_normal() / math.sqrt(tau * prec)  # noqa: NPY002
                gam[j] = True
                n_gamma += 1
                ssb_raw += new * new
            else:
                new = 0.0
                gam[j] = False
            if new != bj:
                stp = new - bj
                for i in range(r):
                    g[i] += Xt[i, j] * stp
            beta[j] = new
        if kept:
            # ---- GEMMA's PVE and PGE from a draw of the polygenic term (B12)
            sxb = 0.0
            su = 0.0
            for i in range(r):
                sxb += g[i] * g[i]
                e = yt[i] - g[i]
                ls = sb * S[i]
                ap = sb * d[i] * e
                ui = ap * S[i] + math.sqrt(ls / (1.0 + ls) / tau) * np.random.standard_normal()  # noqa: NPY002
                su += ui * ui
                alpha_prime[i] += ap
                u_mean[i] += ui
            v = (sxb + su) / n_pve
            s_idx = t - n_burn
            trace[s_idx, 0] = h
            trace[s_idx, 1] = rho
            trace[s_idx, 2] = math.exp(logp)
            trace[s_idx, 3] = n_gamma
            trace[s_idx, 4] = v / (v + 1.0 / tau)
            trace[s_idx, 5] = sxb / (sxb + su) if sxb + su > 0.0 else 0.0
            trace[s_idx, 6] = tau
            trace[s_idx, 7] = sa
            trace[s_idx, 8] = sb
            counts[batch] += 1.0
    for m in range(n_batches):
        for j in range(P):
            pip[m, j] /= counts[m]
            beta_sum[m, j] /= counts[m]
    for i in range(r):
        alpha_prime[i] /= n_draws
        u_mean[i] /= n_draws
    accept = np.zeros(3)
    for k in range(3):
        accept[k] = acc_w[k] / (n_mh * n_draws) if not fixed[k] else 0.0
    return trace, pip, beta_sum, alpha_prime, u_mean, accept
