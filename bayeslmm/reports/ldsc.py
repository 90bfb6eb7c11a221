"""LDSC's files: LD scores (``PREFIX.l2.ldscore.gz``, ``.l2.M``, ``.l2.M_5_50``) in the layout
``ldsc.py --l2`` writes and ``ldsc.py --h2`` reads; LD score regression's results as
``ldsc.py --h2`` and ``--rg`` print them, and the table ``PREFIX.ldsc.tsv``; and
:func:`ldsc_report`, ``bayeslmm ldsc``'s work from its flags."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import LDSCFit, LDSCRGFit, ldsc_h2_files, ldsc_rg_files
from bayeslmm.genotypes.ldscore import LDScores
from bayeslmm.io.grm_files import atomic_write
from bayeslmm.reports.writers import StagedOutputs, write_text

__all__ = ["LDSCORE_SUFFIXES", "ldsc_h2_lines", "ldsc_h2_table", "ldsc_report", "ldsc_rg_lines",
           "ldsc_rg_table", "ldscore_text", "write_ldscores"]

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


def _num(v: float) -> str:
    """A number as ldsc prints it (numpy, 4 digits: 0.1234, 1.2346e-05; 0, not 0.)."""
    return np.array2string(np.array([v]), precision=4)[1:-1].strip().removesuffix(".")


def ldsc_rg_lines(fit: LDSCRGFit, names: tuple[str, str] = ("1", "2")) -> list[str]:
    """The results blocks of ``ldsc.py --rg``: each trait's h2, the genetic covariance, the
    genetic correlation (ldsc's numbers: 4 digits)."""
    def head(title: str) -> list[str]:
        return ["", title, "-" * len(title)]

    out = head(f"Heritability of phenotype 1 ({names[0]})") + ldsc_h2_lines(fit.hsq1)
    out += head(f"Heritability of phenotype 2/2 ({names[1]})") + ldsc_h2_lines(fit.hsq2)
    out += head("Genetic Covariance")
    out += [f"Total Observed scale gencov: {_num(fit.gencov)} ({_num(fit.gencov_se)})",
            f"Mean z1*z2: {_num(fit.mean_z1z2)}",
            f"Intercept: constrained to {_num(fit.intercept)}" if np.isnan(fit.intercept_se)
            else f"Intercept: {_num(fit.intercept)} ({_num(fit.intercept_se)})"]
    out += head("Genetic Correlation")
    if np.isnan(fit.rg):
        return out + ["Genetic Correlation: nan (nan) (h2 out of bounds)"]
    out += [f"Genetic Correlation: {_num(fit.rg)} ({_num(fit.rg_se)})",
            f"Z-score: {_num(fit.z)}", f"P: {_num(fit.p)}"]
    if abs(fit.rg) > 1.2:  # ldsc prints nan here; we print the estimate and say so
        out.append("WARNING: rg is out of bounds (|rg| > 1.2): usually an h2 near 0, or "
                   "intercepts constrained to the wrong values.")
    return out


def ldsc_rg_table(fit: LDSCRGFit) -> pd.DataFrame:
    """One row per quantity (``name estimate SE``): rg (its z and p as rows rg_z, rg_p),
    gencov, the cross-trait intercept, mean z1 z2, each trait's h2 and intercept, the SNPs,
    blocks and M used."""
    na = np.nan
    rows = [("rg", fit.rg, fit.rg_se), ("rg_z", fit.z, na), ("rg_p", fit.p, na),
            ("gencov", fit.gencov, fit.gencov_se),
            ("gencov_intercept", fit.intercept, fit.intercept_se),
            ("mean_z1z2", fit.mean_z1z2, na)]
    for i, h in ((1, fit.hsq1), (2, fit.hsq2)):
        rows += [(f"h2_observed_{i}", h.h2, h.h2_se), (f"intercept_{i}", h.intercept,
                                                       h.intercept_se)]
    rows += [("n_snps", fit.n_snps, na), ("n_blocks", fit.n_blocks, na), ("M", fit.M, na)]
    return pd.DataFrame(rows, columns=["name", "estimate", "SE"])


def _floats(value, flag: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in str(value).split(","))
    except ValueError:
        raise InputError(f"{flag} takes numbers (comma-separated: one per trait), got "
                         f"'{value}'") from None
    return out


def ldsc_report(*, h2=None, rg=None, ref_ld, w_ld, merge_alleles=None, N=None,
                samp_prev=None, pop_prev=None, intercept_h2=None, intercept_gencov=None,
                no_intercept=False, two_step=None, chisq_max=None, n_blocks=200,
                **_) -> tuple[list[str], str]:
    """``bayeslmm ldsc`` from its flags (argparse names; others ignored): ``--h2 S`` or
    ``--rg S1,S2`` (exactly one) fitted (:func:`~bayeslmm.estimation.ldsc.ldsc_h2_files`,
    :func:`~bayeslmm.estimation.ldsc.ldsc_rg_files`); returns the results lines and the
    ``PREFIX.ldsc.tsv`` text. ``--intercept-h2`` takes ldsc's comma list (one value with
    ``--h2``; one or one per trait with ``--rg``), ``--intercept-gencov`` one value (or
    ldsc's two, the first ignored as ldsc does); ``--no-intercept`` fixes the h2 intercepts at
    1 and the cross-trait one at 0."""
    if (h2 is None) == (rg is None):
        raise InputError("give --h2 SUMSTATS (heritability) or --rg S1,S2 (genetic "
                         "correlation), one of them")
    ih2, igc = _floats(intercept_h2, "--intercept-h2"), _floats(intercept_gencov,
                                                                 "--intercept-gencov")
    if no_intercept:
        if ih2 is not None or igc is not None:
            raise InputError("--no-intercept fixes the intercepts (h2 at 1, gencov at 0): "
                             "drop --intercept-h2/--intercept-gencov")
        ih2, igc = (1.0,), (0.0,)
    common = dict(merge_alleles=merge_alleles, N=N, two_step=two_step, chisq_max=chisq_max,
                  n_blocks=n_blocks)
    if h2 is not None:
        if (samp_prev is None) != (pop_prev is None):
            raise InputError("--samp-prev and --pop-prev go together (liability-scale h2)")
        if igc is not None and not no_intercept:
            raise InputError("--intercept-gencov is for --rg (the cross-trait regression)")
        if ih2 is not None and len(ih2) != 1:
            raise InputError(f"--intercept-h2 takes one value with --h2, got '{intercept_h2}'")
        fit = ldsc_h2_files(h2, ref_ld, w_ld, intercept=ih2 and ih2[0], **common)
        table = ldsc_h2_table(fit, samp_prev, pop_prev)
        lines = ldsc_h2_lines(fit, samp_prev, pop_prev)
    else:
        paths = [p for p in str(rg).split(",") if p]
        if len(paths) != 2:
            raise InputError(f"--rg takes two summary statistics files, S1,S2; got "
                             f"{len(paths)} ('{rg}')")
        if samp_prev is not None or pop_prev is not None:
            raise InputError("--samp-prev/--pop-prev (liability scale) are for --h2; --rg's "
                             "rg is the same on either scale")
        if igc is not None and len(igc) > 2:
            raise InputError(f"--intercept-gencov takes one value, got '{intercept_gencov}'")
        fit = ldsc_rg_files(*paths, ref_ld, w_ld, intercept_h2=ih2,
                            intercept_gencov=igc and igc[-1], **common)
        table = ldsc_rg_table(fit)
        lines = ldsc_rg_lines(fit, tuple(Path(p).name for p in paths))
    return lines, table.to_csv(sep="\t", index=False, float_format="%.6g",
                               lineterminator="\n")
