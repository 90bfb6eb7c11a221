"""PyMC model builders for the linear and linear mixed model (notes sections 2 and 3).

Three forms:

* :func:`fixed_effects` -- Y = X beta + e, e ~ N(0, sigma_e2 I) (notes eq. 29);
* :func:`random_effects` -- Y = X beta + Z b + e with b ~ N(0, sigma_g2 / P I) explicit and
  non-centred (eq. 43-44), for standardized SNPs or group indicators;
* :func:`marginal_grm` -- b integrated out, Y ~ N(X beta, sigma_g2 K + sigma_e2 I) (eq. 46).

For one kernel the marginal model uses the shared decomposition K = U diag(S) U' (economic:
the complement of dimension N - r has eigenvalue 0). Rotating y and X once makes the
covariance diagonal, so each log-density and gradient costs O(N M):

    log p(y) = sum_i log N(U'y_i | U'X_i beta, sigma_g2 S_i + sigma_e2)       (``y_rot``)
             - (N - r)/2 log(2 pi sigma_e2) - |P0 (y - X beta)|^2 / (2 sigma_e2)  (``y_null``)

where P0 = I - U U' projects on the complement; |P0 a|^2 = a'a - |U'a|^2 needs no basis of
the complement, so K = ZZ'/P with P < N (thin SVD of Z) costs O(N P) per evaluation. The
rotation is orthogonal, so log p(y) = log p(U'y) exactly (Jacobian 1). Both terms are
*observed* variables, so PyMC stores them in the ``log_likelihood`` group (needed by
power-scaling sensitivity); their elements are eigen-components, not samples, so they serve
sums (power-scaling, Bayes factors) but not LOO.

With several kernels the marginal model is a dense MvNormal (Cholesky, O(N^3));
:func:`bayeslmm.sample` samples it through :mod:`bayeslmm.bayes.models.multikernel`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.compiled.marginal import compile_marginal
from bayeslmm.bayes.compiled.marginal import supported as compiled_supported
from bayeslmm.bayes.loo import marginal_loo_loglik
from bayeslmm.bayes.model_info import ModelInfo, attach_info, find_info
from bayeslmm.bayes.priors import ResolvedPriors, default_priors
from bayeslmm.bayes.spectral_data import SpectralData, beta_normal_prior
from bayeslmm.covariance.decomposition import Decomposition, decompose, decompose_genotypes
from bayeslmm.data import LMMData, prepare
from bayeslmm.errors import IdentifiabilityWarning, InputError, KernelError
from bayeslmm.identifiability import not_identifiable
from bayeslmm.likelihood.constants import LOG2PI
from bayeslmm.registry import attach_family_hooks, model_family

__all__ = ["fixed_effects", "marginal_grm", "random_effects"]



def _coords(data: LMMData, **extra) -> dict[str, Any]:
    return {"covariate": list(data.covariates), "sample": list(data.samples), **extra}


def _beta(pri: ResolvedPriors, M: int):
    """Fixed effects with their prior; data-scaled Normal by default (bambi-like)."""
    if pri.beta_mu.size:
        return pm.Normal("beta", mu=pri.beta_mu, sigma=pri.beta_sigma, dims="covariate")
    return pri["beta"].create("beta", dims="covariate", shape=(M,))


def _variances(pri: ResolvedPriors, fixed: Mapping[str, float], k: int = 1):
    """(sigma_g2, sigma_e2) tensors and the deterministics h2 / Vp (or sigma_g2 / sigma_e2).

    In the (h2, Vp) parameterisation sigma_g2 = h2 Vp and sigma_e2 = (1 - h2) Vp, which keeps
    the posterior geometry close to independent (h2 and the scale decouple).
    """
    if fixed:
        if set(fixed) != {"sigma_g2", "sigma_e2"}:
            raise InputError("fixed= must give both 'sigma_g2' and 'sigma_e2'")
        sg = pt.as_tensor_variable(np.float64(fixed["sigma_g2"]))
        se = pt.as_tensor_variable(np.float64(fixed["sigma_e2"]))
        pm.Deterministic("sigma_g2", sg)
        pm.Deterministic("sigma_e2", se)
        pm.Deterministic("Vp", sg + se)
        pm.Deterministic("h2", sg / (sg + se))
        return sg, se
    if pri.parameterisation == "h2":
        if k != 1:
            raise InputError("the (h2, Vp) parameterisation is for one kernel; with several "
                             "kernels give priors on sigma_g2 and sigma_e2")
        h2 = pri["h2"].create("h2")
        Vp = pri["Vp"].create("Vp")
        sg = pm.Deterministic("sigma_g2", h2 * Vp)
        se = pm.Deterministic("sigma_e2", (1.0 - h2) * Vp)
        return sg, se
    if k == 1:
        sg = pri["sigma_g2"].create("sigma_g2")
    else:
        sg = pri["sigma_g2"].create("sigma_g2", dims="component", shape=(k,))
    se = pri["sigma_e2"].create("sigma_e2")
    Vp = pm.Deterministic("Vp", (sg.sum() if k > 1 else sg) + se)
    if k == 1:
        pm.Deterministic("h2", sg / Vp)
    else:
        pm.Deterministic("h2", sg / Vp, dims="component")
        pm.Deterministic("h2_total", sg.sum() / Vp)
    return sg, se


def _validate(y, X, K=None) -> LMMData:
    return prepare(y, K, X)


# ---------------------------------------------------------------------- builders
def fixed_effects(y, X=None, *, priors: Mapping[str, Any] | None = None) -> pm.Model:
    """Bayesian linear model Y = X beta + e, e ~ N(0, sigma_e2 I) (notes section 2, eq. 29).

    Parameters
    ----------
    y : array_like, shape (N,)
    X : array_like, shape (N, M), optional
        Covariates; default an intercept.
    priors : dict, optional
        ``beta`` and ``sigma_e2`` (see :mod:`bayeslmm.bayes.priors`).

    Returns
    -------
    pymc.Model
        Free variables ``beta`` (dim ``covariate``) and ``sigma_e2``; observed ``y`` (dim
        ``sample``).
    """
    data = _validate(y, X)
    pri = default_priors(priors, data.y, data.X, kind="linear")
    with pm.Model(coords=_coords(data)) as model:
        beta = _beta(pri, data.M)
        se = pri["sigma_e2"].create("sigma_e2")
        pm.Normal("y", mu=pt.dot(data.X, beta), sigma=pt.sqrt(se), observed=data.y,
                  dims="sample")
    attach_info(model, ModelInfo("fixed", data, pri))
    return model


def random_effects(y, X=None, Z=None, *, priors: Mapping[str, Any] | None = None,
                   store_g: bool = True) -> pm.Model:
    """Y = X beta + Z b + e with explicit b ~ N(0, sigma_g2 / P I) (notes eq. 43-44).

    b is non-centred, b = sqrt(sigma_g2 / P) z with z ~ N(0, I_P), which keeps NUTS free of
    the funnel between sigma_g2 and b when the data say little about b.

    Parameters
    ----------
    y : array_like, shape (N,)
    X : array_like, shape (N, M), optional
    Z : array_like, shape (N, P)
        Standardized genotypes, or group indicators (then sigma_g2 / P is the per-group
        variance times 1 / P; pass ``Z * sqrt(P)`` to make it the group variance).
    priors : dict, optional
        ``beta`` and either ``h2`` + ``Vp`` (default) or ``sigma_g2`` + ``sigma_e2``.
    store_g : bool
        Keep the genetic values g = Z b as a deterministic (dim ``sample``).

    Returns
    -------
    pymc.Model
    """
    if Z is None:
        raise InputError("random_effects needs Z (N x P genotypes or group indicators)")
    data = _validate(y, X)
    Zarr = np.asarray(Z.values if hasattr(Z, "values") and not isinstance(Z, np.ndarray)
                      else Z, dtype=np.float64)
    if Zarr.ndim != 2 or Zarr.shape[0] != data.N:
        raise InputError(f"Z must be N x P with N = {data.N} rows, got shape {Zarr.shape}")
    if not np.all(np.isfinite(Zarr)):
        raise InputError("Z has NaN or infinite values: impute (standardize) first")
    P = Zarr.shape[1]
    pri = default_priors(priors, data.y, data.X)
    with pm.Model(coords=_coords(data, variant=np.arange(P))) as model:
        beta = _beta(pri, data.M)
        sg, se = _variances(pri, {})
        z = pm.Normal("b_raw", 0.0, 1.0, dims="variant")
        b = pm.Deterministic("b", pt.sqrt(sg / P) * z, dims="variant")
        g = pt.dot(Zarr, b)
        if store_g:
            g = pm.Deterministic("g", g, dims="sample")
        pm.Normal("y", mu=pt.dot(data.X, beta) + g, sigma=pt.sqrt(se), observed=data.y,
                  dims="sample")
    attach_info(model, ModelInfo("random", data, pri, Z=Zarr))
    return model


def _null_logp(value, beta, sigma_e2, n0, cXX, cXy, cyy):
    # Complement of K's column space: N(0, sigma_e2 I_{n0}) for P0 (y - X beta), whose
    # squared norm is c_yy - 2 beta'c_Xy + beta'c_XX beta (no basis of the complement needed).
    q = cyy - 2.0 * pt.dot(beta, cXy) + pt.dot(beta, pt.dot(cXX, beta))
    return -0.5 * (n0 * (LOG2PI + pt.log(sigma_e2)) + q / sigma_e2) + 0.0 * value


SMALL_M = 6  # up to this many covariates the M x M algebra is unrolled into scalar ops


def _cholesky_shift(A, b, z, M: int):
    """L^-T (L^-1 b + z) and sum(log diag L) for A = L L' (M x M, symmetric PD).

    For the usual handful of covariates the Cholesky and the two triangular solves are
    written out as scalar operations: the numba backend of nutpie then compiles the model in
    a few seconds, where its LAPACK-based linalg ops add several more.
    """
    if M > SMALL_M:
        L = pt.linalg.cholesky(A)
        u = pt.linalg.solve_triangular(L, b, lower=True)
        return (pt.linalg.solve_triangular(L.T, u + z, lower=False),
                pt.sum(pt.log(pt.diag(L))))
    L = [[None] * M for _ in range(M)]
    for j in range(M):
        d = A[j, j] - sum((L[j][k] ** 2 for k in range(j)), start=pt.constant(0.0))
        L[j][j] = pt.sqrt(d)
        for i in range(j + 1, M):
            off = A[i, j] - sum((L[i][k] * L[j][k] for k in range(j)), start=pt.constant(0.0))
            L[i][j] = off / L[j][j]
    v = []  # L^-1 b
    for i in range(M):
        acc = b[i] - sum((L[i][k] * v[k] for k in range(i)), start=pt.constant(0.0))
        v.append(acc / L[i][i])
    u = [v[i] + z[i] for i in range(M)]
    beta = [None] * M
    for i in reversed(range(M)):
        acc = u[i] - sum((L[k][i] * beta[k] for k in range(i + 1, M)),
                         start=pt.constant(0.0))
        beta[i] = acc / L[i][i]
    return pt.stack(beta), sum((pt.log(L[i][i]) for i in range(M)), start=pt.constant(0.0))


def _beta_conditional(pri: ResolvedPriors, data: LMMData, dec: Decomposition,
                      sd: SpectralData, sg, se):
    """beta non-centred on its conditional posterior given the variances; returns beta - b0.

    Given (sigma_g2, sigma_e2), beta | y is Gaussian with precision A = X'V^-1X + Lambda_0
    (Lambda_0 the precision of a Normal prior, 0 for a flat one) and mean A^-1 b, b =
    X'V^-1y + Lambda_0 m_0 (notes eq. 13-14). Writing beta = A^-1 b + L^-T z with A = L L'
    makes z | variances standard normal, so NUTS no longer sees the funnel between h2 -> 1 and
    the intercept (a centred GRM leaves the intercept direction in K's null space, where its
    scale is sigma_e2 = (1 - h2) Vp). The map z -> beta is affine for fixed variances, so the
    density only gains the Jacobian |L^-T| = prod(1 / L_ii); the model is unchanged and beta
    is kept as a deterministic. O(r M^2) per evaluation. The prior of beta enters as a
    potential (it is not in the ``log_prior`` group that power-scaling reads).
    """
    w = 1.0 / (sg * dec.S + se)
    XtWX = pt.dot(sd.UX.T * w, sd.UX)
    XtWy = pt.dot(sd.UX.T, w * sd.Uy)
    if sd.n0 > 0:
        XtWX = XtWX + sd.cXX / se
        XtWy = XtWy + sd.cXy / se
    M = data.M
    prior = None if pri.beta_mu.size else pri["beta"]
    lam, m0 = beta_normal_prior(pri, M)
    A = XtWX + pt.diag(lam)
    z = pm.Flat("beta_z", dims="covariate")
    # beta - b0 = A^-1 b + L^-T z = L^-T (L^-1 b + z): one Cholesky, two triangular solves,
    # with b = X'V^-1 y_r + Lambda_0 (m_0 - b0) (SpectralData: y = X b0 + y_r).
    shift, log_diag_L = _cholesky_shift(A, XtWy + lam * (m0 - sd.b0), z, M)
    beta = pm.Deterministic("beta", shift + sd.b0, dims="covariate")
    pm.Potential("beta_jacobian", -log_diag_L)
    if pri.beta_mu.size or prior.family == "Normal":
        pm.Potential("beta_prior", pt.sum(-0.5 * (LOG2PI - np.log(lam))
                                          - 0.5 * lam * (beta - m0) ** 2))
    elif prior.family != "Flat":
        pm.Potential("beta_prior", pt.sum(pm.logp(prior.dist(shape=(M,)), beta)))
    return shift


def _spectral_likelihood(dec: Decomposition, sd: SpectralData, shift, sg, se,
                         latent: bool):
    """The likelihood of y given beta, written for ``shift`` = beta - b0 (SpectralData)."""
    U, S = dec.U, dec.S
    mu = pt.dot(sd.UX, shift)
    if latent:
        # Genetic values in the eigenbasis, non-centred: u = sqrt(sigma_g2 S) z, g = U u.
        z = pm.Normal("g_raw", 0.0, 1.0, dims="eigen")
        u = pt.sqrt(sg * S) * z
        pm.Deterministic("g", pt.dot(U, u), dims="sample")
        pm.Normal("y_rot", mu=mu + u, sigma=pt.sqrt(se), observed=sd.Uy, dims="eigen")
    else:
        pm.Normal("y_rot", mu=mu, sigma=pt.sqrt(sg * S + se), observed=sd.Uy, dims="eigen")
    if sd.n0 > 0:
        pm.CustomDist("y_null", shift, se, float(sd.n0), sd.cXX, sd.cXy, sd.cyy,
                      logp=_null_logp, signature="(m),(),(),(m,m),(m),()->()",
                      observed=np.float64(sd.n0))


def marginal_grm(y, K=None, X=None, *, priors: Mapping[str, Any] | None = None,
                 decomposition: Decomposition | None = None, Z=None,
                 fixed: Mapping[str, float] | None = None, latent: bool = False,
                 component_names: Sequence[str] | None = None,
                 beta_param: str = "auto") -> pm.Model:
    """Marginal model Y ~ N(X beta, sigma_g2 K + sigma_e2 I), b integrated out (notes eq. 46).

    Parameters
    ----------
    y : array_like, shape (N,)
    K : array_like (N, N), list of them, or Decomposition
        The kernel (GRM). A :class:`~bayeslmm.covariance.decomposition.Decomposition` (e.g.
        ``fit.decomposition`` from :func:`bayeslmm.reml`) is used as is, so the
        eigendecomposition is shared with REML. A list of kernels gives the dense path.
    X : array_like, shape (N, M), optional
        Covariates; default an intercept. beta is sampled, not profiled.
    priors : dict, optional
        ``beta`` and ``h2`` + ``Vp`` (default, one kernel) or ``sigma_g2`` + ``sigma_e2``.
    decomposition : Decomposition, optional
        Same as passing it as ``K``.
    Z : array_like, shape (N, P), optional
        Standardized genotypes instead of K: K = ZZ'/P from the thin SVD of Z, O(N P) per
        evaluation when P < N.
    fixed : dict, optional
        ``{"sigma_g2": v, "sigma_e2": w}`` fixes the variances (empirical Bayes).
    latent : bool
        Keep the genetic values g ~ N(0, sigma_g2 K) as (non-centred) latent variables, so
        that their posterior is sampled; the likelihood is then conditional on g.
    component_names : sequence of str, optional
        Names of the kernels (dense path; coordinate ``component``).
    beta_param : {"auto", "conditional", "direct"}
        How beta is sampled in the one-kernel marginal model. ``"conditional"`` (the default
        when ``latent=False``) samples z with beta = E(beta | variances, y) + L^-T z, which
        removes the funnel between h2 -> 1 and the intercept; ``"direct"`` samples beta
        itself. Both define the same posterior.

    Returns
    -------
    pymc.Model
        Free variables ``beta`` (dim ``covariate``) and ``h2``, ``Vp`` (or ``sigma_g2``,
        ``sigma_e2``) with the others as deterministics; observed ``y_rot`` (dim ``eigen``)
        and, when K is singular, ``y_null``; or observed ``y`` on the dense path.

    Examples
    --------
    >>> import numpy as np, bayeslmm
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((50, 80)); K = Z @ Z.T / 80
    >>> m = bayeslmm.models.marginal_grm(rng.standard_normal(50), K)
    >>> sorted(rv.name for rv in m.free_RVs)
    ['Vp', 'beta_z', 'h2']
    """
    if decomposition is not None and K is not None:
        raise InputError("give K or decomposition=, not both")
    K = decomposition if decomposition is not None else K
    fixed = dict(fixed or {})
    if Z is not None:
        if K is not None:
            raise InputError("give K or Z, not both")
        data = _validate(y, X)
        Zarr = np.asarray(Z, dtype=np.float64)
        if Zarr.ndim != 2 or Zarr.shape[0] != data.N:
            raise InputError(f"Z must have {data.N} rows, got shape {Zarr.shape}")
        K = decompose_genotypes(Zarr, samples=data.samples)
    if K is None:
        raise InputError("marginal_grm needs a kernel K, a Decomposition or genotypes Z; "
                         "the model without a GRM is fixed_effects(y, X)")
    if isinstance(K, list | tuple) and len(K) == 1:
        K = K[0]
    if isinstance(K, list | tuple):
        return _marginal_dense(y, list(K), X, priors, fixed, component_names)
    if isinstance(K, Decomposition):
        data = _validate(y, X)
        dec = K.aligned_to(data.samples)
    else:
        data = _validate(y, X, K)
        dec = decompose(data.Ks[0], samples=data.samples)
    if dec.h2_max < 1.0:
        raise KernelError(
            f"K is indefinite (smallest eigenvalue {dec.min_eigenvalue:.4g}): V is positive "
            f"definite only for h2 < {dec.h2_max:.6g}, but the posterior ranges over h2 in "
            "[0, 1]; make K PSD first with bayeslmm.genotypes.remedies.bend or "
            "relatedness_cutoff (--grm-bend / --grm-cutoff)")
    reason = not_identifiable(data.X, U=dec.U, S=dec.S)
    if reason is not None and not {"sigma_g2", "sigma_e2"} <= set(fixed):
        # The likelihood is flat along h2 (as REML's): its posterior is its prior, which the
        # sampler would report as if it were learned from y.
        warnings.warn(f"h2 is not identifiable: {reason}; its posterior is its prior",
                      IdentifiabilityWarning, stacklevel=2)
    pri = default_priors(priors, data.y, data.X)
    if beta_param not in ("auto", "conditional", "direct"):
        raise InputError(f"beta_param must be 'auto', 'conditional' or 'direct', got "
                         f"{beta_param!r}")
    conditional = beta_param == "conditional" or (beta_param == "auto" and not latent)
    if conditional and latent:
        raise InputError("beta_param='conditional' is for the marginal model (latent=False)")
    sd = SpectralData.of(data, dec)  # once per model: the graph and the compiled density
    with pm.Model(coords=_coords(data, eigen=np.arange(dec.rank))) as model:
        if conditional:
            sg, se = _variances(pri, fixed)
            shift = _beta_conditional(pri, data, dec, sd, sg, se)
        else:
            beta = _beta(pri, data.M)
            sg, se = _variances(pri, fixed)
            shift = beta - sd.b0
        _spectral_likelihood(dec, sd, shift, sg, se, latent)
    attach_info(model, ModelInfo("marginal", data, pri, decomposition=dec, fixed=fixed,
                                 latent=latent, extra={"spectral_data": sd,
                                                       "not_identifiable": reason}))
    return model


def _marginal_dense(y, Ks, X, priors, fixed, component_names) -> pm.Model:
    """Several kernels: V = sum_k sigma_k K_k + sigma_e2 I, built by the registered
    ``multikernel`` family (:mod:`bayeslmm.bayes.models.multikernel`, whose fast exact sampler
    bayeslmm.sample uses); families find each other through the registry, not by import."""
    if fixed:
        raise InputError("fixed= is for one kernel")
    return model_family("multikernel").build(y, Ks, X, priors=priors,
                                             component_names=component_names)


def _pointwise_loglik(idata: xr.DataTree, model: pm.Model) -> bool:
    """The marginal model's observed terms are rotated eigen-components, which is not what
    PSIS-LOO leaves out: store instead, per sample, the exact leave-one-out predictive
    densities log p(y_i | y_-i, theta) (:mod:`bayeslmm.bayes.loo`), and y on the sample
    scale. False (nothing stored) for the fixed- and random-effects forms and latent g."""
    info = find_info(model)
    if info is None or info.kind != "marginal" or info.latent:
        return False
    ll = marginal_loo_loglik(idata["posterior"].to_dataset(), info.data, info.decomposition,
                             info.fixed)
    idata["log_likelihood"] = xr.DataTree(xr.Dataset({"y": ll}))
    obs = idata["observed_data"].to_dataset() if "observed_data" in idata.children \
        else xr.Dataset()
    obs["y"] = xr.DataArray(info.data.y, dims="sample", coords={"sample": info.data.samples})
    idata["observed_data"] = xr.DataTree(obs)
    return True


attach_family_hooks("linear", build=marginal_grm, compile=compile_marginal,
                    supported=compiled_supported, pointwise_loglik=_pointwise_loglik)
