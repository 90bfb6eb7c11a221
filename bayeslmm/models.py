"""Model builders under ``bayeslmm.models`` (an alias of :mod:`bayeslmm.bayes.models`)."""

from bayeslmm.bayes.models import (
    ModelInfo,
    fixed_effects,
    marginal_grm,
    model_info,
    random_effects,
)

__all__ = ["ModelInfo", "fixed_effects", "marginal_grm", "model_info", "random_effects"]
