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

import sys
import types

__version__ = "0.1.0"

# Every public name is loaded on first use: `import bayeslmm` and `bayeslmm --help` stay
# well under a second (numpy/scipy/pandas/xarray/numba take ~3 s, PyMC more).
_HOMES = {
    "bayeslmm.association": ("assoc", "genomic_control", "one_test"),
    "bayeslmm.blup": ("blue", "blup", "predict", "snp_blup"),
    "bayeslmm.covariance.decomposition": ("Decomposition", "decompose", "decompose_genotypes"),
    "bayeslmm.errors": ("AlignmentError", "BayesLMMError", "CollinearityError",
                        "FileFormatError", "InputError", "KernelError"),
    "bayeslmm.estimation.engines": ("reml_genotypes",),
    "bayeslmm.estimation.krylov": ("KrylovFit",),
    "bayeslmm.estimation.liability": ("LiabilityH2", "liability_h2"),
    "bayeslmm.estimation.multitrait": ("MultiTraitFit", "multitrait_ml", "multitrait_reml"),
    "bayeslmm.estimation.ols": ("OLSResult", "lr_test", "ols"),
    "bayeslmm.estimation.reml": ("VarianceComponentFit", "ml", "reml"),
    "bayeslmm.estimation.results": ("Results",),
    "bayeslmm.inputs": ("Inputs", "load_inputs"),
    "bayeslmm.likelihood.single": ("SpectralLMM", "dense_loglik"),
    "bayeslmm.formula": ("fit", "model"),
    "bayeslmm.bayes": ("compare", "compare_liability", "empirical_bayes", "implied_h2_prior",
                       "parse_priors", "posterior_h2_quadrature", "posterior_predictive",
                       "posterior_predictive_cases", "prior_sensitivity", "sample"),
    "bayeslmm.bayes.models": ("fixed_effects", "marginal_grm", "marginal_multikernel",
                              "multitrait_marginal", "random_effects", "threshold"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
_SUBPACKAGES = {"models": "bayeslmm.bayes.models", "bayes": "bayeslmm.bayes",
                "plots": "bayeslmm.reports.plots", "datasets": "bayeslmm.datasets",
                "genotypes": "bayeslmm.genotypes", "io": "bayeslmm.io",
                "reports": "bayeslmm.reports", "registry": "bayeslmm.registry",
                "pymc": "bayeslmm.pymc"}


def __getattr__(name: str):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(_SUBPACKAGES[name])
    if name in _HOME_OF:
        value = getattr(importlib.import_module(_HOME_OF[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'bayeslmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME_OF])


class _Package(types.ModuleType):
    """The package module: importing the submodule ``bayeslmm.blup`` must not replace the
    function ``bayeslmm.blup`` (Python binds a submodule to its parent's attribute of the
    same name; the eager imports this package had did the reverse, last)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _HOME_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
