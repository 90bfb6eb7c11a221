"""``bayeslmm ldpred``: posterior SNP effects from summary statistics and a reference panel
(:mod:`bayeslmm.bayes.ldpred`), their files, and the scores of a target fileset.

Files: ``PREFIX.ldpred.tsv`` (``CHR SNP BP A1 A2 beta_std beta`` and, from the Gibbs
sampler, ``pip``; ``beta`` per copy of A1 in phenotype standard deviations, plink2
``--score``-ready), ``PREFIX.ldpred.nc`` (grid/auto: the chains of p and h2 and the per-SNP
summaries, an ArviZ DataTree), ``PREFIX.sscore`` with ``--target`` (plink2's names:
``#FID IID ALLELE_CT SCORE_SUM``). The result lines (on stdout) give h2 and p; for auto their
posterior means and 95% equal-tailed intervals over the kept sweeps of all chains.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from bayeslmm.errors import InputError
from bayeslmm.reports.writers import StagedOutputs

__all__ = ["ldpred_report"]

log = logging.getLogger(__name__)


def ldpred_report(prefix: str | os.PathLike[str], staged: StagedOutputs, *, sumstats: str,
                  ref: str, target: str | None = None, method: str = "auto",
                  h2: float | None = None, p: float | None = None, shrinkage: str = "exact",
                  ld_wind_kb: float | None = None, ld_wind_cm: float | None = None,
                  ld_wind_snps: int | None = None, N: float | None = None, burn: int = 500,
                  draws: int = 1000, chains: int = 2, seed: int | None = None,
                  progress: bool | None = None, **_) -> list[str]:
    """Run LDpred (``method`` inf, grid or auto) and stage its files; return the result
    lines. Keywords are the command line's flags (module docstring)."""
    from bayeslmm.bayes.ldpred import ldpred_gibbs, ldpred_inf
    from bayeslmm.genotypes.ldmatrix import ld_matrix
    from bayeslmm.genotypes.scores import polygenic_scores
    from bayeslmm.io import read_plink
    from bayeslmm.io.sumstats import read_sumstats

    if h2 is None:
        raise InputError("ldpred needs --h2 (e.g. from 'bayeslmm ldsc --h2'; auto starts there)")
    if method == "grid" and p is None:
        raise InputError("--method grid needs --p, the fraction of non-zero effects")
    if method == "inf" and p is not None:
        raise InputError("--p applies to --method grid and auto; LDpred-inf has no p")
    windows = {"kb": ld_wind_kb, "cm": ld_wind_cm, "snps": ld_wind_snps}
    given = {u: w for u, w in windows.items() if w is not None}
    if len(given) > 1:
        raise InputError("give one LD window: --ld-wind-kb, --ld-wind-cm or --ld-wind-snps")
    unit, window = next(iter(given.items())) if given else ("cm", 3.0)  # LDpred2's default
    ss = read_sumstats(sumstats, N=N)
    ld = ld_matrix(read_plink(ref), window, unit, progress=progress)
    if method == "inf":
        log.info("LDpred-inf is a closed form: --burn, --draws, --chains and --seed are not "
                 "used.")
        fit = ldpred_inf(ss, ld, h2, shrinkage)
    else:
        fit = ldpred_gibbs(ss, ld, h2=h2, p=0.01 if p is None else p,  # auto's start
                           auto=method == "auto", burn=burn, draws=draws, chains=chains,
                           shrinkage=shrinkage, seed=0 if seed is None else seed)
    eff = fit.effects
    staged.write_text(f"{prefix}.ldpred.tsv", eff.to_csv(sep="\t", index=False,
                                                         float_format="%.6g"))
    lines = [f"LDpred-{fit.method} ({shrinkage} shrinkage), {fit.nobs} SNPs, LD window "
             f"{window:g} {unit} over {ld.N} reference samples."]
    if fit.posterior is not None:
        staged.write_with(f"{prefix}.ldpred.nc", fit.posterior.to_netcdf)
        post = fit.posterior["posterior"]
        for name in ("h2", "p"):
            v = post[name].to_numpy().ravel()
            lo, hi = np.quantile(v, [0.025, 0.975])
            lines.append(f"{name}: posterior mean {v.mean():.4g}, 95% equal-tailed interval "
                         f"[{lo:.4g}, {hi:.4g}]" if method == "auto" else f"{name}: {v[0]:.4g}")
    else:
        lines.append(f"h2: {fit.h2:.4g} (given)")
    if target is not None:
        sc = polygenic_scores(read_plink(target), eff, progress=progress)
        staged.write_text(f"{prefix}.sscore", sc.rename(columns={"FID": "#FID"}).to_csv(
            sep="\t", index=False, float_format="%.6g"))
        lines.append(f"Scores of {len(sc)} target samples over {sc.ALLELE_CT.iloc[0] // 2} "
                     f"SNPs written to {prefix}.sscore.")
    return lines
