"""Association with the variance ratio re-fitted for every SNP: GEMMA's Wald, likelihood
ratio and score tests (Zhou and Stephens 2012; notes 5.1).

For each SNP x the model y = W alpha + x beta + g + e, g ~ N(0, lambda tau^-1 K),
e ~ N(0, tau^-1 I) is fitted again, lambda = sigma_g2 / sigma_e2 included. In K's eigenbasis
(K = U diag(d) U', H = lambda K + I, h_i = 1 / (lambda d_i + 1)) every quantity the tests
need is a weighted cross-product sum_i h_i a_i b_i of the rotated vectors a, b in {W, x, y}:
with V = [W, x] (k = c + 1 columns; c counts the intercept), A = V'H^-1V, b = V'H^-1y,

    P_yy = y'Py = y'H^-1y - b'A^-1 b,          P the REML projection of V,
    log|V'H^-1V| = log|A|,   tr P = sum h - tr(A^-1 V'H^-2V),   y'PPy = sum h^2 r^2,

with r = y - V A^-1 b. The REML and ML profile log-likelihoods in lambda are

    l_R(lambda) = df/2 (log df - log 2 pi - 1) - 1/2 sum log(lambda d_i + 1)
                  - 1/2 (log|V'H^-1V| - log|V'V|) - df/2 log P_yy,       df = n - k
    l_ML(lambda) = n/2 (log n - log 2 pi - 1) - 1/2 sum log(lambda d_i + 1) - n/2 log P_yy

and their derivatives dl_R = -1/2 tr(PK) + df/2 y'PKPy / P_yy, tr(PK) = (df - tr P)/lambda,
y'PKPy = (P_yy - y'PPy)/lambda (K = (H - I)/lambda); dl_ML likewise with H^-1 for P and n
for df. Each evaluation costs O(n k^2) per SNP, done for a whole block of SNPs at once.

lambda is searched as GEMMA's ``CalcLambda`` does: on [1e-5, 1e5] cut into 10 intervals
(ends 1e-5, 1e-4, ..., 1e5); every interval where the derivative changes sign holds a root,
found here by a bracketed secant (Illinois) iteration on log lambda to 1e-10; the first root
is kept and a later one replaces it only with a strictly larger likelihood; then 1e-5 and
1e5 replace it if strictly better; without a sign change the better end is taken.

The tests (GEMMA's ``-lmm 1/2/3``), with df_t = n - c - 1:

* ``wald``: lambda by REML under H1; beta = P_xy/P_xx, se = sqrt(Px_yy / (df_t P_xx)),
  F = beta^2 / se^2, p from F(1, df_t);
* ``lrt``: lambda by ML under H1 and under H0; p from chi2_1 on 2 (l_ML,1 - l_ML,0);
* ``score``: at the null ML lambda (fitted once); F = n P_xy^2 / (P_yy P_xx), p from
  F(1, df_t).

Here P_xx, P_xy, P_yy are forms with W projected out and Px_yy with W and x. GEMMA centres K
over the analysed samples and sets eigenvalues below 1e-10 to 0 before all this
(:func:`gemma_kernel`): REML and the Wald test do not change with that (W holds an
intercept), the ML fits and so the LRT and score tests do.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from bayeslmm.association.catalogue import PER_SNP_TESTS
from bayeslmm.covariance.per_column import gemma_kernel, logdet_H_per_column, weighted_sums
from bayeslmm.errors import InputError
from bayeslmm.likelihood import tails
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["L_MAX", "L_MIN", "GemmaBasis", "gemma_basis", "per_snp_block"]

L_MIN, L_MAX, N_REGION = 1e-5, 1e5, 10
#: the tests that re-fit lambda per SNP (or, the score test, use the null ML lambda)
#: y'Py below this (a perfect fit) is clamped, as GEMMA does
P_YY_MIN = 1e-8
_GRID = L_MIN * np.exp(math.log(L_MAX / L_MIN) / N_REGION * np.arange(N_REGION + 1))


@dataclass(frozen=True, eq=False)
class GemmaBasis:
    """The rotated phenotype and covariates, and the two null fits.

    Attributes
    ----------
    d : ndarray (n,)
        Eigenvalues of the (centred) kinship.
    U : ndarray (n, n)
    UtW, Uty : ndarray
        U'W (n x c) and U'y.
    logdet_WW : float
        log|W'W|.
    l_mle_null, logl_mle_null, l_remle_null, logl_remle_null : float
        The null fits (no SNP): lambda and the maximised ML / REML log-likelihood.
    """

    d: np.ndarray
    U: np.ndarray
    UtW: np.ndarray
    Uty: np.ndarray
    logdet_WW: float
    pairsT: np.ndarray  # (c(c+1)/2 + c + 1, n): w_k w_l (k <= l), w_k y, y y
    WyT: np.ndarray  # (c + 1, n): the rows of (U'W)' and U'y
    l_mle_null: float = math.nan
    logl_mle_null: float = math.nan
    l_remle_null: float = math.nan
    logl_remle_null: float = math.nan
    #: tr(K_centred) / n when d are not the centred kernel's eigenvalues (``eigen=`` given)
    centred_trace: float = math.nan

    @property
    def n(self) -> int:
        return self.d.size

    @property
    def c(self) -> int:
        return self.UtW.shape[1]

    @property
    def trace_G(self) -> float:
        """Mean eigenvalue (GEMMA's trace_G): tr K / n of the centred, zeroed kernel."""
        return self.centred_trace if math.isfinite(self.centred_trace) else float(self.d.mean())

    @property
    def pve(self) -> float:
        """GEMMA's pve: h2 with K scaled to mean eigenvalue 1, at the null REML lambda."""
        t = self.trace_G * self.l_remle_null
        return t / (t + 1.0)


# ----------------------------------------------------------------------------- forms
@dataclass(frozen=True, eq=False)
class _Rotated:
    """A block of rotated SNPs, one row each (or none: the null model)."""

    xt: np.ndarray  # (B, n) = (U'X)', or (0, n)
    B: int

    @classmethod
    def of(cls, basis: GemmaBasis, X: np.ndarray | None) -> _Rotated:
        if X is None:
            return cls(np.zeros((0, basis.n)), 1)
        xt = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T @ basis.U)
        return cls(xt, xt.shape[0])

    @property
    def null(self) -> bool:
        return self.xt.shape[0] == 0

    def take(self, sel: np.ndarray) -> _Rotated:
        return self if self.null else _Rotated(self.xt[sel], sel.size)


def _assemble(S0: np.ndarray, S1: np.ndarray | None, c: int):
    """V'DV (B, k, k), V'Dy (B, k), y'Dy (B,) from the weighted sums over [W, y] pairs
    (``S0``, :attr:`GemmaBasis.pairsT` order) and over the SNP's products x x, x w_k, x y
    (``S1``)."""
    B = S0.shape[0]
    k = c + (S1 is not None)
    A = np.empty((B, k, k))
    iu = np.triu_indices(c)
    A[:, iu[0], iu[1]] = S0[:, :iu[0].size]
    A[:, iu[1], iu[0]] = S0[:, :iu[0].size]
    b = np.empty((B, k))
    b[:, :c] = S0[:, iu[0].size:iu[0].size + c]
    yy = S0[:, -1]
    if S1 is not None:
        A[:, c, c] = S1[:, 0]
        A[:, :c, c] = A[:, c, :c] = S1[:, 1:1 + c]
        b[:, c] = S1[:, 1 + c]
    return A, b, yy


class _Forms:
    """The weighted cross-products of [W, (x), y] at one lambda per SNP, and what follows
    (module docstring); every attribute is (B,)-shaped (B = 1 for the null model)."""

    def __init__(self, basis: GemmaBasis, rot: _Rotated, lam, second: bool = False):
        B, c = rot.B, basis.c
        lam = np.ascontiguousarray(np.broadcast_to(np.asarray(lam, dtype=np.float64), (B,)))
        self.lam = lam
        S0, S1, S0b, S1b, self.trHi = weighted_sums(lam, basis.d, basis.pairsT, basis.WyT,
                                                     rot.xt, second)
        A, b, yy = _assemble(S0, None if rot.null else S1, c)
        self.k = A.shape[1]
        self.A, self.b, self.yy = A, b, yy
        Ainv = np.linalg.inv(A)
        beta = np.einsum("bij,bj->bi", Ainv, b)
        self.P_yy = yy - np.einsum("bk,bk->b", b, beta)
        if second:
            A2, b2, yy2 = _assemble(S0b, None if rot.null else S1b, c)
            # y'PPy = sum h^2 r^2, r = y - V beta; tr P = sum h - tr(A^-1 V'H^-2V)
            self.PP_yy = (yy2 - 2.0 * np.einsum("bk,bk->b", beta, b2)
                          + np.einsum("bi,bij,bj->b", beta, A2, beta))
            self.trP = self.trHi - np.einsum("bij,bji->b", Ainv, A2)

    def logdet_H(self, d: np.ndarray) -> np.ndarray:
        if self.lam.size > 1 and np.all(self.lam == self.lam[0]):  # the ends: one lambda
            return np.full(self.lam.size, logdet_H_per_column(self.lam[:1], d)[0])
        return logdet_H_per_column(self.lam, d)


def _loglik(basis: GemmaBasis, rot: _Rotated, xx_logdet, lam, reml: bool) -> np.ndarray:
    """l_R or l_ML at ``lam`` (module docstring); ``xx_logdet`` is log|V'V| - log|W'W|."""
    F = _Forms(basis, rot, lam)
    n = basis.n
    Pyy = np.where((F.P_yy >= 0) & (F.P_yy < P_YY_MIN), P_YY_MIN, F.P_yy)
    logdet_H = F.logdet_H(basis.d)
    if reml:
        df = n - F.k
        logdet_A = np.linalg.slogdet(F.A)[1]
        return (0.5 * df * (math.log(df) - LOG2PI - 1.0) - 0.5 * logdet_H
                - 0.5 * (logdet_A - basis.logdet_WW - xx_logdet) - 0.5 * df * np.log(Pyy))
    return 0.5 * n * (math.log(n) - LOG2PI - 1.0) - 0.5 * logdet_H - 0.5 * n * np.log(Pyy)


def _dloglik(basis: GemmaBasis, rot: _Rotated, lam, reml: bool) -> np.ndarray:
    """d l / d lambda at ``lam`` (module docstring)."""
    F = _Forms(basis, rot, lam, second=True)
    n = basis.n
    yPKPy = (F.P_yy - F.PP_yy) / F.lam
    if reml:
        df = n - F.k
        trPK = (df - F.trP) / F.lam
        return -0.5 * trPK + 0.5 * df * yPKPy / F.P_yy
    trHiK = (n - F.trHi) / F.lam
    return -0.5 * trHiK + 0.5 * n * yPKPy / F.P_yy


def _root(basis, rot: _Rotated, lo, hi, dlo, dhi, reml: bool, tol: float = 1e-9,
          max_iter: int = 100):
    """A root of the derivative in [lo, hi] (log lambda; derivative signs differ or one is
    0), for each SNP of ``rot``: Illinois (regula falsi with halving), vectorised. Every
    iteration evaluates the whole set (a gather of the still-active SNPs would cost more
    than it saves: they converge together)."""
    a, b, fa, fb = lo.copy(), hi.copy(), dlo.copy(), dhi.copy()
    side = np.zeros(a.size, dtype=np.int8)
    done = (fa == 0) | (fb == 0)
    root = np.where(fa == 0, a, b)
    for _ in range(max_iter):
        act = ~done & (np.abs(b - a) > tol)
        if not act.any():
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (a * fb - b * fa) / (fb - fa)
        bad = ~np.isfinite(m) | (m <= np.minimum(a, b)) | (m >= np.maximum(a, b))
        m = np.where(bad, 0.5 * (a + b), m)
        m = np.where(act, m, root)
        fm = _dloglik(basis, rot, np.exp(m), reml)
        same = np.sign(fm) == np.sign(fa)
        # Illinois: when one end stays twice, halve its value.
        new_a = np.where(same, m, a)
        new_fa = np.where(same, fm, np.where(side == -1, 0.5 * fa, fa))
        new_b = np.where(same, b, m)
        new_fb = np.where(same, np.where(side == 1, 0.5 * fb, fb), fm)
        a, fa = np.where(act, new_a, a), np.where(act, new_fa, fa)
        b, fb = np.where(act, new_b, b), np.where(act, new_fb, fb)
        side = np.where(act, np.where(same, 1, -1), side).astype(np.int8)
        root = np.where(act, m, root)
        done |= act & (fm == 0)
    left = ~done & (np.abs(b - a) > tol)
    root[left] = np.where(np.abs(fa[left]) < np.abs(fb[left]), a[left], b[left])
    return np.exp(root)


def _optimise(basis: GemmaBasis, rot: _Rotated, xx_logdet, reml: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """lambda and the maximised log-likelihood for each SNP of ``rot`` (or the null model),
    by GEMMA's rules (module docstring)."""
    B = rot.B
    D = np.stack([_dloglik(basis, rot, np.full(B, g), reml) for g in _GRID], axis=1)
    best_l = np.full(B, np.nan)
    best_f = np.full(B, -np.inf)
    found = np.zeros(B, dtype=bool)
    logg = np.log(_GRID)
    for i in range(N_REGION):
        with np.errstate(invalid="ignore"):
            sel = np.flatnonzero(D[:, i] * D[:, i + 1] <= 0)
        if not sel.size:
            continue
        sub = rot if sel.size == B else rot.take(sel)
        lam = _root(basis, sub, np.full(sel.size, logg[i]), np.full(sel.size, logg[i + 1]),
                    D[sel, i], D[sel, i + 1], reml)
        f = _loglik(basis, sub, xx_logdet[sel], lam, reml)
        better = ~found[sel] | (f > best_f[sel])  # the first root, then strictly better ones
        best_l[sel] = np.where(better, lam, best_l[sel])
        best_f[sel] = np.where(better, f, best_f[sel])
        found[sel] = True
    f_lo = _loglik(basis, rot, xx_logdet, np.full(B, L_MIN), reml)
    f_hi = _loglik(basis, rot, xx_logdet, np.full(B, L_MAX), reml)
    none = ~found
    best_l[none] = np.where(f_lo[none] >= f_hi[none], L_MIN, L_MAX)
    best_f[none] = np.maximum(f_lo[none], f_hi[none])
    for end, f_end in ((L_MIN, f_lo), (L_MAX, f_hi)):
        win = found & (f_end > best_f)
        best_l[win], best_f[win] = end, f_end[win]
    return best_l, best_f


def gemma_basis(K: np.ndarray | None, y: np.ndarray, W: np.ndarray, *,
                centre: bool = True, eigen: tuple[np.ndarray, np.ndarray] | None = None,
                ml: bool = True) -> GemmaBasis:
    """Rotate y and W by the kinship's eigenvectors and fit the two null models.

    Parameters
    ----------
    K : ndarray (n, n) or None
        The kinship over the analysed samples, in y's order (None when ``eigen`` is given).
    y : ndarray (n,)
    W : ndarray (n, c)
        Covariates including the intercept.
    centre : bool
        Centre K and zero its eigenvalues below 1e-10 as GEMMA does (:func:`gemma_kernel`).
    eigen : (d, U), optional
        A complete eigendecomposition (U square) to use instead of decomposing K: the REML
        fit's own, for the Wald test. With the intercept in W, the REML likelihood, and so
        the REML lambda and the Wald test, depend on K only through S'KS for a basis S of
        the complement of span(W), which centring leaves unchanged (notes eq. 30); the ML
        fits (``lrt``, ``score``) do not, and need GEMMA's centred kernel.
    ml : bool
        Fit the ML null model too (needed by ``lrt`` and ``score``).
    """
    y = np.asarray(y, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    n = y.size
    if W.ndim != 2 or W.shape[0] != n or (K is not None and K.shape != (n, n)):
        raise InputError("K, y and W must describe the same samples")
    if eigen is not None:
        d, U = eigen
        if U.shape != (n, n):
            raise InputError("the per-SNP tests need a complete eigendecomposition (U n x n)")
    elif centre:
        d, U = gemma_kernel(K)
    else:
        d, U = np.linalg.eigh(np.asarray(K, dtype=np.float64))
    logdet_WW = float(np.linalg.slogdet(W.T @ W)[1])
    UtW, Uty = U.T @ W, U.T @ y
    iu = np.triu_indices(W.shape[1])
    pairsT = np.ascontiguousarray(np.column_stack(
        [UtW[:, iu[0]] * UtW[:, iu[1]], UtW * Uty[:, None], Uty * Uty]).T)
    WyT = np.ascontiguousarray(np.column_stack([UtW, Uty]).T)
    # tr(PKP) = tr K - 1'K1 / n for the centring P = I - 11'/n (GEMMA's trace_G)
    centred = math.nan if eigen is None else float(
        (d.sum() - d @ np.square(U.sum(axis=0)) / n) / n)
    basis = GemmaBasis(d=d, U=U, UtW=UtW, Uty=Uty, logdet_WW=logdet_WW, pairsT=pairsT,
                       WyT=WyT, centred_trace=centred)
    null = _Rotated.of(basis, None)
    zero = np.zeros(1)
    l_mle, f_mle = (_optimise(basis, null, zero, reml=False) if ml
                    else (np.full(1, np.nan), np.full(1, np.nan)))
    l_remle, f_remle = _optimise(basis, null, zero, reml=True)
    return dataclasses.replace(basis, l_mle_null=float(l_mle[0]),
                               logl_mle_null=float(f_mle[0]),
                               l_remle_null=float(l_remle[0]),
                               logl_remle_null=float(f_remle[0]))


def per_snp_block(basis: GemmaBasis, X: np.ndarray, tests) -> dict[str, dict]:
    """GEMMA's per-SNP tests for the columns of X (n x B raw allele counts, missing values
    imputed, in the basis' sample order).

    Returns, per test, arrays over the block: ``beta`` and ``se`` (at the test's lambda:
    REML under H1 for ``wald``, ML under H1 for ``lrt``, the null ML for ``score``),
    ``stat`` (F for ``wald`` and ``score``, the likelihood ratio 2 (l1 - l0) for ``lrt``),
    ``p``, ``lam`` (the lambda used) and ``logl`` (REML for ``wald``, ML for ``lrt``, NaN
    for ``score``, as GEMMA's ``logl_H1``).
    """
    tests = list(dict.fromkeys(tests))
    n, c = basis.n, basis.c
    df_t = n - c - 1
    rot = _Rotated.of(basis, X)
    B = rot.B
    # log|V'V| - log|W'W| = log(x'x - x'W (W'W)^-1 W'x): the rotation is orthogonal.
    Wt = basis.UtW
    Wx = rot.xt @ Wt  # (B, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        xx_logdet = np.log(np.einsum("bn,bn->b", rot.xt, rot.xt)
                           - np.einsum("bi,ij,bj->b", Wx, np.linalg.inv(Wt.T @ Wt), Wx))

    def parts(lam):
        # P_xx, P_xy, P_yy with W projected out and Px_yy with W and x: the Schur pieces.
        F = _Forms(basis, rot, lam)
        Winv = np.linalg.inv(F.A[:, :c, :c])
        aWx, aWy = F.A[:, :c, c], F.b[:, :c]
        Pxx = F.A[:, c, c] - np.einsum("bi,bij,bj->b", aWx, Winv, aWx)
        Pxy = F.b[:, c] - np.einsum("bi,bij,bj->b", aWx, Winv, aWy)
        Pyy = F.yy - np.einsum("bi,bij,bj->b", aWy, Winv, aWy)
        return Pxx, Pxy, Pyy, F.P_yy

    out: dict[str, dict] = {}
    for t in tests:
        if t == "score":
            lam, logl = np.full(B, basis.l_mle_null), np.full(B, np.nan)
        elif t == "wald":
            lam, logl = _optimise(basis, rot, xx_logdet, reml=True)
        elif t == "lrt":
            lam, logl = _optimise(basis, rot, xx_logdet, reml=False)
        else:
            raise InputError(f"not a per-SNP test: {t!r}; those are {PER_SNP_TESTS}")
        Pxx, Pxy, Pyy, Pyy_x = parts(lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta, se = Pxy / Pxx, np.sqrt(Pyy_x / (df_t * Pxx))
            if t == "wald":
                stat = (Pyy - Pyy_x) * df_t / Pyy_x
                p = tails.f_sf(stat, 1, df_t)
            elif t == "score":
                stat = n * Pxy**2 / (Pyy * Pxx)
                p = tails.f_sf(stat, 1, df_t)
            else:
                stat = 2.0 * (logl - basis.logl_mle_null)
                p = tails.chi2_sf(stat, 1)
        out[t] = {"beta": beta, "se": se, "stat": stat, "p": p, "lam": lam, "logl": logl}
    return out
