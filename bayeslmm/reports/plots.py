"""Figures of bayeslmm, in one module (matplotlib; importing it leaves the backend as it is:
the command line chooses Agg itself).

The posterior density and its credible interval are drawn by ArviZ
(:func:`arviz_plots.plot_dist`: ArviZ's boundary-corrected KDE and the package's interval
convention); this module adds what ArviZ has no visual for and lays the figure out for a
paper:

* the prior's exact density (its pdf, not a KDE of prior draws), in a colour fixed per prior
  (:func:`prior_colour`), so the same prior looks the same in every figure and run;
* the REML estimate and its interval (:class:`Mark`; on the liability scale for the
  threshold model), and the posterior mean as a line of its own style beside it;
* the x-axis fitted to the posterior (its central 99.9% mass) and the REML interval, not
  fixed to [0, 1], so a posterior of SD 0.03 is not a spike;
* the legend below the axes, outside the data, naming the interval convention;
* one column of a two-column paper by default (3.5 x 2.6 in per panel at 300 dpi), and
  PNG, SVG or PDF (:data:`FORMATS`).

:func:`plot_h2_posterior` (one trait, one kernel or several, the threshold model, the
quadrature) and :func:`plot_multitrait_posterior` (two traits: h2 of each and r_g) are the
figures ``sample`` writes; :func:`plot_compare` (REML against the posterior, ``compare``)
and :func:`plot_sensitivity` (h2 under each prior set, ``sensitivity``) follow the same
layout.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from bayeslmm.bayes.summaries import INTERVAL, interval_label, interval_prob, reflected_kde
from bayeslmm.errors import InputError
from bayeslmm.reports.formats import FIGURE_DPI, FIGURE_FORMATS, FIGURE_SIZE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DPI", "FIGSIZE", "FORMATS", "Mark", "Panel", "close", "fitted_range",
           "plot_compare", "plot_h2_posterior", "plot_multitrait_posterior", "plot_panels",
           "plot_sensitivity", "prior_colour", "reml_marks"]

FIGSIZE, DPI, FORMATS = FIGURE_SIZE, FIGURE_DPI, FIGURE_FORMATS
#: the posterior's share of mass the x-axis covers at least
AXIS_MASS = 0.999

# Fixed colours: the same role is the same colour in every figure.
COLOURS = {"posterior": "#1f77b4", "mean": "#0b3c6b", "reml": "#d62728", "true": "black",
           "extra": "#2ca02c"}
#: prior colours, chosen by the prior's text (:func:`prior_colour`), none of them a role's
PRIOR_PALETTE = ("#7f7f7f", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
                 "#ff7f0e")


def prior_colour(prior: Any) -> str:
    """The colour of a prior in every figure: fixed by its text (a CRC of ``str(prior)``,
    stable across runs and processes, unlike Python's salted ``hash``)."""
    return PRIOR_PALETTE[zlib.crc32(str(prior).encode()) % len(PRIOR_PALETTE)]


@dataclass(frozen=True)
class Mark:
    """A frequentist estimate drawn over a posterior: a line at ``estimate`` and its interval
    ``ci`` shaded, labelled ``"{label} {estimate} (SE {se})"`` and ``"{label} {ci_name}"``."""

    estimate: float
    se: float
    ci: tuple[float, float]
    label: str = "REML"
    ci_name: str = "95% CI"


def reml_marks(fit: Any, *, prevalence: float | None = None,
               case_proportion: float | None = None) -> list[Mark]:
    """One :class:`Mark` per genetic component of a one-trait REML fit: h2 with the
    profile-likelihood 95% CI where the fit has one (one kernel), else h2 +- 1.96 SE clipped
    to [0, 1]. With ``prevalence``, h2 on the liability scale (Lee et al. 2011, as GCTA's
    --prevalence), the scale of the threshold model."""
    if prevalence is not None:
        lia = fit.liability_h2(prevalence, case_proportion)
        h2, se = np.atleast_1d(lia.h2), np.atleast_1d(lia.h2_se)
        return [Mark(float(h), float(s), (max(h - 1.96 * s, 0.0), min(h + 1.96 * s, 1.0)),
                     "REML (liability)", "95% Wald CI") for h, s in zip(h2, se, strict=True)]
    h2, se = np.atleast_1d(fit.h2), np.atleast_1d(fit.h2_se)
    if fit.h2_ci is not None and h2.size == 1:
        return [Mark(float(h2[0]), float(se[0]), tuple(map(float, fit.h2_ci)),
                     ci_name="95% profile CI")]
    return [Mark(float(h), float(s), (max(h - 1.96 * s, 0.0), min(h + 1.96 * s, 1.0)),
                 ci_name="95% Wald CI") for h, s in zip(h2, se, strict=True)]


@dataclass(frozen=True)
class Panel:
    """One density panel: the posterior variable ``var`` at ``sel`` (e.g.
    ``{"component": "G1"}``), its axis label, its support, and what is drawn over it."""

    var: str
    label: str
    bounds: tuple[float, float] = (0.0, 1.0)
    sel: Mapping[str, Any] | None = None
    prior: Any = None
    mark: Mark | None = None
    true: float | None = None
    extra: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None


def fitted_range(draws: np.ndarray, bounds: tuple[float, float], *, marks: Sequence[float]
                 = (), mass: float = AXIS_MASS, pad: float = 0.08) -> tuple[float, float]:
    """The x-range of a panel: the central ``mass`` of the draws and every value in
    ``marks`` (the REML estimate and interval, the truth), widened by ``pad`` of its width
    on each side and clipped to the support ``bounds``."""
    x = np.asarray(draws, dtype=float)
    x = x[np.isfinite(x)]
    lo, hi = np.quantile(x, [(1 - mass) / 2, (1 + mass) / 2])
    pts = [v for v in marks if v is not None and np.isfinite(v)]
    lo, hi = min([lo, *pts]), max([hi, *pts])
    width = max(hi - lo, 1e-3 * (bounds[1] - bounds[0]))
    return max(lo - pad * width, bounds[0]), min(hi + pad * width, bounds[1])


def _as_tree(idata: Any, var: str) -> xr.DataTree:
    """A DataTree with ``posterior[var]``, from a tree or from bare draws (n,) or (n, k)."""
    if isinstance(idata, xr.DataTree):
        return idata
    x = np.asarray(idata, dtype=float)
    dims = ("chain", "draw") if x.ndim == 1 else ("chain", "draw", "component")
    return xr.DataTree.from_dict({"posterior": xr.Dataset({var: (dims, x[None])})})


def _panel_draws(tree: xr.DataTree, panel: Panel) -> np.ndarray:
    post = tree["posterior"].to_dataset()
    if panel.var not in post:
        raise InputError(f"the posterior has no variable {panel.var!r}; it has "
                         f"{list(post.data_vars)}")
    da = post[panel.var].sel(panel.sel or {})
    return da.to_numpy().ravel()


def plot_panels(idata: Any, panels: Sequence[Panel], *, prob: float | None = None,
                figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI,
                title: str | None = None, path: str | os.PathLike[str] | None = None,
                fmt: str | None = None) -> Figure:
    """Posterior densities side by side (one :class:`Panel` each), drawn by
    :func:`arviz_plots.plot_dist` with the interval convention, the rest over them.

    ``figsize`` is one panel's; the figure is ``len(panels)`` panels wide. ``fmt`` (one of
    :data:`FORMATS`; default from ``path``'s suffix, else PNG) and ``dpi`` are the file's.
    """
    import arviz_plots

    fmt = _format(path, fmt)
    p = interval_prob(prob)
    names = list(dict.fromkeys(pn.var for pn in panels))
    with plt.rc_context({"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7,
                         "xtick.labelsize": 6, "ytick.labelsize": 6}):
        pc = arviz_plots.plot_dist(
            idata, var_names=names, kind="kde", ci_kind=INTERVAL.kind, ci_prob=p,
            point_estimate="mean", backend="matplotlib",
            visuals={"point_estimate_text": False, "point_estimate": False, "title": False,
                     "remove_axis": False},
            figure_kwargs={"figsize": (figsize[0] * len(panels), figsize[1]), "dpi": dpi,
                           "layout": "constrained"})
        fig = pc.viz["figure"].item()
        plot = pc.viz["plot"]
        for pn in panels:
            ax = plot[pn.var].sel(pn.sel or {}).item()
            ci = pc.viz["credible_interval"][pn.var].sel(pn.sel or {}).item()
            _decorate(ax, ci, pn, _panel_draws(idata, pn), p)
        # arviz_plots draws the panels of each variable in the order given; keep that one
        if title:
            fig.suptitle(title, fontsize=7)
        if path is not None:
            fig.savefig(path, format=fmt, dpi=dpi)
    return fig


def _decorate(ax: Axes, ci_line: Any, pn: Panel, x: np.ndarray, prob: float) -> None:
    dist = ax.lines[0]
    dist.set_color(COLOURS["posterior"])
    dist.set_label("posterior")
    dist.set_gid("posterior")
    lo_ci, hi_ci = (float(v) for v in np.sort(ci_line.get_xdata())[[0, -1]])
    ci_line.set_color(COLOURS["posterior"])
    ci_line.set_linewidth(3.0)  # a bar on the axis, visible under the density
    ci_line.set_label(f"{interval_label(prob)} [{lo_ci:.3f}, {hi_ci:.3f}]")
    mean = float(np.mean(x))
    # the posterior mean dashed and dark, the REML estimate solid and red: either stays
    # visible when the two coincide
    ax.axvline(mean, color=COLOURS["mean"], ls=(0, (3, 3)), lw=1.0, zorder=4,
               label=f"posterior mean {mean:.3g}")
    marks = [pn.true]
    if pn.mark is not None:
        m = pn.mark
        ax.axvspan(*m.ci, color=COLOURS["reml"], alpha=0.12, lw=0,
                   label=f"{m.label} {m.ci_name} [{m.ci[0]:.3g}, {m.ci[1]:.3g}]")
        ax.axvline(m.estimate, color=COLOURS["reml"], lw=1.8, zorder=3,
                   label=f"{m.label} {m.estimate:.3g} (SE {m.se:.2g})")
        marks += [m.estimate, *m.ci]
    if pn.true is not None:
        ax.axvline(pn.true, color=COLOURS["true"], ls=(0, (1, 1.5)), lw=1.0,
                   label=f"true {pn.true:g}")
    a, b = fitted_range(x, pn.bounds, marks=marks)
    grid = np.linspace(a, b, 400)
    top = float(np.nanmax(dist.get_ydata()))
    for c, (name, (gx, gy)) in enumerate((pn.extra or {}).items()):
        ax.plot(gx, gy, lw=1.0, ls="--", color=COLOURS["extra"] if c == 0 else f"C{c + 4}",
                label=name)
    if pn.prior is not None:
        f = (lambda g: np.exp(pn.prior.logpdf(g))) if hasattr(pn.prior, "logpdf") \
            else pn.prior
        with np.errstate(all="ignore"):
            dens = np.asarray(f(grid), dtype=float)
        dens = np.where(np.isfinite(dens), dens, np.nan)
        ax.plot(grid, dens, color=prior_colour(pn.prior), lw=1.0, ls=":",
                label=f"prior {pn.prior}", gid="prior")
        if np.any(np.isfinite(dens)):
            top = max(top, min(float(np.nanmax(dens)), 3 * top))
    ax.set_xlim(a, b)
    ax.set_ylim(0, 1.08 * top)
    ax.set_xlabel(pn.label)
    ax.set_ylabel("density")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2, fontsize=5,
              frameon=False, handlelength=1.6, columnspacing=1.0)


def _format(path: str | os.PathLike[str] | None, fmt: str | None) -> str:
    if fmt is None:
        suffix = os.fspath(path).rsplit(".", 1)[-1].lower() if path is not None else ""
        fmt = suffix if suffix in FORMATS else "png"
    if fmt not in FORMATS:
        raise InputError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def plot_h2_posterior(
    idata: Any,
    *,
    prior: Any = None,
    reml: Any = None,
    marks: Sequence[Mark] | None = None,
    true_h2: float | None = None,
    extra: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    hdi_prob: float | None = None,
    var: str = "h2",
    xlabel: str = "h2",
    path: str | os.PathLike[str] | None = None,
    figsize: tuple[float, float] = FIGSIZE,
    dpi: int = DPI,
    fmt: str | None = None,
    title: str | None = None,
) -> Figure:
    """Posterior density of h2 with the prior's exact density, the credible interval, the
    posterior mean and the REML estimate with its interval; one panel per component.

    Parameters
    ----------
    idata : xarray.DataTree or ndarray
        The result of :func:`bayeslmm.bayes.sample` (its ``posterior`` group holds ``var``,
        over ``component`` for several kernels), or the draws (n_draws,) or (n_draws, k).
    prior : Prior, callable or None
        The prior of h2: a :class:`bayeslmm.bayes.priors.Prior` (its pdf is drawn) or a
        function ``x -> density``. None: no prior curve.
    reml : VarianceComponentFit, optional
        Drawn by :func:`reml_marks` (observed scale); ``marks`` gives them directly
        (e.g. on the liability scale).
    true_h2 : float, optional
        The simulated truth (demo data), a dotted line.
    extra : mapping label -> (grid, density), optional
        Further curves, e.g. the exact quadrature posterior.
    hdi_prob : float, optional
        Mass of the credible interval (default: the package's convention).
    var, xlabel : str
        The posterior variable and its axis label (``"liability h2"`` for the threshold
        model); several components are labelled ``"{xlabel} ({name})"``.
    path, fmt, figsize, dpi
        Save there as PNG, SVG or PDF; ``figsize`` is one panel's, in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tree = _as_tree(idata, var)
    post = tree["posterior"]
    if var not in post.data_vars:
        raise InputError(f"the posterior has no variable {var!r}; it has "
                         f"{list(post.data_vars)}")
    other = [d for d in post[var].dims if d not in ("chain", "draw")]
    if marks is None and reml is not None:
        marks = reml_marks(reml)
    if not other:
        sels: list[dict] = [{}]
        labels = [xlabel]
    else:
        dim = other[0]
        names = [str(v) for v in post[var][dim].values]
        sels = [{dim: v} for v in post[var][dim].values]
        labels = [f"{xlabel} ({n})" for n in names]
    panels = [Panel(var, lbl, (0.0, 1.0), sel, prior,
                    None if not marks else marks[j], true_h2, extra)
              for j, (sel, lbl) in enumerate(zip(sels, labels, strict=True))]
    return plot_panels(tree, panels, prob=hdi_prob, figsize=figsize, dpi=dpi,
                       title=title, path=path, fmt=fmt)


def plot_multitrait_posterior(idata: Any, fit: Any = None, *, prob: float | None = None,
                              path: str | os.PathLike[str] | None = None,
                              figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI,
                              fmt: str | None = None, title: str | None = None) -> Figure:
    """Posterior densities of h2 (each trait) and r_g, with the REML fit over them: its
    estimates, Wald intervals for h2 and the profile-likelihood interval of r_g.

    Parameters
    ----------
    idata : DataTree
        From :func:`bayeslmm.bayes.sample` on the two-trait model (``h2`` over ``trait``,
        ``r_g``).
    fit : MultiTraitFit, optional
        The REML fit.
    prob, path, figsize, dpi, fmt, title
        As :func:`plot_panels`.
    """
    post = idata["posterior"]
    traits = list(post["trait"].values)
    d = fit.derived() if fit is not None else None
    marks: dict[str, Mark | None] = {}
    for key, lo, hi in (("h2_1", 0.0, 1.0), ("h2_2", 0.0, 1.0), ("rg_12", -1.0, 1.0)):
        if d is None:
            marks[key] = None
            continue
        est, se = float(d.loc[key, "estimate"]), float(d.loc[key, "se"])
        if key == "rg_12" and fit.rg_ci is not None:
            marks[key] = Mark(est, se, tuple(map(float, fit.rg_ci)), ci_name="95% profile CI")
        else:
            marks[key] = Mark(est, se, (max(est - 1.96 * se, lo), min(est + 1.96 * se, hi)),
                              ci_name="95% Wald CI")
    panels = [Panel("h2", f"h2 ({traits[0]})", (0.0, 1.0), {"trait": traits[0]},
                    mark=marks["h2_1"]),
              Panel("h2", f"h2 ({traits[1]})", (0.0, 1.0), {"trait": traits[1]},
                    mark=marks["h2_2"]),
              Panel("r_g", "genetic correlation r_g", (-1.0, 1.0), mark=marks["rg_12"])]
    return plot_panels(idata, panels, prob=prob, figsize=figsize, dpi=dpi, title=title,
                       path=path, fmt=fmt)


def _single_panel(figsize, dpi):
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, ax


def _finish(fig, ax, xlabel: str, title: str, path, fmt, dpi, ncols: int = 2) -> Figure:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=ncols, fontsize=5,
              frameon=False, handlelength=1.6, columnspacing=1.0)
    if path is not None:
        fig.savefig(path, format=_format(path, fmt), dpi=dpi)
    return fig


def plot_compare(cmp: Any, path: str | os.PathLike[str] | None = None, *,
                 fmt: str | None = None, dpi: int = DPI,
                 figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """REML (empirical Bayes) against the full posterior of h2
    (:func:`bayeslmm.bayes.compare`): the posterior density, its credible interval (the
    package's convention, named), the exact quadrature density where the comparison has
    it, and the REML estimate with its interval; the axis fitted to both."""
    fmt = _format(path, fmt)
    x = np.asarray(cmp.h2_draws, dtype=float).ravel()
    row = cmp.table.loc["h2"]
    marks = [cmp.reml_h2, *(cmp.reml_h2_ci or ())]
    a, b = fitted_range(x, (0.0, 1.0), marks=marks)
    grid = np.linspace(a, b, 400)
    with plt.rc_context({"font.size": 7, "xtick.labelsize": 6, "ytick.labelsize": 6}):
        fig, ax = _single_panel(figsize, dpi)
        ax.plot(grid, reflected_kde(x, grid, 0.0, 1.0), color=COLOURS["posterior"], lw=1.5,
                label="posterior (MCMC)")
        if cmp.quadrature is not None:
            q = cmp.quadrature
            ax.plot(q["h2"], q["density"], color="k", ls=":", lw=1.0,
                    label="posterior (exact)")
        ax.axvspan(row.hdi_lower, row.hdi_upper, color=COLOURS["posterior"], alpha=0.12,
                   lw=0, label=f"{interval_label(cmp.hdi_prob)} [{row.hdi_lower:.3f}, "
                                 f"{row.hdi_upper:.3f}]")
        mean = float(np.mean(x))
        ax.axvline(mean, color=COLOURS["mean"], ls=(0, (3, 3)), lw=1.0, zorder=4,
                   label=f"posterior mean {mean:.3g}")
        ax.axvline(cmp.reml_h2, color=COLOURS["reml"], lw=1.5, zorder=3,
                   label=f"{cmp.reml_label}")
        if cmp.reml_h2_ci is not None:
            for v in cmp.reml_h2_ci:
                ax.axvline(v, color=COLOURS["reml"], ls="--", lw=0.8)
            ax.plot([], [], color=COLOURS["reml"], ls="--", lw=0.8, label=cmp.reml_ci_label)
        ax.set_xlim(a, b)
        ax.set_ylim(bottom=0)
        return _finish(fig, ax, "h2", "full posterior against REML", path, fmt, dpi)


def plot_sensitivity(sens: Any, path: str | os.PathLike[str] | None = None, *,
                     fmt: str | None = None, dpi: int = DPI,
                     figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """h2 under each prior set (:func:`bayeslmm.bayes.prior_sensitivity`): each posterior
    (solid) over the h2 prior its set implies (dotted: its exact density where the set puts
    its prior on h2 itself, a KDE of prior draws where it puts priors on the variances,
    which give h2 no closed-form density; the legend says which), one colour per set fixed
    by its label, the REML estimate, and the axis fitted to every posterior."""
    fmt = _format(path, fmt)
    labels = [str(v) for v in sens.summary["prior"].values]
    draws = {k: np.asarray(sens.h2_draws[k], dtype=float).ravel() for k in labels}
    ranges = [fitted_range(draws[k], (0.0, 1.0), marks=[sens.reml_h2]) for k in labels]
    a, b = min(r[0] for r in ranges), max(r[1] for r in ranges)
    grid = np.linspace(a, b, 400)
    peak = 0.0
    with plt.rc_context({"font.size": 7, "xtick.labelsize": 6, "ytick.labelsize": 6}):
        fig, ax = _single_panel(figsize, dpi)
        for k in labels:
            colour = prior_colour(k)
            post = sens.posteriors[k]
            if isinstance(post, xr.Dataset) and "density" in post:
                gx, dens = post["h2"].values, post["density"].values
            else:
                gx, dens = grid, reflected_kde(draws[k], grid, 0.0, 1.0)
            ax.plot(gx, dens, color=colour, lw=1.5, label=f"{k}: posterior")
            exact = getattr(sens, "h2_priors", {}).get(k)
            if exact is not None:
                with np.errstate(divide="ignore", over="ignore"):
                    prior = np.exp(exact.logpdf(grid))
                kind = "prior"
            else:
                prior = reflected_kde(np.asarray(sens.prior_draws[k], dtype=float).ravel(),
                                      grid, 0.0, 1.0)
                kind = "prior (KDE)"
            ax.plot(grid, prior, color=colour, lw=1.0, ls=":", label=f"{k}: {kind}")
            peak = max(peak, float(np.nanmax(dens)))
        if sens.reml_h2 is not None:
            ax.axvline(sens.reml_h2, color=COLOURS["reml"], lw=1.2,
                       label=f"REML {sens.reml_h2:.3g}")
        ax.set_xlim(a, b)
        ax.set_ylim(0, 1.15 * peak)
        return _finish(fig, ax, "h2", "prior sensitivity of h2", path, fmt, dpi)


def close(fig: Figure) -> None:
    """Release a figure's memory (pyplot keeps every open figure otherwise)."""
    plt.close(fig)
