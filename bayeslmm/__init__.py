"""bayeslmm: Bayesian linear mixed models for statistical genetics.

Y = X beta + Z b + e (notes section 3): OLS inference, ML/REML variance components,
BLUE/BLUP and prediction, mixed-model association tests, and PyMC posteriors of
sigma_g2, sigma_e2 and h2 that share one decomposition of the kernel with REML.
"""

from bayeslmm.assoc import assoc, genomic_control
from bayeslmm.blup import blue, blup, predict, snp_blup
from bayeslmm.errors import (
    AlignmentError,
    BayesLMMError,
    CollinearityError,
    FileFormatError,
    InputError,
    KernelError,
)
from bayeslmm.likelihood import SpectralLMM, dense_loglik
from bayeslmm.ols import OLSResult, lr_test, ols
from bayeslmm.reml import VarianceComponentFit, ml, reml
from bayeslmm.spectral import Decomposition, decompose, decompose_genotypes

__version__ = "0.1.0"

__all__ = [
    "AlignmentError",
    "BayesLMMError",
    "CollinearityError",
    "Decomposition",
    "FileFormatError",
    "InputError",
    "KernelError",
    "OLSResult",
    "SpectralLMM",
    "VarianceComponentFit",
    "assoc",
    "blue",
    "blup",
    "decompose",
    "decompose_genotypes",
    "dense_loglik",
    "genomic_control",
    "lr_test",
    "ml",
    "ols",
    "predict",
    "reml",
    "snp_blup",
]
