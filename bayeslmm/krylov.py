"""Matrix-free REML and posterior of h2: one block-Lanczos run serves every h2.

With the covariates projected out (Q an orthonormal basis of X, n = N - M), the REML
likelihood (notes 4.3.2) is that of y_c ~ N(0, Vp H_c), H_c(h2) = h2 K_c + (1 - h2) I on the
residual space, and profiling Vp = y_c' H_c^-1 y_c / n gives

    l(h2) = -1/2 [ n log(2 pi) + n log(y_c' H_c^-1 y_c / n) + log|H_c(h2)| + n ],

equal to :meth:`bayeslmm.likelihood.SpectralLMM.profile` (log|H| + log|X'H^-1X| - log|X'X|
= log|H_c|). H_c(h2) is a polynomial of degree 1 in K_c, so its Krylov spaces do not depend
on h2: one block-Lanczos run on K_c started at [y_c, z_1, ..., z_m] (Rademacher probes,
seeded) gives T = B'K_cB = W diag(theta) W' and, for every h2 at once,

* y_c' H_c^-1 y_c ~= sum_l (W_l' c_y)^2 / (h2 theta_l + 1 - h2), the block-CG (Galerkin)
  solve, exact once the space holds y's component of the spectrum (its change over the
  last Lanczos step is reported);
* log|H_c| by stochastic Lanczos quadrature (Ubaru, Chen and Saad 2017; for REML, Border and
  Becker 2019), with the top Ritz pairs deflated (population structure dominates the top
  of a GRM's spectrum and the variance of a Hutchinson estimate) and a linear control
  variate whose trace is known exactly (tr(D) and tr(D K D)):

      log|H_c| ~= sum_top f(theta_l) + a (n - k) + b tr(D K D)
                  + mean_i sum_{l not top} [f(theta_l) - a - b theta_l] (W_l' c_i)^2,

  f(t) = log(h2 t + 1 - h2), D the projector off span(X, top Ritz vectors), (a, b) the
  tangent of f at the mean eigenvalue of D K D. Its Monte Carlo error is estimated from
  independent probe batches and propagated to h2 and the posterior by a jackknife over the
  batches.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from bayeslmm.errors import ConvergenceWarning, InputError
from bayeslmm.likelihood import LOG2PI, Profile, SpectralLMM

__all__ = ["KrylovFit", "KrylovLMM", "Lanczos", "blup_krylov", "block_lanczos", "fit_krylov",
           "krylov_model"]

H2_MAX = 1.0 - 1e-5


@dataclass(frozen=True)
class Lanczos:
    """Result of a block-Lanczos run: T = B'KB (d x d), its Ritz pairs, and the coordinates
    of the starting block in the basis (``start``, d x b), Ritz residual norms."""

    T: np.ndarray
    theta: np.ndarray  # Ritz values, ascending
    W: np.ndarray  # T's eigenvectors
    start: np.ndarray  # coordinates of the starting vectors in the basis
    residual: np.ndarray  # ||K u_l - theta_l u_l|| per Ritz pair
    block_sizes: tuple[int, ...]
    steps: int
    basis: np.ndarray | None = None  # (N, d) orthonormal Krylov basis B


def _orth_block(W: np.ndarray, ref: float, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """W = Qn B with Qn orthonormal; directions below tol * ref dropped (block deflation)."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    keep = s > tol * max(ref, np.finfo(float).tiny)
    return U[:, keep], s[keep, None] * Vt[keep]


def block_lanczos(matmat, V0: np.ndarray, n_steps: int, *, tol: float = 1e-10) -> Lanczos:
    """Block Lanczos with full reorthogonalization: ``n_steps`` products ``matmat(Q_j)``.

    Parameters
    ----------
    matmat : callable
        ``V -> K V`` for an (N, b) block (one pass over the genotypes).
    V0 : ndarray, shape (N, b)
        Starting block.
    n_steps : int
        Number of products (passes).
    tol : float
        Directions whose norm falls below ``tol * ||K Q_j||`` are dropped (the Krylov space
        is exhausted along them, e.g. when K has low rank).
    """
    N, b = V0.shape
    Q1, R0 = _orth_block(V0, float(np.linalg.norm(V0, 2)), 1e-12)
    if Q1.shape[1] < b:
        raise InputError("the starting vectors of the Lanczos run are linearly dependent")
    basis = np.empty((N, b * (n_steps + 1)))
    basis[:, :b] = Q1
    sizes = [b]
    A, B = [], []
    Qj, Qprev, Bprev = Q1, None, None
    d = b
    resid_block = np.zeros((0, b))
    steps = 0
    for step in range(n_steps):
        W = matmat(Qj)
        steps += 1
        ref = float(np.linalg.norm(W, 2))
        Aj = Qj.T @ W
        Aj = (Aj + Aj.T) / 2
        W = W - Qj @ Aj
        if Qprev is not None:
            W = W - Qprev @ Bprev.T
        # Full reorthogonalization, twice ("twice is enough", Parlett): keeps the basis
        # orthonormal to rounding, which SLQ and the Galerkin solve assume.
        for _rep in range(2):
            W = W - basis[:, :d] @ (basis[:, :d].T @ W)
        A.append(Aj)
        Qn, Bj = _orth_block(W, ref, tol)
        resid_block = Bj
        if Qn.shape[1] == 0 or step == n_steps - 1:
            break
        basis[:, d:d + Qn.shape[1]] = Qn
        B.append(Bj)
        Qprev, Bprev, Qj = Qj, Bj, Qn
        d += Qn.shape[1]
        sizes.append(Qn.shape[1])
    T = np.zeros((d, d))
    off = np.cumsum([0, *sizes])
    for j, Aj in enumerate(A):
        T[off[j]:off[j + 1], off[j]:off[j + 1]] = Aj
    for j, Bj in enumerate(B):
        T[off[j + 1]:off[j + 2], off[j]:off[j + 1]] = Bj
        T[off[j]:off[j + 1], off[j + 1]:off[j + 2]] = Bj.T
    theta, Wt = np.linalg.eigh(T)
    start = np.zeros((d, b))
    start[:b] = R0
    # Ritz residual ||K u - theta u|| = ||B_last W[last block]|| (zero once exhausted).
    last = Wt[off[-2]:off[-1]]
    residual = (np.linalg.norm(resid_block @ last, axis=0) if resid_block.size
                else np.zeros(d))
    return Lanczos(T=T, theta=theta, W=Wt, start=start, residual=residual,
                   block_sizes=tuple(sizes), steps=steps, basis=basis[:, :d])


class KrylovLMM(SpectralLMM):
    """The one-kernel REML model profiled over Vp, evaluated from one Lanczos run.

    Offers ``profile(h2)`` (the interface :func:`bayeslmm.bayes.posterior_h2_quadrature`
    integrates) with ``log|H_c|`` from deflated SLQ; ``profile_batches`` gives the
    leave-one-batch-out versions used for the Monte Carlo error. Only the profiled
    likelihood is available (no GLS beta: X is projected out).

    Parameters
    ----------
    lanczos : Lanczos
        Run started at ``[y_c, z_1..z_m]``.
    y, X : ndarray
        Phenotype and covariates (for the priors' scaling and the constants).
    trace_Kc : float
        tr(K_c) = tr((I - QQ') K (I - QQ')), exact.
    n_deflate : int
        At most this many top Ritz pairs are deflated (those with relative residual below
        ``deflate_tol``).
    n_batches : int
        Probe batches for the Monte Carlo error.
    """

    def __init__(self, lanczos: Lanczos, y: np.ndarray, X: np.ndarray, trace_Kc: float, *,
                 n_deflate: int = 50, deflate_tol: float = 1e-6, n_batches: int = 10):
        self.lanczos = lanczos
        self.y = np.asarray(y, dtype=np.float64)
        self.X = np.asarray(X, dtype=np.float64)
        self.N, self.M = self.X.shape
        self.n = self.N - self.M
        self.logdet_XtX = float(np.linalg.slogdet(self.X.T @ self.X)[1])
        th, Wt = lanczos.theta, lanczos.W
        self.theta = th
        coords = Wt.T @ lanczos.start  # (d, b): starting vectors in the Ritz basis
        self.wy = coords[:, 0] ** 2
        order = np.argsort(th)[::-1]
        ok = lanczos.residual[order] <= deflate_tol * max(th[order[0]], 1e-300)
        # Deflate the leading run of converged Ritz pairs only (a converged pair inside the
        # bulk would not lower the variance and its complement would be less accurate).
        k = int(np.argmin(ok)) if not ok.all() else ok.size
        k = min(k, n_deflate, self.n)
        top = np.zeros(th.size, dtype=bool)
        top[order[:k]] = True
        self.top = top
        self.k = k
        self.wz = coords[:, 1:] ** 2
        self.wz[top] = 0.0
        self.m = self.wz.shape[1]
        if self.m < 2:
            raise InputError("SLQ needs at least 2 probes")
        self.trace_D = float(self.n - k)
        self.trace_DKD = float(trace_Kc - th[top].sum())
        # All of the spectrum deflated (an exhausted Krylov space): nothing stochastic left.
        self.lam_bar = self.trace_DKD / self.trace_D if self.trace_D > 0 else 1.0
        nb = max(2, min(n_batches, self.m))
        self.batches = np.array_split(np.arange(self.m), nb)
        #: probe batch left out of every estimate (the jackknife sets it on a copy)
        self.drop_batch: int | None = None

    # ------------------------------------------------------------------ pieces
    def _f(self, h2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(h2[:, None] * self.theta[None, :] + (1.0 - h2)[:, None])

    def logdet_probes(self, h2) -> tuple[np.ndarray, np.ndarray]:
        """Deflated-part SLQ terms: the exact part (G,) and per-probe terms (G, m)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        F = self._f(h2)
        b = h2 / (h2 * self.lam_bar + 1.0 - h2)
        a = np.log(h2 * self.lam_bar + 1.0 - h2) - b * self.lam_bar
        exact = (np.where(self.top[None, :], F, 0.0).sum(axis=1) + a * self.trace_D
                 + b * self.trace_DKD)
        R = np.where(self.top[None, :], 0.0, F - a[:, None] - b[:, None] * self.theta[None])
        return exact, R @ self.wz

    def logdet(self, h2, drop_batch: int | None = None) -> np.ndarray:
        """SLQ estimate of log|H_c(h2)| (all probes, or all but one batch)."""
        exact, per = self.logdet_probes(h2)
        drop_batch = self.drop_batch if drop_batch is None else drop_batch
        if drop_batch is not None:
            per = np.delete(per, self.batches[drop_batch], axis=1)
        return exact + per.mean(axis=1)

    def logdet_se(self, h2) -> np.ndarray:
        """Monte Carlo standard error of :meth:`logdet` from the batch means."""
        _, per = self.logdet_probes(h2)
        means = np.stack([per[:, b].mean(axis=1) for b in self.batches], axis=1)
        return means.std(axis=1, ddof=1) / np.sqrt(means.shape[1])

    def yHy(self, h2) -> np.ndarray:
        """y_c' H_c^-1 y_c (Galerkin solve in the Krylov space)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        with np.errstate(divide="ignore"):
            return (self.wy[None, :] / (h2[:, None] * self.theta[None, :]
                                        + (1.0 - h2)[:, None])).sum(axis=1)

    def profile(self, h2, reml: bool = True, drop_batch: int | None = None) -> Profile:
        """REML log-likelihood profiled over Vp (and beta) at each h2 (module docstring)."""
        if not reml:
            raise InputError("the Krylov engine gives the REML likelihood only")
        h2 = np.atleast_1d(np.asarray(h2, dtype=np.float64))
        Q = self.yHy(h2)
        with np.errstate(divide="ignore", invalid="ignore"):
            Vp = Q / self.n
            ll = -0.5 * (self.n * (LOG2PI + np.log(Vp)) + self.logdet(h2, drop_batch) + self.n)
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        return Profile(h2=h2, loglik=ll, Vp=Vp, beta=np.full((h2.size, self.M), np.nan))

    def loglik2(self, h2: float, Vp: float) -> float:
        """REML log-likelihood at (h2, Vp), not profiled."""
        ld = float(self.logdet(h2)[0])
        q = float(self.yHy(h2)[0])
        return -0.5 * (self.n * (LOG2PI + np.log(Vp)) + ld + q / Vp)

    def solve_y(self, h2: float) -> np.ndarray:
        """H_c(h2)^-1 y_c as an N-vector (orthogonal to X), from the Krylov basis."""
        lz = self.lanczos
        d = 1.0 / (h2 * self.theta + 1.0 - h2)
        return lz.basis @ (lz.W @ (d * (lz.W.T @ lz.start[:, 0])))

    def gls(self, *args, **kwargs):
        raise InputError("the Krylov engine projects X out; it has no GLS beta")

    def loglik(self, *args, **kwargs):
        raise InputError("use KrylovLMM.profile or loglik2")

    def information(self, *args, **kwargs):
        raise InputError("use the curvature of KrylovLMM.profile")

    def apply_Vinv(self, *args, **kwargs):
        raise InputError("the Krylov engine holds no V^-1 for arbitrary vectors")


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
class KrylovFit:
    """REML fit by the matrix-free engine (statsmodels' vocabulary: ``params``, ``bse``,
    ``conf_int()``, ``llf``, ``nobs``, ``summary()``; GCTA's ``.hsq`` by ``to_hsq()``).

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

    @property
    def bse(self) -> pd.Series:
        se = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        return pd.Series({"sigma_g2": se[0], "sigma_e2": se[1], "h2": self.h2_se}, name="bse")

    def conf_int(self) -> pd.DataFrame:
        """Profile-likelihood 95% interval of h2 (the only interval this engine reports)."""
        return pd.DataFrame({"lower": [self.h2_ci[0]], "upper": [self.h2_ci[1]]}, index=["h2"])

    @property
    def lrt(self) -> float:
        return float(max(2 * (self.loglik - self.loglik_null), 0.0))

    def summary(self) -> pd.DataFrame:
        """GCTA ``.hsq`` rows plus the Monte Carlo error of h2."""
        se = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        Vp_se = float(np.sqrt(max(self.cov.sum(), 0.0)))
        p = float(0.5 * stats.chi2.sf(self.lrt, 1)) if self.lrt > 0 else 1.0
        rows = [("V(G)", self.sigma_g2, se[0]), ("V(e)", self.sigma_e2, se[1]),
                ("Vp", self.Vp, Vp_se), ("V(G)/Vp", self.h2, self.h2_se),
                ("V(G)/Vp MC error", self.h2_mc_se, np.nan),
                ("logL", self.loglik, np.nan), ("logL0", self.loglik_null, np.nan),
                ("LRT", self.lrt, np.nan), ("df", 1, np.nan), ("Pval", p, np.nan),
                ("n", self.nobs, np.nan)]
        return pd.DataFrame(rows, columns=["Source", "Variance", "SE"]).set_index("Source")

    def to_hsq(self) -> str:
        lines = ["Source\tVariance\tSE"]
        for name, row in self.summary().iterrows():
            if name in ("df", "n"):
                lines.append(f"{name}\t{int(row.Variance)}")
            elif np.isnan(row.SE):
                lines.append(f"{name}\t{row.Variance:.6g}")
            else:
                lines.append(f"{name}\t{row.Variance:.6f}\t{row.SE:.6f}")
        return "\n".join(lines) + "\n"

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
    cut = ll - 0.5 * stats.chi2.ppf(ci_level, 1)

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
        yHy_change=change, boundary=boundary, info=info, model=model)


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
