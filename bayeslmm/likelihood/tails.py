"""Tail probabilities and quantiles of the reference distributions of the tests (chi2, F,
Student t, standard normal), from :mod:`scipy.special`: the functions ``scipy.stats`` itself
evaluates (``chi2.sf`` is ``chdtrc``, ``f.sf`` is ``fdtrc``, ``t.sf`` is ``stdtr`` at -t,
``norm.sf`` is ``ndtr`` at -x), without the ~0.7 s that importing ``scipy.stats`` costs every
command. Arrays in, arrays out; ``tests/likelihood/test_tails.py`` checks them against
``scipy.stats``."""

from __future__ import annotations

import numpy as np
from scipy import special

from bayeslmm.likelihood.constants import LOG2PI

__all__ = ["chi2_isf", "chi2_ppf", "chi2_sf", "f_sf", "norm_isf", "norm_logpdf", "norm_ppf",
           "norm_sf", "t_ppf", "t_sf"]


def chi2_sf(x, df):
    """P(chi2_df > x)."""
    return special.chdtrc(df, x)


def chi2_isf(p, df):
    """The x with P(chi2_df > x) = p."""
    return special.chdtri(df, p)


def chi2_ppf(q, df):
    """The x with P(chi2_df <= x) = q (q below 1: profile-likelihood and LRT cut-offs)."""
    return 2.0 * special.gammaincinv(np.multiply(df, 0.5), q)


def f_sf(x, d1, d2):
    """P(F(d1, d2) > x): the reference of GEMMA's Wald and score tests, and of OLS F-tests."""
    return special.fdtrc(d1, d2, x)


def t_sf(t, df):
    """P(t_df > t)."""
    return special.stdtr(df, np.negative(t))


def t_ppf(q, df):
    """The t with P(t_df <= t) = q."""
    return special.stdtrit(df, q)


def norm_sf(x):
    """P(Z > x) for a standard normal Z."""
    return special.ndtr(np.negative(x))


def norm_ppf(q):
    """The x with P(Z <= x) = q."""
    return special.ndtri(q)


def norm_isf(p):
    """The x with P(Z > x) = p."""
    return -special.ndtri(p)


def norm_logpdf(x):
    """log of the standard normal density."""
    return -0.5 * (np.square(x) + LOG2PI)
