"""Bayesian layer: priors, PyMC model builders, sampling, empirical Bayes and the exact
quadrature posterior of h2 -- all sharing the one decomposition of K with REML."""

from bayeslmm.bayes.compare import Comparison, compare, compare_liability
from bayeslmm.bayes.empirical_bayes import EmpiricalBayes, empirical_bayes
from bayeslmm.bayes.models.marginal import fixed_effects, marginal_grm, random_effects
from bayeslmm.bayes.models.threshold import posterior_predictive_cases, threshold
from bayeslmm.bayes.priors import (
    Prior,
    implied_h2_prior,
    parse_prior,
    parse_priors,
    plot_implied_h2_prior,
)
from bayeslmm.bayes.quadrature import posterior_h2_quadrature
from bayeslmm.bayes.sampling import check_diagnostics, posterior_predictive, sample
from bayeslmm.bayes.sensitivity import Sensitivity, prior_sensitivity

__all__ = [
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
