"""Per-sample log-likelihoods of the marginal one-kernel model, for PSIS-LOO.

y ~ N(X beta, V) with V = sigma_g2 K + sigma_e2 I does not factorise over samples, so the
pointwise terms PSIS-LOO needs are the exact leave-one-out predictive densities
p(y_i | y_-i, theta) of the multivariate normal (Buerkner, Gabry and Vehtari 2021,
"Efficient leave-one-out cross-validation for Bayesian non-factorized normal and Student-t
models", eq. 6-7): with C = V^-1 and r = y - X beta,

    y_i | y_-i, theta ~ N( y_i - [C r]_i / C_ii ,  1 / C_ii ),
    log p(y_i | y_-i, theta) = -1/2 log 2 pi + 1/2 log C_ii - 1/2 [C r]_i^2 / C_ii.

From K = U diag(S) U' (economic, complement of dimension N - r with eigenvalue 0),
C = U diag(1 / d) U' + (I - U U') / sigma_e2 with d = sigma_g2 S + sigma_e2, so C r and
diag(C) cost O(N r) per draw, vectorised over draws. ``arviz_stats.loo`` on these terms is
leave-one-*sample*-out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.data import LMMData
from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["joint_loglik", "loo_density", "marginal_loo_loglik", "precision_pieces"]



def _draws(post: xr.Dataset, name: str, fixed: dict[str, float]) -> xr.DataArray:
    if name in post:
        return post[name]
    if name in fixed:
        return xr.full_like(post["beta"].isel(covariate=0, drop=True), float(fixed[name]))
    raise KeyError(f"the posterior has no {name!r}")


def _pieces(post: xr.Dataset, data: LMMData, dec: Decomposition, fixed: dict[str, float]):
    sg = _draws(post, "sigma_g2", fixed).transpose("chain", "draw")
    se = _draws(post, "sigma_e2", fixed).transpose("chain", "draw")
    beta = post["beta"].transpose("chain", "draw", "covariate")
    n_chain, n_draw = sg.shape
    sg, se = sg.values.reshape(-1), se.values.reshape(-1)  # (D,)
    B = beta.values.reshape(-1, beta.shape[-1])  # (D, M)
    R = data.y[:, None] - data.X @ B.T  # (N, D) residuals
    d = dec.S[:, None] * sg[None, :] + se[None, :]  # (r, D)
    UR, CR, Cii = precision_pieces(dec.U, d, se[None, :], R, dec.full_rank)
    return (n_chain, n_draw), sg, se, R, UR, d, CR, Cii


def precision_pieces(U, d, sigma_e2, R, full_rank: bool):
    """U'R, C R and diag(C) for C = V^-1 = U diag(1 / d) U' + (I - U U') / sigma_e2.

    Written with operators only, so that it serves NumPy arrays (a posterior's draws, one
    column of R each) and PyTensor tensors alike (the PyMC distribution of
    :mod:`bayeslmm.bayes.pymc`, with R one column): one formula for the LOO terms.

    Parameters
    ----------
    U : (N, r) eigenvectors of K with non-zero eigenvalue.
    d : (r, D) sigma_g2 S + sigma_e2 per column of R.
    sigma_e2 : (1, D) the complement's variance per column.
    R : (N, D) residuals y - X beta.
    full_rank : bool
        K has no complement (eigenvalue 0), so its term is skipped.
    """
    UR = U.T @ R  # (r, D)
    CR = U @ (UR / d)
    Cii = (U * U) @ (1.0 / d)
    if not full_rank:  # the complement, eigenvalue 0: (I - U U') / sigma_e2
        CR = CR + (R - U @ UR) / sigma_e2
        Cii = Cii + (1.0 - (U * U).sum(axis=1))[:, None] / sigma_e2
    return UR, CR, Cii


def loo_density(CR, Cii):
    """log p(y_i | y_-i, theta) = -1/2 log 2 pi + 1/2 log C_ii - 1/2 [C r]_i^2 / C_ii
    (Buerkner et al. 2021, eq. 6-7), for NumPy arrays or PyTensor tensors."""
    return -0.5 * LOG2PI + 0.5 * np.log(Cii) - 0.5 * CR**2 / Cii


def marginal_loo_loglik(post: xr.Dataset, data: LMMData, dec: Decomposition,
                        fixed: dict[str, float] | None = None) -> xr.DataArray:
    """log p(y_i | y_-i, theta) for every draw and sample (Buerkner et al. 2021, eq. 6-7).

    Parameters
    ----------
    post : xarray.Dataset
        Posterior with ``sigma_g2``, ``sigma_e2`` (or given in ``fixed``) and ``beta``
        (dim ``covariate``) over ``chain``, ``draw``.
    data, dec
        The model's data (y, X) and decomposition of K, in the same sample order.

    Returns
    -------
    xarray.DataArray, dims (chain, draw, sample)
    """
    shape, *_, CR, Cii = _pieces(post, data, dec, fixed or {})
    ll = loo_density(CR, Cii)  # (N, D)
    return xr.DataArray(ll.T.reshape(*shape, data.N), dims=("chain", "draw", "sample"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "sample": data.samples}, name="y")


def joint_loglik(post: xr.Dataset, data: LMMData, dec: Decomposition,
                 fixed: dict[str, float] | None = None) -> xr.DataArray:
    """log p(y | theta) (notes eq. 48) for every draw, dims (chain, draw): what power
    scaling of the likelihood needs, since the LOO terms do not sum to it."""
    shape, sg, se, R, UR, d, *_ = _pieces(post, data, dec, fixed or {})
    quad = np.sum(UR**2 / d, axis=0)
    logdet = np.log(d).sum(axis=0)
    n0 = data.N - dec.rank
    if n0:
        quad = quad + (np.sum(R**2, axis=0) - np.sum(UR**2, axis=0)) / se
        logdet = logdet + n0 * np.log(se)
    ll = -0.5 * (data.N * LOG2PI + logdet + quad)
    return xr.DataArray(ll.reshape(shape), dims=("chain", "draw"),
                        coords={"chain": post["chain"], "draw": post["draw"]}, name="y")
