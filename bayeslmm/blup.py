"""BLUE, BLUP, prediction error variances and prediction for new samples (notes 5.2).

After REML (or ML) has given sigma_g2 and sigma_e2, the model Y = X beta + g + e with
g ~ N(0, sigma_g2 K) and e ~ N(0, sigma_e2 I) gives, with V = sigma_g2 K + sigma_e2 I,

* the BLUE   beta-hat = (X'V^-1X)^-1 X'V^-1 y                                       (54)
* the BLUP   g-hat = sigma_g2 K V^-1 (y - X beta-hat) = sigma_g2 K P y              (62)
* the BLUP residuals  y-tilde = sigma_e2 V^-1 (y - X beta-hat) = sigma_e2 P y        (63)
  so that y - X beta-hat - g-hat = y-tilde exactly, because V - sigma_g2 K = sigma_e2 I;
* the SNP effects in the ridge view (59), when K = ZZ'/P for standardized genotypes Z:
  b-hat = (Z'Z + lambda I)^-1 Z'(y - X beta-hat), lambda = P sigma_e2 / sigma_g2, which by
  the push-through identity equals (sigma_g2 / P) Z' V^-1 (y - X beta-hat), so Z b-hat = g-hat.

P = V^-1 - V^-1 X (X'V^-1X)^-1 X'V^-1 is the REML projection. For the one-kernel (spectral)
fit every quantity uses the decomposition K = U diag(S) U' held by the fit: O(N r) per
operation, the kernel is never decomposed again. For several kernels (the dense fit) V is
factorised once, O(N^3), and the genetic value is split per component,
g_k = sigma_k K_k P y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.covariance.structures import DenseCovariance
from bayeslmm.data import labels_of, sample_index
from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import standardized_genotype_matrix
from bayeslmm.io.plink import as_dataset
from bayeslmm.likelihood.single import DenseLMM, SpectralLMM

if TYPE_CHECKING:
    from bayeslmm.estimation.reml import VarianceComponentFit

__all__ = ["FittedModel", "allele_effects", "blue", "blup", "model_for", "predict", "snp_blup"]


# ----------------------------------------------------------------------------- internals
class FittedModel:
    """The fitted model's covariance at the estimates, and P y, for every BLUP quantity.

    Spectral (one kernel): O(N r) per vector through the shared decomposition. Dense
    (several kernels): V factorised once by Cholesky. Which one is the covariance object's
    business (:mod:`bayeslmm.covariance.structures`); nothing here forms V.
    """

    def __init__(self, fit: VarianceComponentFit):
        self.fit = fit
        self.X = fit.data.X
        self.y = fit.data.y
        self.sigma2 = np.asarray(fit.sigma2, dtype=np.float64)
        self.sigma = self.sigma2[:-1]
        self.sigma_e2 = float(self.sigma2[-1])
        self.beta = np.asarray(fit.beta.values, dtype=np.float64)
        self.C = np.asarray(fit.beta_cov.values, dtype=np.float64)  # (X'V^-1X)^-1
        model = fit.model if fit.model is not None else model_for(fit)
        self.cov = model.cov
        self.r = self.y - self.X @ self.beta
        # P y from the residual space (y_r - Q b): no cancellation of large offsets in y.
        self.Py = model.gls(*self.sigma2).Py

    def apply_Vinv(self, a: np.ndarray) -> np.ndarray:
        return self.cov.solve(a, self.sigma2)

    def apply_K(self, a: np.ndarray, k: int = 0) -> np.ndarray:
        return self.cov.apply_kernel(a, k)

    def diag_K(self, k: int = 0) -> np.ndarray:
        return self.cov.kernel_diag(k)

    def pev(self, k: int | None) -> np.ndarray:
        """diag(G - G P G) with G = sigma_k K_k (k given) or sum_k sigma_k K_k (k None):
        diag(G) - diag(G V^-1 G) + diag(A C A'), A = G V^-1 X."""
        coef = self.sigma.copy() if k is None else np.where(
            np.arange(self.sigma.size) == k, self.sigma, 0.0)
        diag_G = sum(c * self.cov.kernel_diag(j) for j, c in enumerate(coef) if c != 0)
        A = self.cov.kernel_solve(self.sigma2, coef, self.X)
        return (diag_G - self.cov.kernel_solve_kernel_diag(self.sigma2, coef)
                + np.einsum("im,mn,in->i", A, self.C, A))


def model_for(fit: VarianceComponentFit) -> SpectralLMM | DenseLMM:
    """The likelihood model of a fit made without one (spectral if it has a decomposition)."""
    if fit.decomposition is not None:
        return SpectralLMM(fit.decomposition, fit.data.y, fit.data.X)
    return DenseLMM(DenseCovariance(tuple(fit.data.Ks), tuple(fit.components)),
                    fit.data.y, fit.data.X)


def _components(fit: VarianceComponentFit) -> list[str]:
    return list(fit.components)


def _align_rows(obj, samples: np.ndarray, what: str) -> tuple[np.ndarray, object]:
    """Reorder the rows of a labelled matrix to the fit's samples; bare arrays are positional.

    Returns the float array and the column labels (or None).
    """
    rows = labels_of(obj, 0)
    cols = labels_of(obj, 1) if getattr(obj, "ndim", 2) == 2 else None
    arr = np.asarray(obj.values if hasattr(obj, "values") and not isinstance(obj, np.ndarray)
                     else obj, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    idx = sample_index(samples, rows, what)
    if idx is not None:
        arr = arr[idx]
    if arr.shape[0] != len(samples):
        raise InputError(f"{what} has {arr.shape[0]} rows but the fit has {len(samples)} "
                         "samples")
    return arr, cols


# ----------------------------------------------------------------------------- public
def blue(fit: VarianceComponentFit) -> xr.Dataset:
    """BLUE of the fixed effects, beta-hat = (X'V^-1X)^-1 X'V^-1 y (notes eq. 54).

    Returns
    -------
    xarray.Dataset
        ``beta`` and ``se`` over ``covariate`` and the covariance ``beta_cov``
        (``(X'V^-1X)^-1``, the sampling covariance with V fixed at its estimate).
    """
    names = list(fit.beta.index)
    return xr.Dataset(
        {"beta": ("covariate", fit.beta.values),
         "se": ("covariate", np.sqrt(np.diag(fit.beta_cov.values))),
         "beta_cov": (("covariate", "covariate2"), fit.beta_cov.values)},
        coords={"covariate": names, "covariate2": names})


def blup(fit: VarianceComponentFit, *, Z=None, ridge: bool = False) -> xr.Dataset:
    """BLUP of the training samples' genetic values, their PEV and the BLUP residuals.

    With V = sum_k sigma_k K_k + sigma_e2 I at the (RE)ML estimates, r = y - X beta-hat
    (beta-hat the BLUE, eq. 54) and P = V^-1 - V^-1X(X'V^-1X)^-1X'V^-1:

    * ``g``        = sum_k g_k, g_k = sigma_k K_k V^-1 r = sigma_k K_k P y   (kernel view, eq. 62)
    * ``residual`` = y-tilde = sigma_e2 V^-1 r = y - X beta-hat - g          (eq. 63)
    * ``pev``      = diag Var(g - g-hat) = diag(G - G P G), G = sum_k sigma_k K_k: the
      prediction error variance *including* the uncertainty of beta-hat (Henderson's
      C^22 block; it equals Var(g | y) under a flat prior on beta), with the variance
      components treated as known (fixed at their estimates, no allowance for their error).
    * ``reliability`` = 1 - pev / diag(G), the squared correlation of g-hat with g.

    Parameters
    ----------
    fit : VarianceComponentFit
        From :func:`bayeslmm.reml` or :func:`bayeslmm.ml`. A one-kernel fit reuses its
        decomposition (O(N r) per quantity); a several-kernel fit is solved densely.
    Z : array_like, shape (N, P), optional
        Standardized genotypes with K = ZZ'/P (one kernel only). When given, the SNP-effect
        BLUP ``b`` (ridge view, eq. 59, lambda = P sigma_e2 / sigma_g2) is added over
        ``variant``; see :func:`snp_blup`.
    ridge : bool
        With ``Z``: solve eq. (59) as written (a P x P system) instead of its sample-space
        dual; both give the same b.

    Returns
    -------
    xarray.Dataset
        Over ``sample``: ``g``, ``pev``, ``reliability``, ``residual``, ``fitted``
        (X beta-hat + g), ``y``; with several kernels also ``g_component`` and
        ``pev_component`` over (``sample``, ``component``). Attributes hold the variance
        components.

    Examples
    --------
    >>> import numpy as np, bayeslmm
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((100, 50)); K = Z @ Z.T / 50
    >>> y = Z @ rng.normal(0, 0.1, 50) + rng.normal(0, 0.5, 100)
    >>> fit = bayeslmm.reml(y, K)
    >>> b = bayeslmm.blup(fit)
    >>> bool(np.allclose(y - fit.beta.values[0] - b.g, b.residual))
    True
    """
    sol = FittedModel(fit)
    samples = np.asarray(fit.data.samples).astype(str)
    k = len(sol.sigma)
    gk = np.column_stack([sol.sigma[j] * sol.apply_K(sol.Py, j) for j in range(k)])
    g = gk.sum(axis=1)
    residual = sol.sigma_e2 * sol.Py
    pev = sol.pev(None)
    G_diag = sum(sol.sigma[j] * sol.diag_K(j) for j in range(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        reliability = np.where(G_diag > 0, 1.0 - pev / G_diag, np.nan)
    data = {
        "g": ("sample", g),
        "pev": ("sample", pev),
        "reliability": ("sample", reliability),
        "residual": ("sample", residual),
        "fitted": ("sample", sol.X @ sol.beta + g),
        "y": ("sample", sol.y),
    }
    coords: dict = {"sample": samples}
    if k > 1:
        data["g_component"] = (("sample", "component"), gk)
        data["pev_component"] = (("sample", "component"),
                                 np.column_stack([sol.pev(j) for j in range(k)]))
        coords["component"] = _components(fit)
    ds = xr.Dataset(data, coords=coords, attrs={
        "sigma_g2": sol.sigma.tolist() if k > 1 else float(sol.sigma[0]),
        "sigma_e2": sol.sigma_e2, "method": "REML" if fit.reml else "ML",
        "pev": "diag(G - G P G): includes the error of beta-hat; variance components fixed"})
    if Z is not None:
        b = snp_blup(fit, Z, ridge=ridge, fitted=sol)
        ds = ds.assign(b=b).assign_attrs(ridge_lambda=b.attrs["ridge_lambda"])
    return ds


def snp_blup(fit: VarianceComponentFit, Z, *, ridge: bool = False, check: bool = True,
             fitted: FittedModel | None = None) -> xr.DataArray:
    """SNP-effect BLUP b-hat in the ridge view (notes eq. 59).

    b-hat = (Z'Z + lambda I_P)^-1 Z'(y - X beta-hat) with lambda = P sigma_e2 / sigma_g2.
    By default it is computed from the sample-space dual
    b-hat = (sigma_g2 / P) Z' V^-1 (y - X beta-hat)  (O(N P) once V^-1 r is known), which is
    the same vector: (Z'Z + lambda I)^-1 Z' = Z'(ZZ' + lambda I)^-1 and
    ZZ' + lambda I = (P / sigma_g2) V. Hence Z b-hat equals the kernel BLUP g-hat (eq. 62).

    Parameters
    ----------
    fit : VarianceComponentFit
        A one-kernel fit whose kernel is K = ZZ'/P.
    Z : array_like, shape (N, P)
        Standardized genotypes (no NaN) of the training samples; a labelled DataArray /
        DataFrame is aligned to the fit's samples by label.
    ridge : bool
        Solve eq. (59) directly (P x P Cholesky, O(N P^2 + P^3)); a reference for the dual.
    check : bool
        Verify diag(ZZ'/P) against diag(K) (O(N P)); a mismatch means Z is not the
        kernel's genotype matrix (wrong scaling, order or SNP set).

    Returns
    -------
    xarray.DataArray
        ``b`` over ``variant``; attribute ``ridge_lambda``.
    """
    if fit.k != 1:
        raise InputError("the SNP view needs a one-kernel fit (K = ZZ'/P)")
    sol = fitted if fitted is not None else FittedModel(fit)
    samples = np.asarray(fit.data.samples).astype(str)
    Zarr, cols = _align_rows(Z, samples, "Z")
    if not np.all(np.isfinite(Zarr)):
        raise InputError("Z has NaN: standardize with missing genotypes set to 0 first")
    P = Zarr.shape[1]
    sg, se = float(sol.sigma[0]), sol.sigma_e2
    if check:
        dz = np.einsum("ij,ij->i", Zarr, Zarr) / P
        dk = sol.diag_K(0)
        if not np.allclose(dz, dk, rtol=1e-6, atol=1e-8 * max(float(np.abs(dk).max()), 1.0)):
            i = int(np.argmax(np.abs(dz - dk)))
            raise InputError(
                f"Z does not reproduce the fit's kernel: diag(ZZ'/P)[{i}] = {dz[i]:.6g} but "
                f"K[{i},{i}] = {dk[i]:.6g}; pass the standardized genotypes the GRM was "
                "built from, in the fit's sample order")
    lam = np.inf if sg == 0 else P * se / sg
    if sg == 0:
        b = np.zeros(P)
    elif ridge and se > 0:  # at h2 = 1 (sigma_e2 = 0) the ridge system is singular
        from scipy.linalg import cho_factor, cho_solve

        A = Zarr.T @ Zarr + lam * np.eye(P)
        b = cho_solve(cho_factor(A, lower=True), Zarr.T @ sol.r)
    else:
        b = (sg / P) * (Zarr.T @ sol.Py)
    coords = {"variant": cols} if cols is not None else {}
    return xr.DataArray(b, dims="variant", coords=coords, name="b",
                        attrs={"ridge_lambda": float(lam)})


def allele_effects(fit: VarianceComponentFit, genotypes, *, maf: float = 0.0,
                   geno: float = 1.0, chromosomes=None, progress: bool | None = None
                   ) -> xr.Dataset:
    """Per-allele SNP effects of the BLUP (GCTA ``--blup-snp``): b_j / sqrt(2 p_j (1 - p_j)).

    The SNP BLUP (eq. 59, :func:`snp_blup`) is on the scale of standardized genotypes;
    dividing by each SNP's standard deviation gives the effect of one copy of its A1 allele,
    which is what GCTA writes to ``.snp.blp`` and what scoring new genotypes needs.

    Parameters
    ----------
    fit : VarianceComponentFit
        A one-kernel fit whose kernel is the GRM of these genotypes.
    genotypes : xarray.Dataset or path
        A PLINK dataset (:func:`bayeslmm.io.read_plink`); its samples are aligned to the fit's.
    maf, geno, chromosomes
        The SNP selection the GRM was built with.

    Returns
    -------
    xarray.Dataset
        ``effect`` over ``variant`` with coordinates ``snp`` and ``a1``.
    """
    ds = as_dataset(genotypes)
    idx = sample_index(np.asarray(fit.data.samples).astype(str),
                       ds["sample"].to_numpy().astype(str), "the genotypes")
    sub = ds if idx is None else ds.isel(sample=idx)
    if sub.sizes["sample"] != fit.N:
        raise InputError(f"the genotypes have {sub.sizes['sample']} samples, the fit {fit.N}")
    # Frequencies from the fitted samples, as GCTA (its _mu is over the kept samples).
    Z = standardized_genotype_matrix(sub, maf=maf, geno=geno, chromosomes=chromosomes,
                                     progress=progress)
    # check=False: with missing calls (Z = 0 there) diag(ZZ'/P) differs slightly from the
    # GRM's, which divides by the per-pair SNP count; GCTA does not check either.
    b = snp_blup(fit, Z, check=False)
    p = Z["p"].to_numpy()
    sd = np.sqrt(2 * p * (1 - p))
    effect = np.divide(b.to_numpy(), sd, out=np.zeros_like(sd), where=sd > 0)
    return xr.Dataset({"effect": ("variant", effect)},
                      coords={"snp": ("variant", Z["snp"].to_numpy()),
                              "a1": ("variant", Z["a1"].to_numpy())})


def predict(fit: VarianceComponentFit, K_new=None, X_new=None, *, Z_new=None, Z=None,
            samples: Sequence[str] | None = None) -> xr.Dataset:
    """Predict new samples: y-hat_2 = X_2 beta-hat + g-hat_2 (notes 5.2, eq. 62).

    Kernel view: g-hat_2 = sum_k sigma_k K_k(new, train) V^-1 (y - X beta-hat), the
    conditional mean E(g_2 | y) of the Gaussian process (notes 5.2.4). SNP view: with the
    training genotypes ``Z`` (K = ZZ'/P) and the new samples' ``Z_new`` standardized with
    the *training* allele frequencies, g-hat_2 = Z_2 b-hat (eq. 59). The two agree. A
    training sample passed as a new one reproduces its BLUP.

    Parameters
    ----------
    fit : VarianceComponentFit
    K_new : array_like (N_new, N_train), or a list of them (one per kernel)
        Cross-kernel between new and training samples, on the same scale as the fit's K.
        Labelled columns (DataFrame / DataArray) are aligned to the fit's samples.
    X_new : array_like (N_new, M), optional
        Covariates of the new samples in the fit's column order; may be omitted when the
        fit has only an intercept.
    Z_new, Z : array_like, optional
        SNP view instead of ``K_new``: standardized genotypes of the new (N_new x P) and
        training (N x P) samples.
    samples : sequence of str, optional
        Labels of the new samples (default: K_new's / Z_new's row labels or 0..N_new-1).

    Returns
    -------
    xarray.Dataset
        ``y_hat`` and ``g`` over ``sample`` (the new samples); ``g_component`` over
        (``sample``, ``component``) with several kernels.
    """
    sol = FittedModel(fit)
    train = np.asarray(fit.data.samples).astype(str)
    k = len(sol.sigma)
    if (K_new is None) == (Z_new is None):
        raise InputError("give either K_new (kernel view) or Z_new with Z (SNP view)")
    if Z_new is not None:
        if Z is None:
            raise InputError("the SNP view needs the training genotypes Z as well as Z_new")
        b = snp_blup(fit, Z, fitted=sol)
        Zn = np.asarray(Z_new.values if hasattr(Z_new, "values") else Z_new, dtype=np.float64)
        if Zn.ndim != 2 or Zn.shape[1] != b.size:
            raise InputError(f"Z_new must have {b.size} columns (one per SNP of Z), got "
                             f"shape {Zn.shape}")
        gk = (Zn @ b.values)[:, None]
        labels = labels_of(Z_new)
    else:
        Ks = list(K_new) if isinstance(K_new, list | tuple) else [K_new]
        if len(Ks) != k:
            raise InputError(f"{len(Ks)} cross-kernels given for a fit with {k} kernels")
        cols = []
        labels = labels_of(Ks[0])
        for j, Kj in enumerate(Ks):
            # Align the training columns by label: transpose, align rows, transpose back.
            Kt = Kj.T if hasattr(Kj, "T") else np.asarray(Kj).T
            arr, _ = _align_rows(Kt, train, f"K_new[{j}] (columns)")
            cols.append(sol.sigma[j] * (arr.T @ sol.Py))
        gk = np.column_stack(cols)
    n_new = gk.shape[0]
    if X_new is None:
        if list(fit.beta.index) != ["intercept"] and not (
                sol.X.shape[1] == 1 and np.all(sol.X == 1.0)):
            raise InputError(f"X_new is needed: the fit has covariates {list(fit.beta.index)}")
        Xn = np.ones((n_new, 1))
    else:
        Xn = np.asarray(X_new.values if hasattr(X_new, "values") else X_new, dtype=np.float64)
        Xn = Xn[:, None] if Xn.ndim == 1 else Xn
        if Xn.shape != (n_new, sol.X.shape[1]):
            raise InputError(f"X_new has shape {Xn.shape}; expected ({n_new}, "
                             f"{sol.X.shape[1]}) in the order {list(fit.beta.index)}")
    if samples is not None:
        labels = np.asarray(samples).astype(str)
    if labels is None:
        labels = np.array([str(i) for i in range(n_new)])
    g = gk.sum(axis=1)
    data = {"y_hat": ("sample", Xn @ sol.beta + g), "g": ("sample", g)}
    coords: dict = {"sample": labels}
    if k > 1:
        data["g_component"] = (("sample", "component"), gk)
        coords["component"] = _components(fit)
    return xr.Dataset(data, coords=coords)


def to_dataframe(ds: xr.Dataset) -> pd.DataFrame:
    """A per-sample table of a :func:`blup` / :func:`predict` result (GCTA ``.blp``-like)."""
    return ds[[v for v in ds.data_vars if ds[v].dims == ("sample",)]].to_dataframe()
