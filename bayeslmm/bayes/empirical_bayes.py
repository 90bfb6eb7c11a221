"""Empirical Bayes: the posterior of the random effects with the variances fixed at REML.

With sigma_g2, sigma_e2 fixed and a flat prior on beta, the posterior of (beta, g) is
Gaussian (notes 5.2, eq. 58 in the kernel view):

    beta | y ~ N(beta_hat, C),               C = (X'V^-1X)^-1, beta_hat = GLS (49)
    g | beta, y ~ N(sigma_g2 K V^-1 (y - X beta), sigma_g2 K - sigma_g2^2 K V^-1 K)

so the marginal posterior mean of g is the BLUP sigma_g2 K P y and its variance is the PEV.
In the eigenbasis, with d = sigma_g2 S + sigma_e2,

    E[g | y]   = U diag(sigma_g2 S / d) U'(y - X beta_hat)
    Cov[g | y] = U diag(sigma_g2 sigma_e2 S / d) U' + A C A',   A = U diag(sigma_g2 S / d) U'X
    Cov[g, beta | y] = -A C

(g has no component on K's null space), all O(N r). :func:`empirical_bayes` returns this
exact posterior -- drawn into the same DataTree layout as an MCMC posterior, with the mean
and covariance in a separate ``exact`` group -- and, optionally, the same PyMC model as the
full posterior with the variances fixed, sampled with NUTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.data import check_seed
from bayeslmm.errors import InputError
from bayeslmm.likelihood.single import SpectralLMM

__all__ = ["EmpiricalBayes", "empirical_bayes", "exact_gaussian_posterior"]


@dataclass(frozen=True, eq=False)
class EmpiricalBayes:
    """Empirical-Bayes posteriors at the REML variances.

    Attributes
    ----------
    exact : DataTree
        Exact Gaussian posterior: ``posterior`` holds i.i.d. draws of ``beta`` and ``g``
        (dims chain/draw as for MCMC) with ``sigma_g2``, ``sigma_e2``, ``Vp``, ``h2`` at
        their REML values; ``exact`` holds ``g_mean`` (= BLUP), ``g_pev`` (= PEV),
        ``beta_mean``, ``beta_cov`` and, on request, ``g_cov``.
    sampled : DataTree or None
        The marginal model with latent g and the variances fixed, sampled by NUTS.
    fit : VarianceComponentFit
    """

    exact: xr.DataTree
    sampled: xr.DataTree | None
    fit: object

    @property
    def blup(self) -> xr.DataArray:
        return self.exact["exact"]["g_mean"]

    @property
    def pev(self) -> xr.DataArray:
        return self.exact["exact"]["g_pev"]


def exact_gaussian_posterior(lmm: SpectralLMM, sigma_g2: float, sigma_e2: float, *,
                             covariates=None, samples=None, draws: int = 1000,
                             chains: int = 4, seed=None, full_cov: bool = False
                             ) -> xr.DataTree:
    """Exact posterior of (beta, g) at fixed variances (module docstring), as a DataTree."""
    dec = lmm.dec
    U, S = dec.U, dec.S
    N, M = lmm.N, lmm.M
    covariates = list(covariates) if covariates is not None else [f"x{j}" for j in range(M)]
    samples = list(samples) if samples is not None else [str(i) for i in range(N)]
    gls = lmm.gls(sigma_g2, sigma_e2)
    beta_hat, C = gls.beta, gls.beta_cov
    d, _ = lmm.cov.eigenvalues((sigma_g2, sigma_e2))
    shrink = sigma_g2 * S / d  # sigma_g2 K V^-1 in the eigenbasis
    # U'(y - X beta-hat) = U' V P y: the residual from the residual space, no offsets.
    Ur = d * (U.T @ gls.Py)
    g_mean = U @ (shrink * Ur)
    lam = sigma_g2 * sigma_e2 * S / d  # Cov[g | beta, y] eigenvalues
    A = U @ (shrink[:, None] * (U.T @ lmm.X))  # (N, M)
    AC = A @ C
    pev = (U**2) @ lam + np.einsum("ij,ij->i", AC, A)
    rng = np.random.default_rng(seed)
    n = draws * chains
    L = np.linalg.cholesky(C)
    db = rng.standard_normal((n, M)) @ L.T  # beta - beta_hat
    beta = beta_hat[None, :] + db
    # g = E[g | beta] + U sqrt(lam) z: the conditional mean moves by -A (beta - beta_hat).
    g = g_mean[None, :] - db @ A.T + (np.sqrt(lam) * rng.standard_normal((n, dec.rank))) @ U.T
    cd = {"chain": np.arange(chains), "draw": np.arange(draws)}
    const = np.full((chains, draws), 1.0)
    post = xr.Dataset(
        {"beta": (("chain", "draw", "covariate"), beta.reshape(chains, draws, M)),
         "g": (("chain", "draw", "sample"), g.reshape(chains, draws, N)),
         "sigma_g2": (("chain", "draw"), const * sigma_g2),
         "sigma_e2": (("chain", "draw"), const * sigma_e2),
         "Vp": (("chain", "draw"), const * (sigma_g2 + sigma_e2)),
         "h2": (("chain", "draw"), const * sigma_g2 / (sigma_g2 + sigma_e2))},
        coords={**cd, "covariate": covariates, "sample": samples},
        attrs={"method": "exact Gaussian (empirical Bayes, variances fixed)"})
    ex = {"g_mean": ("sample", g_mean), "g_pev": ("sample", pev),
          "beta_mean": ("covariate", beta_hat),
          "beta_cov": (("covariate", "covariate_"), C)}
    if full_cov:
        ex["g_cov"] = (("sample", "sample_"), (U * lam) @ U.T + AC @ A.T)
    exact = xr.Dataset(ex, coords={"sample": samples, "covariate": covariates,
                                   "covariate_": covariates,
                                   **({"sample_": samples} if full_cov else {})})
    return xr.DataTree.from_dict({"posterior": post, "exact": exact})


def empirical_bayes(fit, *, draws: int = 1000, chains: int = 4, tune: int = 1000,
                    seed=None, mcmc: bool = False, sampler: str = "nutpie",
                    progressbar: bool = False, full_cov: bool = False) -> EmpiricalBayes:
    """Posterior of the genetic values g (and beta) with the variances fixed at REML.

    Parameters
    ----------
    fit : VarianceComponentFit
        A one-kernel REML (or ML) fit from :func:`bayeslmm.reml`; its decomposition is reused.
    draws, chains, tune : int
        Draws per chain for both posteriors; tuning steps for NUTS.
    seed : int, optional
    mcmc : bool, default False
        Also sample the PyMC model (:func:`~bayeslmm.models.marginal_grm` with
        ``latent=True``, ``beta ~ Flat()`` and the variances fixed) with NUTS. Off by
        default: the exact Gaussian posterior is the answer (NUTS over all N latent values
        took 67 s on the mouse data) and MCMC only re-derives it within Monte Carlo error.
    sampler : {"nutpie", "pymc"}
    full_cov : bool
        Store the N x N posterior covariance of g in the ``exact`` group.

    Returns
    -------
    EmpiricalBayes
        ``exact`` (its ``exact`` group's ``g_mean`` equals the BLUP and ``g_pev`` the PEV) and
        ``sampled`` (posterior mean of g equal to the BLUP within Monte Carlo error), in the
        same layout as :func:`bayeslmm.sample`'s output.
    """
    if getattr(fit, "decomposition", None) is None or fit.k != 1:
        raise InputError("empirical_bayes needs a one-kernel fit with a decomposition "
                         "(bayeslmm.reml(y, K) with a single K)")
    lmm = fit.model if isinstance(fit.model, SpectralLMM) else SpectralLMM(
        fit.decomposition, fit.data.y, fit.data.X)
    sg, se = float(fit.sigma_g2), float(fit.sigma_e2)
    if se <= 0:
        raise InputError("sigma_e2 = 0 at REML (h2 = 1): the conditional posterior of g is "
                         "degenerate")
    check_seed(seed)
    ss = np.random.SeedSequence(seed)
    s_exact, s_mcmc = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    exact = exact_gaussian_posterior(lmm, sg, se, covariates=fit.data.covariates,
                                     samples=fit.data.samples, draws=draws, chains=chains,
                                     seed=s_exact, full_cov=full_cov)
    sampled = None
    if mcmc:
        from bayeslmm.bayes.models.marginal import marginal_grm
        from bayeslmm.bayes.sampling import sample

        y = pd.Series(fit.data.y, index=fit.data.samples)
        X = pd.DataFrame(fit.data.X, index=fit.data.samples, columns=list(fit.data.covariates))
        model = marginal_grm(y, fit.decomposition, X, priors={"beta": "Flat()"},
                             fixed={"sigma_g2": sg, "sigma_e2": se}, latent=True)
        sampled = sample(model, draws=draws, tune=tune, chains=chains, seed=s_mcmc,
                         sampler=sampler, progressbar=progressbar)
    return EmpiricalBayes(exact=exact, sampled=sampled, fit=fit)
