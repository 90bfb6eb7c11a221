"""What a model builder knew about its data, found again from the model (or one derived from it).

PyMC keeps a model's coords through ``pm.do``, ``pm.observe`` and cloning (an attribute set on
the Model object would not survive them), so a builder records its :class:`ModelInfo` under a
token in the coordinate ``bayeslmm_model``. The token maps to the information through a weak
mapping: every model found to carry the token holds the information itself, so it lives as
long as a model that uses it, and no longer.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayeslmm.bayes.priors import ResolvedPriors
from bayeslmm.covariance.decomposition import Decomposition
from bayeslmm.data import LMMData
from bayeslmm.errors import InputError

__all__ = ["MODEL_TAG", "ModelInfo", "attach_info", "find_info", "model_info"]

#: The coordinate that names a model built here.
MODEL_TAG = "bayeslmm_model"
_HOLD = "_bayeslmm_info"  # the attribute through which a model keeps its information alive
_INFO: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """What a builder knew about its data, kept for sampling and posterior prediction."""

    kind: str  # "fixed", "random", "marginal", "marginal-dense"
    data: LMMData
    priors: ResolvedPriors
    decomposition: Decomposition | None = None
    Z: np.ndarray | None = field(default=None, repr=False)
    fixed: dict[str, float] = field(default_factory=dict)
    latent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # builder-specific settings

    @property
    def n_components(self) -> int:
        return 1 if self.kind in ("random", "marginal") else len(self.data.Ks)


def attach_info(model, info) -> Any:
    """Record what a builder knew about its data, under a token in the model's coords."""
    token = uuid.uuid4().hex
    _INFO[token] = info
    object.__setattr__(model, _HOLD, info)
    model.add_coord(MODEL_TAG, [token])
    return model


def find_info(model) -> Any | None:
    """The information of a model built here (or derived from one), else None."""
    held = getattr(model, _HOLD, None)
    if held is not None:
        return held
    token = getattr(model, "coords", {}).get(MODEL_TAG)
    info = None if not token else _INFO.get(token[0])
    if info is not None:  # a derived model (pm.do, clone): it keeps the information alive too
        object.__setattr__(model, _HOLD, info)
    return info


def model_info(model) -> Any:
    """The information of a model built by :mod:`bayeslmm.bayes.models`; an error otherwise."""
    info = find_info(model)
    if info is None:
        raise InputError("this PyMC model was not built by bayeslmm.models; posterior "
                         "prediction needs a model from fixed_effects, random_effects or "
                         "marginal_grm")
    return info
