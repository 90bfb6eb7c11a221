"""A posterior's files: the netCDF tree, the summary table and the figure, staged together.

The one writer of a run's posterior outputs, whichever path made them: NUTS on a model family
(:func:`write_posterior_run`: ``PREFIX.posterior.nc``, ``.posterior.tsv`` and ``.h2.png``, or
``.rg.png`` for two traits) and the exact quadrature on the Krylov likelihood
(:func:`write_krylov_posterior`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayeslmm.reports import plots
from bayeslmm.reports.run_log import RESULTS
from bayeslmm.reports.writers import StagedOutputs, posterior_summary, write_posterior

__all__ = ["write_krylov_posterior", "write_posterior_run"]

log = logging.getLogger(__name__)
results = logging.getLogger(RESULTS)  # the run's results: stdout


def write_posterior_run(run, prefix: str | Path, staged: StagedOutputs, *, fit=None,
                        true_h2: float | None = None,
                        extra: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None
                        = None) -> None:
    """Stage the posterior of a :class:`~bayeslmm.bayes.posterior.PosteriorRun`: netCDF,
    summary TSV and the figure (h2 with its prior and the REML estimate; for two traits h2_1,
    h2_2 and r_g with the REML estimates)."""
    idata = run.idata
    names = ["h2", "Vp", "r_g", "r_e"] if run.family == "multitrait" else None
    write_posterior(idata, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged,
                    var_names=names)
    results.info("Posterior summary:\n%s", posterior_summary(idata, names).to_string())
    if run.family == "multitrait":
        from bayeslmm.reports.multitrait_plots import plot_multitrait_posterior

        staged.write_with(f"{prefix}.rg.png", lambda p: plots.close(
            plot_multitrait_posterior(idata, fit, path=p)))
        return

    def png(p: Path) -> None:
        # the REML h2 is on the observed scale; the threshold model's on the liability scale
        fig = plots.plot_h2_posterior(idata, prior=run.h2_prior,
                                      reml=None if run.liability_scale else fit,
                                      true_h2=true_h2, extra=extra, path=p)
        plots.close(fig)

    staged.write_with(f"{prefix}.h2.png", png)


def write_krylov_posterior(post, prefix: str | Path, staged: StagedOutputs, *,
                           seed: int | None = None) -> Any:
    """Stage the exact posterior of h2 on the Krylov likelihood
    (:func:`~bayeslmm.bayes.quadrature_krylov.posterior_h2_krylov`): its table, the density
    grid as netCDF and the figure. Returns the table."""
    from bayeslmm.bayes.quadrature_krylov import posterior_h2_table

    table = posterior_h2_table(post)
    results.info("Posterior of h2 (exact quadrature on the Krylov/SLQ likelihood; beta flat, "
             "Vp integrated):\n%s", table.to_string())
    if post.attrs["mc_flag"]:
        log.warning("the Monte Carlo error of the posterior mean (%.4f) exceeds a tenth of "
                    "the posterior SD: rerun with more --probes", post.attrs["mean_mc_se"])
    staged.write_text(f"{prefix}.posterior.tsv", table.to_csv(
        sep="\t", float_format="%.6g", lineterminator="\n"))
    staged.write_with(f"{prefix}.posterior.nc",
                      lambda p: post.to_netcdf(p, engine="h5netcdf"))
    # draws by inverting the density's CDF: the figure's KDE and interval need draws
    cdf = np.cumsum(post["density"].to_numpy()) / post["density"].sum().item()
    draws = np.interp(np.random.default_rng(seed).uniform(size=20_000), cdf,
                      post["h2"].to_numpy())

    def png(p: Path) -> None:
        fig = plots.plot_h2_posterior(
            draws, extra={"exact (quadrature)": (post["h2"].to_numpy(),
                                                 post["density"].to_numpy())},
            title="Posterior of heritability (Krylov engine)", path=p)
        plots.close(fig)

    staged.write_with(f"{prefix}.h2.png", png)
    return table
