"""LDSC's files: LD scores (``PREFIX.l2.ldscore.gz``, ``.l2.M``, ``.l2.M_5_50``) in the layout
``ldsc.py --l2`` writes and ``ldsc.py --h2`` reads; LD score regression's results as
``ldsc.py --h2`` prints them, and the table ``PREFIX.ldsc.tsv``."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.estimation.ldsc import LDSCFit
from bayeslmm.genotypes.ldscore import LDScores
from bayeslmm.io.grm_files import atomic_write
from bayeslmm.reports.writers import StagedOutputs, write_text

__all__ = ["LDSCORE_SUFFIXES", "ldsc_h2_lines", "ldsc_h2_table", "ldscore_text",
           "write_ldscores"]

log = logging.getLogger(__name__)

LDSCORE_SUFFIXES = (".l2.ldscore.gz", ".l2.M", ".l2.M_5_50")


def ldscore_text(ld: LDScores) -> str:
    """``CHR SNP BP L2``, tab-separated with a header, L2 with 3 decimals (ldsc's
    ``float_format='%.3f'``)."""
    return ld.table[["CHR", "SNP", "BP", "L2"]].to_csv(sep="\t", index=False,
                                                       float_format="%.3f", lineterminator="\n")


def write_ldscores(ld: LDScores, prefix: str | os.PathLike[str],
                   staged: StagedOutputs | None = None) -> list[Path]:
    """Write PREFIX.l2.ldscore.gz (gzip; ``mtime=0``, so equal scores give equal bytes),
    PREFIX.l2.M (the number of SNPs) and PREFIX.l2.M_5_50 (those with MAF > 0.05), each one
    line as LDSC writes them."""
    gz = gzip.compress(ldscore_text(ld).encode(), mtime=0)
    path = Path(f"{prefix}.l2.ldscore.gz")
    if staged is not None:
        out = [staged.write_bytes(path, lambda fh: fh.write(gz))]
    else:
        atomic_write(path, lambda fh: fh.write(gz))
        out = [path]
    out.append(write_text(f"{prefix}.l2.M", f"{ld.M}\n", staged))
    out.append(write_text(f"{prefix}.l2.M_5_50", f"{ld.M_5_50}\n", staged))
    log.info("LD scores of %d SNPs (M_5_50 = %d) written to %s.l2.ldscore.gz, .l2.M, "
             ".l2.M_5_50.", ld.M, ld.M_5_50, prefix)
    return out


def ldsc_h2_table(fit: LDSCFit, samp_prev: float | None = None,
                  pop_prev: float | None = None) -> pd.DataFrame:
    """One row per quantity (``name estimate SE``): h2 (observed, and liability with both
    prevalences), intercept, ratio, mean chi2, lambda GC, the SNPs, blocks and M used."""
    rows = [("h2_observed", fit.h2, fit.h2_se)]
    if samp_prev is not None and pop_prev is not None:
        rows.append(("h2_liability", *fit.liability(samp_prev, pop_prev)))
    rows += [("intercept", fit.intercept, fit.intercept_se), ("ratio", fit.ratio, fit.ratio_se),
             ("mean_chisq", fit.mean_chisq, np.nan), ("lambda_gc", fit.lambda_gc, np.nan),
             ("n_snps", fit.n_snps, np.nan), ("n_blocks", fit.n_blocks, np.nan),
             ("M", fit.M, np.nan)]
    return pd.DataFrame(rows, columns=["name", "estimate", "SE"])


def ldsc_h2_lines(fit: LDSCFit, samp_prev: float | None = None,
                  pop_prev: float | None = None) -> list[str]:
    """The results block of ``ldsc.py --h2`` (4 decimals, SEs in brackets)."""
    def f(v: float, se: float | None = None) -> str:
        return f"{v:.4f}" + ("" if se is None else f" ({se:.4f})")
    out = [f"Total Observed scale h2: {f(fit.h2, fit.h2_se)}"]
    if samp_prev is not None and pop_prev is not None:
        out.append(f"Total Liability scale h2: {f(*fit.liability(samp_prev, pop_prev))}")
    out += [f"Lambda GC: {f(fit.lambda_gc)}", f"Mean Chi^2: {f(fit.mean_chisq)}"]
    if np.isnan(fit.intercept_se):
        out.append(f"Intercept: constrained to {f(fit.intercept)}")
    else:
        out.append(f"Intercept: {f(fit.intercept, fit.intercept_se)}")
        out.append("Ratio: NA (mean chi^2 < 1)" if np.isnan(fit.ratio) else
                   "Ratio < 0 (usually indicates GC correction)." if fit.ratio < 0 else
                   f"Ratio: {f(fit.ratio, fit.ratio_se)}")
    return out
