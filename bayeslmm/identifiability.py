"""When variance components cannot be estimated from the data, and saying so.

The REML likelihood (notes 4.3.2) sees the data only through the N - M residual contrasts
(I - H) y, H the projection on span(X). h2 is then not identifiable when

* the kernel is invisible to those contrasts: (I - H) K (I - H) = 0, e.g. K = 1 1' with an
  intercept in X (every sample equally related);
* the kernel cannot be told from the residual: K proportional to I, so that
  V = (sigma_g2 c + sigma_e2) I for every split of Vp;
* one residual degree of freedom (N - M = 1) is left for two variance parameters;
* with several kernels, one of them lies in the span of X (a grouping with one level is
  K = 1 1', collinear with the intercept): its variance, and so every share of Vp, is
  arbitrary.

With as many residual contrasts as variance parameters (N - M = 2 for one kernel, e.g.
N = 3 with an intercept) the likelihood is saturated: the estimate fits the contrasts exactly
and its asymptotic SE means little. That fit is kept, with a reason
(:func:`too_few_samples`) and a warning.

Such a fit is returned with a reason and NaN standard errors (never 0.000000), so a table
does not present an arbitrary split of Vp as an estimate. With several kernels, two that are
proportional to each other (``--mgrm`` listing one GRM twice), or one proportional to I
(the residual's own kernel), make the AI matrix singular: that is an error naming them. So
are values so large that their squares overflow (1e300), and covariates that fit y exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayeslmm.errors import CollinearityError, InputError, KernelError

__all__ = [
    "MAX_ABS",
    "MIN_SD",
    "check_data",
    "check_magnitude",
    "check_kernels",
    "invisible_kernels",
    "not_identifiable",
    "singular_limit",
    "too_few_samples",
]

#: largest |value| accepted in y, X and K: Vp^2 (the delta method's denominator) and
#: N * value^2 must stay far below float64's 1.8e308
MAX_ABS = 1e50
#: smallest spread of y accepted: Vp^2 must stay far above float64's 2.2e-308
MIN_SD = 1e-50
_REL = 1e-8  # relative size below which a matrix or a residual counts as zero


def check_magnitude(a: np.ndarray, what: str) -> None:
    """Refuse |values| above :data:`MAX_ABS` in ``a`` (named ``what`` in the message)."""
    m = float(np.max(np.abs(a))) if np.size(a) else 0.0
    if m > MAX_ABS:
        raise InputError(f"{what} has values as large as {m:.3g}; their squares overflow "
                         f"(limit {MAX_ABS:g}): rescale it, e.g. to standard units")


def check_data(y: np.ndarray, X: np.ndarray, Ks: Sequence[np.ndarray] = (), *,
               name: str = "the phenotype") -> None:
    """Refuse values whose squares overflow, and covariates that fit y exactly.

    ``name`` names y in the messages (one trait of several: ``"trait 'bmi'"``); each trait
    of a multi-trait fit is checked as a one-trait phenotype is.

    Raises
    ------
    InputError
        ``|y|``, ``|X|`` or ``|K|`` above :data:`MAX_ABS`.
    CollinearityError
        y lies in the span of X (residual sum of squares 0): nothing is left to split into
        variance components.
    """
    for what, a in ((name, y), ("the covariates X", X),
                    *((f"the kernel K[{k}]" if len(Ks) > 1 else "the kernel K", K)
                      for k, K in enumerate(Ks))):
        check_magnitude(a, what)
    sd = float(np.std(y))
    if 0 < sd < MIN_SD:
        raise InputError(f"{name} varies only by about {sd:.3g}; squared variances "
                         f"underflow (limit {MIN_SD:g}): rescale it, e.g. to standard units")
    Q, _ = np.linalg.qr(X)
    r = y - Q @ (Q.T @ y)
    scale = float(np.sum((y - y.mean()) ** 2)) or float(np.sum(y**2))
    if float(r @ r) <= 1e-20 * scale:
        raise CollinearityError(f"the covariates fit {name} exactly (residual sum of "
                                "squares 0): no variance is left to estimate; drop the "
                                "covariate that is y itself or determines it")


def check_kernels(Ks: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """With several kernels, refuse two proportional kernels and a kernel proportional to I.

    Raises
    ------
    KernelError
        Naming the kernels (e.g. an ``--mgrm`` file listing one GRM twice).
    """
    if len(Ks) < 2:
        return
    flat = [np.asarray(K, dtype=float).ravel() for K in Ks]
    norms = [float(np.linalg.norm(f)) for f in flat]
    N = Ks[0].shape[0]
    for j, K in enumerate(Ks):
        if norms[j] == 0:
            raise KernelError(f"kernel '{names[j]}' is all zeros")
        if _proportional_to_identity(K):
            raise KernelError(f"kernel '{names[j]}' is proportional to the identity, the "
                              "residual's own kernel: its variance cannot be told from "
                              "sigma_e2; drop it")
        for i in range(j):
            cos = float(flat[i] @ flat[j]) / (norms[i] * norms[j])
            if cos > 1 - 1e-10:
                raise KernelError(f"kernels '{names[i]}' and '{names[j]}' are proportional "
                                  f"({N} x {N}, cosine {cos:.12f}): their variances cannot "
                                  "be told apart; give each GRM once")


def _proportional_to_identity(K: np.ndarray) -> bool:
    d = np.diag(K)
    off = K - np.diag(d)
    scale = float(np.max(np.abs(d))) if d.size else 0.0
    return scale > 0 and float(np.ptp(d)) <= _REL * scale and \
        float(np.max(np.abs(off))) <= _REL * scale


def not_identifiable(X: np.ndarray, *, K: np.ndarray | None = None, U: np.ndarray | None = None,
                     S: np.ndarray | None = None, reml: bool = True) -> str | None:
    """Why h2 of a one-kernel model is not identifiable, or None when it is.

    Parameters
    ----------
    X : ndarray, shape (N, M)
        The fixed-effect design.
    K : ndarray, optional
        The kernel; or its economic decomposition ``U diag(S) U'``.
    reml : bool
        REML needs N - M >= 2 residual contrasts; ML needs N >= 2 observations.

    Returns
    -------
    str or None
        A one-line reason.
    """
    N, M = X.shape
    df = N - M if reml else N
    if df <= 1:
        return (f"one {'residual degree of freedom (N - M = 1)' if reml else 'observation'} "
                "cannot separate two variance components")
    if K is not None:
        S, U = np.linalg.eigh(np.asarray(K, dtype=float))
        keep = S > 1e-10 * max(float(np.max(np.abs(S))), 1e-300)
        S, U = S[keep], U[:, keep]
    if S is None or U is None or S.size == 0:
        return "the kernel is zero"
    if S.size == N and float(np.ptp(S)) <= _REL * float(np.max(S)):
        return ("the kernel is proportional to the identity, like the residual: any split of "
                "Vp fits equally well")
    # trace((I - H) K) = sum_i S_i (1 - |Q'u_i|^2): zero when K lives in span(X) (written
    # per eigenvalue, so that an indefinite K's negative ones need no square root).
    Q, _ = np.linalg.qr(X)
    visible = float(np.sum(S * (1.0 - np.sum((Q.T @ U) ** 2, axis=0))))
    if visible <= 1e-6 * float(np.sum(S)):
        return ("the kernel lies in the span of the covariates (e.g. K = 1 1' with an "
                "intercept: every sample equally related), so REML cannot see it")
    return None


def too_few_samples(N: int, M: int, k: int = 1, reml: bool = True) -> str | None:
    """Why k variance components (and sigma_e2) are barely determined, or None.

    The REML likelihood sees N - M residual contrasts; with no more of them than the k + 1
    variance parameters it is saturated (the estimate interpolates the contrasts), so the
    estimate and its asymptotic SE are not to be read as such. ML sees N observations for
    M + k + 1 parameters, the same count.
    """
    df = N - M
    n_var = k + 1
    if 1 < df <= n_var:
        return (f"only {df} residual degrees of freedom (N - M) for {n_var} variance "
                f"parameters (N = {N}, M = {M}): the "
                "fit interpolates the data, too few samples to estimate a variance component")
    return None


def invisible_kernels(X: np.ndarray, Ks: Sequence[np.ndarray],
                      names: Sequence[str]) -> list[str]:
    """The kernels that lie in the span of X: trace((I - H) K) <= 1e-6 trace(K).

    O(N^2 M) each (no eigendecomposition): trace((I - H) K) = trace(K) - trace(Q'K Q), Q an
    orthonormal basis of span(X). Such a kernel (a one-level grouping, K = 1 1', with an
    intercept) is invisible to the REML contrasts.
    """
    Q, _ = np.linalg.qr(X)
    out = []
    for K, name in zip(Ks, names, strict=True):
        tr = float(np.trace(K))
        seen = tr - float(np.trace(Q.T @ (K @ Q)))
        if tr <= 0 or seen <= 1e-6 * abs(tr):
            out.append(str(name))
    return out


def singular_limit(U: np.ndarray, y: np.ndarray, X: np.ndarray) -> str:
    """How the REML likelihood behaves as h2 -> 1 when K = U S U' is singular.

    At h2 = 1, V = Vp K is singular on K's null space. What the REML contrasts (the
    complement of span(X)) see of it, W = null(K) ∩ span(X)^perp = (col(U) + span(X))^perp,
    decides the limit:

    * ``"finite"``: W = {0}, i.e. col(U) + span(X) is everything (a GRM of centred
      genotypes, whose null space is the ones vector, with an intercept): the restricted
      covariance stays non-singular and the likelihood has a finite limit at h2 = 1, a
      legitimate estimate;
    * ``"-inf"``: y has a part in W, whose variance (1 - h2) Vp vanishes: the likelihood
      falls to -inf and its maximum is inside;
    * ``"+inf"``: W != {0} but y has no part in it (y in col(K) + span(X): noise-free y):
      log|V| falls to -inf with the quadratic form finite, so the likelihood grows without
      bound; the supremum is h2 = 1 with sigma_e2 = 0.

    O(N r M) for U of r orthonormal columns (no N x N matrix).
    """
    N = U.shape[0]
    n_null = N - U.shape[1]
    Xr = X - U @ (U.T @ X)  # the part of span(X) in the null space
    sv = np.linalg.svd(Xr, compute_uv=False)
    if int(np.sum(sv > _REL * max(float(np.linalg.norm(X)), 1e-300))) >= n_null:
        return "finite"
    yr = y - U @ (U.T @ y)
    r = yr - Xr @ np.linalg.lstsq(Xr, yr, rcond=None)[0]
    Q, _ = np.linalg.qr(X)
    scale = float(np.linalg.norm(y - Q @ (Q.T @ y)))
    return "+inf" if float(np.linalg.norm(r)) <= 1e-10 * scale else "-inf"
