"""Bayesian layer: priors, PyMC model builders, sampling, empirical Bayes and the exact
quadrature posterior of h2 -- all sharing the one decomposition of K with REML."""

# These functions share their module's name: bound here, after the module is imported, so
# that the package attribute is the function (light modules: no PyMC).
from bayeslmm.bayes.compare import Comparison, compare, compare_liability  # noqa: E402
from bayeslmm.bayes.empirical_bayes import EmpiricalBayes, empirical_bayes  # noqa: E402

# The rest lazily (PEP 562): importing a light module of this package (summaries, priors)
# must not load PyMC, which the model builders and samplers import (about a second).
_LAZY = {
    "bayesc": "bayeslmm.bayes.sparse.bayesc",
    "bayesr": "bayeslmm.bayes.sparse.bayesr",
    "sparse_predict": "bayeslmm.bayes.sparse.predict",
    "Prior": "bayeslmm.bayes.priors",
    "Sensitivity": "bayeslmm.bayes.sensitivity",
    "check_diagnostics": "bayeslmm.bayes.sampling",
    "fixed_effects": "bayeslmm.bayes.models.marginal",
    "implied_h2_prior": "bayeslmm.bayes.priors",
    "marginal_grm": "bayeslmm.bayes.models.marginal",
    "parse_prior": "bayeslmm.bayes.priors",
    "parse_priors": "bayeslmm.bayes.priors",
    "plot_implied_h2_prior": "bayeslmm.bayes.priors",
    "posterior_h2_quadrature": "bayeslmm.bayes.quadrature",
    "posterior_predictive": "bayeslmm.bayes.sampling",
    "posterior_predictive_cases": "bayeslmm.bayes.models.threshold",
    "prior_sensitivity": "bayeslmm.bayes.sensitivity",
    "random_effects": "bayeslmm.bayes.models.marginal",
    "sample": "bayeslmm.bayes.sampling",
    "threshold": "bayeslmm.bayes.models.threshold",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayeslmm.bayes' has no attribute {name!r}")


__all__ = [
    "bayesc",
    "bayesr",
    "sparse_predict",
    "Comparison",
    "EmpiricalBayes",
    "Prior",
    "Sensitivity",
    "check_diagnostics",
    "compare",
    "compare_liability",
    "empirical_bayes",
    "fixed_effects",
    "implied_h2_prior",
    "marginal_grm",
    "parse_prior",
    "parse_priors",
    "plot_implied_h2_prior",
    "posterior_h2_quadrature",
    "posterior_predictive",
    "posterior_predictive_cases",
    "prior_sensitivity",
    "random_effects",
    "sample",
    "threshold",
]
