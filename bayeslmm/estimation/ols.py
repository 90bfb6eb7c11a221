"""The standard linear model Y = X beta + e, e ~ N(0, sigma^2 I) (notes section 2).

beta-hat (31), sigma^2 = RSS / (N - M) (32), standard errors (38), t statistics on N - M
degrees of freedom (40), confidence intervals, the F test of a linear hypothesis R beta = r,
and the likelihood-ratio test between nested models. The result is laid out like
statsmodels' ``RegressionResults`` (``params``, ``bse``, ``conf_int()``, ``summary()``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from bayeslmm.data import as_design, as_phenotype
from bayeslmm.errors import IdentifiabilityWarning, InputError
from bayeslmm.estimation.results import Results
from bayeslmm.likelihood import tails

__all__ = ["OLSResult", "lr_test", "ols"]


@dataclass(frozen=True)
class OLSResult(Results):
    """A fitted standard linear model. Vectors are pandas Series indexed by covariate name.

    Standard errors sqrt(sigma^2 (X'X)^-1_ii) (notes eq. 38), t statistics with N - M degrees
    of freedom and their two-sided p-values (40), and t intervals come from
    :class:`~bayeslmm.estimation.results.Results` through ``df_resid``.
    """

    params: pd.Series
    cov: pd.DataFrame
    sigma2: float
    rss: float
    N: int
    M: int
    loglik: float
    fitted: np.ndarray
    X: np.ndarray
    y: np.ndarray
    #: why no standard error is reported (the covariates fit y exactly: RSS is rounding
    #: error, so SE ~1e-15 and p = 0 would be artefacts), else None
    perfect_fit: str | None = None

    @property
    def df_resid(self) -> int:
        return self.N - self.M

    @property
    def nobs(self) -> int:
        return self.N

    @property
    def llf(self) -> float:
        """Maximised (ML) log-likelihood, as statsmodels' ``llf``."""
        return self.loglik

    def cov_params(self) -> pd.DataFrame:
        """sigma^2 (X'X)^-1, labelled by covariate."""
        return self.cov

    @property
    def sigma2_ml(self) -> float:
        """ML estimate RSS / N (biased; notes section 2)."""
        return self.rss / self.N

    @property
    def resid(self) -> np.ndarray:
        return self.y - self.fitted

    def f_test(self, R, r=None) -> dict:
        """F test of the linear hypothesis R beta = r.

        F = (R b - r)' [R (X'X)^-1 R']^-1 (R b - r) / (q sigma^2) ~ F_{q, N-M}; with q = 1
        this is the square of the t statistic (Casella / Berger 5.3.8).
        """
        R = np.atleast_2d(np.asarray(R, dtype=np.float64))
        if R.shape[1] != self.M:
            raise InputError(f"R has {R.shape[1]} columns but the model has {self.M} coefficients")
        q = R.shape[0]
        r = np.zeros(q) if r is None else np.atleast_1d(np.asarray(r, dtype=np.float64))
        diff = R @ self.params.values - r
        middle = R @ self.cov.values @ R.T
        F = float(diff @ np.linalg.solve(middle, diff)) / q
        return {"F": F, "df_num": q, "df_den": self.df_resid,
                "p": float(tails.f_sf(F, q, self.df_resid))}

    def summary(self) -> pd.DataFrame:
        """Coefficient table: estimate, SE, t, p and the 95% interval."""
        ci = self.conf_int()
        return pd.DataFrame({"beta": self.params, "se": self.bse, "t": self.tvalues,
                             "p": self.pvalues, "ci_lower": ci["lower"], "ci_upper": ci["upper"]})

    def __repr__(self) -> str:
        return (f"OLSResult(N={self.N}, M={self.M}, sigma2={self.sigma2:.6g})\n"
                f"{self.summary().to_string()}")


def ols(y, X=None) -> OLSResult:
    """Fit the standard linear model by least squares (notes eq. 31, 32, 38, 40).

    Parameters
    ----------
    y : array_like, shape (N,)
        Phenotype (numpy, pandas or xarray).
    X : array_like, shape (N, M), optional
        Covariates; default an intercept. A rank-deficient X raises
        :class:`~bayeslmm.errors.CollinearityError` naming the redundant columns.

    Returns
    -------
    OLSResult

    Examples
    --------
    >>> import numpy as np, bayeslmm
    >>> x = np.arange(10.0); y = 1 + 2 * x + np.sin(x)
    >>> fit = bayeslmm.ols(y, np.column_stack([np.ones(10), x]))
    >>> round(fit.params["x1"], 3)
    1.977
    """
    y_arr, _ = as_phenotype(y)
    X_arr, names, _ = as_design(X, y_arr.size)
    N, M = X_arr.shape
    if N <= M:
        raise InputError(f"{N} samples for {M} coefficients: no residual degrees of freedom")
    # QR rather than normal equations: X'X squares the condition number.
    Q, R = linalg.qr(X_arr, mode="economic")
    beta = linalg.solve_triangular(R, Q.T @ y_arr)
    fitted = X_arr @ beta
    rss = float(np.sum((y_arr - fitted) ** 2))
    sigma2 = rss / (N - M)
    Rinv = linalg.solve_triangular(R, np.eye(M))
    XtX_inv = Rinv @ Rinv.T
    loglik = -0.5 * N * (np.log(2 * np.pi * rss / N) + 1)
    cov = sigma2 * XtX_inv
    # RSS at rounding level (the same test as the mixed models' check_data): the residual
    # variance is 0, so SE, t, p and intervals would be artefacts of rounding; NaN instead.
    tss = float(np.sum((y_arr - y_arr.mean()) ** 2)) or float(np.sum(y_arr**2))
    perfect = None
    if rss <= 1e-20 * tss:
        perfect = (f"the covariates fit y exactly (RSS {rss:.3g}, total {tss:.3g}): no residual "
                   "variance is left, so no standard error, t or p-value")
        warnings.warn(f"perfect fit: {perfect}", IdentifiabilityWarning, stacklevel=2)
        cov = np.full_like(cov, np.nan)
    res = OLSResult(
        params=pd.Series(beta, index=names, name="beta"),
        cov=pd.DataFrame(cov, index=names, columns=names),
        sigma2=sigma2, rss=rss, N=N, M=M, loglik=float(loglik), fitted=fitted, X=X_arr,
        y=y_arr, perfect_fit=perfect)
    return res


def lr_test(restricted: OLSResult, full: OLSResult) -> dict:
    """Likelihood-ratio test of a restricted model nested in a full one.

    LR = 2 (l_full - l_restricted) with ML log-likelihoods, ~ chi2 with M_full - M_restricted
    degrees of freedom (notes 2.3).
    """
    if restricted.N != full.N:
        raise InputError(f"models fitted on different samples ({restricted.N} vs {full.N})")
    df = full.M - restricted.M
    if df <= 0:
        raise InputError("the full model must have more coefficients than the restricted one")
    LR = 2 * (full.loglik - restricted.loglik)
    return {"LR": float(LR), "df": df, "p": float(tails.chi2_sf(LR, df))}
