"""LDSC's files: LD scores (``PREFIX.l2.ldscore.gz``, ``.l2.M``, ``.l2.M_5_50``; one column, or
one per annotation) in the layout ``ldsc.py --l2`` writes and ``ldsc.py --h2`` reads; LD score
regression's results as ``ldsc.py --h2`` (partitioned too) and ``--rg`` print them, the table
``PREFIX.ldsc.tsv`` and ldsc's ``PREFIX.results`` (``--overlap-annot``); and
:func:`ldscore_report` and :func:`ldsc_report`, ``bayeslmm ldscore``'s and ``bayeslmm ldsc``'s
work from their flags."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import LDSCFit, LDSCRGFit, h2_obs_to_liability
from bayeslmm.estimation.ldsc_files import ldsc_h2_files, ldsc_rg_files
from bayeslmm.estimation.ldsc_partition import LDSCPartitionedFit, overlap_results
from bayeslmm.genotypes.ldscore import LDScores, ld_scores
from bayeslmm.io.grm_files import atomic_write
from bayeslmm.io.ldscores import read_annot, read_annot_overlap
from bayeslmm.io.plink import as_dataset
from bayeslmm.reports.writers import StagedOutputs, write_text

__all__ = ["LDSCORE_SUFFIXES", "ldsc_h2_lines", "ldsc_h2_table", "ldsc_report", "ldsc_rg_lines",
           "ldsc_rg_table", "ldscore_report", "ldscore_text", "write_ldscores"]

log = logging.getLogger(__name__)

LDSCORE_SUFFIXES = (".l2.ldscore.gz", ".l2.M", ".l2.M_5_50")


def ldscore_text(ld: LDScores) -> str:
    """``CHR SNP BP`` and the LD score columns (``L2``, or ``<name>L2`` per annotation),
    tab-separated with a header, 3 decimals (ldsc's ``float_format='%.3f'``)."""
    return ld.table[["CHR", "SNP", "BP", *ld.columns]].to_csv(
        sep="\t", index=False, float_format="%.3f", lineterminator="\n")


def _counts(values) -> str:
    """M values on one line, tab-separated: integers as such, others in full."""
    return "\t".join(f"{v:.0f}" if float(v).is_integer() else repr(float(v))
                     for v in np.atleast_1d(values)) + "\n"


def write_ldscores(ld: LDScores, prefix: str | os.PathLike[str],
                   staged: StagedOutputs | None = None) -> list[Path]:
    """Write PREFIX.l2.ldscore.gz (gzip; ``mtime=0``, so equal scores give equal bytes),
    PREFIX.l2.M (the number of SNPs, or each annotation's sum over them) and PREFIX.l2.M_5_50
    (the same over the SNPs with MAF > 0.05), each one line as LDSC writes them."""
    gz = gzip.compress(ldscore_text(ld).encode(), mtime=0)
    path = Path(f"{prefix}.l2.ldscore.gz")
    if staged is not None:
        out = [staged.write_bytes(path, lambda fh: fh.write(gz))]
    else:
        atomic_write(path, lambda fh: fh.write(gz))
        out = [path]
    annotated = ld.M_columns is not None
    out.append(write_text(f"{prefix}.l2.M", _counts(ld.M_columns if annotated else ld.M),
                          staged))
    out.append(write_text(f"{prefix}.l2.M_5_50", _counts(
        ld.M_5_50_columns if annotated else ld.M_5_50), staged))
    log.info("LD scores of %d SNPs (M_5_50 = %d), %d column(s), written to "
             "%s.l2.ldscore.gz, .l2.M, .l2.M_5_50.", ld.M, ld.M_5_50, len(ld.columns), prefix)
    return out


def ldscore_report(source, prefix, staged: StagedOutputs | None = None, *, ld_wind_kb=None,
                   ld_wind_cm=None, ld_wind_snps=None, annot=None, progress=None,
                   **_) -> LDScores:
    """``bayeslmm ldscore`` from its flags (argparse names; others ignored): the window (one of
    ``--ld-wind-kb/-cm/-snps``) and ``--annot FILE`` (ldsc's ``.annot``: with a SNP column,
    matched to the reference's SNPs by ID; a thin one, row by row), then
    :func:`~bayeslmm.genotypes.ldscore.ld_scores` and :func:`write_ldscores`."""
    windows = {"kb": ld_wind_kb, "cm": ld_wind_cm, "snps": ld_wind_snps}
    given = [u for u, w in windows.items() if w is not None]
    if len(given) != 1:
        raise InputError("give one LD window: --ld-wind-kb, --ld-wind-cm or --ld-wind-snps")
    a, source = None, as_dataset(source)
    if annot is not None:
        a = read_annot(annot)
        snps = source["snp"].to_numpy().astype(str)
        if a.index.name == "SNP":
            missing = ~np.isin(snps, a.index)
            if missing.any():
                raise InputError(f"the annotation '{annot}' has no row for {int(missing.sum())} "
                                 f"reference SNPs (the first: {snps[missing][0]})")
            a = a.reindex(snps)
        elif len(a) != snps.size:
            raise InputError(f"the annotation '{annot}' (no SNP column) has {len(a)} rows, "
                             f"the reference {snps.size} SNPs: one row per SNP, in order")
    ld = ld_scores(source, windows[given[0]], given[0], annot=a, progress=progress)
    write_ldscores(ld, prefix, staged)
    return ld


def _scale(samp_prev, pop_prev) -> tuple[str, float]:
    """ldsc's scale word and factor: Liability with both prevalences (NaN and NaN: a
    quantitative trait, factor 1), else Observed."""
    if samp_prev is None or pop_prev is None:
        return "Observed", 1.0
    return "Liability", h2_obs_to_liability(1.0, samp_prev, pop_prev)


def ldsc_h2_table(fit: LDSCFit | LDSCPartitionedFit, samp_prev: float | None = None,
                  pop_prev: float | None = None) -> pd.DataFrame:
    """One row per quantity (``name estimate SE``): h2 (observed, and liability with both
    prevalences), intercept, ratio, mean chi2, lambda GC, the SNPs, blocks and M used; for
    partitioned h2, per annotation NAME also h2_NAME (observed; h2_liability_NAME), prop_NAME
    (its share of h2), enrichment_NAME (prop / the share of SNPs; SE: prop's / the share of
    SNPs, ldsc's ``.results`` SE for disjoint annotations) and tau_NAME (the coefficient)."""
    rows = [("h2_observed", fit.h2, fit.h2_se)]
    liab = samp_prev is not None and pop_prev is not None
    c = _scale(samp_prev, pop_prev)[1]
    if liab:
        rows.append(("h2_liability", c * fit.h2, c * fit.h2_se))
    if isinstance(fit, LDSCPartitionedFit):
        for i, n in enumerate(fit.names):
            rows.append((f"h2_{n}", fit.cat[i], fit.cat_se[i]))
            if liab:
                rows.append((f"h2_liability_{n}", c * fit.cat[i], c * fit.cat_se[i]))
            rows += [(f"prop_{n}", fit.prop[i], fit.prop_se[i]),
                     (f"enrichment_{n}", fit.enrichment[i], fit.prop_se[i] / fit.M_prop[i]),
                     (f"tau_{n}", fit.coef[i], fit.coef_se[i])]
    M = fit.M if np.ndim(fit.M) == 0 else float(np.sum(fit.M))
    rows += [("intercept", fit.intercept, fit.intercept_se), ("ratio", fit.ratio, fit.ratio_se),
             ("mean_chisq", fit.mean_chisq, np.nan), ("lambda_gc", fit.lambda_gc, np.nan),
             ("n_snps", fit.n_snps, np.nan), ("n_blocks", fit.n_blocks, np.nan),
             ("M", M, np.nan)]
    return pd.DataFrame(rows, columns=["name", "estimate", "SE"])


def _nums(v) -> str:
    """Numbers as ldsc prints them (numpy, 4 digits, one format for the row)."""
    return np.array2string(np.atleast_1d(np.asarray(v, dtype=np.float64)), precision=4,
                           max_line_width=10_000)[1:-1].strip()


def ldsc_h2_lines(fit: LDSCFit | LDSCPartitionedFit, samp_prev: float | None = None,
                  pop_prev: float | None = None, overlap: bool = False) -> list[str]:
    """The results block of ``ldsc.py --h2`` (4 decimals, SEs in brackets); for partitioned h2
    its category lines (numpy's 4 digits, as ldsc), left out with ``overlap`` (ldsc's
    ``--overlap-annot``: they are in ``.results``)."""
    def f(v: float, se: float | None = None) -> str:
        return f"{v:.4f}" + ("" if se is None else f" ({se:.4f})")
    T, c = _scale(samp_prev, pop_prev)
    out = [f"Total {T} scale h2: {f(c * fit.h2, c * fit.h2_se)}"]
    if isinstance(fit, LDSCPartitionedFit):
        out.append("Categories: " + " ".join(fit.names))
        if not overlap:
            out += [f"{T} scale h2: {_nums(c * fit.cat)}",
                    f"{T} scale h2 SE: {_nums(c * fit.cat_se)}",
                    f"Proportion of SNPs: {_nums(fit.M_prop)}",
                    f"Proportion of h2g: {_nums(fit.prop)}",
                    f"Enrichment: {_nums(fit.enrichment)}",
                    f"Coefficients: {_nums(fit.coef)}",
                    f"Coefficient SE: {_nums(fit.coef_se)}"]
    out += [f"Lambda GC: {f(fit.lambda_gc)}", f"Mean Chi^2: {f(fit.mean_chisq)}"]
    if np.isnan(fit.intercept_se):
        out.append(f"Intercept: constrained to {f(fit.intercept)}")
    else:
        out.append(f"Intercept: {f(fit.intercept, fit.intercept_se)}")
        out.append("Ratio: NA (mean chi^2 < 1)" if np.isnan(fit.ratio) else
                   "Ratio < 0 (usually indicates GC correction)." if fit.ratio < 0 else
                   f"Ratio: {f(fit.ratio, fit.ratio_se)}")
    return out


def _num(v: float, integral: bool = False) -> str:
    """A number as ldsc prints it (numpy, 4 digits: 0.1234, 1.2346e-05, 1.); ``integral``: a
    whole number without its point (ldsc's --no-intercept constrains to the integer 0)."""
    text = np.array2string(np.array([v]), precision=4)[1:-1].strip()
    return text.removesuffix(".") if integral else text


def ldsc_rg_lines(fit: LDSCRGFit, names: tuple[str, str] = ("1", "2"), *, k: int = 2,
                  n: int = 2, first: bool = True, prev=((None, None), (None, None))
                  ) -> list[str]:
    """The results blocks of ``ldsc.py --rg`` for trait 1 and trait ``k`` of ``n``: trait 1's
    h2 (``first``: printed once), trait k's, the genetic covariance, the genetic correlation
    (ldsc's numbers: 4 digits). ``prev``: (samp_prev, pop_prev) of trait 1 and of trait k;
    with both of each, the h2 and gencov on the liability scale (gencov times sqrt of both
    traits' factors; rg is the same on either scale)."""
    def head(title: str) -> list[str]:
        return ["", title, "-" * len(title)]

    out = []
    if first:
        out += head(f"Heritability of phenotype 1 ({names[0]})")
        out += ldsc_h2_lines(fit.hsq1, *prev[0])
    out += head(f"Heritability of phenotype {k}/{n} ({names[1]})")
    out += ldsc_h2_lines(fit.hsq2, *prev[1])
    out += head("Genetic Covariance")
    liab = all(v is not None for p in prev for v in p)
    c = np.sqrt(_scale(*prev[0])[1] * _scale(*prev[1])[1]) if liab else 1.0
    T = "Liability" if liab else "Observed"
    out += [f"Total {T} scale gencov: {_num(c * fit.gencov)} ({_num(c * fit.gencov_se)})",
            f"Mean z1*z2: {_num(fit.mean_z1z2)}",
            f"Intercept: constrained to {_num(fit.intercept, True)}"
            if np.isnan(fit.intercept_se)
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


def ldsc_rg_table(fit: LDSCRGFit, prev=((None, None), (None, None))) -> pd.DataFrame:
    """One row per quantity (``name estimate SE``): rg (its z and p as rows rg_z, rg_p),
    gencov, the cross-trait intercept, mean z1 z2, each trait's h2 and intercept (with
    ``prev`` as in :func:`ldsc_rg_lines`, also h2_liability_1/2 and gencov_liability), the
    SNPs, blocks and M used."""
    na = np.nan
    rows = [("rg", fit.rg, fit.rg_se), ("rg_z", fit.z, na), ("rg_p", fit.p, na),
            ("gencov", fit.gencov, fit.gencov_se)]
    cs = [_scale(*p)[1] for p in prev]
    liab = [all(v is not None for v in p) for p in prev]
    if all(liab):
        c = np.sqrt(cs[0] * cs[1])
        rows.append(("gencov_liability", c * fit.gencov, c * fit.gencov_se))
    rows += [("gencov_intercept", fit.intercept, fit.intercept_se),
             ("mean_z1z2", fit.mean_z1z2, na)]
    for i, h in ((1, fit.hsq1), (2, fit.hsq2)):
        rows.append((f"h2_observed_{i}", h.h2, h.h2_se))
        if liab[i - 1]:
            rows.append((f"h2_liability_{i}", cs[i - 1] * h.h2, cs[i - 1] * h.h2_se))
        rows.append((f"intercept_{i}", h.intercept, h.intercept_se))
    rows += [("n_snps", fit.n_snps, na), ("n_blocks", fit.n_blocks, na), ("M", fit.M, na)]
    return pd.DataFrame(rows, columns=["name", "estimate", "SE"])


def _rg_summary(paths: list[str], fits: list[LDSCRGFit], prev) -> list[str]:
    """ldsc's ``Summary of Genetic Correlation Results`` table (pandas, 4 digits): trait 1
    against each other trait, h2 of the other (liability with its prevalences)."""
    rows = []
    for p2, fit, pv in zip(paths[1:], fits, prev[1:], strict=True):
        r = {"p1": paths[0], "p2": p2, "rg": fit.rg, "se": fit.rg_se, "z": fit.z, "p": fit.p}
        if all(v is not None for p in prev for v in p):
            c = _scale(*pv)[1]
            r |= {"h2_liab": c * fit.hsq2.h2, "h2_liab_se": c * fit.hsq2.h2_se}
        else:
            r |= {"h2_obs": fit.hsq2.h2, "h2_obs_se": fit.hsq2.h2_se}
        r |= {"h2_int": fit.hsq2.intercept, "h2_int_se": fit.hsq2.intercept_se,
              "gcov_int": fit.intercept, "gcov_int_se": fit.intercept_se}
        rows.append(r)
    with pd.option_context("display.precision", 4, "display.width", 1000):
        text = pd.DataFrame(rows).to_string(header=True, index=False)
    return ["", "Summary of Genetic Correlation Results", *text.splitlines()]


def _floats(value, flag: str, nan: bool = False) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in str(value).split(","))
    except ValueError:
        raise InputError(f"{flag} takes numbers (comma-separated: one per trait), got "
                         f"'{value}'") from None
    if not nan and any(np.isnan(out)):
        raise InputError(f"{flag}: nan is for a quantitative trait among --rg's, got '{value}'")
    return out


def _per_trait(values, n: int, flag: str):
    """ldsc's --rg lists: one value per trait (n), or one for all."""
    if values is None:
        return [None] * n
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise InputError(f"{flag} takes one value per --rg file ({n}), or one; got "
                         f"{len(values)}")
    return list(values)


def _ld_args(ref_ld, ref_ld_chr, w_ld, w_ld_chr, not_m_5_50) -> dict:
    if (ref_ld is None) == (ref_ld_chr is None):
        raise InputError("give the LD scores with --ref-ld PREFIX or --ref-ld-chr PREFIX "
                         "(per chromosome), one of them")
    if (w_ld is None) == (w_ld_chr is None):
        raise InputError("give the regression SNPs' LD scores with --w-ld PREFIX or "
                         "--w-ld-chr PREFIX (per chromosome), one of them")
    return dict(ref_ld=ref_ld or ref_ld_chr, w_ld=w_ld or w_ld_chr,
                ref_ld_chr=ref_ld_chr is not None, w_ld_chr=w_ld_chr is not None,
                m_5_50=not not_m_5_50)


def _tsv(table: pd.DataFrame) -> str:
    return table.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def ldsc_report(*, h2=None, rg=None, ref_ld=None, w_ld=None, ref_ld_chr=None, w_ld_chr=None,
                merge_alleles=None, N=None, samp_prev=None, pop_prev=None, intercept_h2=None,
                intercept_gencov=None, no_intercept=False, two_step=None, chisq_max=None,
                n_blocks=200, overlap_annot=False, frqfile=None, frqfile_chr=None,
                print_coefficients=False, not_m_5_50=False, **_
                ) -> tuple[list[str], dict[str, str]]:
    """``bayeslmm ldsc`` from its flags (argparse names; others ignored): ``--h2 S`` or
    ``--rg S1,S2[,S3...]`` (exactly one; trait 1 against each other) fitted
    (:func:`~bayeslmm.estimation.ldsc_files.ldsc_h2_files`, partitioned with several LD score
    columns; :func:`~bayeslmm.estimation.ldsc_files.ldsc_rg_files`); returns the results
    lines and the files by suffix (``.ldsc.tsv``; ``.results`` with ``--overlap-annot``).
    ``--intercept-h2`` takes ldsc's comma list (one value with ``--h2``; one or one per trait
    with ``--rg``), ``--intercept-gencov`` one value or one per trait (the first ignored, as
    ldsc); ``--no-intercept`` fixes the h2 intercepts at 1 and the cross-trait one at 0;
    ``--samp-prev/--pop-prev``: one value with ``--h2``, one per trait with ``--rg`` (nan for
    a quantitative trait)."""
    if (h2 is None) == (rg is None):
        raise InputError("give --h2 SUMSTATS (heritability) or --rg S1,S2 (genetic "
                         "correlation), one of them")
    ld = _ld_args(ref_ld, ref_ld_chr, w_ld, w_ld_chr, not_m_5_50)
    ih2, igc = _floats(intercept_h2, "--intercept-h2"), _floats(intercept_gencov,
                                                                 "--intercept-gencov")
    if no_intercept:
        if ih2 is not None or igc is not None:
            raise InputError("--no-intercept fixes the intercepts (h2 at 1, gencov at 0): "
                             "drop --intercept-h2/--intercept-gencov")
        ih2, igc = (1.0,), (0.0,)
    if (samp_prev is None) != (pop_prev is None):
        raise InputError("--samp-prev and --pop-prev go together (liability-scale h2)")
    sp, pp = (_floats(v, f, nan=rg is not None)
              for v, f in ((samp_prev, "--samp-prev"), (pop_prev, "--pop-prev")))
    common = dict(merge_alleles=merge_alleles, N=N, two_step=two_step, chisq_max=chisq_max,
                  n_blocks=n_blocks, **ld)
    if overlap_annot and rg is not None:
        raise InputError("--overlap-annot is for partitioned h2 (--h2)")
    if (frqfile is not None and ref_ld is None) or (frqfile_chr is not None and
                                                     ref_ld_chr is None):
        raise InputError("--frqfile goes with --ref-ld, --frqfile-chr with --ref-ld-chr")
    if h2 is not None:
        return _h2_report(h2, ih2, igc, no_intercept, sp, pp, common, overlap_annot,
                          frqfile or frqfile_chr, print_coefficients)
    paths = [p for p in str(rg).split(",") if p]
    if len(paths) < 2:
        raise InputError(f"--rg takes two or more summary statistics files, S1,S2[,S3...]; "
                         f"got {len(paths)} ('{rg}')")
    n = len(paths)
    ih2s = _per_trait(ih2, n, "--intercept-h2")
    igcs = _per_trait(igc, n, "--intercept-gencov")  # trait 1's is ignored, as ldsc
    prev = list(zip(_per_trait(sp, n, "--samp-prev"), _per_trait(pp, n, "--pop-prev"),
                    strict=True))
    lines, tables, fits = [], [], []
    for k in range(1, n):
        fit = ldsc_rg_files(paths[0], paths[k], intercept_h2=(ih2s[0], ih2s[k])
                            if ih2 is not None else None, intercept_gencov=igcs[k], **common)
        pv = (prev[0], prev[k])
        lines += ldsc_rg_lines(fit, (Path(paths[0]).name, Path(paths[k]).name), k=k + 1, n=n,
                               first=k == 1, prev=pv)
        tables.append(ldsc_rg_table(fit, pv).assign(p2=Path(paths[k]).name))
        fits.append(fit)
    lines += _rg_summary([Path(p).name for p in paths], fits, prev)
    table = pd.concat(tables, ignore_index=True)
    return lines, {".ldsc.tsv": _tsv(table[["p2", "name", "estimate", "SE"]])}


def _h2_report(h2, ih2, igc, no_intercept, sp, pp, common, overlap, frq, coefficients):
    if igc is not None and not no_intercept:
        raise InputError("--intercept-gencov is for --rg (the cross-trait regression)")
    if ih2 is not None and len(ih2) != 1:
        raise InputError(f"--intercept-h2 takes one value with --h2, got {len(ih2)}")
    if sp is not None and (len(sp) != 1 or len(pp) != 1):
        raise InputError("--samp-prev/--pop-prev take one value each with --h2")
    P, K = (None, None) if sp is None else (sp[0], pp[0])
    fit = ldsc_h2_files(h2, intercept=ih2 and ih2[0], **common)
    partitioned = isinstance(fit, LDSCPartitionedFit)
    if overlap and not partitioned:
        raise InputError("--overlap-annot needs several LD score columns (partitioned h2)")
    files = {".ldsc.tsv": _tsv(ldsc_h2_table(fit, P, K))}
    lines = ldsc_h2_lines(fit, P, K, overlap=overlap)
    if overlap:
        if frq is None and common["m_5_50"]:
            raise InputError("--overlap-annot counts the common SNPs (as M_5_50 does) from "
                             "allele frequencies: give --frqfile(-chr) PREFIX, or "
                             "--not-M-5-50")
        O, M_tot = read_annot_overlap(common["ref_ld"], common["ref_ld_chr"],
                                      frq if common["m_5_50"] else None)
        res = overlap_results(fit, O, M_tot, coefficients)
        files[".results"] = res.to_csv(sep="\t", index=False, lineterminator="\n",
                                       na_rep="NA")
    return lines, files
