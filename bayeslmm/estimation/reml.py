"""Variance-component estimation by REML or ML (notes sections 3-4).

One kernel: the spectral path. K = U S U' is decomposed once; the likelihood profiled over
beta and the overall scale is then a function of h2 alone, O(N M^2) per evaluation, and is
maximised by a grid over h2 followed by bounded Brent in the best bracket (FaST-LMM's
strategy), so the global optimum cannot be missed. h2 = 0 and h2 = 1 are boundary solutions
that are flagged, not errors.

Several kernels: the dense path, with GCTA's three algorithms: average information (AI-REML,
default), Fisher scoring and EM; constrained (non-negative, GCTA's default) or unconstrained.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, special

from bayeslmm.covariance.decomposition import Decomposition, check_psd, decompose, psd_by_cholesky
from bayeslmm.covariance.structures import DenseCovariance, SpectralCovariance
from bayeslmm.data import LMMData, prepare
from bayeslmm.errors import ConvergenceWarning, IdentifiabilityWarning, InputError
from bayeslmm.estimation.liability import liability_h2
from bayeslmm.estimation.results import Results
from bayeslmm.identifiability import (
    check_data,
    check_kernels,
    invisible_kernels,
    not_identifiable,
    singular_limit,
    too_few_samples,
)
from bayeslmm.likelihood import tails
from bayeslmm.likelihood.single import DenseLMM, SpectralLMM

__all__ = ["VarianceComponentFit", "ml", "reml"]

ALGORITHMS = ("brent", "ai", "fisher", "em")
#: the information matrices a fit's standard errors can come from
SE_METHODS = ("ai", "observed", "expected")


def _information(fit: VarianceComponentFit, kind: str) -> np.ndarray:
    """The (RE)ML information matrix of ``sigma2`` at the estimate.

    V is linear in the variances (V_i = K_i, V_e = I, second derivatives 0), so with
    AI_ij = 1/2 y'P V_i P V_j P y and the expected (Fisher) information
    F_ij = 1/2 tr(P V_i P V_j), the observed information -d2 l / d sigma_i d sigma_j is
    y'P V_i P V_j P y - 1/2 tr(P V_i P V_j) = 2 AI - F (notes 4.3.2; GCTA's AI is the
    average of the two).
    """
    model, s = fit.model, fit.sigma2
    if isinstance(model, SpectralLMM):
        ai = model.information(s[0], s[1], reml=fit.reml, kind="ai")
        fi = model.information(s[0], s[1], reml=fit.reml, kind="fisher")
    else:
        ev = model.evaluate(s, fit.reml)
        if ev is None:
            return np.full((s.size, s.size), np.nan)
        ai, fi = model.ai(ev), model.fisher(ev)
    return {"ai": ai, "expected": fi, "observed": 2.0 * ai - fi}[kind]


def _with_se_method(fit: VarianceComponentFit, se_method: str) -> VarianceComponentFit:
    if se_method not in SE_METHODS:
        raise InputError(f"se_method must be one of {SE_METHODS}, got {se_method!r}")
    if se_method == "ai" or not np.all(np.isfinite(fit.cov)):
        return replace(fit, se_method=se_method)
    return replace(fit, cov=_safe_inv(_information(fit, se_method)), se_method=se_method)
H2_MAX_SINGULAR = 1.0 - 1e-5


@dataclass(frozen=True, eq=False)
class VarianceComponentFit(Results):
    """A fitted variance-component model Y = X beta + sum_k g_k + e.

    The per-component quantities (``sigma_g2``, ``h2``, ``h2_se``...) are floats with one
    kernel and arrays (one entry per kernel) with several.

    Attributes
    ----------
    sigma2 : ndarray, shape (k + 1,)
        (sigma_g2_1, ..., sigma_g2_k, sigma_e2).
    cov : ndarray, shape (k + 1, k + 1)
        Sampling covariance of ``sigma2``: the inverse of the information matrix named by
        ``se_method`` (the average information by default, as GCTA).
    beta, beta_cov : pandas
        GLS estimate (49) and its covariance (X'V^-1X)^-1, labelled by covariate.
    loglik, loglik_null : float
        Maximised (RE)ML log-likelihood, constants included, and that of the model without
        genetic components (sigma_g2 = 0).
    boundary : str or None
        ``"h2=0"`` or ``"h2=1"`` when the estimate lies on the boundary, else None.
    h2_ci : (float, float) or None
        Profile-likelihood 95% interval for h2 (one kernel only).
    """

    reml: bool
    algorithm: str
    components: tuple[str, ...]
    sigma2: np.ndarray
    cov: np.ndarray
    beta: pd.Series
    beta_cov: pd.DataFrame
    loglik: float
    loglik_null: float
    converged: bool
    n_iter: int
    boundary: str | None
    h2_ci: tuple[float, float] | None
    history: pd.DataFrame
    data: LMMData = field(repr=False)
    decomposition: Decomposition | None = field(default=None, repr=False)
    model: SpectralLMM | DenseLMM | None = field(default=None, repr=False)
    #: why h2 is not identifiable from these data (then every SE is NaN), else None
    not_identifiable: str | None = None
    #: the information matrix whose inverse is ``cov``: "ai" (GCTA), "observed" (the
    #: Hessian of the log-likelihood; GEMMA's se(pve)) or "expected" (Fisher)
    se_method: str = "ai"
    #: why the estimate is barely determined (no more residual degrees of freedom than
    #: variance parameters, e.g. N = 3); the estimate and SEs are kept, with a warning
    few_samples: str | None = None

    # --------------------------------------------------------------- per-component values
    def _one(self, a):
        a = np.asarray(a)
        return float(a[0]) if a.shape == (1,) else a

    @property
    def k(self) -> int:
        return len(self.components)

    @property
    def N(self) -> int:
        return self.data.N

    @property
    def sigma_g2(self):
        return self._one(self.sigma2[:-1])

    @property
    def sigma_e2(self) -> float:
        return float(self.sigma2[-1])

    @property
    def Vp(self) -> float:
        return float(self.sigma2.sum())

    @property
    def Vp_se(self) -> float:
        return float(_sd(self.cov.sum()))

    @property
    def sigma_g2_se(self):
        return self._one(_sd(np.diag(self.cov)[:-1]))

    @property
    def sigma_e2_se(self) -> float:
        return float(_sd(self.cov[-1, -1]))

    @property
    def delta(self):
        """sigma_e2 / sigma_g2 (notes; FaST-LMM's delta). One kernel only."""
        if self.k != 1:
            raise InputError("delta is defined for one kernel")
        g = self.sigma2[0]
        return float(np.inf if g == 0 else self.sigma2[1] / g)

    def _h2_jacobian(self) -> np.ndarray:
        """d(sigma_j / Vp) / d sigma2, rows j = components (delta method, as GCTA)."""
        Vp = self.Vp
        J = -np.outer(self.sigma2[:-1], np.ones(self.k + 1)) / Vp**2
        J[:, : self.k] += np.eye(self.k) / Vp
        return J

    @property
    def h2(self):
        """sigma_g2 / Vp per component."""
        return self._one(self.sigma2[:-1] / self.Vp)

    @property
    def mean_diag(self):
        """Mean diagonal tr(K)/N of each kernel (1 for a GRM of standardized genotypes)."""
        if self.decomposition is not None:
            return float(self.decomposition.S.sum() / self.decomposition.N)
        return self._one(np.array([np.trace(K) / self.N for K in self.data.Ks]))

    @property
    def pve_gemma(self):
        """GEMMA's "pve": h2 with K rescaled to mean diagonal 1, m sigma_g2 / (m sigma_g2 +
        sigma_e2) with m = tr(K)/N (GEMMA's trace_G). Equals ``h2`` when m = 1; with a
        centred kinship (``gemma -gk 1``) the two differ and this is the number GEMMA prints.
        """
        m = np.atleast_1d(self.mean_diag)
        g = self.sigma2[:-1] * m
        return self._one(g / (g.sum() + self.sigma2[-1]))

    @property
    def h2_se(self):
        J = self._h2_jacobian()
        return self._one(_sd(np.einsum("ij,jk,ik->i", J, self.cov, J)))

    @property
    def h2_total(self) -> float:
        return float(self.sigma2[:-1].sum() / self.Vp)

    @property
    def h2_total_se(self) -> float:
        g = self._h2_jacobian().sum(axis=0)
        return float(_sd(g @ self.cov @ g))

    @property
    def beta_se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.beta_cov.values)), index=self.beta.index,
                         name="se")

    @property
    def lrt(self) -> float:
        """2 (l - l0), the likelihood-ratio statistic for all sigma_g2 = 0."""
        return float(max(2 * (self.loglik - self.loglik_null), 0.0))

    @property
    def lrt_df(self) -> int:
        return self.k

    @property
    def lrt_p(self) -> float:
        """p-value of the LRT under the boundary null: a 50:50 mixture of chi2_0 and chi2_k
        (Self & Liang; exact for k = 1, GCTA's convention for k > 1)."""
        return float(0.5 * tails.chi2_sf(self.lrt, self.k)) if self.lrt > 0 else 1.0

    # --------------------------------------------------------------- statsmodels vocabulary
    @property
    def nobs(self) -> int:
        return self.N

    @property
    def llf(self) -> float:
        """Maximised (RE)ML log-likelihood, constants included (statsmodels' ``llf``)."""
        return float(self.loglik)

    @property
    def variance_names(self) -> list[str]:
        """Labels of the variance components in ``params``: '<component> Var', 'Residual Var'
        (statsmodels' MixedLM names its random-effect variance 'Group Var')."""
        return [f"{c} Var" for c in self.components] + ["Residual Var"]

    @property
    def fe_params(self) -> pd.Series:
        """The fixed effects (BLUE, eq. 54), as statsmodels' MixedLM ``fe_params``."""
        return self.beta

    @property
    def params(self) -> pd.Series:
        """Fixed effects then variance components, labelled (statsmodels' MixedLM layout)."""
        return pd.concat([self.beta, pd.Series(self.sigma2, index=self.variance_names)]
                         ).rename("params")

    def cov_params(self) -> pd.DataFrame:
        """Sampling covariance of ``params``: (X'V^-1X)^-1 for beta and the inverse
        information for the variance components (asymptotically independent under REML)."""
        names = list(self.params.index)
        M = len(self.beta)
        C = np.zeros((len(names), len(names)))
        C[:M, :M] = self.beta_cov.values
        C[M:, M:] = self.cov
        return pd.DataFrame(C, index=names, columns=names)

    def _boundary_params(self) -> list[str]:
        """The variance components: their null value 0 lies on the boundary (use ``lrt_p``),
        so ``pvalues`` is NaN for them and gives Wald p-values for the fixed effects."""
        return self.variance_names

    # --------------------------------------------------------------- tables
    def summary(self, prevalence: float | None = None,
                case_proportion: float | None = None) -> pd.DataFrame:
        """GCTA ``.hsq`` layout: rows V(G), V(e), Vp, V(G)/Vp, logL, logL0, LRT, df, Pval, n.

        Columns ``Variance`` and ``SE``; rows with a single value leave SE empty. With a
        ``prevalence`` (a 0/1 trait) the row ``V(G)/Vp_L`` follows ``V(G)/Vp``: h2 on the
        liability scale (:func:`bayeslmm.estimation.liability.liability_h2`, as GCTA's
        --prevalence).
        """
        rows: list[tuple[str, float, float]] = []
        names = ["V(G)"] if self.k == 1 else [f"V({c})" for c in self.components]
        se = _sd(np.diag(self.cov))
        for j, n in enumerate(names):
            rows.append((n, self.sigma2[j], se[j]))
        rows.append(("V(e)", self.sigma_e2, se[-1]))
        rows.append(("Vp", self.Vp, self.Vp_se))
        h2 = np.atleast_1d(self.h2)
        h2se = np.atleast_1d(self.h2_se)
        for j, n in enumerate(names):
            rows.append((f"{n}/Vp", h2[j], h2se[j]))
        if self.k > 1:
            rows.append(("Sum of V(G)/Vp", self.h2_total, self.h2_total_se))
        if prevalence is not None:
            lia = self.liability_h2(prevalence, case_proportion)
            for j, n in enumerate(names):
                rows.append((f"{n}/Vp_L", np.atleast_1d(lia.h2)[j], np.atleast_1d(lia.h2_se)[j]))
        rows += [("logL", self.loglik, np.nan), ("logL0", self.loglik_null, np.nan),
                 ("LRT", self.lrt, np.nan), ("df", self.lrt_df, np.nan),
                 ("Pval", self.lrt_p, np.nan), ("n", self.N, np.nan)]
        df = pd.DataFrame(rows, columns=["Source", "Variance", "SE"]).set_index("Source")
        return df

    def estimates(self) -> xr.Dataset:
        """Labelled estimates: variance components by ``component``, beta by ``covariate``."""
        comp = [*self.components, "e"]
        h2 = np.atleast_1d(self.h2)
        return xr.Dataset(
            {
                "sigma2": ("component", self.sigma2),
                "sigma2_se": ("component", _sd(np.diag(self.cov))),
                "h2": ("component", np.append(h2, np.nan)),
                "h2_se": ("component", np.append(np.atleast_1d(self.h2_se), np.nan)),
                "beta": ("covariate", self.beta.values),
                "beta_se": ("covariate", self.beta_se.values),
            },
            coords={"component": comp, "covariate": list(self.beta.index)},
            attrs={"loglik": self.loglik, "method": "REML" if self.reml else "ML",
                   "algorithm": self.algorithm, "N": self.N, "converged": int(self.converged)},
        )

    def liability_h2(self, prevalence: float, case_proportion: float | None = None):
        """h2 on the liability scale of a 0/1 trait (Lee et al. 2011); see
        :func:`bayeslmm.estimation.liability.liability_h2`."""
        return liability_h2(self, prevalence, case_proportion)

    def __repr__(self) -> str:
        head = (f"VarianceComponentFit({'REML' if self.reml else 'ML'}, {self.algorithm}, "
                f"N={self.N}, converged={self.converged}"
                + (f", boundary={self.boundary!r}" if self.boundary else "") + ")")
        ci = "" if self.h2_ci is None else (
            f"\nh2 95% profile-likelihood CI: [{self.h2_ci[0]:.4f}, {self.h2_ci[1]:.4f}]")
        return f"{head}\n{self.summary().to_string()}{ci}"


def _sd(v):
    """sqrt of a variance; NaN (not 0) for a negative one, which an information matrix that
    is not positive definite gives: the delta method has no answer there."""
    v = np.asarray(v, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(v >= 0, np.sqrt(np.abs(v)), np.nan)
    return out if out.ndim else float(out)


# ----------------------------------------------------------------------------- spectral
def _h2_grid(upper: float) -> np.ndarray:
    inner = special.expit(np.linspace(-12, 12, 121))
    # and points up to 1e-12 from 1: an optimum that close to the boundary is bracketed
    near_one = 1.0 - np.logspace(-6, -12, 7)
    grid = np.concatenate([[0.0], inner[inner < upper], near_one[near_one < upper], [upper]])
    return np.unique(grid)


def _fit_spectral(data: LMMData, dec: Decomposition, reml_: bool,
                  ci_level: float = 0.95) -> VarianceComponentFit:
    # K itself is kept when given (not for a precomputed decomposition): V formed densely
    # (the association tests' Cholesky strategy) then costs O(N^2), not O(N^2 r).
    kernel = data.Ks[0] if data.Ks else None
    model = SpectralLMM(SpectralCovariance(dec, data.components, kernel), data.y, data.X)
    # The search runs in K's natural unit, K / c with c = tr(K) / N, so that rescaling K
    # moves nothing but sigma_g2: with K scaled by 1e-6 the optimum in h2 = sigma_g2 /
    # (sigma_g2 + sigma_e2) sits within 1e-6 of 1, where a grid in h2 cannot see it.
    c = model.cov.scale
    # h2 = 1 makes V = Vp K, singular when K is (a GRM of centred genotypes has rank N - 1).
    # Worse, when K's null space lies in the span of X (the ones vector and an intercept), the
    # ML likelihood grows without bound as h2 -> 1. Like GEMMA (lambda <= 1e5) the search then
    # stops at h2 = 1 - 1e-5, where that spike is negligible.
    upper = 1.0 if dec.full_rank else H2_MAX_SINGULAR
    # REML with a singular K (identifiability.singular_limit): a finite limit at h2 = 1 is
    # searched up to 1 and evaluated just short of it (the REML contrasts never see K's null
    # space, so the profile is smooth there); with a limit of -inf the maximum is inside
    # and is searched to 1 - 1e-12; a limit of +inf (noise-free y) is h2 = 1, sigma_e2 = 0.
    end, limit = 1.0, "finite" if dec.full_rank else singular_limit(dec.U, data.y, data.X)
    if reml_ and not dec.full_rank:
        upper, end = (1.0, 1.0 - 1e-10) if limit == "finite" else (1.0 - 1e-12,) * 2
    h2_max = dec.rescaled(1.0 / c).h2_max  # in the search's unit, K / c
    if h2_max < 1.0:
        # Indefinite K: V = Vp (h2 K + (1 - h2) I) is PD only for h2 < 1 / (1 - s_min); the
        # likelihood falls to -inf at that bound, so the optimum is inside it.
        upper = min(upper, h2_max * (1.0 - 1e-9))

    def prof(h):
        return model.profile(np.minimum(h, end), reml_, scale=c)

    def negll(h):
        return -float(prof(h).loglik[0])

    grid = _h2_grid(upper)
    pgrid = prof(grid)
    i = int(np.nanargmax(pgrid.loglik))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(negll, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 500})
    candidates = [(res.x, -res.fun), (grid[i], pgrid.loglik[i])]
    h, ll = max(candidates, key=lambda c_: c_[1])
    # Polish: the root of the profile's slope, well conditioned where the likelihood itself
    # is flat to rounding (so results repeat to ~1e-12 under rescaling y or K). It is kept
    # unless it is worse than Brent's point by more than rounding.
    slope_lo = model.profile_slope(lo, reml_, scale=c)
    slope_hi = model.profile_slope(min(hi, end), reml_, scale=c) if hi < upper else np.nan
    if np.isfinite(slope_lo) and np.isfinite(slope_hi) and slope_lo > 0 > slope_hi:
        root = optimize.brentq(lambda h_: model.profile_slope(h_, reml_, scale=c), lo, hi,
                               xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        ll_root = float(prof(root).loglik[0])
        if ll_root >= ll - 1e-9 * max(1.0, abs(ll)):
            h, ll = root, ll_root
    boundary = None
    ll0 = float(prof(0.0).loglik[0])
    if h <= 1e-7 and ll0 >= ll - 1e-9:
        h, ll, boundary = 0.0, ll0, "h2=0"
    elif h >= upper - 1e-7:
        ll_up = float(prof(upper).loglik[0])
        if ll_up >= ll - 1e-9:
            h, ll, boundary = upper, ll_up, "h2=1"
    if reml_ and limit == "+inf":  # the supremum, not a finite interior estimate
        h, ll, boundary = 1.0, np.inf, "h2=1"
    Vp_c = float(prof(h).Vp[0])
    sigma2 = np.array([h * Vp_c / c, (1.0 - h) * Vp_c])
    # At h2 = 1 (full-rank K) V = Vp K: a vanishing sigma_e2 keeps the GLS solve defined.
    gls = model.gls(sigma2[0], max(sigma2[1], 1e-12 * Vp_c))
    # At h2 = 1 (full-rank K) sigma_e2 = 0 and the information is singular: no SEs. The
    # information is computed in K's natural unit and mapped back (d sigma_g2 = d s / c).
    if sigma2[1] > 0:
        scaled = SpectralLMM(SpectralCovariance(dec.rescaled(1.0 / c), data.components),
                             data.y, data.X) if c != 1.0 else model
        J = np.diag([1.0 / c, 1.0])
        cov = J @ _safe_inv(scaled.information(sigma2[0] * c, sigma2[1], reml=reml_)) @ J
    else:
        cov = np.full((2, 2), np.nan)
    lo_ci, hi_ci = (1.0, 1.0) if np.isinf(ll) else _profile_ci(prof, h, ll, upper, ci_level)
    history = pd.DataFrame({"h2": _to_h2(grid, c), "loglik": pgrid.loglik})
    return VarianceComponentFit(
        reml=reml_, algorithm="brent", components=data.components, sigma2=sigma2, cov=cov,
        beta=pd.Series(gls.beta, index=list(data.covariates), name="beta"),
        beta_cov=pd.DataFrame(gls.beta_cov, index=list(data.covariates),
                              columns=list(data.covariates)),
        loglik=float(ll), loglik_null=ll0, converged=bool(res.success) or boundary is not None,
        n_iter=int(res.nfev) + grid.size, boundary=boundary,
        h2_ci=(float(_to_h2(lo_ci, c)), float(_to_h2(hi_ci, c))), history=history,
        data=data, decomposition=dec, model=model)


def _to_h2(h, c: float):
    """h2 for K from h2 for K / c: sigma_g2 = h Vp / c, sigma_e2 = (1 - h) Vp."""
    h = np.asarray(h, dtype=np.float64)
    return h / (h + c * (1.0 - h))


def _safe_inv(A: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.full_like(A, np.nan)


def _profile_ci(prof, h2: float, ll: float, upper: float,
                level: float) -> tuple[float, float]:
    """{h2 : 2 (l_max - l_profile(h2)) <= chi2_1 quantile}, clipped to [0, 1]."""
    cut = ll - 0.5 * tails.chi2_ppf(level, 1)

    def f(h):
        return float(prof(h).loglik[0]) - cut

    lower = 0.0 if h2 <= 0 or f(0.0) >= 0 else optimize.brentq(f, 0.0, h2, xtol=1e-10)
    upper_ci = upper if h2 >= upper or f(upper) >= 0 else optimize.brentq(f, h2, upper,
                                                                          xtol=1e-10)
    return float(lower), float(upper_ci)


# ----------------------------------------------------------------------------- dense
def _fit_dense(data: LMMData, reml_: bool, algorithm: str, constrain: bool, tol: float,
               max_iter: int) -> VarianceComponentFit:
    """Dense AI / Fisher / EM REML with an active set for the non-negativity constraints.

    A component whose step would take it below zero is fixed at (a floor of) zero and the
    step is recomputed on the free components (projected Newton). Once the free components
    have converged, the KKT conditions are checked as GCTA does: a fixed component whose
    gradient is positive (the likelihood rises if it leaves zero) by more than ``GAIN_TOL``
    of predicted log-likelihood is released and the iterations go on. ``converged`` means
    the gradient conditions hold: predicted gain on the free components and from releasing
    any fixed one both below ``GAIN_TOL``.
    """
    dense = DenseLMM(DenseCovariance(data.Ks, data.components), data.y, data.X, reml=reml_)
    k = len(data.Ks)
    r0 = data.y - data.X @ np.linalg.lstsq(data.X, data.y, rcond=None)[0]
    var0 = float(r0 @ r0 / (data.N - data.M))
    theta = np.full(k + 1, var0 / (k + 1))
    floor = 1e-6 * var0
    lower = np.where(np.arange(k + 1) == k, floor, floor * 1e-3)
    ev = dense.evaluate(theta)
    fixed = np.zeros(k + 1, dtype=bool)
    hist = []
    converged = False
    it = 0
    n_released = 0
    for it in range(1, max_iter + 1):
        s = dense.score(ev)
        # GCTA starts AI/Fisher with one EM step, which is robust far from the optimum.
        kind = "em" if (algorithm == "em" or it == 1) else algorithm
        H = None if kind == "em" else (dense.ai(ev) if kind == "ai" else dense.fisher(ev))
        step = _active_set_step(theta, s, H, fixed, lower, data.N, constrain)
        new = _project(theta + step, fixed, lower, constrain)
        ev_new = dense.evaluate(new)
        # Halve Newton-type steps that would lower the likelihood or leave V non-PD.
        halvings = 0
        while (ev_new is None or ev_new["ll"] < ev["ll"] - 1e-10) and halvings < 30 \
                and kind != "em":
            step = step / 2
            new = _project(theta + step, fixed, lower, constrain)
            ev_new = dense.evaluate(new)
            halvings += 1
        if ev_new is None:
            break
        if algorithm == "em" and ev_new["ll"] > ev["ll"]:
            # EM crawls (linearly inside, as 1/t towards a zero component): extend its
            # ascent direction by doubling while the likelihood rises (EM with a line
            # search), projecting onto the constraints; a component reaching zero is fixed.
            new, ev_new = _em_line_search(dense, theta, step, new, ev_new, fixed, lower,
                                          constrain)
        if algorithm == "em" and constrain:
            # Its steps shrink as theta_j^2 near zero, so EM never arrives: try the boundary
            # itself for a small component whose gradient points down; keep it if no worse.
            jump = (~fixed) & (new < 1e-3 * new.sum()) & (dense.score(ev_new) < 0)
            jump[k] = False
            if jump.any():
                trial = np.where(jump, lower, new)
                ev_trial = dense.evaluate(trial)
                if ev_trial is not None and ev_trial["ll"] >= ev_new["ll"] - 1e-12:
                    new, ev_new = trial, ev_trial
                    fixed |= jump
        free = ~fixed
        change = np.max(np.abs(new - theta)[free], initial=0.0) / max(new.sum(), 1e-300)
        dll = ev_new["ll"] - ev["ll"]
        hist.append({"iteration": it, "kind": kind, "loglik": ev_new["ll"],
                     "fixed": ",".join(c for c, f in zip([*data.components, "e"], fixed,
                                                         strict=True) if f),
                     **{f"sigma2_{c}": v for c, v in zip([*data.components, "e"], new,
                                                          strict=True)}})
        theta, ev = new, ev_new
        if change < tol and abs(dll) < 1e-8:
            gain_free, gain_fixed = _kkt_gains(dense, ev, fixed)
            if constrain and fixed.any() and gain_fixed.max() > GAIN_TOL:
                j = int(np.argmax(gain_fixed))  # release the most violated constraint
                fixed[j] = False
                n_released += 1
                continue
            converged = gain_free <= GAIN_TOL
            break
    history = pd.DataFrame(hist)
    if not converged:
        warnings.warn(
            f"{algorithm.upper()} did not converge in {it} iterations (the gradient "
            f"conditions do not hold); the last iterations were:\n"
            f"{history.tail(5).to_string(index=False)}", ConvergenceWarning, stacklevel=3)
    info = dense.fisher(ev) if algorithm == "fisher" else dense.ai(ev)
    cov = _safe_inv(info)
    at_floor = fixed[:-1] if constrain else np.zeros(k, bool)
    boundary = "h2=0" if np.all(at_floor) else (
        "some sigma_g2=0" if np.any(at_floor) else None)
    null_data = LMMData(y=data.y, X=data.X, Ks=(), covariates=data.covariates,
                        samples=data.samples, components=())
    ll_null = _null_loglik(null_data, reml_)
    names = list(data.covariates)
    return VarianceComponentFit(
        reml=reml_, algorithm=algorithm, components=data.components, sigma2=theta, cov=cov,
        beta=pd.Series(ev["beta"], index=names, name="beta"),
        beta_cov=pd.DataFrame(ev["C"], index=names, columns=names), loglik=ev["ll"],
        loglik_null=ll_null, converged=converged, n_iter=it, boundary=boundary, h2_ci=None,
        history=history, data=data, model=dense)


# Predicted log-likelihood gain (from a Newton step on the free components, or from
# releasing one fixed at zero) below which the gradient conditions count as met.
GAIN_TOL = 1e-6


def _active_set_step(theta, s, H, fixed, lower, N, constrain) -> np.ndarray:
    """Newton (AI/Fisher: H given) or EM step on the free components; a component the step
    would take below its floor is fixed there and the step recomputed (projected Newton)."""
    while True:
        free = ~fixed
        step = np.zeros_like(theta)
        if H is None:
            step[free] = 2 * theta[free] ** 2 * s[free] / N
        else:
            step[free] = _solve_info(H[np.ix_(free, free)], s[free])
        crossing = free & (theta + step < lower)
        if not constrain or not crossing.any():
            return step
        fixed |= crossing  # in place: the caller's active set


def _solve_info(H: np.ndarray, s: np.ndarray) -> np.ndarray:
    """H^-1 s, or the least-squares (minimum-norm) solution where H is singular.

    An information matrix is singular when the components cannot be told apart (one kernel
    proportional to I, like the residual: only their sum is identifiable); the minimum-norm
    step then moves along the identifiable direction only, and the fit is flagged by
    :func:`_flag` instead of stopping with LinAlgError.
    """
    try:
        return np.linalg.solve(H, s)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(H, s, rcond=None)[0]


def _em_line_search(dense: DenseLMM, theta, step, new, ev_new, fixed, lower, constrain):
    best, ev_best, alpha = new, ev_new, 1.0
    for _ in range(20):
        alpha *= 2
        trial = _project(theta + alpha * step, fixed, lower, constrain)
        ev_trial = dense.evaluate(trial)
        if ev_trial is None or ev_trial["ll"] <= ev_best["ll"]:
            break
        best, ev_best = trial, ev_trial
    if constrain:
        fixed |= (best <= lower) & (step < 0)  # in place: the caller's active set
    return best, ev_best


def _project(theta, fixed, lower, constrain) -> np.ndarray:
    if not constrain:
        return theta
    return np.where(fixed, lower, np.maximum(theta, lower))


def _kkt_gains(dense: DenseLMM, ev, fixed) -> tuple[float, np.ndarray]:
    """Predicted gains: s_f' H_ff^-1 s_f / 2 on the free set (H = AI), and for each fixed
    component s_j^2 / (2 H_jj) when its gradient s_j is positive (else 0)."""
    s = dense.score(ev)
    H = dense.ai(ev)
    free = ~fixed
    sf = s[free]
    gain_free = float(sf @ _solve_info(H[np.ix_(free, free)], sf) / 2) if free.any() \
        else 0.0
    gain_fixed = np.where(fixed & (s > 0), s**2 / (2 * np.diag(H)), 0.0)
    return gain_free, gain_fixed


def _null_loglik(data: LMMData, reml_: bool) -> float:
    """(RE)ML log-likelihood of the linear model: V = sigma^2 I at its optimum."""
    N, M = data.N, data.M
    beta = np.linalg.lstsq(data.X, data.y, rcond=None)[0]
    rss = float(np.sum((data.y - data.X @ beta) ** 2))
    if not reml_:
        return -0.5 * N * (np.log(2 * np.pi * rss / N) + 1)
    # V = s2 I: log|V| + log|X'V^-1X| - log|X'X| = (N - M) log s2, quadratic = N - M.
    return float(-0.5 * (N - M) * (np.log(2 * np.pi * rss / (N - M)) + 1))


# ----------------------------------------------------------------------------- public
def _fit(y, K, X, reml_: bool, method: str, constrain: bool, tol: float, max_iter: int,
         component_names: Sequence[str] | None) -> VarianceComponentFit:
    method = method.lower()
    if method == "auto":
        method = "brent" if not isinstance(K, list | tuple) or len(K) == 1 else "ai"
    if method not in ALGORITHMS:
        raise InputError(f"method must be one of 'auto', {', '.join(map(repr, ALGORITHMS))}; "
                         f"got {method!r}")
    if isinstance(K, Decomposition):
        data = prepare(y, None, X, component_names=[])
        dec = K.aligned_to(data.samples)
        data = LMMData(y=data.y, X=data.X, Ks=(), covariates=data.covariates,
                       samples=data.samples,
                       components=tuple(component_names) if component_names else ("G",))
        if method != "brent":
            raise InputError(f"a precomputed decomposition is fitted by 'brent', not {method!r}")
        check_data(data.y, data.X)
        return _fit_spectral(data, dec, reml_)
    data = prepare(y, K, X, component_names=component_names)
    if not data.Ks:
        raise InputError("no kernel K given; use bayeslmm.ols for the linear model")
    check_data(data.y, data.X, data.Ks)
    check_kernels(data.Ks, data.components)
    if method == "brent":
        if len(data.Ks) != 1:
            raise InputError("method 'brent' (spectral) needs exactly one kernel; use 'ai', "
                             "'fisher' or 'em' for several")
        dec = decompose(data.Ks[0], samples=data.samples, validated=True)
        return _fit_spectral(data, dec, reml_)
    for j, Kj in enumerate(data.Ks):
        # The dense path has no decomposition to check PSD on: a Cholesky proves the common
        # case; only a kernel it cannot clear pays an eigvalsh (its message needs the
        # spectrum).
        if not psd_by_cholesky(Kj, 1e-6):
            check_psd(np.linalg.eigvalsh(Kj), 1e-6, data.components[j], indefinite=True)
    return _fit_dense(data, reml_, method, constrain, tol, max_iter)


def _flag(fit: VarianceComponentFit) -> VarianceComponentFit:
    """Mark a fit whose h2 is not identifiable (NaN SEs, a reason, a warning), and one with
    too few samples to estimate a variance component (a reason, a warning)."""
    few = too_few_samples(fit.N, fit.data.M, fit.k, fit.reml)
    if few is not None:
        warnings.warn(f"h2 is barely determined: {few}", IdentifiabilityWarning, stacklevel=3)
        fit = replace(fit, few_samples=few)
    d = fit.decomposition
    if fit.k != 1:
        hidden = invisible_kernels(fit.data.X, fit.data.Ks, fit.components)
        reason = (None if not hidden else
                  f"kernel(s) {', '.join(map(repr, hidden))} lie in the span of the "
                  "covariates (e.g. a grouping with one level, K = 1 1', with an intercept), "
                  "so REML cannot see them and their share of Vp is arbitrary")
    elif d is not None:
        reason = not_identifiable(fit.data.X, U=d.U, S=d.S, reml=fit.reml)
    else:
        reason = not_identifiable(fit.data.X, K=fit.data.Ks[0], reml=fit.reml)
    if reason is None:
        return fit
    warnings.warn(f"h2 is not identifiable: {reason}; its value is arbitrary and its SE is "
                  "NaN", IdentifiabilityWarning, stacklevel=3)
    return replace(fit, cov=np.full_like(fit.cov, np.nan), h2_ci=None,
                   not_identifiable=reason)


def reml(y, K, X=None, *, method: str = "auto", constrain: bool = True, tol: float = 1e-9,
         max_iter: int = 10_000, component_names: Sequence[str] | None = None,
         se_method: str = "ai") -> VarianceComponentFit:
    """Restricted maximum likelihood fit of Y = X beta + sum_k g_k + e (notes 4.3.2-4.3.3).

    Parameters
    ----------
    y : array_like, shape (N,)
        Phenotype; pandas/xarray labels are used to align X and K.
    K : array_like (N, N), list of them, or Decomposition
        Kernel(s), each symmetric PSD (GRM, ZZ'/P, group indicators). A
        :class:`~bayeslmm.covariance.decomposition.Decomposition` is used as is (shared with other
        steps).
    X : array_like, shape (N, M), optional
        Fixed-effect covariates, default an intercept.
    method : {"auto", "brent", "ai", "fisher", "em"}
        ``"auto"`` is the spectral grid + Brent search for one kernel and AI-REML for several.
    constrain : bool
        Keep variance components non-negative (GCTA's default). Dense algorithms only; the
        spectral search is always within h2 in [0, 1].
    tol, max_iter
        Convergence of the iterative algorithms: largest change of a variance component
        relative to Vp, and the iteration cap.
    se_method : {"ai", "observed", "expected"}
        The information matrix inverted for the standard errors of the variance components
        (and, by the delta method, of h2): GCTA's average information (default), the
        observed information (the negative Hessian of the log-likelihood: GEMMA's
        ``se(pve)``) or the expected (Fisher) information. A convention, not an estimate:
        the three agree as N grows.

    Returns
    -------
    VarianceComponentFit

    Examples
    --------
    >>> import numpy as np, bayeslmm
    >>> rng = np.random.default_rng(1)
    >>> Z = rng.standard_normal((200, 400)); K = Z @ Z.T / 400
    >>> y = Z @ rng.normal(0, np.sqrt(0.6 / 400), 400) + rng.normal(0, np.sqrt(0.4), 200)
    >>> fit = bayeslmm.reml(y, K)
    >>> 0 <= fit.h2 <= 1
    True
    """
    return _with_se_method(
        _flag(_fit(y, K, X, True, method, constrain, tol, max_iter, component_names)),
        se_method)


def ml(y, K, X=None, *, method: str = "auto", constrain: bool = True, tol: float = 1e-9,
       max_iter: int = 10_000, component_names: Sequence[str] | None = None,
       se_method: str = "ai") -> VarianceComponentFit:
    """Maximum likelihood fit (notes eq. 48); same arguments as :func:`reml`."""
    return _with_se_method(
        _flag(_fit(y, K, X, False, method, constrain, tol, max_iter, component_names)),
        se_method)
