"""PyMC model builders, one module per family; each registers itself in
:mod:`bayeslmm.registry` (how it builds, compiles and samples), and
:func:`bayeslmm.bayes.sampling.sample` finds it there.

* ``marginal``: :func:`fixed_effects`, :func:`random_effects`, :func:`marginal_grm` (one kernel,
  b integrated out, the shared eigendecomposition);
* ``multikernel``: :func:`marginal_multikernel` (several kernels; a fast exact sampler);
* ``multitrait``: :func:`multitrait_marginal` (two traits, LKJ priors on r_g and r_e);
* ``threshold``: :func:`threshold` (liability-threshold model of a case-control trait);
* ``bayesc`` and ``bayesr`` (in :mod:`bayeslmm.bayes.sparse`, no PyMC model): :func:`bayesc`
  (the point-normal SNP prior) and :func:`bayesr` (a mixture of normals), sampled by
  collapsed Gibbs.

``bayeslmm.models`` is this package.
"""

from bayeslmm.bayes.model_info import ModelInfo, model_info
from bayeslmm.bayes.models.marginal import fixed_effects, marginal_grm, random_effects
from bayeslmm.bayes.models.multikernel import marginal_multikernel
from bayeslmm.bayes.models.multitrait import multitrait_marginal
from bayeslmm.bayes.models.threshold import threshold
from bayeslmm.bayes.sparse.bayesc import bayesc
from bayeslmm.bayes.sparse.bayesr import bayesr
from bayeslmm.bayes.sparse.bslmm import bslmm

__all__ = ["ModelInfo", "bayesc", "bayesr", "bslmm", "fixed_effects", "marginal_grm",
           "marginal_multikernel", "model_info", "multitrait_marginal", "random_effects",
           "threshold"]
