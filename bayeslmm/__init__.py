"""bayeslmm: Bayesian linear mixed models for statistical genetics.

Y = X beta + Z b + e (notes section 3): OLS inference, ML/REML variance components,
BLUE/BLUP and prediction, mixed-model association tests, and PyMC posteriors of
sigma_g2, sigma_e2 and h2 that share one decomposition of the kernel with REML.
"""

from bayeslmm.assoc import assoc, genomic_control, one_test
from bayeslmm.blup import blue, blup, predict, snp_blup
from bayeslmm.engines import reml_genotypes
from bayeslmm.errors import (
    AlignmentError,
    BayesLMMError,
    CollinearityError,
    FileFormatError,
    InputError,
    KernelError,
)
from bayeslmm.io.reports import hsq_text
from bayeslmm.likelihood import SpectralLMM, dense_loglik
from bayeslmm.ols import OLSResult, lr_test, ols
from bayeslmm.reml import VarianceComponentFit, ml, reml
from bayeslmm.spectral import Decomposition, decompose, decompose_genotypes

__version__ = "0.1.0"

# fit.blup() and fit.predict() are conveniences for bayeslmm.blup(fit) / predict(fit). They
# are bound here, at the top of the package, so that the fitting layer (reml) does not
# import the layer above it (blup).
VarianceComponentFit.blup = blup
VarianceComponentFit.predict = predict
VarianceComponentFit.to_hsq = hsq_text

# The Bayesian layer imports PyMC (seconds); it is loaded on first use, so that
# `import bayeslmm` and the non-Bayesian commands stay fast.
_BAYES = ("compare", "empirical_bayes", "implied_h2_prior", "parse_priors",
          "posterior_h2_quadrature", "prior_sensitivity", "sample")


def __getattr__(name: str):
    if name in ("models", "bayes", "plots", "datasets", "genotypes", "io"):
        import importlib

        return importlib.import_module(f"bayeslmm.{name}")
    if name in ("fit", "model"):  # the formula interface (bayeslmm.formula)
        from bayeslmm import formula

        return getattr(formula, name)
    if name in _BAYES:
        from bayeslmm import bayes

        return getattr(bayes, name)
    raise AttributeError(f"module 'bayeslmm' has no attribute {name!r}")

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
    "compare",
    "decompose",
    "decompose_genotypes",
    "dense_loglik",
    "empirical_bayes",
    "fit",
    "genomic_control",
    "implied_h2_prior",
    "lr_test",
    "ml",
    "model",
    "ols",
    "one_test",
    "parse_priors",
    "posterior_h2_quadrature",
    "predict",
    "prior_sensitivity",
    "reml",
    "reml_genotypes",
    "sample",
    "snp_blup",
]
