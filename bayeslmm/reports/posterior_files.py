"""A posterior's files: the netCDF tree, the summary table and the figure, staged together.

The one writer of a run's posterior outputs, whichever path made them: NUTS on a model family
(:func:`write_posterior_run`) and the exact quadrature on the Krylov likelihood
(:func:`write_krylov_posterior`) write the same three files with the same content:

* ``PREFIX.posterior.nc``: a DataTree whose ``posterior`` group holds draws ArviZ reads
  (``arviz.from_netcdf``); a grid posterior stores draws from it and the grid in the group
  ``grid``; the root attrs hold the model family, its default priors and the priors as used;
* ``PREFIX.posterior.tsv``: :func:`bayeslmm.bayes.summaries.posterior_summary`'s one layout;
* ``PREFIX.h2.FMT`` (``.rg.FMT`` for two traits): :mod:`bayeslmm.reports.plots`, in PNG, SVG
  or PDF at the dpi asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bayeslmm.bayes.summaries import posterior_summary
from bayeslmm.errors import InputError
from bayeslmm.reports import plots
from bayeslmm.reports.run_log import RESULTS
from bayeslmm.reports.writers import StagedOutputs, write_posterior

__all__ = ["FigureOptions", "write_krylov_posterior", "write_posterior_run"]

log = logging.getLogger(__name__)
results = logging.getLogger(RESULTS)  # the run's results: stdout


class FigureOptions:
    """A run's figure format (one of :data:`~bayeslmm.reports.plots.FORMATS`) and dpi."""

    def __init__(self, fmt: str = "png", dpi: int = plots.DPI):
        if fmt not in plots.FORMATS:
            raise InputError(f"--figure-format must be one of {', '.join(plots.FORMATS)}, "
                             f"got {fmt!r}")
        if not 20 <= int(dpi) <= 2400:
            raise InputError(f"--dpi must lie between 20 and 2400, got {dpi}")
        self.fmt, self.dpi = fmt, int(dpi)

    @classmethod
    def of(cls, args: Any) -> FigureOptions:
        """From a command line's ``--figure-format`` and ``--dpi`` (defaults where absent)."""
        return cls(getattr(args, "figure_format", "png"), getattr(args, "dpi", plots.DPI))


def _figure(staged: StagedOutputs, path: str, draw, fig_opts: FigureOptions | None) -> None:
    o = fig_opts or FigureOptions()
    staged.write_with(f"{path}.{o.fmt}", lambda p: plots.close(draw(p, o)))


def write_posterior_run(run, prefix: str | Path, staged: StagedOutputs, *, fit=None,
                        true_h2: float | None = None,
                        extra: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None
                        = None, prevalence: float | None = None,
                        fig_opts: FigureOptions | None = None) -> None:
    """Stage the posterior of a :class:`~bayeslmm.bayes.posterior.PosteriorRun`: netCDF,
    summary TSV and the figure (h2 with its prior and the REML estimate, on the liability
    scale for the threshold model; for two traits h2_1, h2_2 and r_g)."""
    idata = run.idata
    write_posterior(idata, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged)
    results.info("Posterior summary:\n%s", posterior_summary(idata).to_string())
    if run.family == "multitrait":
        _figure(staged, f"{prefix}.rg", lambda p, o: plots.plot_multitrait_posterior(
            idata, fit, path=p, fmt=o.fmt, dpi=o.dpi), fig_opts)
        return
    marks, xlabel = None, "h2"
    if run.liability_scale:  # the threshold model's h2 is on the liability scale: REML's too
        from bayeslmm.bayes.model_info import model_info

        cp = model_info(run.model).case_proportion
        marks = None if fit is None else plots.reml_marks(
            fit, prevalence=cp if prevalence is None else prevalence, case_proportion=cp)
        xlabel = "liability h2"
    elif fit is not None:
        marks = plots.reml_marks(fit)
    _figure(staged, f"{prefix}.h2", lambda p, o: plots.plot_h2_posterior(
        idata, prior=run.h2_prior, marks=marks, xlabel=xlabel, true_h2=true_h2, extra=extra,
        path=p, fmt=o.fmt, dpi=o.dpi), fig_opts)


def write_krylov_posterior(post, prefix: str | Path, staged: StagedOutputs, *,
                           seed: int | None = None, fit=None,
                           fig_opts: FigureOptions | None = None) -> Any:
    """Stage the exact posterior of h2 on the Krylov likelihood
    (:func:`~bayeslmm.bayes.quadrature_krylov.posterior_h2_krylov`) as every other path
    does: draws from the grid posterior (seeded) with the grid in its own group, the one
    summary layout (its MCSE including the SLQ error) and the figure. Returns the table."""
    from bayeslmm.bayes.priors import default_prior_table
    from bayeslmm.bayes.quadrature import grid_posterior_tree

    tree = grid_posterior_tree(post, seed=seed)
    table = posterior_summary(tree)
    log.info("Default priors of the linear model (docs/priors.md): %s; as used: %s",
             "; ".join(f"{k} ~ {v}" for k, v in default_prior_table("linear").items()),
             post.attrs["priors"])
    results.info("Posterior of h2 (exact quadrature on the Krylov/SLQ likelihood, %d draws "
                 "from it; the MCSE includes the SLQ error):\n%s",
                 tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"],
                 table.to_string())
    if post.attrs["mc_flag"]:
        log.warning("the Monte Carlo error of the posterior mean (%.4f) exceeds a tenth of "
                    "the posterior SD: rerun with more --probes", post.attrs["mean_mc_se"])
    write_posterior(tree, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged)
    import ast

    from bayeslmm.bayes.priors import parse_prior

    h2_prior = ast.literal_eval(post.attrs["priors"]).get("h2")  # as used, defaults filled
    marks = None if fit is None else [plots.Mark(float(fit.h2), float(fit.h2_se), (
        max(fit.h2 - 1.96 * fit.h2_se, 0.0), min(fit.h2 + 1.96 * fit.h2_se, 1.0)),
        "REML (Krylov)", "95% Wald CI")]
    grid = {"exact (quadrature)": (post["h2"].to_numpy(), post["density"].to_numpy())}
    _figure(staged, f"{prefix}.h2", lambda p, o: plots.plot_h2_posterior(
        tree, prior=None if h2_prior is None else parse_prior(h2_prior), marks=marks,
        extra=grid, path=p, fmt=o.fmt, dpi=o.dpi), fig_opts)
    return table
