"""LD score regression on files, as ``ldsc.py --h2`` and ``--rg`` run it: summary statistics read
and munged (:mod:`bayeslmm.io.sumstats`), joined to the LD scores (:mod:`bayeslmm.io.ldscores`:
``--ref-ld``/``--w-ld`` or their per-chromosome ``-chr`` forms, several comma-separated
``--ref-ld`` prefixes side by side) in the reference's order, then
:func:`~bayeslmm.estimation.ldsc.ldsc_h2` (one LD score column),
:func:`~bayeslmm.estimation.ldsc_partition.ldsc_h2_partitioned` (several: partitioned h2) or
:func:`~bayeslmm.estimation.ldsc.ldsc_rg`.

As ldsc: LD score columns with zero variance (over the reference's SNPs) are left out with
their M; ``--w-ld`` must have one column; M is the ``.l2.M_5_50`` sum (``.l2.M`` with
``m_5_50=False``, ldsc's ``--not-M-5-50``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import LDSCFit, LDSCRGFit, ldsc_h2, ldsc_rg
from bayeslmm.estimation.ldsc_partition import LDSCPartitionedFit, ldsc_h2_partitioned
from bayeslmm.io.ldscores import read_ldscore_set
from bayeslmm.io.sumstats import align_alleles, read_alleles, read_sumstats

__all__ = ["join_ldscores", "ldsc_h2_files", "ldsc_rg_files", "read_munged"]

log = logging.getLogger(__name__)


def read_munged(sumstats, merge_alleles=None, N: float | None = None) -> pd.DataFrame:
    """``SNP A1 A2 Z N`` of a summary statistics file, munged, aligned to ``merge_alleles``
    (a ``.bim`` or ``SNP A1 A2`` list) when given."""
    ss = read_sumstats(sumstats, N=N)
    return ss if merge_alleles is None else align_alleles(ss, read_alleles(merge_alleles))


def join_ldscores(ss: pd.DataFrame, ref_ld, w_ld, *, ref_ld_chr: bool = False,
                  w_ld_chr: bool = False, m_5_50: bool = True
                  ) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """``ss`` joined to the LD scores ``ref_ld`` (its columns) and ``w_ld`` (column ``W``), in
    the reference's order (the jackknife's blocks are runs of it); ``*_chr``: per-chromosome
    prefixes. Returns the joined table, the LD score columns kept and their M."""
    ref = read_ldscore_set(str(ref_ld), ref_ld_chr, m_5_50)
    if "," in str(w_ld):
        raise InputError("--w-ld takes one fileset (no commas): the LD scores of the "
                         "regression SNPs")
    wld = read_ldscore_set(str(w_ld), w_ld_chr)
    if len(wld.names) != 1:
        raise InputError(f"--w-ld must have one LD score column, '{w_ld}' has "
                         f"{len(wld.names)}")
    names, M = list(ref.names), ref.M
    flat = (ref.table[names].var() == 0).to_numpy()
    if flat.all():
        raise InputError("every LD score column has zero variance")
    if flat.any():
        log.info("LD score columns with zero variance left out: %s.",
                 ", ".join(np.array(names)[flat]))
        names, M = [c for c, f in zip(names, flat, strict=True) if not f], M[~flat]
    d = ref.table[["SNP", *names]].merge(ss, on="SNP")
    d = d.merge(wld.table.rename(columns={wld.names[0]: "W"}), on="SNP")
    log.info("%d of %d SNPs are in the reference panel LD and the regression SNP LD.",
             len(d), len(ss))
    if d.empty:
        raise InputError("no SNP of the summary statistics is in both --ref-ld and --w-ld")
    return d, names, M


def ldsc_h2_files(sumstats, ref_ld, w_ld, *, ref_ld_chr: bool = False,
                  w_ld_chr: bool = False, m_5_50: bool = True, merge_alleles=None,
                  N: float | None = None, intercept: float | None = None,
                  two_step: float | None = None, chisq_max: float | None = None,
                  n_blocks: int = 200) -> LDSCFit | LDSCPartitionedFit:
    """``ldsc.py --h2 SUMSTATS --ref-ld REF --w-ld W`` (or ``--ref-ld-chr``/``--w-ld-chr``):
    :func:`join_ldscores`, then with one LD score column :func:`ldsc_h2` (``two_step`` None is
    ldsc's default: 30 with a free intercept, none with a fixed one), with several
    :func:`ldsc_h2_partitioned` (ldsc's one-step estimator with fixed weights; ``chisq_max``
    None: max(0.001 max N, 80); ``--two-step`` refused, as ldsc)."""
    d, names, M = join_ldscores(read_munged(sumstats, merge_alleles, N), ref_ld, w_ld,
                                ref_ld_chr=ref_ld_chr, w_ld_chr=w_ld_chr, m_5_50=m_5_50)
    chisq, w, n = d.Z.to_numpy() ** 2, d.W.to_numpy(), d.N.to_numpy()
    if len(names) > 1:
        if two_step is not None:
            raise InputError("--two-step is not available for partitioned h2 (several LD "
                             "score columns), as in ldsc")
        return ldsc_h2_partitioned(chisq, d[names].to_numpy(), w, n, M, names=names,
                                   n_blocks=n_blocks, intercept=intercept,
                                   chisq_max=chisq_max)
    if two_step is None and intercept is None:
        two_step = 30.0
    return ldsc_h2(chisq, d[names[0]].to_numpy(), w, n, float(M[0]), intercept=intercept,
                   two_step=two_step, chisq_max=chisq_max, n_blocks=n_blocks)


def ldsc_rg_files(sumstats1, sumstats2, ref_ld, w_ld, *, ref_ld_chr: bool = False,
                  w_ld_chr: bool = False, m_5_50: bool = True, merge_alleles=None,
                  N: float | None = None, intercept_h2=None,
                  intercept_gencov: float | None = None, two_step: float | None = None,
                  **options) -> LDSCRGFit:
    """``ldsc.py --rg S1,S2 --ref-ld REF --w-ld W`` on files: both read and munged as
    :func:`ldsc_h2_files` does, trait 1 joined to the LD scores in the reference's order, then
    to trait 2's SNPs, whose alleles are aligned to trait 1's (the same pair, on either strand:
    kept; swapped: Z2 negated; any other pair: dropped; strand-ambiguous SNPs were dropped
    when read), then :func:`ldsc_rg`. ``two_step`` None is what ``ldsc.py --rg`` 2.0.1 does
    by default: one step (its default cutoff of 30 is meant for free intercepts, but its
    test of "no --intercept-h2" sees the per-trait list [None, None] and never applies it;
    ``--two-step 30`` asks for it). ``options`` go to :func:`ldsc_rg` (``n_blocks``,
    ``chisq_max``). One LD score column only (ldsc's partitioned rg is not built)."""
    ss1, ss2 = (read_munged(s, merge_alleles, N) for s in (sumstats1, sumstats2))
    d, names, M = join_ldscores(ss1, ref_ld, w_ld, ref_ld_chr=ref_ld_chr, w_ld_chr=w_ld_chr,
                                m_5_50=m_5_50)
    if len(names) > 1:
        raise InputError("--rg takes LD scores with one column (partitioned genetic "
                         "covariance is not built)")
    shared = ss2[ss2.SNP.isin(d.SNP)]
    if shared.empty:
        raise InputError(f"no SNP is in both '{sumstats1}' and '{sumstats2}' (and the LD "
                         "scores): nothing to regress")
    log.info("%s: %d of its %d SNPs are among trait 1's; aligning their alleles to trait 1's.",
             sumstats2, len(shared), len(ss2))
    ss2 = align_alleles(shared.reset_index(drop=True), d[["SNP", "A1", "A2"]])
    d = d.merge(ss2[["SNP", "Z", "N"]].rename(columns={"Z": "Z2", "N": "N2"}), on="SNP")
    log.info("%d SNPs in both traits and the LD scores.", len(d))
    return ldsc_rg(d.Z.to_numpy(), d.Z2.to_numpy(), d[names[0]].to_numpy(), d.W.to_numpy(),
                   d.N.to_numpy(), d.N2.to_numpy(), float(M[0]), intercept_h2=intercept_h2,
                   intercept_gencov=intercept_gencov, two_step=two_step, **options)
