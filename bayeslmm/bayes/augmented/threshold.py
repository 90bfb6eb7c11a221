"""The exact posterior of the probit threshold model by data augmentation, with h2 and the
fixed effects drawn collapsed over the genetic values (docs/binary.md, "The augmented
sampler").

The model is :func:`bayeslmm.bayes.models.threshold.threshold`'s (probit link):

    l = mu 1 + X_c beta_x + g + e,   g = U a,  a_k ~ N(0, sigma_g2 S_k),   e ~ N(0, I),
    y_i = 1  iff  l_i > 0,           h2 = sigma_g2 / (sigma_g2 + 1).

Albert & Chib (1993, JASA 88:669) make the liabilities l a block of the sampler: given l the
model is the Gaussian linear mixed model with residual variance 1, whose marginal likelihood
in h2, with g and the Gaussian coefficients integrated out, costs O(r) per value of h2 in the
eigenbasis K = U diag(S) U' shared with REML. Plain augmentation mixes badly (ESS(h2) 9 per
4,000 draws at N = 500 unrelated samples): with the residual variance fixed at 1, the
overall scale of l pins sigma_g2, and l remembers the last sigma_g2 through g. Marginal
augmentation (Meng & van Dyk 1999, Biometrika 86:301; Imai & van Dyk 2005, J Econometrics
124:311) frees that scale: the model is expanded by a working residual variance
psi ~ InverseGamma(1, 1), l~ = sqrt(psi) l (y, the signs of l, is unchanged), and psi is
integrated out of the h2 step. One sweep, a partially collapsed Gibbs sampler (van Dyk & Park
2008, JASA 103:790) whose blocks come in the order that keeps it exact:

0. psi from its prior (its conditional given the model's parameters), l~ = sqrt(psi) l.
1. t = log sigma_g2 | l~, with psi (as alpha = psi^-1/2), gamma (the Gaussian coefficients:
   the intercept when it is free, beta_x) and g integrated out: an independence
   Metropolis-Hastings step whose proposal is the conditional tabulated on a grid (a window
   of 64 cells around its mode, mixed 5% with a coarse table over |t| <= 12 so that it
   covers the support); the acceptance ratio uses the exact density, so the chain is exact.
   The conditional is

       log p(t | l~) = log p_h2(h2) + log h2 (1 - h2) - 1/2 sum_k log(sigma_g2 S_k + 1)
                       - 1/2 log|D^-1 + F'V^-1 F| - c/2
                       + log int_0^inf alpha^(n-1) exp(-a alpha^2 / 2 + B alpha) d alpha,

   with V = sigma_g2 K + I, F the columns of gamma (prior N(m0, D)), n = N + 2, and
   a alpha^2 - 2 B alpha + c = w' M w for w = alpha l~ - o - F m0, M = V^-1 -
   V^-1 F P^-1 F'V^-1, P = D^-1 + F'V^-1 F (Woodbury; a includes psi's prior), o =
   Phi^-1(prevalence) sqrt(1 + sigma_g2) 1 when the prevalence places the threshold (0
   otherwise). Every form is an entry of [l~, 1, F]' V^-1 [l~, 1, F] = R' diag(1 /
   (sigma_g2 S + 1)) R + the complement's Gram matrix, R = U'[l~, 1, F]; the integral is a
   Gauss-Hermite sum about its mode (:func:`bayeslmm.bayes.augmented.draws.log_scale_integral`).
1a. With a prior on the prevalence K: logit(K) | h2, l~ by the same kind of step (only o
   depends on it).
1b. alpha | h2, K, l~: exact rejection draw from its log-concave density
   (:func:`bayeslmm.bayes.augmented.draws.draw_scale`); l = alpha l~ on the model's scale again.
2. gamma | h2, K, l (g integrated out): Normal(m0 + P^-1 b, P^-1), b = F'V^-1 (l - o - F m0).
3. a | h2, gamma, l: independent normals in the eigenbasis,
   a_k ~ N((1 - lambda_k) (U'w_g)_k, 1 - lambda_k), lambda_k = 1 / (sigma_g2 S_k + 1),
   w_g = l - mu 1 - X_c beta_x; g = U a.
4. l | g, mu, beta_x, y: independent truncated normals N(eta_i, 1) on (0, inf) for cases and
   (-inf, 0] for controls, drawn by inversion in log space (exact in both tails).

A sweep costs two products with U (O(N r), every chain in one matrix product) plus O(r) per
grid point. h2 is never drawn given the N genetic values (NUTS's difficulty on the
non-centred model, docs/binary.md "Mixing"), nor given the scale of l: the chain's
autocorrelation is what the binary outcome loses against the liabilities' shape.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special

from bayeslmm.bayes.augmented.draws import (
    draw_scale,
    log_scale_integral,
    truncated_normal_sign,
)
from bayeslmm.bayes.augmented.grid_mh import COARSE_T, T_MAX, independence_mh
from bayeslmm.bayes.compiled.threshold import threshold_parts
from bayeslmm.bayes.diagnostics import check_diagnostics
from bayeslmm.bayes.model_info import find_info
from bayeslmm.errors import InputError
from bayeslmm.progress import progress_bar

__all__ = ["METHODS", "AugmentedProblem", "sample_augmented", "supported_augmented"]

log = logging.getLogger(__name__)

METHODS = ("auto", "augmented", "nuts")
THIN = 4
# The working prior of the residual variance psi = alpha^-2 of the expanded model,
# InverseGamma(WORKING_A, WORKING_B): proper, and diffuse next to the N liabilities.
WORKING_A = 1.0
WORKING_B = 1.0
TABLE_T = np.linspace(-T_MAX, T_MAX, 4097)  # log|V| for the proposal's fine cells


@dataclass(frozen=True, eq=False)
class AugmentedProblem:
    """The constants of one threshold model that every sweep reads (from its ThresholdInfo)."""

    U: np.ndarray          # (N, r)
    S: np.ndarray          # (r,)
    positive: np.ndarray   # (N,) bool, the cases
    F: np.ndarray          # (N, p) columns of the Gaussian coefficients gamma
    m0: np.ndarray         # (p,) prior mean of gamma
    d2: np.ndarray         # (p,) prior variance of gamma
    c: float | None        # Phi^-1(prevalence) when a fixed prevalence places the threshold
    prevalence_prior: object  # a Prior on the prevalence, or None
    h2_prior: object       # a Prior (logpdf)
    R1F: np.ndarray        # (r, 1 + p) U'[1, F]
    G1F: np.ndarray        # (1 + p, 1 + p) complement Gram matrix of [1, F]
    others: tuple          # non-intercept covariate columns of X
    icol: int              # the intercept column of X
    x_mean: np.ndarray     # means of the non-intercept covariates
    coarse_lam: np.ndarray    # (coarse grid, r) 1 / (sigma_g2 S + 1) on the coarse grid
    coarse_logdet: np.ndarray  # log|V| on the coarse grid
    table_t: np.ndarray       # log|V| tabulated for the proposal's fine cells
    table_logdet: np.ndarray

    @property
    def free_intercept(self) -> bool:
        return self.c is None and self.prevalence_prior is None

    @classmethod
    def of(cls, info) -> AugmentedProblem:
        from bayeslmm.bayes.priors import default_prior

        dec, data, icol, Xc, scale = threshold_parts(info)
        others = tuple(j for j in range(data.M) if j != icol)
        bx_sd = default_prior("threshold", "beta", 1.0).params["sigma"] * scale
        N = data.N
        pp = info.priors.get("prevalence")
        if info.prevalence is None and pp is None:
            ip = info.priors["intercept"]
            F = np.column_stack([np.ones(N), Xc])
            m0 = np.concatenate([[ip.params["mu"]], np.zeros(Xc.shape[1])])
            d2 = np.concatenate([[ip.params["sigma"] ** 2], bx_sd**2])
            c = None
        else:
            F, m0, d2 = Xc, np.zeros(Xc.shape[1]), bx_sd**2
            c = None if pp is not None else float(special.ndtri(float(info.prevalence)))
        U = np.ascontiguousarray(dec.U)
        B = np.column_stack([np.ones(N), F])
        R1F = U.T @ B
        S = np.asarray(dec.S, dtype=np.float64)
        grid = np.exp(COARSE_T)[:, None] * S
        table = np.array([np.log1p(np.exp(x) * S).sum() for x in TABLE_T])
        return cls(U=U, S=S, coarse_lam=1.0 / (grid + 1.0),
                   coarse_logdet=np.log1p(grid).sum(axis=1), table_t=TABLE_T,
                   table_logdet=table,
                   positive=np.asarray(data.y) > 0.5, F=F, m0=m0, d2=d2, c=c,
                   prevalence_prior=pp,
                   h2_prior=info.priors["h2"], R1F=R1F, G1F=B.T @ B - R1F.T @ R1F,
                   others=others, icol=icol, x_mean=np.asarray(info.x_mean))


def supported_augmented(model) -> str | None:
    """Why the augmented sampler cannot serve ``model``, or None when it can."""
    info = find_info(model)
    if info is None or getattr(info, "kind", None) != "threshold":
        return "not a threshold model"
    if info.link != "probit":
        return f"link {info.link!r} (the augmentation is the probit's normal liability)"
    if "prevalence" in info.priors and info.priors["prevalence"].family == "custom":
        return "a custom prior on the prevalence"
    if info.prevalence is None and "prevalence" not in info.priors and \
            info.priors["intercept"].family != "Normal":
        return f"prior {info.priors['intercept']} on the intercept (Normal is conjugate)"
    if info.priors["h2"].family == "custom":
        return "a custom prior on h2"
    expected = {"h2", "sigma_g2", "g_raw", "g", "intercept", "beta", "y", "beta_x",
                "intercept_std", "intercept_prior", "prevalence"}
    extra = set(model.named_vars) - expected
    if extra:
        return f"variables added to the model: {sorted(extra)}"
    return None


# ---------------------------------------------------------------------- the h2 step
class _Conditional:
    """log p(t | l~) of every chain at any t = log sigma_g2, the working scale integrated
    out (module docstring, step 1), and the pieces of the later steps' conditionals."""

    def __init__(self, prob: AugmentedProblem, l_rot: np.ndarray, l_dots: np.ndarray,
                 c: np.ndarray | None):
        # c: Phi^-1(prevalence) of every chain (C,), None for a free intercept
        self.c = c
        # columns [l, 1, F]: rotated R (C, r, q) and complement Gram (C, q, q)
        C = l_rot.shape[0]
        q = prob.R1F.shape[1] + 1
        R = np.empty((C, prob.U.shape[1], q))
        R[:, :, 0] = l_rot
        R[:, :, 1:] = prob.R1F
        G = np.empty((C, q, q))
        G[:, 1:, 1:] = prob.G1F
        G[:, 0, :] = l_dots - np.einsum("ck,ckj->cj", l_rot, R)
        G[:, :, 0] = G[:, 0, :]
        self.prob, self.q = prob, q
        self.outer = (R[:, :, :, None] * R[:, :, None, :]).reshape(C, -1, q * q)
        self.gram = G
        self.n_eff = prob.positive.size + 2.0 * WORKING_A

    def forms(self, t: np.ndarray, lam: np.ndarray | None = None):
        """M = V_F^-1 as forms on [l, 1, F] (gamma integrated, Woodbury), the Cholesky
        factor of P = D^-1 + F'V^-1 F and the rows A_F. of V^-1, at sigma_g2 = exp(t)
        (``lam``: 1 / (sigma_g2 S + 1), when the caller has it)."""
        if lam is None:
            lam = 1.0 / (np.exp(t)[..., None] * self.prob.S + 1.0)
        A = np.matmul(lam, self.outer).reshape(t.shape + (self.q, self.q))
        A = A + self.gram[:, None]
        if self.q == 2:
            return A, None, None
        AF = A[..., 2:, :]
        L = np.linalg.cholesky(A[..., 2:, 2:] + np.diag(1.0 / self.prob.d2))
        half = np.linalg.solve(L, AF)                       # L^-1 A_F.
        M = A - np.swapaxes(half, -1, -2) @ half
        return M, L, AF

    def offsets(self, t: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        """e0: o + F m0 as (negative) coefficients on [l, 1, F]; ``c`` (the shape of t)
        replaces the chains' Phi^-1(prevalence)."""
        sg = np.exp(t)
        if c is None and self.c is not None:
            c = self.c.reshape((-1,) + (1,) * (t.ndim - 1))
        off = 0.0 if c is None else c * np.sqrt(1.0 + sg)
        e = np.zeros(t.shape + (self.q,))
        e[..., 1] = -off
        e[..., 2:] = -self.prob.m0
        return e

    def scale_terms(self, t: np.ndarray, M: np.ndarray, c=None):
        """(a, B, c) of the liabilities' exponent -1/2 (a alpha^2 - 2 B alpha + c), alpha the
        factor from the working scale to the model's (l = alpha l~)."""
        e0 = self.offsets(t, c)
        Me0 = np.einsum("...ij,...j->...i", M, e0)
        return M[..., 0, 0] + 2.0 * WORKING_B, -Me0[..., 0], np.einsum("...i,...i->...", e0,
                                                                       Me0)

    def logp(self, t: np.ndarray, *, exact: bool = True, lam=None,
             logdet=None) -> np.ndarray:
        """log p(t | l~) up to a constant. ``exact=False`` (the proposal's table only) takes
        log|V| = sum log(sigma_g2 S + 1) from an interpolated table instead of O(r) logs
        per point; ``lam`` and ``logdet`` (the fixed coarse grid's) are given when known."""
        prob = self.prob
        M, L, _ = self.forms(t, lam)
        sg = np.exp(t)
        h2 = sg / (1.0 + sg)
        if logdet is None:
            logdet = (np.log1p(sg[..., None] * prob.S).sum(axis=-1) if exact else
                      np.interp(t, prob.table_t, prob.table_logdet))
        lp = (prob.h2_prior.logpdf(h2) + np.log(h2) - np.log1p(sg) - 0.5 * logdet)
        if L is not None:
            lp = lp - np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
        a, B, c = self.scale_terms(t, M)
        return lp + log_scale_integral(self.n_eff, a, B) - 0.5 * c


def _step_h2(cond: _Conditional, t: np.ndarray, rng: np.random.Generator):
    """t = log sigma_g2 | l~, the working scale, gamma and g integrated out (step 1)."""
    prob = cond.prob
    lp_c = cond.logp(np.broadcast_to(COARSE_T, (t.size, COARSE_T.size)), lam=prob.coarse_lam,
                     logdet=prob.coarse_logdet)
    return independence_mh(lp_c, lambda T: cond.logp(T, exact=False), cond.logp, t, rng)


def _step_prevalence(cond: _Conditional, t: np.ndarray, rng: np.random.Generator):
    """v = logit(prevalence) | h2, l~, the working scale, gamma and g integrated out (step
    1a): only the offset o = Phi^-1(K) sqrt(1 + sigma_g2) 1 depends on it, so the forms at
    the chain's h2 serve every value of v."""
    prob = cond.prob
    tt = t[:, None]
    M, _, _ = cond.forms(tt)

    def logp(V):
        K = special.expit(V)
        a, B, cc = cond.scale_terms(np.broadcast_to(tt, V.shape),
                                    np.broadcast_to(M, V.shape + M.shape[-2:]),
                                    special.ndtri(K))
        return (prob.prevalence_prior.logpdf(K) + np.log(K) + np.log1p(-K)
                + log_scale_integral(cond.n_eff, a, B) - 0.5 * cc)

    v = special.logit(special.ndtr(cond.c))
    v, _ = independence_mh(logp(np.broadcast_to(COARSE_T, (t.size, COARSE_T.size))), logp, logp,
                            v, rng)
    return special.ndtri(special.expit(v))


# ---------------------------------------------------------------------- the sweep
def _draw_scale_and_gamma(cond: _Conditional, t: np.ndarray, rng: np.random.Generator):
    """alpha | h2, l~ (step 1b) and gamma | h2, l = alpha l~ (step 2):
    gamma = m0 + P^-1 b + L'^-1 z with P = L L' and b = A_F. (alpha e_l + e0)."""
    prob = cond.prob
    tt = t[:, None]
    M, L, AF = cond.forms(tt)
    a, B, _ = cond.scale_terms(tt, M)
    alpha = draw_scale(cond.n_eff, a[:, 0], B[:, 0], rng)
    if L is None:
        return alpha, np.zeros((t.size, 0))
    e = cond.offsets(tt)[:, 0]
    e[:, 0] = alpha
    b = np.einsum("cij,cj->ci", AF[:, 0], e)
    L = L[:, 0]
    sol = np.linalg.solve(L, b[..., None])[..., 0]
    z = sol + rng.standard_normal(sol.shape)
    return alpha, prob.m0 + np.linalg.solve(np.swapaxes(L, -1, -2), z[..., None])[..., 0]


def _liability_dots(prob: AugmentedProblem, l: np.ndarray) -> np.ndarray:
    """[l, 1, F]' l per chain, (C, q)."""
    return np.column_stack([np.einsum("cn,cn->c", l, l), l.sum(axis=1), l @ prob.F])


def sample_augmented(model, draws: int = 1000, tune: int = 1000, chains: int = 4,
                     seed: int | None = None, progressbar: bool = True, *,
                     log_likelihood: bool = False, log_prior: bool = True,
                     method: str = "auto", thin: int = THIN, **unused) -> xr.DataTree | None:
    """The threshold model's posterior by the augmented Gibbs sampler (module docstring).

    The family's sampling hook (:func:`bayeslmm.bayes.sampling.sample` calls it): returns
    None -- NUTS then samples -- for ``method="nuts"`` and for the models it does not cover
    (:func:`supported_augmented`: logit link, a non-Normal intercept prior, custom priors,
    user-added variables).

    Parameters
    ----------
    model : pymc.Model
        From :func:`bayeslmm.bayes.models.threshold.threshold`.
    draws, tune, chains, seed, progressbar
        As :func:`bayeslmm.bayes.sampling.sample`: ``draws`` kept per chain, after ``tune``
        discarded sweeps (the sampler has nothing to adapt: they are burn-in).
    thin : int
        Sweeps per kept draw. A sweep costs about one NUTS gradient (two products with U)
        and NUTS takes ~15 per draw; with 4 the draws' ESS(h2) per draw was 0.15-0.6
        (docs/binary.md), so the default 4 x 1,000 gives ESS(h2) of 600 to a few thousand.
    log_likelihood : bool
        Store log Phi(+-eta_i) per draw (the model's ``y`` terms).
    log_prior : bool
        Store the log prior densities of ``h2``, ``intercept`` (when free) and ``beta_x``.
    method : {"auto", "augmented", "nuts"}
        ``"augmented"`` refuses a model it does not cover (one line, the reason).

    Returns
    -------
    DataTree or None
        ``posterior``: ``h2``, ``sigma_g2``, ``intercept``, ``beta`` (``covariate``),
        ``beta_x`` (when there are covariates), ``prevalence`` (implied by a free intercept,
        or drawn under its prior),
        ``g`` (``sample``) when the model stores it; ``sample_stats``: ``accepted`` (the h2
        step); diagnostics in ``posterior.attrs`` (``sampler="augmented"``).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if unused.get("target_accept") is None:
        unused.pop("target_accept", None)
    if unused:
        raise InputError(f"options {sorted(unused)} are not for the threshold model's "
                         "samplers")
    if isinstance(thin, bool) or not isinstance(thin, int | np.integer) or thin < 1:
        raise InputError(f"thin must be a positive integer, got {thin!r}")
    if method == "nuts":
        return None
    reason = supported_augmented(model)
    if reason is not None:
        if method == "augmented":
            raise InputError(f"the augmented sampler does not cover this model: {reason}")
        log.info("Threshold model sampled by NUTS, not the augmented sampler: %s.", reason)
        return None
    info = find_info(model)
    prob = AugmentedProblem.of(info)
    log.info("Threshold model sampled by data augmentation (liabilities a block, h2 drawn "
             "with g integrated out): %d chains x %d draws of %d sweeps after %d burn-in "
             "sweeps.", chains, draws, thin, tune)
    store_g = "g" in model.named_vars
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    out = _run(prob, draws, tune, chains, rng, store_g, progressbar, int(thin))
    idata = _tree(info, prob, out, draws, chains, store_g, log_likelihood, log_prior)
    post = idata["posterior"]
    post.attrs.update(sampler="augmented", model_kind="threshold",
                      wall_time_s=time.perf_counter() - t0,
                      h2_acceptance=float(out["accepted"].mean()))
    post.attrs["priors"] = repr(info.priors.describe())
    post.attrs.update(check_diagnostics(idata, warn=True))
    return idata


def _run(prob: AugmentedProblem, draws: int, tune: int, chains: int,
         rng: np.random.Generator, store_g: bool, progressbar: bool, thin: int = 1) -> dict:
    U, S = prob.U, prob.S
    N, r = U.shape
    C = chains
    # dispersed starts: h2 in (0.2, 0.8); the intercept from the case proportion
    t = np.log(rng.uniform(0.25, 4.0, size=C))
    p_case = float(np.clip(prob.positive.mean(), 1e-3, 1 - 1e-3))
    gamma = np.tile(prob.m0, (C, 1))
    c = None  # Phi^-1(prevalence) per chain when the prevalence places the threshold
    if prob.free_intercept:
        gamma[:, 0] = special.ndtri(p_case) * np.sqrt(1.0 + np.exp(t))
    elif prob.c is not None:
        c = np.full(C, prob.c)
    else:
        c = special.ndtri(np.clip(prob.prevalence_prior.rvs(C, rng), 1e-6, 1 - 1e-6))
    eta = _fixed_part(prob, t, gamma, c)
    l = truncated_normal_sign(eta, prob.positive, rng)
    keep = {"t": np.empty((draws, C)), "c": np.empty((draws, C)),
            "gamma": np.empty((draws, C, prob.m0.size)),
            "accepted": np.empty((draws, C), dtype=bool)}
    # g itself (N per draw) or, as NUTS stores it, its whitened eigen-coefficients g_raw
    keep["g"] = np.empty((draws, C, N if store_g else r))
    bar = progress_bar(total=tune + draws * thin, desc="augmented Gibbs", unit="sweep") \
        if progressbar else None
    try:
        for it in range(tune + draws * thin):
            # the working residual variance, fresh from its prior: l~ = sqrt(psi) l
            root_psi = 1.0 / np.sqrt(rng.gamma(WORKING_A, 1.0 / WORKING_B, size=C))
            l_rot = (l @ U) * root_psi[:, None]             # (C, r): U'l~ of every chain
            cond = _Conditional(prob, l_rot, _liability_dots(prob, l * root_psi[:, None]), c)
            t, acc = _step_h2(cond, t, rng)                 # 1. h2 | l~
            if prob.prevalence_prior is not None:           # 1a. prevalence | h2, l~
                c = cond.c = _step_prevalence(cond, t, rng)
            alpha, gamma = _draw_scale_and_gamma(cond, t, rng)  # 1b, 2. psi, gamma
            l_rot = alpha[:, None] * l_rot                  # back to the model's scale:
            l = (alpha * root_psi)[:, None] * l             # l = alpha l~, a new l
            sg = np.exp(t)
            lam = 1.0 / (sg[:, None] * S + 1.0)
            fixed = _fixed_part(prob, t, gamma, c)          # mu 1 + X_c beta_x
            w_rot = l_rot - _rotated_fixed(prob, t, gamma, c)  # U'(l - fixed)
            a = (1.0 - lam) * w_rot + np.sqrt(1.0 - lam) * rng.standard_normal((C, r))
            g = a @ U.T                                     # 3. g | h2, gamma, l
            eta = fixed + g
            l = truncated_normal_sign(eta, prob.positive, rng)  # 4. l | g, gamma, y
            k, kept = divmod(it - tune, thin)
            if it >= tune and kept == thin - 1:
                keep["t"][k], keep["gamma"][k], keep["accepted"][k] = t, gamma, acc
                keep["c"][k] = np.nan if c is None else c
                keep["g"][k] = g if store_g else a / np.sqrt(sg[:, None] * S)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return keep


def _offset(t: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """The intercept placed by the prevalence, Phi^-1(K) sqrt(1 + sigma_g2), per chain."""
    return c * np.sqrt(1.0 + np.exp(t)) if c is not None else np.zeros_like(t)


def _fixed_part(prob: AugmentedProblem, t, gamma, c) -> np.ndarray:
    return _offset(t, c)[:, None] + gamma @ prob.F.T


def _rotated_fixed(prob: AugmentedProblem, t, gamma, c) -> np.ndarray:
    return _offset(t, c)[:, None] * prob.R1F[:, 0] + gamma @ prob.R1F[:, 1:].T


def _tree(info, prob: AugmentedProblem, out: dict, draws: int, chains: int, store_g: bool,
          log_likelihood: bool, log_prior: bool) -> xr.DataTree:
    """The posterior in the layout of the NUTS path (same names, dims and coordinates)."""
    data = info.data
    T = out["t"].T                                          # (C, D)
    sg = np.exp(T)
    h2 = sg / (1.0 + sg)
    gam = np.swapaxes(out["gamma"], 0, 1)                   # (C, D, p)
    if prob.free_intercept:
        mu, bx = gam[..., 0], gam[..., 1:]
    else:
        mu, bx = out["c"].T * np.sqrt(1.0 + sg), gam
    beta = np.zeros((chains, draws, data.M))
    for k, j in enumerate(prob.others):
        beta[..., j] = bx[..., k]
    beta[..., prob.icol] = mu - bx @ prob.x_mean if prob.others else mu
    dims = ("chain", "draw")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws),
              "covariate": list(data.covariates)}
    ds = {"h2": (dims, h2), "sigma_g2": (dims, sg), "intercept": (dims, mu),
          "beta": (dims + ("covariate",), beta)}
    if prob.others:
        coords["covariate_x"] = [data.covariates[j] for j in prob.others]
        ds["beta_x"] = (dims + ("covariate_x",), bx)
    if prob.free_intercept or prob.prevalence_prior is not None:
        ds["prevalence"] = (dims, special.ndtr(mu / np.sqrt(1.0 + sg)))
    coords["sample"] = list(data.samples)
    if store_g:
        ds["g"] = (dims + ("sample",), np.swapaxes(out["g"], 0, 1))
    else:
        coords["eigen"] = np.arange(prob.S.size)
        ds["g_raw"] = (dims + ("eigen",), np.swapaxes(out["g"], 0, 1))
    tree = {"posterior": xr.Dataset(ds, coords=coords),
            "sample_stats": xr.Dataset({"accepted": (dims, out["accepted"].T)},
                                       coords={k: coords[k] for k in ("chain", "draw")}),
            "observed_data": xr.Dataset({"y": (("sample",), np.asarray(data.y, float))},
                                        coords={"sample": list(data.samples)})}
    if log_likelihood:
        g = (np.swapaxes(out["g"], 0, 1) if store_g else
             (np.sqrt(sg[..., None] * prob.S) * ds["g_raw"][1]) @ prob.U.T)
        eta = beta @ data.X.T + g
        s = np.where(prob.positive, 1.0, -1.0)
        tree["log_likelihood"] = xr.Dataset(
            {"y": (dims + ("sample",), special.log_ndtr(s * eta))},
            coords={k: coords[k] for k in ("chain", "draw", "sample")})
    if log_prior:
        lp = {"h2": (dims, info.priors["h2"].logpdf(h2))}
        if prob.free_intercept:
            lp["intercept"] = (dims, info.priors["intercept"].logpdf(mu))
        if prob.prevalence_prior is not None:
            lp["prevalence"] = (dims, prob.prevalence_prior.logpdf(ds["prevalence"][1]))
        if prob.others:
            sd = np.sqrt(prob.d2[-len(prob.others):])
            lp["beta_x"] = (dims + ("covariate_x",),
                            -0.5 * (bx / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi)))
        tree["log_prior"] = xr.Dataset(lp, coords={k: v for k, v in coords.items()
                                                   if k not in ("sample", "eigen")})
    return xr.DataTree.from_dict(tree)
