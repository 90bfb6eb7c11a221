"""Matrix-free REML and posterior of h2 from one block-Lanczos run (the likelihood is
:mod:`bayeslmm.likelihood.krylov`): the REML h2 with its SE, profile CI and Monte Carlo
error, the fit object, and BLUP from the same run."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from bayeslmm.covariance.lanczos import block_lanczos
from bayeslmm.errors import ConvergenceWarning, InputError
from bayeslmm.estimation.results import Results
from bayeslmm.likelihood import tails
from bayeslmm.likelihood.krylov import H2_MAX, KrylovLMM

__all__ = ["KrylovFit", "blup_krylov", "fit_krylov", "krylov_model"]


# ----------------------------------------------------------------------------- REML
def _maximise(model: KrylovLMM, drop_batch: int | None = None) -> tuple[float, float]:
    inner = special.expit(np.linspace(-12, 12, 121))
    grid = np.unique(np.concatenate([[0.0], inner[inner < H2_MAX], [H2_MAX]]))
    ll = model.profile(grid, drop_batch=drop_batch).loglik
    i = int(np.argmax(ll))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(
        lambda h: -float(model.profile(h, drop_batch=drop_batch).loglik[0]),
        bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    if -res.fun >= ll[i]:
        return float(res.x), float(-res.fun)
    return float(grid[i]), float(ll[i])


@dataclass(frozen=True, eq=False)
class KrylovFit(Results):
    """REML fit by the matrix-free engine (statsmodels' vocabulary: ``params``, ``bse``,
    ``conf_int()``, ``llf``, ``nobs``, ``summary()``; GCTA's ``.hsq`` by
    :func:`bayeslmm.reports.hsq.hsq_text`).

    ``h2_mc_se`` is the Monte Carlo (probe) standard error of ``h2`` (jackknife over probe
    batches) and ``logdet_mc_se`` that of log|H_c| at ``h2``; ``yHy_change`` the relative
    change of y'H^-1y over the last Lanczos step (the solve's convergence).
    """

    h2: float
    Vp: float
    cov: np.ndarray  # covariance of (sigma_g2, sigma_e2) from the observed information
    h2_se: float
    h2_ci: tuple[float, float]
    loglik: float
    loglik_null: float
    nobs: int
    n_covariates: int
    h2_mc_se: float
    logdet_mc_se: float
    yHy_change: float
    boundary: str | None
    info: dict = field(default_factory=dict)
    model: KrylovLMM | None = field(default=None, repr=False)
    ci_level: float = 0.95
    #: the curvature of the SLQ log-likelihood: the only information the engine has (the
    #: expected and average ones need traces of P K P K, more probes than the fit's)
    se_method: str = "observed"

    @property
    def sigma_g2(self) -> float:
        return self.h2 * self.Vp

    @property
    def sigma_e2(self) -> float:
        return (1.0 - self.h2) * self.Vp

    @property
    def llf(self) -> float:
        return self.loglik

    @property
    def params(self) -> pd.Series:
        return pd.Series({"sigma_g2": self.sigma_g2, "sigma_e2": self.sigma_e2, "h2": self.h2},
                         name="params")

    def cov_params(self) -> pd.DataFrame:
        """Covariance of (sigma_g2, sigma_e2, h2): the inverse observed information of the
        variances and, for h2 = sigma_g2 / Vp, the delta method (its variance is ``h2_se``^2,
        computed on the profile likelihood of h2)."""
        sg, se, Vp = self.sigma_g2, self.sigma_e2, self.Vp
        A = np.array([[1.0, 0.0], [0.0, 1.0], [se / Vp**2, -sg / Vp**2]])
        C = A @ self.cov @ A.T
        C[2, 2] = self.h2_se ** 2
        names = list(self.params.index)
        return pd.DataFrame(C, index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        se = super().bse
        se["h2"] = self.h2_se  # exactly the profile-likelihood SE, not its square's root
        return se

    def _boundary_params(self) -> list[str]:
        return ["sigma_g2", "h2"]

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals; for h2 at the fit's level (``alpha = 1 - ci_level``) the
        profile-likelihood interval ``h2_ci`` instead."""
        ci = super().conf_int(alpha)
        if abs((1 - alpha) - self.ci_level) < 1e-12:
            ci.loc["h2"] = self.h2_ci
        return ci

    @property
    def lrt(self) -> float:
        return float(max(2 * (self.loglik - self.loglik_null), 0.0))

    def summary(self) -> pd.DataFrame:
        """GCTA ``.hsq`` rows plus the Monte Carlo error of h2."""
        se = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        Vp_se = float(np.sqrt(max(self.cov.sum(), 0.0)))
        p = float(0.5 * tails.chi2_sf(self.lrt, 1)) if self.lrt > 0 else 1.0
        rows = [("V(G)", self.sigma_g2, se[0]), ("V(e)", self.sigma_e2, se[1]),
                ("Vp", self.Vp, Vp_se), ("V(G)/Vp", self.h2, self.h2_se),
                ("V(G)/Vp MC error", self.h2_mc_se, np.nan),
                ("logL", self.loglik, np.nan), ("logL0", self.loglik_null, np.nan),
                ("LRT", self.lrt, np.nan), ("df", 1, np.nan), ("Pval", p, np.nan),
                ("n", self.nobs, np.nan)]
        return pd.DataFrame(rows, columns=["Source", "Variance", "SE"]).set_index("Source")

    def __repr__(self) -> str:
        return (f"KrylovFit(REML, N={self.nobs}, h2={self.h2:.4f} (SE {self.h2_se:.4f}, "
                f"MC error {self.h2_mc_se:.4f}), 95% profile CI [{self.h2_ci[0]:.4f}, "
                f"{self.h2_ci[1]:.4f}], passes={self.info.get('passes')})")


def _observed_cov(model: KrylovLMM, h2: float, Vp: float) -> np.ndarray:
    """Inverse observed information of (sigma_g2, sigma_e2) by central differences of the
    unprofiled REML likelihood in (h2, log Vp), mapped by the delta method."""
    eps = 1e-4
    x0 = np.array([min(max(h2, 2 * eps), H2_MAX - 2 * eps), np.log(Vp)])

    def f(x):
        return model.loglik2(x[0], np.exp(x[1]))

    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * eps, np.eye(2)[j] * eps
            H[i, j] = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej)
                       + f(x0 - ei - ej)) / (4 * eps * eps)
    try:
        C = np.linalg.inv(-H)
    except np.linalg.LinAlgError:
        return np.full((2, 2), np.nan)
    # (sigma_g2, sigma_e2) = (h2 Vp, (1 - h2) Vp), Vp = exp(t).
    J = np.array([[Vp, h2 * Vp], [-Vp, (1 - h2) * Vp]])
    return J @ C @ J.T


def fit_krylov(model: KrylovLMM, *, ci_level: float = 0.95, info: dict | None = None
               ) -> KrylovFit:
    """REML h2 from a :class:`KrylovLMM`: grid + Brent, SE from the curvature of the
    profile, profile-likelihood CI, Monte Carlo error by a jackknife over probe batches."""
    h2, ll = _maximise(model)
    boundary = "h2=0" if h2 <= 1e-7 else ("h2=1" if h2 >= H2_MAX - 1e-7 else None)
    eps = 1e-4
    hc = min(max(h2, eps), H2_MAX - eps)
    lp = model.profile(np.array([hc - eps, hc, hc + eps])).loglik
    curv = -(lp[0] - 2 * lp[1] + lp[2]) / eps**2
    h2_se = float(1 / np.sqrt(curv)) if curv > 0 else float("nan")
    Vp = float(model.profile(h2).Vp[0])
    cut = ll - 0.5 * tails.chi2_ppf(ci_level, 1)

    def g(h):
        return float(model.profile(h).loglik[0]) - cut

    lo = 0.0 if h2 <= 0 or g(0.0) >= 0 else optimize.brentq(g, 0.0, h2, xtol=1e-10)
    hi = H2_MAX if h2 >= H2_MAX or g(H2_MAX) >= 0 else optimize.brentq(g, h2, H2_MAX,
                                                                      xtol=1e-10)
    B = len(model.batches)
    jack = np.array([_maximise(model, drop_batch=b)[0] for b in range(B)])
    h2_mc = float(np.sqrt((B - 1) / B * np.sum((jack - jack.mean()) ** 2)))
    # Convergence of the Galerkin solve: y'H^-1y with the last block's Ritz pairs
    # recomputed from T without its last block.
    lz = model.lanczos
    d_prev = lz.T.shape[0] - lz.block_sizes[-1]
    change = float("nan")
    if d_prev > 0 and len(lz.block_sizes) > 1:
        th, W = np.linalg.eigh(lz.T[:d_prev, :d_prev])
        cy = (W.T @ lz.start[:d_prev, 0]) ** 2
        q_prev = float((cy / (h2 * th + 1 - h2)).sum())
        q = float(model.yHy(h2)[0])
        change = abs(q - q_prev) / q
    if not change <= 1e-6:
        warnings.warn(
            f"the Krylov solve y'H^-1y changed by {change:.2g} (relative) over the last "
            f"Lanczos step at h2={h2:.4f}: not converged; raise n_steps", ConvergenceWarning,
            stacklevel=2)
    info = dict(info or {})
    info.update(steps=lz.steps, krylov_dim=lz.T.shape[0], probes=model.m, deflated=model.k,
                batches=B)
    return KrylovFit(
        h2=h2, Vp=Vp, cov=_observed_cov(model, h2, Vp), h2_se=h2_se, h2_ci=(lo, hi),
        loglik=ll, loglik_null=float(model.profile(0.0).loglik[0]), nobs=model.N,
        n_covariates=model.M, h2_mc_se=h2_mc, logdet_mc_se=float(model.logdet_se(h2)[0]),
        yHy_change=change, boundary=boundary, info=info, model=model, ci_level=ci_level)


def krylov_model(op, y, X, *, n_probes: int = 30, n_steps: int = 20, seed: int = 0,
                 n_deflate: int = 50, n_batches: int = 10) -> KrylovLMM:
    """Run block Lanczos on the projected kernel of ``op`` and return the h2 model.

    Parameters
    ----------
    op : GenotypeOperator (or any object with ``matmat``, ``trace`` and ``project``)
        The kernel operator, built with the same covariates ``X`` (projected out). With
        ``matmat_with_raw`` and ``trace_raw`` (:class:`GenotypeOperator`) the trace needs
        no pass of its own.
    y, X : ndarray
        Phenotype (N,) and covariates (N, M), aligned with ``op``'s samples.
    n_probes, n_steps : int
        Rademacher probes and Lanczos steps (one pass over the genotypes each; an
        operator without ``matmat_with_raw`` takes one more for the trace).
    seed : int
        Seed of the probes (``numpy.random.default_rng``).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (op.N,):
        raise InputError(f"y has shape {y.shape}; the operator has {op.N} samples")
    if n_probes < 2 or n_steps < 1:
        raise InputError("need at least 2 probes and 1 Lanczos step")
    rng = np.random.default_rng(seed)
    Z = rng.choice(np.array([-1.0, 1.0]), size=(op.N, n_probes))
    V0 = op.project(np.column_stack([y, Z]))
    fused = getattr(op, "matmat_with_raw", None)
    separate_trace = fused is None and getattr(op, "Q", None) is not None  # one more pass
    if hasattr(op, "stage"):
        op.stage("REML (block Lanczos)", n_steps + separate_trace)
    if fused is None or getattr(op, "Q", None) is None:
        trace_Kc = op.trace()
        lz = block_lanczos(op.matmat, V0, n_steps)
    else:
        # tr(K_c) = tr(K) - tr(Q'KQ): tr(K) is exact from the genotype counts and KQ rides
        # along the first Lanczos product, so the trace costs no pass of its own.
        KQ = []

        def matmat(V):
            if KQ:
                return op.matmat(V)
            out, raw = fused(V, op.Q)
            KQ.append(raw)
            return out

        lz = block_lanczos(matmat, V0, n_steps)
        trace_Kc = op.trace_raw() - float(np.sum(op.Q * KQ[0]))
    return KrylovLMM(lz, y, X, trace_Kc, n_deflate=n_deflate, n_batches=n_batches)


def blup_krylov(fit: KrylovFit, op, samples=None):
    """BLUP of the genetic values (notes eq. 62) and the BLUP residuals (eq. 63) from the
    Krylov fit, with one more pass over the genotypes.

    With u = H_c^-1 y_c (the Galerkin solve of the fit, orthogonal to X), P y = u / Vp, so
    ``g = sigma_g2 K P y = h2 K u`` (K unprojected: one pass) and
    ``residual = sigma_e2 P y = (1 - h2) u``.

    Returns
    -------
    xarray.Dataset
        ``g`` and ``residual`` over ``sample``.
    """
    import xarray as xr

    model = fit.model
    u = model.solve_y(fit.h2)
    (Ku,) = op.matmat_raw(u[:, None])
    g = fit.h2 * Ku[:, 0]
    labels = getattr(op, "samples", None) if samples is None else samples
    coords = {"sample": np.asarray(labels)} if labels is not None else {}
    return xr.Dataset({"g": ("sample", g), "residual": ("sample", (1.0 - fit.h2) * u)},
                      coords=coords, attrs={"h2": fit.h2, "Vp": fit.Vp, "engine": "krylov"})
