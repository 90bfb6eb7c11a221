"""The several-kernel density when all kernels but one are low rank: Woodbury, no N x N work.

A GRM plus a cage, litter or family effect: the group-indicator kernel K_j = Z_j Z_j' has
rank G_j (the number of groups), and a GRM from P_j < N SNPs has rank P_j. With the one
full-rank kernel decomposed once (K_1 = U diag(S) U', economic: the complement has
eigenvalue 0) and the others stacked as F = [F_2 ... F_k] (N x R, K_j = F_j F_j'),

    V = V_0 + F C F',   V_0 = sigma_1 K_1 + sigma_e2 I,   C = diag(sigma_j on F_j's columns)

and with Q = [y X F] every quantity the density needs is a block of Q'V^-1Q:

    a'V_0^-1 b = sum_i (U'a)_i (U'b)_i / d_i + a'P_0 b / sigma_e2,  d = sigma_1 S + sigma_e2
    a'V^-1 b   = a'V_0^-1 b - (F'V_0^-1 a)' H^-1 (F'V_0^-1 b),     H = C^-1 + F'V_0^-1 F
    log|V|     = sum_i log d_i + (N - r) log sigma_e2 + log|C| + log|H|

(notes section 4, Woodbury's identity and the matrix determinant lemma). U'Q and Q'P_0 Q are
formed once; an evaluation costs O(r q^2 + R^3) with q = 1 + M + R, against N^3 / 3 for the
dense Cholesky: at N = 1,940 with 85 groups, well under a millisecond of BLAS instead of
~70 ms. The density is the same function as :class:`MultiKernelDensity`'s (the tests check
one against the other to 1e-9); its gradient is by central differences (k + 1 coordinates),
which only the mode search and the NUTS fallback use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.covariance.decomposition import decompose
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["LowRankDensity", "low_rank_factor"]

MAX_RANK_SHARE = 0.25  # low-rank route when the stacked factors have rank <= N / 4


def low_rank_factor(K: np.ndarray, max_rank: int) -> np.ndarray | None:
    """F with K = F F' exactly (to rounding) and at most ``max_rank`` columns, or None.

    A group-indicator kernel (0/1, ones on the diagonal, equal rows within a group) gives its
    indicator matrix directly; otherwise a pivoted Cholesky factor, kept when it reproduces
    K to 1e-10 of its largest diagonal element.
    """
    N = K.shape[0]
    if np.all((K == 0) | (K == 1)) and np.all(np.diag(K) == 1):
        _, first, labels = np.unique(K, axis=0, return_index=True, return_inverse=True)
        Z = np.zeros((N, first.size))
        Z[np.arange(N), labels.reshape(-1)] = 1.0
        if first.size <= max_rank and np.array_equal(Z @ Z.T, K):
            return Z
        return None
    scale = float(np.max(np.diag(K)))
    if not scale > 0:
        return None
    # rank(K) >= tr(K)^2 / |K|_F^2 (Cauchy-Schwarz on the non-zero eigenvalues): O(N^2) rules
    # out a full-rank GRM before any factorisation.
    if float(np.trace(K)) ** 2 > (max_rank + 0.5) * float(np.vdot(K, K)):
        return None
    # Pivoted Cholesky (LAPACK dpstrf) stops at the numerical rank: O(N r^2) for rank r, one
    # plain Cholesky's cost for a full-rank kernel, which is then left to the dense route.
    L, piv, rank, info = linalg.lapack.dpstrf(K, lower=1, tol=N * np.finfo(float).eps * scale)
    if info < 0 or rank > max_rank:
        return None
    F = np.zeros((N, rank))
    F[piv - 1] = np.tril(L)[:, :rank]
    if np.max(np.abs(F @ F.T - K)) > 1e-10 * scale:
        return None
    return F


@dataclass(frozen=True, eq=False)
class LowRankDensity(MultiKernelDensity):
    """:class:`MultiKernelDensity` evaluated through Woodbury (module docstring)."""

    S: np.ndarray = field(default=None, repr=False)  # eigenvalues of the full-rank kernel
    UQ: np.ndarray = field(default=None, repr=False)  # U'[y X F]
    C0: np.ndarray = field(default=None, repr=False)  # [y X F]' P0 [y X F]
    n0: int = 0
    blocks: tuple[int, ...] = ()  # columns of F per low-rank kernel
    base: int = 0  # which kernel is decomposed

    @classmethod
    def try_from(cls, dense: MultiKernelDensity) -> LowRankDensity | None:
        """The low-rank form of ``dense`` when all its kernels but one are low rank."""
        k, N = dense.k, dense.N
        if k < 2:
            return None
        budget = int(MAX_RANK_SHARE * N)
        factors: dict[int, np.ndarray] = {}
        full = []
        for j in range(k):
            F = low_rank_factor(dense.Ks[j], budget)
            if F is None:
                full.append(j)
                if len(full) > 1:  # two full-rank kernels: the dense route
                    return None
            else:
                factors[j] = F
        base = full[0] if full else max(factors, key=lambda j: factors[j].shape[1])
        others = [j for j in range(k) if j != base]
        if sum(factors[j].shape[1] for j in others) > budget:
            return None
        F = np.column_stack([factors[j] for j in others])
        dec = decompose(dense.Ks[base])
        Q = np.column_stack([dense.y, dense.X, F])
        UQ = dec.U.T @ Q
        C0 = Q.T @ Q - UQ.T @ UQ
        C0 = 0.5 * (C0 + C0.T)
        return cls(dense.y, dense.X, dense.Ks, dense.components, dense.covariates, dense.lam,
                   dense.m0, dense.priors, dense.dirichlet, dense.vp_prior, S=dec.S, UQ=UQ,
                   C0=C0, n0=N - dec.rank, blocks=tuple(factors[j].shape[1] for j in others),
                   base=base)

    def _pieces(self, sigma: np.ndarray):
        """log|V|, y'V^-1y, X'V^-1y, X'V^-1X at the variances sigma (None if not PD)."""
        k, M = self.k, self.M
        s_base, se = sigma[self.base], sigma[-1]
        s_other = np.delete(sigma[:k], self.base)
        if se <= 0 or s_base < 0 or np.any(s_other <= 0):
            return None
        d = s_base * self.S + se
        A = self.UQ / np.sqrt(d)[:, None]
        G = A.T @ A + self.C0 / se  # Q'V_0^-1 Q
        c = np.repeat(s_other, self.blocks)
        f = slice(1 + M, None)
        H = G[f, f] + np.diag(1.0 / c)
        try:
            LH = linalg.cholesky(H, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        W = linalg.solve_triangular(LH, G[f, : 1 + M], lower=True, check_finite=False)
        P = G[: 1 + M, : 1 + M] - W.T @ W  # [y X]' V^-1 [y X]
        logdet = (np.sum(np.log(d)) + self.n0 * np.log(se) + np.sum(np.log(c))
                  + 2.0 * np.sum(np.log(np.diag(LH))))
        return logdet, P[0, 0], P[1:, 0], P[1:, 1:]

    def _solve(self, sigma):
        pc = self._pieces(sigma)
        if pc is None:
            return None
        logdet, yy, Xy, XX = pc
        A = XX + np.diag(self.lam)
        try:
            LA = linalg.cholesky(A, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        mu = linalg.cho_solve((LA, True), Xy + self.lam * self.m0, check_finite=False)
        quad = yy - 2.0 * mu @ Xy + mu @ XX @ mu
        ll_mu = float(-0.5 * (self.N * LOG2PI + logdet + quad))
        ll = (ll_mu + float(self.log_prior_beta(mu)) - float(np.sum(np.log(np.diag(LA))))
              + 0.5 * self.M * LOG2PI)
        return ll, mu, LA, ll_mu

    def loglik(self, sigma: np.ndarray) -> float:
        r = self._solve(np.asarray(sigma, dtype=np.float64))
        return -np.inf if r is None else r[0]

    def logp_beta(self, t: np.ndarray):
        t = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(np.abs(t) > 700):
            return -np.inf, None, None, -np.inf
        lp, _ = self.log_prior(t)
        r = self._solve(np.exp(t)) if np.isfinite(lp) else None
        if r is None:
            return -np.inf, None, None, -np.inf
        return r[0] + lp, r[1], r[2], r[3]

    def logp(self, t: np.ndarray) -> float:
        return self.logp_beta(t)[0]

    def logp_grad(self, t: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and central-difference gradient (step 1e-5 in log-variance)."""
        t = np.asarray(t, dtype=np.float64)
        lp = self.logp(t)
        if not np.isfinite(lp):
            return -np.inf, np.full(t.shape, np.nan)
        h = 1e-5
        g = np.array([(self.logp(t + e) - self.logp(t - e)) / (2 * h)
                      for e in np.eye(t.size) * h])
        return lp, g

    def ray(self, u: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray] | None:
        """:meth:`MultiKernelDensity.ray` through Woodbury: the pieces of H(u) = V / sigma_e2
        at sigma = (e^u, 1), no N x N work."""
        pc = self._pieces(np.append(np.exp(np.asarray(u, dtype=np.float64)), 1.0))
        if pc is None:
            return None
        logdet, yy, Xy, XX = pc
        try:
            mu = linalg.solve(XX, Xy, assume_a="pos", check_finite=False)
        except linalg.LinAlgError:
            return None
        return logdet, float(yy - Xy @ mu), mu, XX
