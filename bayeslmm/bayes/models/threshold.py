"""The threshold (probit) model of a case-control trait, with h2 on the liability scale.

Model (Falconer's liability threshold; Wright 1934; Gianola 1982):

    l = X beta + g + e,     g ~ N(0, sigma_g2 K),     e ~ N(0, 1),     y = 1  iff  l > 0,

so that P(y_i = 1 | g) = Phi(eta_i) with eta = X beta + g, and the liability-scale
heritability is h2 = sigma_g2 / (sigma_g2 + 1) (the residual variance fixes the scale). With
``link="logit"`` e is standard logistic, P(y_i = 1 | g) = logistic(eta_i) and
h2 = sigma_g2 / (sigma_g2 + pi^2 / 3).

The genetic values use the decomposition shared with REML, K = U diag(S) U' (economic: r
columns, a low-rank K = ZZ'/P included), non-centred in the eigenbasis:

    g = U diag(sqrt(sigma_g2 S)) z,     z ~ N(0, I_r),

so each log-density and gradient costs O(N r) and no dense Cholesky factor of K is ever
formed (brms and MCMCglmm factor K densely). z is what NUTS samples; with binary data each
sample carries little information on its own g_i, the regime where the non-centred form
avoids the funnel between sigma_g2 and g. With nutpie the probit model is sampled through a
hand-written compiled log-density (:mod:`bayeslmm.bayes.compiled.threshold`, the same density;
no graph compilation per process). At large N of unrelated samples h2 mixes slowly whatever
the parametrisation (docs/binary.md, "Mixing"): given z the N weakly informed components
pin the scale of g, while binary data carry little information on h2.

Priors: h2 ~ Beta(1, 1) by default (``priors={"h2": ...}``), sigma_g2 = h2 / (1 - h2) times
the residual variance. Non-intercept covariates are centred (so that the intercept is the
mean liability) with beta_j ~ Normal(0, 1 / sd(x_j)) on the probit scale (1.8 / sd(x_j) on
the logit scale): a one-SD change of a covariate moves the liability by about one residual SD.

The intercept (minus the threshold):

* ``prevalence=K`` (a number) places the threshold from the population prevalence. A sample
  with a unit-diagonal K has liability variance sigma_g2 + 1, so
  P(l > 0) = Phi(mu / sqrt(1 + sigma_g2)) = K gives mu = Phi^-1(K) sqrt(1 + sigma_g2); mu is
  then a deterministic of h2. ``prevalence="Beta(a, b)"`` puts a prior on K instead.
* ``prevalence=None``: mu ~ Normal(0, 1) (probit; Normal(0, 1.8) logit), i.e. the sample
  itself is taken as the population (its case proportion estimates the prevalence); the
  implied prevalence Phi(mu / sqrt(1 + sigma_g2)) is reported as ``prevalence``.

Ascertained case-control samples -- the method and what it assumes. Suppose samples are
selected with probabilities s_1 (cases) and s_0 (controls) that depend on case status only,
independently of each other. The joint density of the sample is then

    p(y, g | selected) = p(g) prod_i p(y_i | g_i) s(y_i) / Pr(selected | theta),

with Pr(selected | theta) = E_g prod_i [s_1 Phi(eta_i) + s_0 (1 - Phi(eta_i))]. Given the
observed y the s(y_i) are constants. With the threshold placed from the *population*
prevalence, each factor has expectation s_0 + (s_1 - s_0) K whatever theta is, so for
independent g_i the normaliser is constant and the ascertained likelihood equals the
ordinary probit likelihood used here (no weights, no correction of the threshold to the
sample's case proportion). What is neglected is the dependence of Pr(selected | theta) on
the covariance of the g_i between relatives: the factor
E[prod over the unselected j of (1 - s(y_j)) | y_sample, theta]. The remedy is to fit the
cohort the sample was selected from: the selection used every member's case status, so
given the cohort's phenotypes it is a constant and ignorable (in the usual design, every
case kept, the unselected animals are controls). Fitted so, 95% intervals covered the
true h2 in simulations on HS mice where the selected sample alone did not
(``benchmarks/bench_threshold.py coverage``, docs/binary.md). Without the unselected
animals, intervals in ascertained samples of relatives are not calibrated, and
:func:`threshold` logs a warning when the sample looks like one
(:func:`bayeslmm.bayes.ascertainment.ascertainment_check`: P >= 2 K and close relatives).
With ``prevalence=None`` no ascertainment correction is made: the estimate refers to a
population with the sample's case proportion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special, stats

from bayeslmm.bayes import families  # noqa: F401  (the table this module attaches to)
from bayeslmm.bayes.ascertainment import ascertainment_check
from bayeslmm.bayes.augmented.threshold import sample_augmented
from bayeslmm.bayes.compiled.threshold import compile_threshold
from bayeslmm.bayes.compiled.threshold import supported as compiled_supported
from bayeslmm.bayes.model_info import attach_info, find_info
from bayeslmm.bayes.priors import Prior, default_prior, parse_prior
from bayeslmm.binary import as_binary
from bayeslmm.covariance.decomposition import Decomposition, decompose, decompose_genotypes
from bayeslmm.data import LMMData, prepare
from bayeslmm.errors import InputError
from bayeslmm.registry import attach_family_hooks

__all__ = ["ThresholdInfo", "posterior_predictive_cases", "threshold",
           "threshold_logp"]

log = logging.getLogger(__name__)

LINKS = ("probit", "logit")
#: residual variance of the liability under each link
RESIDUAL_VARIANCE = {"probit": 1.0, "logit": float(np.pi**2 / 3)}
PRIOR_NAMES = ("h2", "intercept", "prevalence")
SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True, eq=False)
class ThresholdInfo:
    """What :func:`threshold` knew about its data (for prediction and comparison)."""

    data: LMMData
    decomposition: Decomposition
    link: str
    prevalence: float | Prior | None
    priors: dict[str, Prior]
    case_proportion: float
    x_mean: np.ndarray = field(repr=False)
    kind: str = "threshold"

    @property
    def residual_variance(self) -> float:
        return RESIDUAL_VARIANCE[self.link]


class _PriorTable(dict):
    """The priors by name; ``describe()`` as ResolvedPriors has (read by ``sample``)."""

    def describe(self, covariates=None) -> dict[str, str]:
        return {k: str(v) for k, v in self.items()}


def _prior(value, name: str) -> Prior:
    if isinstance(value, Prior):
        return value
    if isinstance(value, str):
        return parse_prior(value)
    raise InputError(f"the prior for {name!r} must be a string like 'Beta(2, 2)' or a Prior, "
                     f"got {type(value).__name__}")


def _log_cdf(x):
    # log Phi(x) = log(erfc(-x / sqrt 2) / 2): accurate in both tails down to x ~ -38, where
    # log(p) and log1p(-p) of p = Phi(x) would round to -inf or 0.
    return pt.log(0.5 * pt.erfc(-x / SQRT2))


def _probit_logp(value, eta):
    s = 2.0 * value - 1.0
    return _log_cdf(s * eta)


def _intercept_column(data: LMMData) -> int | None:
    const = np.flatnonzero(np.ptp(data.X, axis=0) == 0)
    return int(const[0]) if const.size else None


def threshold(y, K=None, X=None, *, prevalence: float | str | Prior | None = None,
              link: str = "probit", priors: Mapping[str, Any] | None = None,
              decomposition: Decomposition | None = None, Z=None,
              store_g: bool = True) -> pm.Model:
    """PyMC model of a binary trait under the liability-threshold model (module docstring).

    Parameters
    ----------
    y : array_like, shape (N,)
        Case-control phenotype coded 0/1 or 1/2 (PLINK); missing samples must be dropped.
    K : array_like (N, N) or Decomposition
        The kernel (GRM) or its shared decomposition (e.g. ``fit.decomposition`` from
        :func:`bayeslmm.reml`).
    X : array_like, shape (N, M), optional
        Covariates including an intercept column; default an intercept.
    prevalence : float, str or Prior, optional
        The population prevalence K that places the threshold (a number), a prior on it
        (``"Beta(10, 90)"``), or None for a free intercept.
    link : {"probit", "logit"}
        ``"logit"`` needs ``prevalence=None`` (no closed form ties its threshold to K).
    priors : dict, optional
        ``h2`` (default ``Beta(1, 1)``), ``intercept`` (default ``Normal(0, 1)`` probit,
        ``Normal(0, 1.8)`` logit).
    decomposition : Decomposition, optional
        Same as passing it as ``K``.
    Z : array_like, shape (N, P), optional
        Standardized genotypes instead of K (thin SVD; low rank when P < N).
    store_g : bool
        Keep g (dim ``sample``) in the posterior; at large N x draws it is big.

    Returns
    -------
    pymc.Model
        Free ``h2``, ``g_raw`` (dim ``eigen``), ``intercept_std`` (when the intercept is
        free: intercept / sd of the liability, its prior a potential), ``beta_x`` (the
        centred non-intercept covariates); deterministics ``sigma_g2``, ``intercept``,
        ``beta`` (dim
        ``covariate``, on the uncentred covariates), ``prevalence`` (implied, when
        estimated) and ``g``; observed ``y`` (dim ``sample``, per-sample log-likelihood).

    Examples
    --------
    >>> import numpy as np
    >>> from bayeslmm.bayes.models.threshold import threshold
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((40, 60)); K = Z @ Z.T / 60
    >>> m = threshold(rng.integers(0, 2, 40), K, prevalence=0.1)
    >>> sorted(v.name for v in m.free_RVs)
    ['g_raw', 'h2']
    """
    if link not in LINKS:
        raise InputError(f"link must be one of {LINKS}, got {link!r}")
    pri_in = dict(priors or {})
    unknown = set(pri_in) - set(PRIOR_NAMES)
    if unknown:
        raise InputError(f"unknown parameter(s) {sorted(unknown)} in priors; the threshold "
                         f"model has {', '.join(PRIOR_NAMES)}")
    binary = as_binary(y)
    yb = binary.y
    if np.isnan(np.asarray(yb, dtype=float)).any():
        raise InputError(f"the phenotype has {binary.n_missing} missing values; drop those "
                         "samples first")
    if decomposition is not None:
        if K is not None:
            raise InputError("give K or decomposition=, not both")
        K = decomposition
    if Z is not None:
        if K is not None:
            raise InputError("give K or Z, not both")
        data = prepare(yb, None, X)
        K = decompose_genotypes(np.asarray(Z, dtype=np.float64), samples=data.samples)
    if K is None:
        raise InputError("the threshold model needs a kernel K, a Decomposition or Z")
    if isinstance(K, list | tuple):
        raise InputError("the threshold model takes one kernel")
    if isinstance(K, Decomposition):
        data = prepare(yb, None, X)
        dec = K.aligned_to(data.samples)
    else:
        data = prepare(yb, K, X)
        dec = decompose(data.Ks[0], samples=data.samples, validated=True)
    icol = _intercept_column(data)
    if icol is None:
        raise InputError("X needs an intercept column (the threshold)")
    others = [j for j in range(data.M) if j != icol]
    Xo = data.X[:, others]
    x_mean = Xo.mean(axis=0)
    Xc = Xo - x_mean
    x_sd = Xc.std(axis=0)

    sv = RESIDUAL_VARIANCE[link]
    s_link = 1.0 if link == "probit" else 1.8  # the table's s: a unit-scale liability
    pri = {"h2": _prior(pri_in.get("h2", default_prior("threshold", "h2")), "h2")}
    fixed_K = None
    if prevalence is not None:
        if link != "probit":
            raise InputError("prevalence= places the threshold of the probit model; with "
                             "link='logit' leave it None (free intercept)")
        if isinstance(prevalence, str | Prior):
            pri["prevalence"] = _prior(prevalence, "prevalence")
        else:
            fixed_K = float(prevalence)
            if not 0.0 < fixed_K < 1.0:
                raise InputError(f"prevalence must lie strictly between 0 and 1, got "
                                 f"{fixed_K:g}")
        if "intercept" in pri_in:
            raise InputError("give prevalence= or a prior on the intercept, not both")
    else:
        pri["intercept"] = _prior(pri_in.get("intercept", default_prior(
            "threshold", "intercept", s_link)), "intercept")
    K_ref = fixed_K if fixed_K is not None else (
        float(np.mean(pri["prevalence"].rvs(4000, np.random.default_rng(0))))
        if "prevalence" in pri else None)
    if K_ref is not None:
        check = ascertainment_check(data.y, dec if isinstance(K, Decomposition)
                                    else data.Ks[0], K_ref)
        if check.uncalibrated:
            log.warning(check.message())
    coords = {"sample": list(data.samples), "eigen": np.arange(dec.rank),
              "covariate": list(data.covariates),
              "covariate_x": [data.covariates[j] for j in others]}
    U, S = dec.U, dec.S
    with pm.Model(coords=coords) as model:
        h2 = pri["h2"].create("h2")
        sg = pm.Deterministic("sigma_g2", sv * h2 / (1.0 - h2))
        z = pm.Normal("g_raw", 0.0, 1.0, dims="eigen")
        g = pt.dot(U, pt.sqrt(sg * S) * z)
        if store_g:
            g = pm.Deterministic("g", g, dims="sample")
        sd_l = pt.sqrt(sg + sv)
        if fixed_K is not None:
            mu = pm.Deterministic("intercept", float(stats.norm.ppf(fixed_K)) * sd_l)
        elif "prevalence" in pri:
            Kp = pri["prevalence"].create("prevalence")
            mu = pm.Deterministic("intercept", pt.sqrt(2.0) * pt.erfinv(2.0 * Kp - 1.0) * sd_l)
        else:
            # Sampled standardized, mu = m sd_l (m = Phi^-1 of the implied prevalence for
            # probit): for fixed h2 the map is linear, so the prior on mu enters with the
            # Jacobian sd_l. This removes the ridge between h2 and mu (mu grows with
            # sqrt(1 + sigma_g2) at a given prevalence) that slows NUTS on the (h2, mu) scale.
            m_std = pm.Flat("intercept_std")
            mu = pm.Deterministic("intercept", m_std * sd_l)
            pm.Potential("intercept_prior",
                         pm.logp(pri["intercept"].dist(), mu) + pt.log(sd_l))
            # implied population prevalence (exact for probit; normal approximation of the
            # logistic residual for logit)
            pm.Deterministic("prevalence", 0.5 * pt.erfc(-m_std / SQRT2))
        eta = mu + g
        beta_parts = [None] * data.M
        if others:
            scale = default_prior("threshold", "beta", s_link).params["sigma"] / np.where(
                x_sd > 0, x_sd, 1.0)
            bx = pm.Normal("beta_x", 0.0, scale, dims="covariate_x")
            eta = eta + pt.dot(Xc, bx)
            for k, j in enumerate(others):
                beta_parts[j] = bx[k]
            beta_parts[icol] = mu - pt.dot(bx, x_mean)
        else:
            beta_parts[icol] = mu
        pm.Deterministic("beta", pt.stack(beta_parts), dims="covariate")
        yobs = np.asarray(data.y, dtype=np.float64)
        if link == "probit":
            pm.CustomDist("y", eta, logp=_probit_logp, observed=yobs, dims="sample")
        else:
            pm.Bernoulli("y", logit_p=eta, observed=yobs, dims="sample")
    attach_info(model, ThresholdInfo(
        data=data, decomposition=dec, link=link,
        prevalence=pri.get("prevalence", fixed_K), priors=_PriorTable(pri),
        case_proportion=binary.case_proportion, x_mean=x_mean))
    return model


def threshold_logp(model: pm.Model, point: Mapping[str, Any], **compile_kwargs) -> float:
    """The model's joint log-density (with Jacobians) at a point of its value variables."""
    fn = model.compile_logp(**compile_kwargs)
    return float(fn(dict(point)))


# ---------------------------------------------------------------------- after sampling
def _stack(post: xr.Dataset, name: str) -> np.ndarray:
    da = post[name]
    return np.asarray(da.values).reshape((-1,) + da.shape[2:])


def _eta_draws(idata: xr.DataTree, info: ThresholdInfo) -> np.ndarray:
    """(S, N) linear predictors eta = X beta + g, one row per posterior draw."""
    post = idata["posterior"].to_dataset()
    beta = _stack(post, "beta")
    if "g" in post:
        g = _stack(post, "g")
    else:
        dec = info.decomposition
        sg = _stack(post, "sigma_g2").reshape(-1)
        u = np.sqrt(sg[:, None] * dec.S[None, :]) * _stack(post, "g_raw")
        g = u @ dec.U.T
    return beta @ info.data.X.T + g


def posterior_predictive_cases(idata: xr.DataTree, model: pm.Model, *,
                               seed: int | np.random.Generator | None = None
                               ) -> xr.DataTree:
    """Posterior predictive check of the case proportion of the sample.

    For each draw, y_rep_i ~ Bernoulli(F(eta_i)) with the draw's eta = X beta + g (F = Phi
    or the logistic); the replicated case proportions are compared with the observed P.

    Returns
    -------
    DataTree
        A copy with group ``posterior_predictive`` holding ``y`` (dim ``sample``) and
        ``case_proportion``; its attrs hold the observed P and the two-sided posterior
        predictive p-value ``ppp_case_proportion`` (2 min(Pr(rep >= obs), Pr(rep <= obs))).
    """
    info = find_info(model)
    if not isinstance(info, ThresholdInfo):
        raise InputError("this model was not built by bayeslmm.bayes.models.threshold")
    rng = np.random.default_rng(seed)
    eta = _eta_draws(idata, info)
    p = special.ndtr(eta) if info.link == "probit" else special.expit(eta)
    yrep = (rng.random(p.shape) < p).astype(np.int8)
    post = idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    prop = yrep.mean(axis=1)
    obs = info.case_proportion
    ppp = float(min(1.0, 2 * min(np.mean(prop >= obs), np.mean(prop <= obs))))
    ds = xr.Dataset({"y": (("chain", "draw", "sample"), yrep.reshape(C, D, -1)),
                     "case_proportion": (("chain", "draw"), prop.reshape(C, D))},
                    coords={"chain": post["chain"].values, "draw": post["draw"].values,
                            "sample": list(info.data.samples)},
                    attrs={"observed_case_proportion": obs, "ppp_case_proportion": ppp})
    out = idata.copy()
    out["posterior_predictive"] = xr.DataTree(ds)
    return out


attach_family_hooks("threshold", build=threshold, sample=sample_augmented,
                    compile=compile_threshold, supported=compiled_supported)
