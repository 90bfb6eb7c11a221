"""bayeslmm: Bayesian linear mixed models for statistical genetics.

Y = X beta + Z b + e (notes section 3): OLS inference, ML/REML variance components,
BLUE/BLUP and prediction, mixed-model association tests, and PyMC posteriors of
sigma_g2, sigma_e2 and h2 that share one decomposition of the kernel with REML.

The package is built by layer, in the direction the data flow (each folder imports only
those before it): ``io`` (file formats) -> ``data`` (the one alignment rule) and ``inputs``
(files to aligned, validated inputs) -> ``genotypes`` -> ``covariance`` (how V is held) ->
``likelihood`` -> ``estimation`` (OLS, REML/ML, several traits, Krylov) -> ``bayes``
(priors, model families, sampling) -> ``blup`` / ``association`` / ``formula`` ->
``reports`` (files and figures) -> ``cli``. Model families, association tests and engines
register themselves in :mod:`bayeslmm.registry`.
"""

from bayeslmm.association import assoc, genomic_control, one_test
from bayeslmm.blup import blue, blup, predict, snp_blup
from bayeslmm.covariance.decomposition import Decomposition, decompose, decompose_genotypes
from bayeslmm.errors import (
    AlignmentError,
    BayesLMMError,
    CollinearityError,
    FileFormatError,
    InputError,
    KernelError,
)
from bayeslmm.estimation.engines import reml_genotypes
from bayeslmm.estimation.krylov import KrylovFit
from bayeslmm.estimation.liability import LiabilityH2, liability_h2
from bayeslmm.estimation.multitrait import MultiTraitFit, multitrait_ml, multitrait_reml
from bayeslmm.estimation.ols import OLSResult, lr_test, ols
from bayeslmm.estimation.reml import VarianceComponentFit, ml, reml
from bayeslmm.estimation.results import Results
from bayeslmm.inputs import Inputs, load_inputs
from bayeslmm.likelihood.single import SpectralLMM, dense_loglik

__version__ = "0.1.0"

# The Bayesian layer imports PyMC (seconds); it is loaded on first use, so that
# `import bayeslmm` and the non-Bayesian commands stay fast.
_BAYES = ("compare", "compare_liability", "empirical_bayes", "implied_h2_prior",
          "parse_priors", "posterior_h2_quadrature", "posterior_predictive",
          "posterior_predictive_cases", "prior_sensitivity", "sample")
_MODELS = ("fixed_effects", "marginal_grm", "marginal_multikernel", "multitrait_marginal",
           "random_effects", "threshold")
_SUBPACKAGES = {"models": "bayeslmm.bayes.models", "bayes": "bayeslmm.bayes",
                "plots": "bayeslmm.reports.plots", "datasets": "bayeslmm.datasets",
                "genotypes": "bayeslmm.genotypes", "io": "bayeslmm.io",
                "reports": "bayeslmm.reports", "registry": "bayeslmm.registry"}


def __getattr__(name: str):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(_SUBPACKAGES[name])
    if name in ("fit", "model"):  # the formula interface (bayeslmm.formula)
        return getattr(importlib.import_module("bayeslmm.formula"), name)
    if name in _BAYES:
        return getattr(importlib.import_module("bayeslmm.bayes"), name)
    if name in _MODELS:
        return getattr(importlib.import_module("bayeslmm.bayes.models"), name)
    raise AttributeError(f"module 'bayeslmm' has no attribute {name!r}")


__all__ = [
    "AlignmentError",
    "BayesLMMError",
    "CollinearityError",
    "Decomposition",
    "FileFormatError",
    "InputError",
    "Inputs",
    "KernelError",
    "KrylovFit",
    "LiabilityH2",
    "MultiTraitFit",
    "OLSResult",
    "Results",
    "SpectralLMM",
    "VarianceComponentFit",
    "assoc",
    "blue",
    "blup",
    "compare",
    "compare_liability",
    "decompose",
    "decompose_genotypes",
    "dense_loglik",
    "empirical_bayes",
    "fit",
    "fixed_effects",
    "genomic_control",
    "implied_h2_prior",
    "liability_h2",
    "load_inputs",
    "lr_test",
    "marginal_grm",
    "marginal_multikernel",
    "ml",
    "model",
    "multitrait_marginal",
    "multitrait_ml",
    "multitrait_reml",
    "ols",
    "one_test",
    "parse_priors",
    "posterior_h2_quadrature",
    "posterior_predictive",
    "posterior_predictive_cases",
    "predict",
    "prior_sensitivity",
    "random_effects",
    "reml",
    "reml_genotypes",
    "sample",
    "snp_blup",
    "threshold",
]
