"""Posterior draws: extraction, highest-density intervals and bounded densities.

Shared by the comparison, the sensitivity study and the figures, and free of PyMC so the
figures do not import the sampler.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslmm.errors import InputError

__all__ = ["INTERVAL", "SUMMARY_COLUMNS", "credible_interval", "hdi", "interval_columns",
           "interval_label", "interval_prob", "posterior_draws", "posterior_summary",
           "reflected_kde", "set_interval"]

_SAMPLE_DIMS = ("chain", "draw")
#: dimensions a summarised variable may have besides (chain, draw)
_SUMMARY_DIMS = {"covariate", "component", "trait"}
#: sampler coordinates, not model parameters: marginal_grm's standardised beta, the threshold
#: model's standardised intercept, the two-trait model's correlations on the unit interval
_SAMPLER_COORDINATES = frozenset({"beta_z", "intercept_std", "r_g_unit", "r_e_unit"})


def posterior_draws(posterior, name: str) -> np.ndarray:
    """All draws of a posterior variable, chains pooled: shape (draws, *rest).

    ``posterior`` is an ArviZ DataTree (its ``posterior`` group is used), the posterior
    group itself, a Dataset, or already an array of draws (returned as is).
    """
    if isinstance(posterior, np.ndarray):
        return np.asarray(posterior, dtype=float)
    post = posterior
    if isinstance(post, xr.DataTree) and "posterior" in post.children:
        post = post["posterior"]
    post = post.to_dataset() if isinstance(post, xr.DataTree) else post
    if name not in post:
        raise InputError(f"the posterior has no variable {name!r}; it has {list(post.data_vars)}")
    da = post[name]
    other = [d for d in da.dims if d not in _SAMPLE_DIMS]
    return da.transpose(*_SAMPLE_DIMS, *other).values.reshape(-1, *[da.sizes[d] for d in other])


class IntervalConvention:
    """The one interval convention of the package's tables, figures and comparisons: its
    kind ("hdi", highest density, or "eti", equal-tailed) and its probability. Every table
    and legend that shows an interval names it with :func:`interval_label`."""

    def __init__(self, kind: str = "hdi", prob: float = 0.95):
        self.kind, self.prob = kind, prob

    def __repr__(self) -> str:
        return f"IntervalConvention({self.kind!r}, {self.prob})"


#: the convention in force (default: 95% HDI); change it with :func:`set_interval`
INTERVAL = IntervalConvention()


def set_interval(prob: float | None = None, kind: str | None = None) -> IntervalConvention:
    """Set the package-wide interval convention, e.g. ``set_interval(0.89, "eti")``."""
    if prob is not None:
        if not 0.0 < float(prob) < 1.0:
            raise InputError(f"an interval's probability must be in (0, 1), got {prob!r}")
        INTERVAL.prob = float(prob)
    if kind is not None:
        if kind not in ("hdi", "eti"):
            raise InputError(f"interval kind must be 'hdi' or 'eti', got {kind!r}")
        INTERVAL.kind = kind
    return INTERVAL


def interval_prob(prob: float | None = None) -> float:
    """``prob``, or the convention's probability when None."""
    return INTERVAL.prob if prob is None else float(prob)


def interval_label(prob: float | None = None) -> str:
    """The name of an interval under the convention, e.g. "95% HDI"."""
    return f"{interval_prob(prob):.0%} {INTERVAL.kind.upper()}"


def credible_interval(draws: np.ndarray, prob: float | None = None) -> tuple[float, float]:
    """The interval of the convention (HDI or equal-tailed) holding ``prob`` of the draws."""
    p = interval_prob(prob)
    if INTERVAL.kind == "eti":
        x = np.asarray(draws, dtype=float)
        lo, hi = np.quantile(x[np.isfinite(x)], [(1 - p) / 2, (1 + p) / 2])
        return float(lo), float(hi)
    return hdi(draws, p)


def hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of the (finite) draws: ArviZ's HDI."""
    import arviz_stats

    x = np.asarray(draws, dtype=float)
    lo, hi = np.asarray(arviz_stats.hdi(x[np.isfinite(x)], prob=prob))
    return float(lo), float(hi)


def reflected_kde(draws: np.ndarray, grid: np.ndarray, lower: float | None = 0.0,
                  upper: float | None = None) -> np.ndarray:
    """Gaussian KDE of ``draws`` on ``grid``, reflected at the bounds, so that the density of
    a variance or of h2 piled against 0 (or 1) is not drawn falling to zero there.

    Fewer than two distinct finite draws give a zero density.
    """
    from scipy.stats import gaussian_kde

    x = np.asarray(draws, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return np.zeros_like(grid, dtype=float)
    kde = gaussian_kde(x)
    dens = kde(grid)
    if lower is not None:
        dens = dens + kde(2 * lower - grid)
    if upper is not None:
        dens = dens + kde(2 * upper - grid)
    return dens


def interval_columns() -> tuple[str, str]:
    """The summary table's interval columns under the convention, e.g. ("hdi95_lower",
    "hdi95_upper")."""
    name = f"{INTERVAL.kind}{round(100 * INTERVAL.prob):d}"
    return f"{name}_lower", f"{name}_upper"


def summary_columns() -> list[str]:
    """The columns of :func:`posterior_summary`, in order (the index is ``parameter``)."""
    return ["mean", "sd", *interval_columns(), "ess_bulk", "ess_tail", "r_hat", "mcse_mean",
            "mcse_sd"]


#: the layout of every ``.posterior.tsv`` (the interval's two columns as the convention names
#: them: :func:`interval_columns`)
SUMMARY_COLUMNS = ("mean", "sd", "<interval>_lower", "<interval>_upper", "ess_bulk",
                   "ess_tail", "r_hat", "mcse_mean", "mcse_sd")


def posterior_summary(idata, var_names=None):
    """The one summary table of a posterior, whichever engine or model made it.

    Rows ``parameter`` (``beta[intercept]``, ``h2[G1]``...), columns :data:`SUMMARY_COLUMNS`:
    mean, sd, the interval of the package's convention, bulk and tail ESS, R-hat and the
    Monte Carlo SEs of the mean and SD, all from :func:`arviz_stats.summary`. Without
    ``var_names``: every scalar variable and those over covariates, components or traits,
    less the sampler's own coordinates and a threshold model's ``intercept`` (it is
    ``beta[intercept]``). Where the posterior group's attrs give the Monte Carlo error of the
    likelihood itself (``mean_mc_se``, ``sd_mc_se``: the Krylov engine's SLQ), it is added in
    quadrature to the draws' MCSE of ``h2``.

    Returns
    -------
    pandas.DataFrame
    """
    import arviz_stats

    post = idata["posterior"]
    if var_names is None:
        var_names = [v for v in post.data_vars if v not in _SAMPLER_COORDINATES
                     and set(post[v].dims) <= {*_SAMPLE_DIMS, *_SUMMARY_DIMS}]
        if "beta" in var_names and "intercept" in var_names and "intercept" in \
                post["beta"].coords.get("covariate", xr.DataArray([])).values:
            var_names.remove("intercept")
    table = arviz_stats.summary(idata, var_names=list(var_names), ci_prob=INTERVAL.prob,
                                ci_kind=INTERVAL.kind, round_to="none")
    lb, ub = (f"{INTERVAL.kind}{round(100 * INTERVAL.prob):d}_{s}" for s in ("lb", "ub"))
    table = table.rename(columns=dict(zip((lb, ub), interval_columns(), strict=True)))
    for col, key in (("mcse_mean", "mean_mc_se"), ("mcse_sd", "sd_mc_se")):
        if key in post.attrs and "h2" in table.index:
            table.loc["h2", col] = float(np.hypot(table.loc["h2", col], post.attrs[key]))
    table.index.name = "parameter"
    return table[summary_columns()].astype(float)
