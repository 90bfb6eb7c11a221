"""Sparse (non-infinitesimal) SNP priors, notes section 6.3 (docs/sparse-priors.md): the
point-normal BayesC family, sampled exactly by collapsed Gibbs with residual updating
(:mod:`bayeslmm.bayes.sparse.kernel`, numba) and returned as an ArviZ ``DataTree``
(:func:`bayeslmm.bayes.sparse.bayesc.bayesc`)."""
