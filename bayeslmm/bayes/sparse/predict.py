"""Prediction of new samples from a sparse SNP prior's posterior (docs/sparse-priors.md,
"Prediction"), in the form of the infinitesimal model's :func:`bayeslmm.blup.predict`:

    g_new = Z_new E(b | y),   y_hat_new = X_new E(beta | y) + g_new                    (S16)

the posterior means of the genetic values and of the phenotypes (the posterior mean of a
linear function is the function of the posterior means), with Z_new standardized with the
*training* allele frequencies and E(beta | y) the tree's ``fixed_effects`` (eq. S15).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslmm.data import labels_of
from bayeslmm.errors import InputError

__all__ = ["sparse_predict"]


def sparse_predict(tree: xr.DataTree, Z_new, X_new=None, *, samples=None) -> xr.Dataset:
    """Predict new samples from a :func:`~bayeslmm.bayes.sparse.bayesc.bayesc` or
    :func:`~bayeslmm.bayes.sparse.bayesr.bayesr` posterior (eq. S16).

    Parameters
    ----------
    tree : xarray.DataTree
        The sampler's result (``snp_summary`` and ``fixed_effects`` groups).
    Z_new : array_like (N_new, P)
        The new samples' genotypes, standardized with the training allele frequencies, its
        columns the training SNPs in their order.
    X_new : array_like (N_new, M), optional
        Their covariates in the training columns' order; may be omitted when the only
        covariate was the intercept.
    samples : sequence of str, optional
        Labels of the new samples (default: Z_new's row labels or 0..N_new-1).

    Returns
    -------
    xarray.Dataset
        ``y_hat`` and ``g`` over ``sample``, as :func:`bayeslmm.blup.predict`.
    """
    b = tree["snp_summary"]["effect_mean"].to_numpy()
    beta = tree["fixed_effects"]["beta_mean"]
    Zn = np.asarray(getattr(Z_new, "values", Z_new), dtype=np.float64)
    if Zn.ndim != 2 or Zn.shape[1] != b.size:
        raise InputError(f"Z_new must have {b.size} columns (one per SNP of the fit), got "
                         f"shape {Zn.shape}")
    if not np.all(np.isfinite(Zn)):
        raise InputError("Z_new has missing or non-finite values; standardize it first")
    n_new, names = Zn.shape[0], [str(c) for c in beta["covariate"].values]
    if X_new is None:
        if names != ["intercept"]:
            raise InputError(f"X_new is needed: the fit has covariates {names}")
        Xn = np.ones((n_new, 1))
    else:
        Xn = np.asarray(getattr(X_new, "values", X_new), dtype=np.float64)
        Xn = Xn[:, None] if Xn.ndim == 1 else Xn
        if Xn.shape != (n_new, len(names)):
            raise InputError(f"X_new has shape {Xn.shape}; expected ({n_new}, {len(names)}) "
                             f"in the order {names}")
    labels = np.asarray(samples).astype(str) if samples is not None else labels_of(Z_new)
    if labels is None:
        labels = np.array([str(i) for i in range(n_new)])
    g = Zn @ b
    return xr.Dataset({"y_hat": ("sample", Xn @ beta.to_numpy() + g), "g": ("sample", g)},
                      coords={"sample": labels})
