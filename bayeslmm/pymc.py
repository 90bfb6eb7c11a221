"""The GRM term for your own PyMC model (docs/pymc.md).

``from bayeslmm.pymc import GRMNormal, grm_effect``: the public name of
:mod:`bayeslmm.bayes.pymc`, where the implementation lives (the Bayesian layer).
"""

from bayeslmm.bayes.pymc import GRMNormal, grm_decomposition, grm_effect

__all__ = ["GRMNormal", "grm_decomposition", "grm_effect"]
