"""How V(theta) is represented: the one layer that knows.

``decomposition`` holds one kernel's eigendecomposition or thin SVD, computed once;
``structures`` the covariance objects every consumer asks for solves, log-determinants and
the restricted pieces (spectral, dense, the covariates' projection); ``lowrank`` the exact
low-rank tier from genotypes; ``lanczos`` block Lanczos for the matrix-free tier.
"""

from bayeslmm.covariance.decomposition import Decomposition, decompose, decompose_genotypes
from bayeslmm.covariance.structures import (
    Covariance,
    Covariates,
    DenseCovariance,
    SpectralCovariance,
    covariance_for,
)

__all__ = [
    "Covariance",
    "Covariates",
    "Decomposition",
    "DenseCovariance",
    "SpectralCovariance",
    "covariance_for",
    "decompose",
    "decompose_genotypes",
]
