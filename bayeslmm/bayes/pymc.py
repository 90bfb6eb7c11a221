"""The GRM term for any PyMC model: a likelihood and a random effect (notes section 3).

Both work on the package's one decomposition of the kernel, K = U diag(S) U' (economic: the
complement of dimension N - r has eigenvalue 0; :mod:`bayeslmm.covariance.decomposition`),
inside a model the user writes, with nutpie or PyMC's own samplers:

* :class:`GRMNormal` -- y ~ N(mu, sigma_g2 K + sigma_e2 I) (notes eq. 46), the random effect
  integrated out. In K's eigenbasis V is diagonal, d = sigma_g2 S + sigma_e2, so

      log p(y) = -1/2 [N log 2 pi + sum log d + (N - r) log sigma_e2
                       + sum (U'r)^2 / d + |P0 r|^2 / sigma_e2],   r = y - mu      (eq. 48)

  with P0 = I - U U'. A design ``X`` given with its coefficients ``beta`` is rotated once
  (U'X and P0 X are constants of the graph, folded when it is compiled), as is observed y,
  so the log-density and its gradient (PyTensor's, of this expression) cost O(r M) per
  evaluation; a general mean ``mu`` is rotated at each evaluation, O(N r).
* :func:`grm_effect` -- g ~ N(0, sigma_g2 K), non-centred in the eigenbasis:
  g = U (sqrt(sigma_g2 S) z), z ~ N(0, I_r), for a likelihood of the user's choosing
  (Bernoulli, Poisson, Student-t...) on top of it.

The per-sample log-likelihood: the observed variable's elementwise log-density is the exact
leave-one-out predictive density log p(y_i | y_-i, theta) (Buerkner, Gabry and Vehtari 2021;
:mod:`bayeslmm.bayes.loo`, the terms ``bayeslmm.sample(log_likelihood=True)`` stores for
``marginal_grm``), so ``pm.compute_log_likelihood`` and ``arviz_stats.loo`` give
leave-one-sample-out. Those terms do not sum to log p(y), so a potential ``<name>_joint``
adds log p(y) - sum_i log p(y_i | y_-i); the model's density is log p(y) exactly. When the
model is compiled the two copies of the LOO terms cancel (PyTensor's algebraic
canonicalisation of the merged graph), so sampling pays for log p(y) alone.

Forward draws (prior and posterior predictive) are taken in the eigenbasis:
y = mu + U (sqrt(d) z) + sqrt(sigma_e2) (z0 - U U'z0), z ~ N(0, I_r), z0 ~ N(0, I_N) (the
second term only when K is singular), whose covariance is U diag(d) U' + sigma_e2 P0 = V.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.shape_utils import rv_size_is_none

from bayeslmm.bayes.loo import loo_density, precision_pieces
from bayeslmm.covariance.decomposition import Decomposition, decompose
from bayeslmm.errors import InputError, KernelError
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["GRMNormal", "grm_effect", "grm_decomposition"]


def grm_decomposition(K, samples=None) -> Decomposition:
    """The kernel's decomposition, checked for use as a covariance for every h2 in [0, 1].

    Parameters
    ----------
    K : Decomposition or array_like (N, N)
        A :class:`~bayeslmm.covariance.decomposition.Decomposition` (``bayeslmm.decompose(K)``,
        ``bayeslmm.decompose_genotypes(Z)`` or ``fit.decomposition`` of a REML fit) is used
        as is; a matrix is decomposed once here.
    samples : sequence of str, optional
        The labels of y's rows ("FID IID"): the decomposition's rows are put in their order
        by the package's one alignment rule (:func:`bayeslmm.data.sample_index`).

    Returns
    -------
    Decomposition
    """
    dec = K if isinstance(K, Decomposition) else decompose(K)
    if samples is not None:
        dec = dec.aligned_to(np.asarray(samples).astype(str))
    if dec.h2_max < 1.0:
        raise KernelError(
            f"K is indefinite (smallest eigenvalue {dec.min_eigenvalue:.4g}): sigma_g2 K + "
            "sigma_e2 I is a covariance only for h2 < "
            f"{dec.h2_max:.6g}; make K PSD first with bayeslmm.genotypes.remedies.bend or "
            "relatedness_cutoff")
    return dec


# ----------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class _Layout:
    """Which mean terms the distribution has, and so the order of its parameters:
    [X, beta] [mu] sigma_g2 sigma_e2 U S."""

    N: int
    r: int
    has_X: bool
    has_mu: bool

    @property
    def n0(self) -> int:
        return self.N - self.r

    @property
    def signature(self) -> str:
        head = ["(n,m)", "(m)"] * self.has_X + ["(n)"] * self.has_mu
        return ",".join([*head, "()", "()", "(n,r)", "(r)"]) + "->(n)"

    def unpack(self, params):
        params = list(params)
        X = beta = mu = None
        if self.has_X:
            X, beta = params.pop(0), params.pop(0)
        if self.has_mu:
            mu = params.pop(0)
        sigma_g2, sigma_e2, U, S = params
        return X, beta, mu, sigma_g2, sigma_e2, U, S


def _mean(X, beta, mu, N: int):
    out = pt.zeros(N)
    if X is not None:
        out = out + pt.dot(X, beta)
    if mu is not None:
        out = out + mu
    return out


def _joint_logp(layout: _Layout, value, *params):
    """log p(y) in the eigenbasis (notes eq. 48). Each constant is rotated as its own term
    (U'y, U'X, P0 y, P0 X), so that compiling folds them and only O(r M) work remains."""
    X, beta, mu, sg, se, U, S = layout.unpack(params)
    d = sg * S + se
    Ur = pt.dot(U.T, value)
    if X is not None:
        Ur = Ur - pt.dot(pt.dot(U.T, X), beta)
    if mu is not None:
        Ur = Ur - pt.dot(U.T, mu)
    quad = pt.sum(Ur**2 / d)
    logdet = pt.sum(pt.log(d))
    if layout.n0:
        # P0 r = r - U U'r, kept as a vector: the totals r'r - |U'r|^2 would cancel when r
        # lies mostly in the complement (a large intercept and a centred GRM).
        r0 = value - pt.dot(U, pt.dot(U.T, value))
        if X is not None:
            r0 = r0 - pt.dot(X - pt.dot(U, pt.dot(U.T, X)), beta)
        if mu is not None:
            r0 = r0 - (mu - pt.dot(U, pt.dot(U.T, mu)))
        quad = quad + pt.sum(r0**2) / se
        logdet = logdet + layout.n0 * pt.log(se)
    return -0.5 * (layout.N * LOG2PI + logdet + quad)


def _loo_logp(layout: _Layout, value, *params):
    """log p(y_i | y_-i, theta) for each sample (:func:`bayeslmm.bayes.loo.loo_density`)."""
    X, beta, mu, sg, se, U, S = layout.unpack(params)
    R = (value - _mean(X, beta, mu, layout.N))[:, None]
    d = (sg * S + se)[:, None]
    _, CR, Cii = precision_pieces(U, d, pt.reshape(se, (1,)), R, layout.n0 == 0)
    return loo_density(CR, Cii)[:, 0]


def _spread_logp(layout: _Layout, value, *params):
    """The unregistered distribution's elementwise terms: the LOO terms plus an equal share
    of log p(y) - sum LOO, so that they sum to log p(y) (``pm.logp(dist, y).sum()``)."""
    loo = _loo_logp(layout, value, *params)
    return loo + (_joint_logp(layout, value, *params) - pt.sum(loo)) / layout.N


def _draw(layout: _Layout, *args):
    """y = mu + U (sqrt(d) z) + sqrt(sigma_e2) (z0 - U U'z0): covariance V (module doc).
    PyMC passes the parameters, then ``size`` (the batch shape, or None)."""
    *params, size = args
    X, beta, mu, sg, se, U, S = layout.unpack(params)

    def shape(core: int):
        return (core,) if rv_size_is_none(size) else pt.concatenate([size, [core]])

    z = pm.Normal.dist(0.0, 1.0, size=shape(layout.r))
    e = pt.dot(pt.sqrt(sg * S + se) * z, U.T)
    if layout.n0:
        z0 = pm.Normal.dist(0.0, 1.0, size=shape(layout.N))
        e = e + pt.sqrt(se) * (z0 - pt.dot(pt.dot(z0, U), U.T))
    return _mean(X, beta, mu, layout.N) + e


# ----------------------------------------------------------------------------- the likelihood
class GRMNormal:
    """y ~ N(X beta + mu, sigma_g2 K + sigma_e2 I) over a precomputed decomposition of K
    (notes eq. 46), for use inside any ``pm.Model``.

    ``GRMNormal("y", ...)`` registers the variable (with ``observed=`` for a likelihood) and
    the potential ``<name>_joint`` (module doc): the variable's elementwise log-density is
    the exact leave-one-out term log p(y_i | y_-i, theta) of each sample, the model's
    density log p(y) (eq. 48). ``GRMNormal.dist(...)`` is the unregistered distribution (for
    ``pm.draw`` and ``pm.logp``), whose elementwise terms sum to log p(y).

    Parameters
    ----------
    name : str
        Name of the variable.
    decomposition : Decomposition or array_like (N, N)
        K = U diag(S) U', e.g. ``bayeslmm.decompose(K)`` or a REML fit's ``decomposition``;
        decomposed here if a matrix. K must be PSD.
    sigma_g2, sigma_e2 : tensor_like
        Genetic and residual variances (scalars), e.g. ``h2 * Vp`` and ``(1 - h2) * Vp``.
    X : array_like (N, M), optional
        A constant design rotated once: with ``beta`` the mean X beta costs O(r M) per
        evaluation. Cage or batch indicators may be columns of it, their effects entries of
        ``beta``.
    beta : tensor_like (M,), optional
        Coefficients of ``X``.
    mu : tensor_like (N,), optional
        Any further mean term (a tensor of the model); rotated at each evaluation, O(N r).
    samples : sequence of str, optional
        Labels of y's rows; the decomposition is reordered to them (the one alignment rule).
    observed : array_like (N,), optional
        The phenotype. Without it the variable is free (a latent Gaussian field).
    **kwargs
        Passed to ``pm.CustomDist`` (``dims``, ``initval``...).

    Returns
    -------
    TensorVariable

    Examples
    --------
    >>> import numpy as np, pymc as pm, bayeslmm
    >>> from bayeslmm.pymc import GRMNormal
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((40, 60)); K = Z @ Z.T / 60
    >>> X = np.column_stack([np.ones(40), rng.standard_normal(40)])
    >>> y = X @ [1.0, 0.5] + rng.standard_normal(40)
    >>> with pm.Model() as model:
    ...     beta = pm.Normal("beta", 0.0, 10.0, shape=2)
    ...     h2 = pm.Beta("h2", 1.0, 1.0)
    ...     Vp = pm.HalfNormal("Vp", 2.0)
    ...     y_obs = GRMNormal("y", decomposition=bayeslmm.decompose(K), X=X, beta=beta,
    ...                       sigma_g2=h2 * Vp, sigma_e2=(1 - h2) * Vp, observed=y)
    >>> sorted(v.name for v in model.potentials)
    ['y_joint']
    """

    def __new__(cls, name: str, *, decomposition, sigma_g2, sigma_e2, X=None, beta=None,
                mu=None, samples=None, observed=None, **kwargs) -> pt.TensorVariable:
        layout, params = _prepare(decomposition, sigma_g2, sigma_e2, X, beta, mu, samples,
                                  observed)
        rv = pm.CustomDist(name, *params, dist=partial(_draw, layout),
                           logp=partial(_loo_logp, layout), signature=layout.signature,
                           class_name="GRMNormal", observed=observed, **kwargs)
        # The LOO terms above do not sum to log p(y); this completes the model's density.
        # Built from the same tensors, the two copies of the LOO terms merge and cancel
        # when the model is compiled.
        pm.Potential(f"{name}_joint", _joint_logp(layout, rv, *params)
                     - pt.sum(_loo_logp(layout, rv, *params)))
        return rv

    @classmethod
    def dist(cls, *, decomposition, sigma_g2, sigma_e2, X=None, beta=None, mu=None,
             samples=None, **kwargs) -> pt.TensorVariable:
        """The unregistered distribution: its elementwise log-density sums to log p(y)."""
        layout, params = _prepare(decomposition, sigma_g2, sigma_e2, X, beta, mu, samples,
                                  None)
        return pm.CustomDist.dist(*params, dist=partial(_draw, layout),
                                  logp=partial(_spread_logp, layout),
                                  signature=layout.signature, class_name="GRMNormal",
                                  **kwargs)


def _prepare(decomposition, sigma_g2, sigma_e2, X, beta, mu, samples, observed):
    """Validate the inputs at the boundary; the tensors every graph of one variable shares."""
    dec = grm_decomposition(decomposition, samples)
    N = dec.N
    if (X is None) != (beta is None):
        raise InputError("GRMNormal: give X and beta together (the mean X beta), or neither")
    params: list[Any] = []
    if X is not None:
        Xarr = np.asarray(X, dtype=np.float64)
        if Xarr.ndim == 1:
            Xarr = Xarr[:, None]
        if Xarr.ndim != 2 or Xarr.shape[0] != N:
            raise InputError(f"GRMNormal: X must have N = {N} rows (the decomposition's "
                             f"samples), got shape {Xarr.shape}")
        if not np.all(np.isfinite(Xarr)):
            raise InputError("GRMNormal: X has NaN or infinite values")
        params += [pt.as_tensor_variable(Xarr), pt.as_tensor_variable(beta)]
    if mu is not None:
        params.append(pt.as_tensor_variable(mu))
    if observed is not None:
        yarr = np.asarray(getattr(observed, "values", observed), dtype=np.float64)
        if yarr.shape != (N,):
            raise InputError(f"GRMNormal: observed must be a vector of N = {N} values (the "
                             f"decomposition's samples), got shape {yarr.shape}")
        if not np.all(np.isfinite(yarr)):
            raise InputError("GRMNormal: observed y has NaN or infinite values; drop those "
                             "samples (and their rows of K) first")
    params += [pt.as_tensor_variable(sigma_g2), pt.as_tensor_variable(sigma_e2),
               pt.as_tensor_variable(dec.U), pt.as_tensor_variable(dec.S)]
    return _Layout(N=N, r=dec.rank, has_X=X is not None, has_mu=mu is not None), params


# ----------------------------------------------------------------------------- the effect
def grm_effect(name: str, *, decomposition, sigma_g2, samples=None,
               eigen_dim: str = "eigen", **kwargs) -> pt.TensorVariable:
    """Genetic values g ~ N(0, sigma_g2 K), non-centred in K's eigenbasis (notes eq. 44-46).

    g = U (sqrt(sigma_g2 S) z) with z ~ N(0, I_r) the free variable ``<name>_z`` (dim
    ``eigen_dim``): NUTS sees no funnel between sigma_g2 and g, and a low-rank K costs r
    latent values, not N. Use it under any likelihood (Bernoulli, Poisson, Student-t...);
    for a Gaussian trait :class:`GRMNormal` integrates g out instead.

    Parameters
    ----------
    name : str
        Name of the deterministic g (length N).
    decomposition : Decomposition or array_like (N, N)
        K = U diag(S) U' (PSD).
    sigma_g2 : tensor_like
        Genetic variance (scalar).
    samples : sequence of str, optional
        Labels of the rows of g; the decomposition is reordered to them.
    eigen_dim : str
        Model coordinate of z (added when the model does not have it).
    **kwargs
        Passed to ``pm.Deterministic`` (``dims``).

    Returns
    -------
    TensorVariable
        g, a ``pm.Deterministic`` of length N.
    """
    dec = grm_decomposition(decomposition, samples)
    model = pm.modelcontext(None)
    if eigen_dim not in model.coords:
        model.add_coord(eigen_dim, np.arange(dec.rank))
    elif len(model.coords[eigen_dim]) != dec.rank:
        raise InputError(f"grm_effect: the model's coordinate {eigen_dim!r} has "
                         f"{len(model.coords[eigen_dim])} values but K has rank {dec.rank}; "
                         "pass eigen_dim= a name of its own")
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=eigen_dim)
    return pm.Deterministic(name, pt.dot(dec.U, pt.sqrt(sigma_g2 * dec.S) * z), **kwargs)
