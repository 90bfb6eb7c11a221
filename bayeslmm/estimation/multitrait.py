"""Multi-trait REML / ML with one shared kernel: genetic and residual covariances, r_g, BLUP.

The model (GCTA ``--reml-bivar``, GEMMA ``-lmm -n 1 2``) for T traits on N samples is

    vec(Y) ~ N(vec(X B'), Sigma_g (x) K + Sigma_e (x) I_N)

(notes section 3 with a T x T covariance per component). The likelihood is evaluated by
:class:`bayeslmm.likelihood.multitrait.MultiTraitSpectral` on the one shared decomposition of
K, O(N T^3) per evaluation with an analytic gradient. Sigma_g and Sigma_e are optimised
through their Cholesky factors with log-diagonals, so every iterate is positive semi-definite.

Derived quantities use the delta method on the observed information (GEMMA's choice):

    h2_t = Vg_t / (Vg_t + Ve_t),   r_g = Cg_12 / sqrt(Vg_1 Vg_2),   r_e = Ce_12 / sqrt(Ve_1 Ve_2)

and, for two traits, the likelihood-ratio tests of r_g = 0 (chi2_1) and |r_g| = 1 (Sigma_g of
rank one; a boundary null, so p = 1/2 P(chi2_1 > LR)) and a profile-likelihood interval for
r_g, which unlike the Wald interval respects [-1, 1] and the skew of r_g's sampling
distribution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from bayeslmm.covariance.decomposition import Decomposition, decompose
from bayeslmm.data import as_design, labels_of, prepare
from bayeslmm.errors import AlignmentError, ConvergenceWarning, InputError
from bayeslmm.estimation.reml import SE_METHODS
from bayeslmm.estimation.results import Results
from bayeslmm.identifiability import check_data
from bayeslmm.likelihood import tails
from bayeslmm.likelihood.multitrait import MultiTraitSpectral

__all__ = ["MultiTraitFit", "multitrait_ml", "multitrait_reml", "param_names", "prepare_traits",
           "profile_rg"]

log = logging.getLogger("bayeslmm.estimation.multitrait")


# ----------------------------------------------------------------------------- parameters
def param_names(T: int) -> list[str]:
    """Labels of the variance parameters: Vg_t, Cg_jk, Ve_t, Ce_jk (1-based traits)."""
    out = []
    for c in ("g", "e"):
        out += [f"V{c}_{t + 1}" for t in range(T)]
        out += [f"C{c}_{j + 1}{k + 1}" for j in range(T) for k in range(j + 1, T)]
    return out


def _pairs(T: int) -> list[tuple[int, int]]:
    return [(j, k) for j in range(T) for k in range(j + 1, T)]


def _to_params(Sg: np.ndarray, Se: np.ndarray) -> np.ndarray:
    T = Sg.shape[0]
    pr = _pairs(T)
    return np.concatenate([np.diag(Sg), [Sg[j, k] for j, k in pr],
                           np.diag(Se), [Se[j, k] for j, k in pr]])


def _from_params(p: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    n = T + len(_pairs(T))
    out = []
    for block in (p[:n], p[n:]):
        S = np.diag(block[:T]).astype(float)
        for v, (j, k) in zip(block[T:], _pairs(T), strict=True):
            S[j, k] = S[k, j] = v
        out.append(S)
    return out[0], out[1]


def _grad_params(Gg: np.ndarray, Ge: np.ndarray) -> np.ndarray:
    """d loglik / d params from the symmetric-matrix gradients (a covariance enters twice)."""
    T = Gg.shape[0]
    pr = _pairs(T)
    return np.concatenate([np.diag(Gg), [2 * Gg[j, k] for j, k in pr],
                           np.diag(Ge), [2 * Ge[j, k] for j, k in pr]])


class _Chol:
    """Sigma = L L' with L lower triangular, log-diagonal: PSD for every theta."""

    def __init__(self, T: int, diagonal: bool = False):
        self.T = T
        rows, cols = np.tril_indices(T)
        keep = rows == cols if diagonal else np.ones(rows.size, bool)
        self.rows, self.cols = rows[keep], cols[keep]
        self.n = self.rows.size

    def init(self, Sigma: np.ndarray) -> np.ndarray:
        S = Sigma if self.n == self.T * (self.T + 1) // 2 else np.diag(np.diag(Sigma))
        L = np.linalg.cholesky(S)
        v = L[self.rows, self.cols].copy()
        d = self.rows == self.cols
        v[d] = np.log(v[d])
        return v

    def __call__(self, theta: np.ndarray):
        L = np.zeros((self.T, self.T))
        d = self.rows == self.cols
        vals = np.where(d, np.exp(theta), theta)
        L[self.rows, self.cols] = vals
        dS = np.empty((self.n, self.T, self.T))
        for k in range(self.n):
            dL = np.zeros((self.T, self.T))
            dL[self.rows[k], self.cols[k]] = vals[k] if d[k] else 1.0
            dS[k] = dL @ L.T + L @ dL.T
        return L @ L.T, dS


class _RankOne:
    """Sigma = v v' (two traits with |r_g| = 1); v free."""

    def __init__(self, T: int):
        self.T, self.n = T, T

    def init(self, Sigma: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(Sigma), 1e-8, None))

    def __call__(self, theta: np.ndarray):
        dS = np.empty((self.T, self.T, self.T))
        for k in range(self.T):
            e = np.zeros(self.T)
            e[k] = 1.0
            dS[k] = np.outer(e, theta) + np.outer(theta, e)
        return np.outer(theta, theta), dS


class _FixedCorrelation:
    """Two traits, Sigma = [[g1, r sqrt(g1 g2)], [., g2]] with r fixed, theta = log(g1, g2)."""

    def __init__(self, r: float):
        self.r, self.T, self.n = float(r), 2, 2

    def init(self, Sigma: np.ndarray) -> np.ndarray:
        return np.log(np.clip(np.diag(Sigma), 1e-8, None))

    def __call__(self, theta: np.ndarray):
        g = np.exp(theta)
        c = self.r * np.sqrt(g[0] * g[1])
        S = np.array([[g[0], c], [c, g[1]]])
        dS = np.array([[[g[0], c / 2], [c / 2, 0.0]], [[0.0, c / 2], [c / 2, g[1]]]])
        return S, dS


def _optimise(model: MultiTraitSpectral, reml: bool, pg, pe, Sg0: np.ndarray,
              Se0: np.ndarray, theta0: np.ndarray | None = None):
    """Maximise the (RE)ML log-likelihood over theta = (theta_g, theta_e) by BFGS with the
    analytic gradient; returns (loglik, Sigma_g, Sigma_e, theta, converged, n_eval)."""
    ng = pg.n

    def f(theta):
        Sg, dSg = pg(theta[:ng])
        Se, dSe = pe(theta[ng:])
        try:
            ev = model.evaluate(Sg, Se, reml)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        g = np.concatenate([np.einsum("ab,kab->k", ev.grad_g, dSg),
                            np.einsum("ab,kab->k", ev.grad_e, dSe)])
        return -ev.loglik, -g

    if theta0 is None:
        theta0 = np.concatenate([pg.init(Sg0), pe.init(Se0)])
    res = optimize.minimize(f, theta0, jac=True, method="BFGS",
                            options={"gtol": 1e-7, "maxiter": 2000})
    Sg, _ = pg(res.x[:ng])
    Se, _ = pe(res.x[ng:])
    grad_ok = bool(np.max(np.abs(res.jac)) < 1e-4)
    return -float(res.fun), Sg, Se, res.x, bool(res.success) or grad_ok, int(res.nfev)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class MultiTraitFit(Results):
    """A fitted multi-trait model vec(Y) ~ N(vec(X B'), Sigma_g (x) K + Sigma_e (x) I).

    Attributes
    ----------
    reml : bool
    traits : tuple of str
    Sigma_g, Sigma_e : pandas.DataFrame (T x T)
        Genetic and residual covariance matrices.
    loglik : float
        Maximised (RE)ML log-likelihood, constants included (GEMMA's convention).
    B : pandas.DataFrame (traits x covariates)
        GLS fixed effects; ``B_cov`` its covariance (index ``trait:covariate``).
    information : ndarray
        Information of :attr:`params` in the parameterisation Vg_t, Cg_jk, Ve_t, Ce_jk
        (GEMMA's), of the kind ``se_method`` names: observed (minus the Hessian of the
        log-likelihood; GEMMA's, the default), expected (Fisher, 1/2 tr(P D_a P D_b)) or
        average (1/2 y'P D_a P D_b P y, GCTA's), notes section 4.3.
    tests : pandas.DataFrame or None
        Two traits: LRTs of r_g = 0 and |r_g| = 1 (``loglik_null``, ``LR``, ``df``, ``p``).
    rg_ci : (float, float) or None
        Profile-likelihood interval for r_g at ``ci_level`` (two traits).
    n_dropped : int
        Samples left out for a missing value in some trait (complete cases).
    """

    reml: bool
    traits: tuple[str, ...]
    Sigma_g: pd.DataFrame
    Sigma_e: pd.DataFrame
    loglik: float
    B: pd.DataFrame
    B_cov: pd.DataFrame
    information: np.ndarray
    converged: bool
    n_eval: int
    tests: pd.DataFrame | None
    rg_ci: tuple[float, float] | None
    ci_level: float
    n_dropped: int
    samples: np.ndarray = field(repr=False)
    model: MultiTraitSpectral = field(repr=False)
    se_method: str = "observed"

    # ------------------------------------------------------------------ statsmodels vocabulary
    @property
    def T(self) -> int:
        return len(self.traits)

    @property
    def nobs(self) -> int:
        return self.model.N

    @property
    def llf(self) -> float:
        return self.loglik

    @property
    def params(self) -> pd.Series:
        return pd.Series(_to_params(self.Sigma_g.values, self.Sigma_e.values),
                         index=param_names(self.T), name="estimate")

    def cov_params(self) -> pd.DataFrame:
        """Inverse of the information of ``se_method`` (NaN where it is singular)."""
        try:
            cov = np.linalg.inv(self.information)
        except np.linalg.LinAlgError:
            cov = np.full_like(self.information, np.nan)
        names = param_names(self.T)
        return pd.DataFrame(cov, index=names, columns=names)

    # ------------------------------------------------------------------ derived quantities
    def _derived(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Names, values and the Jacobian d(derived)/d(params) (delta method)."""
        T = self.T
        p = self.params.values
        Sg, Se = self.Sigma_g.values, self.Sigma_e.values
        names, vals, rows = [], [], []
        idx = {n: i for i, n in enumerate(param_names(T))}
        for t in range(T):
            g, e = Sg[t, t], Se[t, t]
            J = np.zeros(p.size)
            J[idx[f"Vg_{t + 1}"]] = e / (g + e) ** 2
            J[idx[f"Ve_{t + 1}"]] = -g / (g + e) ** 2
            names.append(f"h2_{t + 1}")
            vals.append(g / (g + e))
            rows.append(J)
        for t in range(T):
            J = np.zeros(p.size)
            J[idx[f"Vg_{t + 1}"]] = J[idx[f"Ve_{t + 1}"]] = 1.0
            names.append(f"Vp_{t + 1}")
            vals.append(Sg[t, t] + Se[t, t])
            rows.append(J)
        for c, S in (("g", Sg), ("e", Se)):
            for j, k in _pairs(T):
                a, b, cjk = S[j, j], S[k, k], S[j, k]
                den = np.sqrt(a * b)
                r = cjk / den if den > 0 else np.nan
                J = np.zeros(p.size)
                J[idx[f"C{c}_{j + 1}{k + 1}"]] = 1 / den if den > 0 else np.nan
                J[idx[f"V{c}_{j + 1}"]] = -r / (2 * a) if a > 0 else np.nan
                J[idx[f"V{c}_{k + 1}"]] = -r / (2 * b) if b > 0 else np.nan
                names.append(f"r{c}_{j + 1}{k + 1}")
                vals.append(r)
                rows.append(J)
        return names, np.array(vals), np.array(rows)

    def derived(self) -> pd.DataFrame:
        """h2 and Vp per trait and the genetic / residual correlations (rg_jk, re_jk) with
        delta-method SEs."""
        names, vals, J = self._derived()
        cov = self.cov_params().values
        se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, cov, J), 0, None))
        return pd.DataFrame({"estimate": vals, "se": se}, index=names)

    def _one(self, prefix: str, col: str = "estimate"):
        d = self.derived()
        s = d.loc[[n for n in d.index if n.startswith(prefix)], col]
        return float(s.iloc[0]) if s.size == 1 else s

    @property
    def h2(self):
        return self._one("h2_")

    @property
    def h2_se(self):
        return self._one("h2_", "se")

    @property
    def r_g(self):
        """Genetic correlation (a float for two traits, a Series by pair otherwise)."""
        return self._one("rg_")

    @property
    def r_g_se(self):
        return self._one("rg_", "se")

    @property
    def r_e(self):
        return self._one("re_")

    @property
    def r_e_se(self):
        return self._one("re_", "se")

    def summary(self) -> pd.DataFrame:
        """Variance parameters and derived quantities with SEs (one table)."""
        top = pd.DataFrame({"estimate": self.params, "se": self.bse})
        return pd.concat([top, self.derived()])

    def __repr__(self) -> str:
        head = (f"MultiTraitFit({'REML' if self.reml else 'ML'}, T={self.T}, N={self.nobs}, "
                f"loglik={self.loglik:.4f}, converged={self.converged})")
        extra = ""
        if self.rg_ci is not None:
            extra += (f"\nr_g {self.ci_level:.0%} profile-likelihood CI: "
                      f"[{self.rg_ci[0]:.4f}, {self.rg_ci[1]:.4f}]")
        if self.tests is not None:
            extra += "\n" + self.tests.to_string()
        return f"{head}\n{self.summary().to_string()}{extra}"

    # ------------------------------------------------------------------ BLUP
    def _Vinv_residual(self) -> np.ndarray:
        return self.model.Vinv_residual(self.Sigma_g.values, self.Sigma_e.values,
                                        self.B.values)

    def blup(self) -> pd.DataFrame:
        """BLUP of every trait's genetic values, (Sigma_g (x) K) V^-1 vec(Y - X B')
        (notes 5.2.2 with the Kronecker covariance), as an N x T table."""
        W = self._Vinv_residual()
        dec = self.model.dec
        KW = dec.U @ (dec.S[:, None] * (dec.U.T @ W))
        return pd.DataFrame(KW @ self.Sigma_g.values, index=self.samples,
                            columns=list(self.traits))

    def predict(self, K_new, X_new=None) -> pd.DataFrame:
        """Genetic values of new samples, K_new V^-1 vec(Y - X B') Sigma_g, plus X_new B'
        when ``X_new`` is given.

        Parameters
        ----------
        K_new : array_like, shape (N_new, N)
            Kernel between the new samples and the fitted ones (in the fit's sample order;
            a DataFrame with the fitted sample IDs as columns is reordered).
        X_new : array_like, shape (N_new, M), optional
        """
        index = None
        if isinstance(K_new, pd.DataFrame):
            index = K_new.index
            cols = K_new.columns.map(str)
            if set(cols) >= set(self.samples):
                K_new = K_new.set_axis(cols, axis=1)[list(self.samples)]
        Kn = np.asarray(K_new, dtype=np.float64)
        if Kn.ndim == 1:
            Kn = Kn[None, :]
        if Kn.ndim != 2 or Kn.shape[1] != self.nobs:
            raise InputError(f"K_new must be (new samples) x {self.nobs} (the fitted samples), "
                             f"got shape {Kn.shape}")
        if not np.all(np.isfinite(Kn)):
            raise InputError("K_new has NaN or infinite entries")
        out = Kn @ self._Vinv_residual() @ self.Sigma_g.values
        if X_new is not None:
            Xn, _, _ = as_design(X_new, Kn.shape[0])
            if Xn.shape[1] != self.B.shape[1]:
                raise InputError(f"X_new has {Xn.shape[1]} columns, the fit {self.B.shape[1]}")
            out = out + Xn @ self.B.values.T
        return pd.DataFrame(out, index=index, columns=list(self.traits))


# ----------------------------------------------------------------------------- fitting
def _observed_information(model: MultiTraitSpectral, reml: bool, Sg: np.ndarray,
                          Se: np.ndarray) -> np.ndarray:
    """Minus the Hessian of the log-likelihood in (Vg_t, Cg_jk, Ve_t, Ce_jk), by central
    differences of the analytic gradient (relative step 1e-5; error ~1e-9 relative).

    This is the matrix GEMMA inverts for its se(Vg), se(Ve) (its Newton-Raphson Hessian
    1/2 tr(P D P D) - y'P D P D P y is the exact observed one for a V linear in the
    parameters)."""
    T = Sg.shape[0]
    p0 = _to_params(Sg, Se)
    scale = np.concatenate([np.full(p0.size // 2, np.mean(np.diag(Sg)) + 1e-300),
                            np.full(p0.size // 2, np.mean(np.diag(Se)))])
    scale = np.maximum(np.abs(p0), scale)
    H = np.empty((p0.size, p0.size))
    for k in range(p0.size):
        h = 1e-5 * scale[k]
        g = []
        for sgn in (1, -1):
            p = p0.copy()
            p[k] += sgn * h
            try:
                ev = model.evaluate(*_from_params(p, T), reml)
            except np.linalg.LinAlgError:
                return np.full((p0.size, p0.size), np.nan)
            g.append(_grad_params(ev.grad_g, ev.grad_e))
        H[:, k] = (g[0] - g[1]) / (2 * h)
    return -0.5 * (H + H.T)


def _information(model: MultiTraitSpectral, zero: MultiTraitSpectral, reml: bool,
                 Sg: np.ndarray, Se: np.ndarray, se_method: str) -> np.ndarray:
    """The information matrix ``se_method`` names.

    With V linear in the parameters, the observed information is 2 AI - F, where
    F = 1/2 tr(P D_a P D_b) is the expected (Fisher) and AI = 1/2 y'P D_a P D_b P y the
    average information. F is minus the Hessian of the log-likelihood's log-determinant
    part alone (-1/2 [log|V| + log|X_T'V^-1X_T|]), which is the log-likelihood of Y = 0:
    ``zero`` is the model with the traits set to 0, so F comes from the same finite
    differences of the analytic gradient as the observed information."""
    observed = _observed_information(model, reml, Sg, Se)
    if se_method == "observed":
        return observed
    fisher = -_observed_information(zero, reml, Sg, Se)
    return fisher if se_method == "expected" else 0.5 * (observed + fisher)


def _complete_cases(Y):
    """Y as a labelled (N, T) frame, complete cases only, with X and K aligned to them."""
    if isinstance(Y, pd.Series):
        Y = Y.to_frame()
    if isinstance(Y, pd.DataFrame):
        frame = Y.copy()
        # Sample labels as bayeslmm.data reads them: "FID IID" for a (fid, iid) index.
        frame.index = (pd.Index([" ".join(map(str, t)) for t in frame.index])
                       if isinstance(frame.index, pd.MultiIndex) else frame.index.map(str))
    else:
        arr = np.asarray(Y, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"the traits Y must be an N x T matrix, got shape {arr.shape}")
        frame = pd.DataFrame(arr, columns=[f"trait{t + 1}" for t in range(arr.shape[1])])
        frame.index = frame.index.map(str)
    try:
        frame = frame.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the traits Y must be numeric: {exc}") from None
    if frame.shape[1] < 1:
        raise InputError("the traits Y have no columns")
    frame.columns = [str(c) for c in frame.columns]
    missing = ~np.isfinite(frame.to_numpy())
    keep = ~missing.any(axis=1)
    n_dropped = int((~keep).sum())
    if n_dropped:
        per = ", ".join(f"{c}: {int(m)}" for c, m in zip(frame.columns, missing.sum(0),
                                                            strict=True))
        log.info("complete cases: %d of %d samples kept; %d dropped for a missing trait "
                 "(missing per trait: %s)", int(keep.sum()), len(frame), n_dropped, per)
    Yc = frame.loc[keep]
    if len(Yc) < 3:
        raise InputError(f"only {len(Yc)} samples have every trait observed")
    return frame, keep, Yc, n_dropped


def _align_decomposition(dec: Decomposition, samples: np.ndarray, keep: np.ndarray,
                         labelled: bool) -> Decomposition:
    """The decomposition on the complete cases, in their order: by label through the one
    alignment rule (:meth:`Decomposition.aligned_to`), by position when unlabelled."""
    advice = "pass K itself, or decompose the kernel of the complete cases"
    if not labelled or dec.samples is None:
        if dec.N == keep.size and not keep.all():
            raise InputError(f"{int((~keep).sum())} samples miss a trait: pass K itself (not "
                             "a decomposition) or decompose the kernel of the complete cases")
        if dec.N != samples.size:
            raise InputError(f"the decomposition has {dec.N} samples but Y has {samples.size} "
                             f"complete cases: {advice}")
        return dec
    if dec.N != samples.size:
        raise InputError(f"the decomposition's {dec.N} samples are not the {samples.size} "
                         f"complete cases of Y: {advice}")
    try:
        return dec.aligned_to(samples)
    except AlignmentError as exc:
        raise InputError(f"{exc}; the decomposition's samples are not the complete cases of "
                         f"Y: {advice}") from None


def prepare_traits(Y, K, X):
    """Complete cases of Y (N x T), X and the decomposition of K aligned to them.

    Returns (Y frame, LMMData of the first trait, Decomposition, sample IDs, n dropped).
    """
    frame, keep, Yc, n_dropped = _complete_cases(Y)
    labelled = isinstance(Y, pd.DataFrame | pd.Series)
    y0 = Yc.iloc[:, 0] if labelled else Yc.iloc[:, 0].to_numpy()
    if X is not None and not keep.all():
        if isinstance(X, pd.DataFrame | pd.Series) and labelled:
            pass  # aligned by label below
        else:
            Xa = np.asarray(X, dtype=np.float64)
            X = Xa[keep] if Xa.shape[0] == keep.size else Xa
    Kin = None if isinstance(K, Decomposition) else K
    if Kin is not None and not keep.all() and not (labelled and isinstance(K, pd.DataFrame)):
        Ka = np.asarray(Kin, dtype=np.float64)
        if Ka.ndim == 2 and Ka.shape[0] == keep.size:
            Kin = Ka[np.ix_(keep, keep)]
    data = prepare(y0, Kin, X)
    for j, c in enumerate(Yc.columns):
        if np.ptp(Yc[c].to_numpy()) == 0:
            raise InputError(f"trait {c!r} is constant over the complete cases")
        # The one-trait checks, per trait (overflowing squares, a spread that underflows,
        # covariates fitting the trait): otherwise 1e300 gives an all-NaN fit.
        check_data(Yc[c].to_numpy(), data.X, data.Ks if j == 0 else (), name=f"trait {c!r}")
    samples = labels_of(Yc) if labelled else data.samples
    if isinstance(K, Decomposition):
        dec = _align_decomposition(K, samples, keep, labelled)
    else:
        dec = decompose(data.Ks[0], samples=samples, validated=True)
    return Yc, data, dec, samples, n_dropped


def _fit(Y, K, X, reml: bool, ci_level: float, tests: bool,
         se_method: str = "observed") -> MultiTraitFit:
    if se_method not in SE_METHODS:
        raise InputError(f"se_method must be one of {SE_METHODS}, got {se_method!r}")
    Yc, data, dec, samples, n_dropped = prepare_traits(Y, K, X)
    Yarr = Yc.to_numpy()
    T = Yarr.shape[1]
    # Optimise on standardised traits (well-scaled theta), report on the original scale.
    Q, _ = np.linalg.qr(data.X)
    res = Yarr - Q @ (Q.T @ Yarr)
    sd = np.sqrt(np.sum(res**2, axis=0) / (data.N - data.M))
    scaled = MultiTraitSpectral(dec, Yarr / sd, data.X)
    model = MultiTraitSpectral(dec, Yarr, data.X)
    P = np.corrcoef(res.T).reshape(T, T)
    pg, pe = _Chol(T), _Chol(T)
    best = None
    # Two starts: half the phenotypic covariance each, and uncorrelated genetics.
    for Sg0, Se0 in ((0.5 * P + 0.01 * np.eye(T), 0.5 * P + 0.01 * np.eye(T)),
                     (0.5 * np.eye(T), 0.5 * P + 0.01 * np.eye(T))):
        out = _optimise(scaled, reml, pg, pe, Sg0, Se0)
        if best is None or out[0] > best[0]:
            best = out
    _, Sg_s, Se_s, theta, converged, n_eval = best
    if not converged:
        import warnings

        warnings.warn("the multi-trait optimiser stopped before its gradient criterion",
                      ConvergenceWarning, stacklevel=3)
    D = np.diag(sd)
    Sg, Se = D @ Sg_s @ D, D @ Se_s @ D
    ev = model.evaluate(Sg, Se, reml, grad=False)
    info = _information(model, MultiTraitSpectral(dec, np.zeros_like(Yarr), data.X), reml, Sg,
                        Se, se_method)
    traits = tuple(Yc.columns)
    cov_names = list(data.covariates)
    test_table, rg_ci = None, None
    if tests and T == 2:
        test_table, rg_ci = _rg_inference(scaled, reml, best, ci_level,
                                          ll_offset=ev.loglik - best[0])
    bidx = [f"{t}:{c}" for t in traits for c in cov_names]
    return MultiTraitFit(
        reml=reml, traits=traits,
        Sigma_g=pd.DataFrame(Sg, index=traits, columns=traits),
        Sigma_e=pd.DataFrame(Se, index=traits, columns=traits), loglik=ev.loglik,
        B=pd.DataFrame(ev.B, index=traits, columns=cov_names),
        B_cov=pd.DataFrame(ev.B_cov, index=bidx, columns=bidx), information=info,
        converged=converged, n_eval=n_eval, tests=test_table, rg_ci=rg_ci,
        ci_level=ci_level, n_dropped=n_dropped, samples=samples, model=model,
        se_method=se_method)


def _rg_inference(scaled: MultiTraitSpectral, reml: bool, best, level: float,
                  ll_offset: float):
    """LRTs of r_g = 0 and |r_g| = 1, and the profile-likelihood interval of r_g (T = 2).

    The traits' scaling does not change r_g and shifts every log-likelihood by the same
    constant, so all of this runs on the standardised model; ``ll_offset`` restores the
    original scale's log-likelihoods in the table."""
    ll, Sg, Se, *_ = best
    pe = _Chol(2)
    ll0, *_ = max((_optimise(scaled, reml, _Chol(2, diagonal=True), pe, S0, Se)
                   for S0 in (Sg, np.eye(2) * 0.5)), key=lambda o: o[0])
    ll1, *_ = max((_optimise(scaled, reml, _RankOne(2), pe, S0, Se)
                   for S0 in (Sg, np.array([[0.5, 0.45], [0.45, 0.5]]),
                              np.array([[0.5, -0.45], [-0.45, 0.5]]))), key=lambda o: o[0])
    lr0 = max(2 * (ll - ll0), 0.0)
    lr1 = max(2 * (ll - ll1), 0.0)
    table = pd.DataFrame(
        {"loglik_null": [ll0 + ll_offset, ll1 + ll_offset], "LR": [lr0, lr1], "df": [1, 1],
         "p": [float(tails.chi2_sf(lr0, 1)),
               float(0.5 * tails.chi2_sf(lr1, 1)) if lr1 > 0 else 1.0]},
        index=["r_g=0", "|r_g|=1"])
    den = np.sqrt(Sg[0, 0] * Sg[1, 1])
    # r_g is undefined when a genetic variance is (numerically) zero: no interval then.
    ci = None
    if den > 1e-8 * np.sqrt(Se[0, 0] * Se[1, 1]):
        ci = _profile_rg_ci(scaled, reml, ll, float(Sg[0, 1] / den), Sg, Se, level)
    return table, ci


def profile_rg(model: MultiTraitSpectral, reml: bool, r: float, Sg: np.ndarray,
               Se: np.ndarray) -> float:
    """Log-likelihood maximised over everything but r_g, which is held at ``r`` (T = 2)."""
    ll, *_ = _optimise(model, reml, _FixedCorrelation(r), _Chol(2), Sg, Se)
    return ll


def _profile_rg_ci(model, reml, ll, rg_hat, Sg, Se, level) -> tuple[float, float]:
    cut = ll - 0.5 * tails.chi2_ppf(level, 1)

    def f(r):
        return profile_rg(model, reml, r, Sg, Se) - cut

    ends = []
    for end in (-1.0, 1.0):
        if abs(rg_hat - end) < 1e-9 or f(end) >= 0:
            ends.append(end)
        else:
            ends.append(float(optimize.brentq(f, end, rg_hat, xtol=1e-6)))
    return ends[0], ends[1]


def multitrait_reml(Y, K, X=None, *, ci_level: float = 0.95, tests: bool = True,
                    se_method: str = "observed") -> MultiTraitFit:
    """Multi-trait REML of Sigma_g and Sigma_e with one kernel (notes 4.3.2, Kronecker V).

    Parameters
    ----------
    Y : array_like or DataFrame, shape (N, T)
        Traits in columns; rows with a missing value in any trait are dropped (complete
        cases, counts logged on the ``bayeslmm.estimation.multitrait`` logger).
    K : array_like (N, N) or Decomposition
        The kernel shared by the traits (or its decomposition, computed once and shared).
    X : array_like, shape (N, M), optional
        Covariates shared by the traits, default an intercept.
    ci_level : float
        Level of the profile-likelihood interval for r_g.
    tests : bool
        For two traits, run the LRTs of r_g = 0 and |r_g| = 1 and the profile interval.
    se_method : {"observed", "ai", "expected"}
        The information matrix behind the standard errors: observed (GEMMA's mvLMM, the
        default), average information (GCTA's bivariate REML) or expected (Fisher).

    Returns
    -------
    MultiTraitFit

    Examples
    --------
    >>> import numpy as np, bayeslmm.estimation.multitrait as mt
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((150, 300)); K = Z @ Z.T / 300
    >>> Y = rng.standard_normal((150, 2))
    >>> fit = mt.multitrait_reml(Y, K, tests=False)
    >>> list(fit.params.index)
    ['Vg_1', 'Vg_2', 'Cg_12', 'Ve_1', 'Ve_2', 'Ce_12']
    """
    _check_level(ci_level)
    return _fit(Y, K, X, True, ci_level, tests, se_method)


def multitrait_ml(Y, K, X=None, *, ci_level: float = 0.95, tests: bool = True,
                  se_method: str = "observed") -> MultiTraitFit:
    """Multi-trait maximum likelihood (notes eq. 48, Kronecker V); as :func:`multitrait_reml`."""
    _check_level(ci_level)
    return _fit(Y, K, X, False, ci_level, tests, se_method)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise InputError(f"ci_level must lie in (0, 1), got {level}")

