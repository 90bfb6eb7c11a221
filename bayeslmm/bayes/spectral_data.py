"""The one-kernel marginal model's data in K's eigenbasis, and beta's Normal prior as precisions.

Shared by the PyMC graph (:mod:`bayeslmm.bayes.models.marginal`) and the hand-written
log-density (:mod:`bayeslmm.bayes.compiled.marginal`), so that both are built from the same
numbers, computed once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslmm.bayes.priors import ResolvedPriors
from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.covariance.structures import Covariates, SpectralCovariance
from bayeslmm.data import LMMData

__all__ = ["SpectralData", "beta_normal_prior"]


@dataclass(frozen=True, eq=False)
class SpectralData:
    """y and X in K's eigenbasis, and the cross-products of their parts in K's complement
    (eigenvalue 0; zeros when K is full rank): what every one-kernel marginal density needs.

    y enters relative to its least-squares fit on X, y = X b0 + y_r, and the densities are
    written for beta - b0: the same model, but a large offset of y in span(X) (a phenotype
    far from zero with an intercept) never enters a quadratic form, where it would cancel
    catastrophically against the covariates' part.
    """

    Uy: np.ndarray  # U'y_r
    UX: np.ndarray
    n0: int  # N - rank K
    cXX: np.ndarray  # X'P0 X
    cXy: np.ndarray  # X'P0 y_r
    cyy: float  # y_r'P0 y_r
    b0: np.ndarray  # least-squares coefficients of y on X

    @classmethod
    def of(cls, data: LMMData, dec: Decomposition) -> SpectralData:
        cov = SpectralCovariance(dec)
        covariates = Covariates.of(data.X)
        rX, ry = cov.rotate(data.X), cov.rotate(covariates.residualize(data.y))
        # gram with weight 0 on the eigenbasis and 1 on the complement: a'P0 b.
        zero = np.zeros(dec.rank)
        return cls(ry.values, rX.values, data.N - dec.rank, rX.gram(zero, 1.0),
                   rX.gram(zero, 1.0, ry), float(ry.gram(zero, 1.0)),
                   covariates.coefficients(data.y))


def beta_normal_prior(pri: ResolvedPriors, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Precisions lam and means m0 of beta's Normal prior (notes eq. 13-14); zeros for a flat
    or non-Gaussian prior, whose conditional is then centred on the likelihood alone."""
    if pri.beta_mu.size:
        return 1.0 / pri.beta_sigma**2, pri.beta_mu
    prior = pri["beta"]
    if prior.family == "Normal":
        return (np.full(M, 1.0 / prior.params["sigma"] ** 2),
                np.full(M, prior.params.get("mu", 0.0)))
    return np.zeros(M), np.zeros(M)
