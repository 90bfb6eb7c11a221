"""The demo: GRM -> REML -> BLUP -> full posterior -> empirical Bayes against the full
posterior, on the embedded data set, with every file a run writes and a report.

``bayeslmm demo`` (and ``make demo``) call :func:`run_demo`; it is the tour of the package a
new user takes, so each step is the library call a user would make.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from bayeslmm.bayes import empirical_bayes, posterior_h2_quadrature
from bayeslmm.bayes.posterior import posterior_of_fit
from bayeslmm.bayes.summaries import credible_interval, interval_label
from bayeslmm.blup import allele_effects, blup
from bayeslmm.datasets import load_demo
from bayeslmm.estimation.reml import reml
from bayeslmm.inputs import load_inputs
from bayeslmm.io import write_grm
from bayeslmm.reports.hsq import log_fit, write_hsq
from bayeslmm.reports.posterior_files import write_posterior_run
from bayeslmm.reports.writers import StagedOutputs, write_indi_blp, write_snp_blp

__all__ = ["run_demo"]

log = logging.getLogger("bayeslmm.cli")


def run_demo(out: str | Path, staged: StagedOutputs, *, draws: int = 500, tune: int = 500,
             chains: int = 2, seed: int | None = 1, progress: bool | None = None,
             cores: int | None = None) -> str:
    """Run the pipeline on the demo data; stage its files in the folder ``out`` (created)
    and return the report (also staged as ``demo.report.txt``)."""
    demo = load_demo()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "demo"
    t0 = time.perf_counter()
    log.info("Demo data: %s (%s); true h2 = %g.", demo.bfile, demo.description, demo.true_h2)
    inp = load_inputs(demo.pheno, bfile=demo.bfile, progress=progress)
    g = inp.raw_grms[0]  # all genotyped samples, as `bayeslmm grm` writes it
    staged.write_prefix(prefix, (".grm.bin", ".grm.N.bin", ".grm.id"),
                        lambda p: write_grm(g, p))
    t_grm = time.perf_counter()
    fit = reml(inp.y, inp.K, inp.X)
    log_fit(fit)
    write_hsq(fit, f"{prefix}.hsq", staged)
    b = blup(fit)
    write_indi_blp(b, fit.sigma2, f"{prefix}.indi.blp", staged)
    eff = allele_effects(fit, inp.ds, progress=progress)
    write_snp_blp(eff["snp"].to_numpy(), eff["a1"].to_numpy(), eff["effect"].to_numpy(),
                  f"{prefix}.snp.blp", staged)
    t_reml = time.perf_counter()
    # The default priors (DEFAULT_PRIORS: beta flat), which NUTS and the exact quadrature
    # share, as every other path does.
    priors: dict[str, str] = {}
    quad = posterior_h2_quadrature(fit, priors=priors)
    extra = {"exact (quadrature)": (quad["h2"].to_numpy(), quad["density"].to_numpy())}
    run = posterior_of_fit(fit, inp.y, inp.X, priors=priors, draws=draws, tune=tune,
                           chains=chains, seed=seed, progressbar=progress is not False,
                           cores=cores)
    write_posterior_run(run, prefix, staged, fit=fit, true_h2=demo.true_h2, extra=extra)
    idata = run.idata
    t_post = time.perf_counter()
    eb = empirical_bayes(fit, mcmc=False, draws=draws, chains=chains, seed=seed)
    h2 = idata["posterior"]["h2"].to_numpy().ravel()
    lo, hi = credible_interval(h2)
    pev = eb.exact["exact"]["g_pev"].to_numpy()
    dg = float(np.max(np.abs(eb.exact["exact"]["g_mean"].to_numpy() - b["g"].to_numpy())))
    ci = fit.h2_ci or (np.nan, np.nan)
    inside = lo <= demo.true_h2 <= hi
    lines = [
        "bayeslmm demo",
        f"  data      {g.N} samples in {demo.n_families} families x "
        f"{inp.ds.sizes['variant']} SNPs (chromosomes {', '.join(demo.chromosomes)}); "
        f"{fit.N} with a phenotype",
        f"  true h2   {demo.true_h2:.3f}",
        f"  REML      h2 = {fit.h2:.3f} +- {fit.h2_se:.3f} (SE), 95% profile CI "
        f"[{ci[0]:.3f}, {ci[1]:.3f}], LRT p = {fit.lrt_p:.2g}",
        f"  posterior h2 mean {np.mean(h2):.3f}, sd {np.std(h2):.3f}, {interval_label()} "
        f"[{lo:.3f}, {hi:.3f}] (NUTS, {chains} x {draws} draws, max R-hat "
        f"{idata['posterior'].attrs.get('max_rhat', np.nan):.3f})",
        f"  exact     h2 mean {float(quad['mean']):.3f}, sd {float(quad['sd']):.3f} "
        f"(quadrature, same priors): NUTS - exact = "
        f"{np.mean(h2) - float(quad['mean']):+.4f}",
        f"  EB        fixes h2 at its REML value {fit.h2:.3f}: posterior mean of g = BLUP "
        f"(max |diff| {dg:.1e}), mean PEV {np.mean(pev):.4f}; the full posterior instead "
        f"carries h2's uncertainty (sd {np.std(h2):.3f} vs REML SE {fit.h2_se:.3f}).",
        f"  agreement the true h2 is {'inside' if inside else 'OUTSIDE'} the "
        f"{interval_label()}; REML and "
        f"posterior mean differ by {abs(fit.h2 - np.mean(h2)):.3f} "
        f"({abs(fit.h2 - np.mean(h2)) / fit.h2_se:.2f} SE).",
        f"  time      GRM {t_grm - t0:.1f} s, REML+BLUP {t_reml - t_grm:.1f} s, posterior "
        f"{t_post - t_reml:.1f} s",
        f"  files     {out}/demo.grm.*, .hsq, .indi.blp, .snp.blp, .posterior.nc, "
        ".posterior.tsv, .h2.png, .log, .report.txt",
    ]
    report = "\n".join(lines) + "\n"
    staged.write_text(f"{prefix}.report.txt", report)
    log.info("Report written to %s.report.txt.", prefix)
    return report
