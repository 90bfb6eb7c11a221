"""The one results base: statsmodels' vocabulary for every fit.

statsmodels' ``LikelihoodModelResults`` gives every fitted model the same words -- ``params``,
``bse``, ``cov_params()``, ``tvalues``, ``pvalues``, ``conf_int(alpha=)``, ``llf``, ``nobs``,
``summary()`` -- and a user who knows one result knows them all. :class:`Results` does the
same here: a fit supplies its labelled ``params``, their sampling covariance ``cov_params()``,
``llf`` and ``nobs``; the standard errors, Wald statistics, p-values and intervals follow from
those by one rule (below), which a fit changes only where its statistics differ (Student's t
for OLS, a boundary null for variance components).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.likelihood import tails

__all__ = ["Results"]


class Results:
    """Base of every fit (OLS, REML/ML, several traits, Krylov, liability-scale h2).

    Subclasses define ``params`` (a labelled :class:`pandas.Series`), ``cov_params()`` (a
    labelled :class:`pandas.DataFrame`), ``llf`` and ``nobs``. Set ``df_resid`` (an int) to
    use Student's t with that many degrees of freedom, as OLS does (notes eq. 40); otherwise
    the reference distribution is the standard normal (Wald). Parameters listed by
    :meth:`_boundary_params` have no Wald p-value (NaN): their null value lies on the
    boundary of the parameter space, where the likelihood-ratio test is the one to use.
    """

    #: residual degrees of freedom for Student's t; None: the normal (asymptotic Wald)
    df_resid: int | None = None
    #: name of the statistic in ``tvalues`` ("t" with df_resid, else "z")
    _stat_name = "z"

    # Subclasses define params, cov_params(), llf and nobs. They are not declared here: a
    # dataclass subclass would take a base-class attribute of a field's name for its default.

    def _boundary_params(self) -> list[str]:
        """Names of parameters whose null value is on the boundary (no Wald p-value)."""
        return []

    def _quantile(self, alpha: float) -> float:
        if not 0 < alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
        if self.df_resid is not None:
            return float(tails.t_ppf(1 - alpha / 2, self.df_resid))
        return float(tails.norm_ppf(1 - alpha / 2))

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params``: sqrt of the diagonal of ``cov_params()``; NaN
        (never 0) where the covariance gives no positive variance (a parameter fixed on its
        boundary, a singular information matrix)."""
        v = np.diag(self.cov_params().values).astype(float)
        with np.errstate(invalid="ignore"):
            se = np.where(v > 0, np.sqrt(np.where(v > 0, v, 0.0)), np.nan)
        return pd.Series(se, index=self.params.index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        """params / bse (a t statistic with ``df_resid``, else a Wald z)."""
        name = "t" if self.df_resid is not None else self._stat_name
        return (self.params / self.bse).rename(name)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of ``tvalues``; NaN for boundary parameters."""
        t = np.abs(self.tvalues.values)
        p = (2 * tails.t_sf(t, self.df_resid) if self.df_resid is not None
             else 2 * tails.norm_sf(t))
        out = pd.Series(p, index=self.params.index, name="pvalues")
        out[out.index.isin(self._boundary_params())] = np.nan
        return out

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals params -/+ q bse, q the 1 - alpha/2 quantile of t(df_resid) or of
        the normal; columns ``lower`` and ``upper``."""
        q = self._quantile(alpha)
        p, se = self.params, self.bse
        return pd.DataFrame({"lower": p - q * se, "upper": p + q * se})

    def summary(self) -> pd.DataFrame:
        """Coefficient table: estimate, SE, statistic, p-value and the 95% interval."""
        ci = self.conf_int()
        return pd.DataFrame({"estimate": self.params, "se": self.bse,
                             self.tvalues.name: self.tvalues, "p": self.pvalues,
                             "ci_lower": ci["lower"], "ci_upper": ci["upper"]})
