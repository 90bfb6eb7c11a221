"""Prior log-densities with PyMC's transforms, compiled by numba, for the hand-written models.

The hand-written log-densities (:mod:`bayeslmm.bayes.compiled.marginal`, one kernel;
:mod:`bayeslmm.bayes.compiled.multitrait`, two traits) sample the unconstrained values PyMC would
sample and add each prior's log-density plus the log-Jacobian of PyMC's default transform:

* a positive parameter x = exp(t) (PyMC's ``log`` transform): log p(x) + t;
* a parameter on (lo, hi) within (0, 1), x = lo + (hi - lo) expit(t) (``logodds`` for Beta,
  ``interval`` for Uniform): log p(x) + log(hi - lo) + log expit(t) + log expit(-t).

A prior is handed to the compiled code as one row ``[code, p0, p1, p2, log constant]``
(:func:`prior_row`, from the family records of :mod:`bayeslmm.bayes.priors`). The numba
functions are cached on disk (``cache=True``): compiled once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bayeslmm.bayes.priors import FAMILIES, Prior

__all__ = ["PRIOR_SLOTS", "expit_pair", "positive_prior", "prior_row", "unit_prior"]

PRIOR_SLOTS = 5  # code, three parameters, log normalising constant


def prior_row(prior: Prior, support: str | None = None) -> np.ndarray | None:
    """``[code, p0, p1, p2, log constant]`` of a parsed prior, or None if not covered.

    Parameters
    ----------
    prior : Prior
    support : {"positive", "unit"}, optional
        The support the parameter needs; a family with another support is not covered.
    """
    fam = FAMILIES.get(prior.family)
    if fam is None or fam.code is None:
        return None
    if support is not None and fam.support != support:
        return None
    if prior.family == "Uniform" and not (0.0 <= prior.params["lower"]
                                          < prior.params["upper"] <= 1.0):
        return None
    return np.array([fam.code, *fam.compiled(prior.params)], dtype=np.float64)


@njit(cache=True, error_model="numpy")
def positive_prior(p, t):
    """log p(x) + t (the log transform's Jacobian) and its t-derivative, x = exp(t)."""
    code = int(p[0])
    x = np.exp(t)
    lp, dlp = 0.0, 0.0
    if code == 1:  # HalfNormal(sigma)
        s2 = p[1] * p[1]
        lp = -0.5 * x * x / s2
        dlp = -x * x / s2
    elif code == 2:  # HalfStudentT(nu, sigma)
        nu, s2 = p[1], p[2] * p[2]
        lp = -0.5 * (nu + 1.0) * np.log1p(x * x / (nu * s2))
        dlp = -(nu + 1.0) * x * x / (nu * s2 + x * x)
    elif code == 3:  # HalfCauchy(beta)
        b2 = p[1] * p[1]
        lp = -np.log1p(x * x / b2)
        dlp = -2.0 * x * x / (b2 + x * x)
    elif code == 4:  # InverseGamma(alpha, beta), with exp(-t) for 1/x (no overflow)
        e = np.exp(-t)
        lp = -(p[1] + 1.0) * t - p[2] * e
        dlp = -(p[1] + 1.0) + p[2] * e
    elif code == 5:  # Exponential(lam)
        lp = -p[1] * x
        dlp = -p[1] * x
    elif code == 6:  # Gamma(alpha, beta)
        lp = (p[1] - 1.0) * t - p[2] * x
        dlp = (p[1] - 1.0) - p[2] * x
    elif code == 7:  # LogNormal(mu, sigma)
        s2 = p[2] * p[2]
        lp = -t - 0.5 * (t - p[1]) ** 2 / s2
        dlp = -1.0 - (t - p[1]) / s2
    elif code == 9:  # Jeffreys, 1/x
        lp = -t
        dlp = -1.0
    # code 8, HalfFlat: 0
    return lp + p[4] + t, dlp + 1.0


@njit(cache=True, error_model="numpy")
def expit_pair(t):
    """(expit(t), expit(-t)) without cancellation at either end."""
    if t >= 0:
        e = np.exp(-t)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = np.exp(t)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@njit(cache=True, error_model="numpy")
def unit_prior(p, t):
    """x = lo + (hi - lo) expit(t): log p(x) + log Jacobian and its t-derivative, x, 1 - x
    and dx/dt."""
    s, s1 = expit_pair(t)
    if int(p[0]) == 20:  # Beta(alpha, beta) on (0, 1)
        width = 1.0
        h2, c2 = s, s1
        lp = (p[1] - 1.0) * np.log(h2) + (p[2] - 1.0) * np.log(c2) + p[4]
        dlp = (p[1] - 1.0) * c2 - (p[2] - 1.0) * h2
    else:  # Uniform(lo, hi) with 0 <= lo < hi <= 1
        width = p[2] - p[1]
        h2 = p[1] + width * s
        c2 = (1.0 - p[2]) + width * s1
        lp = p[4]
        dlp = 0.0
    # log |dx/dt| = log(width) + log s + log s1, whose derivative is s1 - s.
    lj = np.log(width) + np.log(s) + np.log(s1)
    return lp + lj, dlp + s1 - s, h2, c2, width * s * s1
