"""The genotype file formats, declared without numpy so that the command line adds their flags
(``--bfile``, ``--pfile``, ``--bgen``/``--sample``, ``--vcf``, plink2's ``--double-id`` and
``--id-delim``) in a fraction of a second. The readers are :mod:`bayeslmm.io.plink`,
:mod:`bayeslmm.io.pgen`, :mod:`bayeslmm.io.bgen` and :mod:`bayeslmm.io.vcf`, imported when a
file is opened (:func:`bayeslmm.inputs.open_genotypes`)."""

from __future__ import annotations

import re
from pathlib import Path

from bayeslmm.registry import GenotypeFormat, register_genotype_format

__all__ = ["FORMATS", "ID_OPTIONS", "LDSCORE_OPTIONS", "LDSC_FLAGS", "QC_FLAGS", "values"]

FORMATS = ("bfile", "pfile", "bgen", "vcf")


def values(value) -> list[str]:
    """What a flag parsed (one value or a list: ``--bgen FILE MODE``) as a list."""
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _fileset(value, suffixes: tuple[str, ...]) -> list[Path]:
    pre = re.sub("(" + "|".join(re.escape(s) for s in suffixes) + ")$", "", values(value)[0])
    return [Path(f"{pre}{s}") for s in suffixes]


#: plink2's rules for one-column sample IDs (VCF, BGEN without a .sample)
ID_OPTIONS = {
    "double_id": {"flag": "--double-id", "action": "store_true",
                  "help": "--vcf/--bgen sample IDs: FID = IID = the ID (plink2)"},
    "id_delim": {"flag": "--id-delim", "nargs": "?", "const": "_", "metavar": "D",
                 "help": "--vcf/--bgen sample IDs are FID<D>IID (D: _ when omitted), as "
                         "plink2; without these flags FID is 0 and IID the ID"},
}

for _fmt in (
    GenotypeFormat(
        name="bfile", opener="bayeslmm.io.plink:open_flag", counted="A1 (.bim column 5)",
        files=lambda v, **_: _fileset(v, (".bed", ".bim", ".fam")),
        flag={"metavar": "PREFIX", "help": "PLINK 1 fileset PREFIX.bed/.bim/.fam (A1 counted);"
              " the GRM is computed from it when no --grm is given"},
        options={"exclude_negative_pos": {
            "flag": "--exclude-negative-pos", "action": "store_true",
            "help": "--bfile: leave out variants with a negative bp position, as PLINK does "
                    "(kept by default, as GEMMA)"}}),
    GenotypeFormat(
        name="pfile", opener="bayeslmm.io.pgen:open_flag", counted="ALT (PLINK 2)",
        files=lambda v, **_: _fileset(v, (".pgen", ".pvar", ".psam")),
        flag={"metavar": "PREFIX", "help": "PLINK 2 fileset PREFIX.pgen/.pvar/.psam (ALT "
              "counted; dosages where the .pgen stores them, else hard calls); "
              "multi-allelic records skipped"}),
    GenotypeFormat(
        name="bgen", opener="bayeslmm.io.bgen:open_flag", counted="ALT, per the REF/ALT mode",
        files=lambda v, sample=None, **_: [Path(values(v)[0])] + ([Path(sample)] if sample
                                                                 else []),
        flag={"nargs": "+", "metavar": ("FILE", "MODE"),
              "help": "BGEN file and plink2's REF/ALT mode (ref-first, ref-last, ref-unknown):"
                      " ALT's dosage is counted"},
        options={"sample": {"flag": "--sample", "metavar": "FILE",
                            "help": "Oxford .sample file of --bgen"}, **ID_OPTIONS}),
    GenotypeFormat(
        name="vcf", opener="bayeslmm.io.vcf:open_flag", counted="ALT (GT, or dosage=FIELD)",
        files=lambda v, **_: [Path(values(v)[0])], options=ID_OPTIONS,
        flag={"nargs": "+", "metavar": ("FILE", "dosage=DS"),
              "help": "VCF/BCF file (ALT counted from GT; 'dosage=DS': dosages from that "
                      "FORMAT field), as plink2 --vcf"}),
):
    register_genotype_format(_fmt)

#: PLINK's sample and SNP filters (argparse keywords), added by the parser in one loop
QC_FLAGS = {
    "--maf": dict(type=float, default=0.0, help="drop SNPs with MAF below this"),
    "--geno": dict(type=float, default=1.0, help="drop SNPs with a missing-call rate above this"),
    "--chr": dict(nargs="+", action="extend", default=None, metavar="C",
                  help="use SNPs on these chromosomes only"),
    "--keep": dict(metavar="FILE", help="use only the samples listed (FID IID)"),
    "--remove": dict(metavar="FILE", help="leave out the samples listed (FID IID)"),
    "--extract": dict(metavar="FILE", help="use only the SNPs listed (one ID a line)"),
    "--exclude": dict(metavar="FILE", help="leave out the SNPs listed"),
    "--include-nonautosomal": dict(
        action="store_true", help="put SNPs on X/Y/XY/MT (23-26) in the GRM too; by default "
        "they are left out, as plink1.9 --make-grm-bin and GCTA --autosome do"),
}


#: ``bayeslmm ldsc``'s flags (LDSC's ``ldsc.py --h2``/``--rg`` names; --merge-alleles and --N
#: from ``munge_sumstats.py``); --h2 or --rg, one of them, and --ref-ld or --ref-ld-chr,
#: --w-ld or --w-ld-chr (checked by reports.ldsc_report)
_LAYOUTS = ("LDSC .sumstats(.gz), plink2 .glm.linear, GEMMA .assoc.txt or GCTA-COJO .ma (told "
            "by the ending; MAF < 0.01 and INFO < 0.9 dropped where given)")
_CHR = "per chromosome: @ in PREFIX stands for 1-22, else the number is appended"
LDSC_FLAGS = {
    "--h2": dict(default=None, metavar="SUMSTATS",
                 help=f"h2 of summary statistics: {_LAYOUTS}; partitioned h2 (tau, h2, "
                      "enrichment per annotation) when --ref-ld has several columns"),
    "--rg": dict(default=None, metavar="S1,S2[,S3...]",
                 help="genetic correlation of the first summary statistics file with each "
                      "other one, comma-separated (their alleles aligned to S1's)"),
    "--ref-ld": dict(default=None, metavar="PREFIX[,PREFIX2...]",
                     help="LD scores PREFIX.l2.ldscore.gz with PREFIX.l2.M_5_50 (ldscore); "
                          "several prefixes: their columns side by side (partitioned h2)"),
    "--ref-ld-chr": dict(default=None, metavar="PREFIX[,PREFIX2...]",
                         help=f"as --ref-ld, {_CHR}"),
    "--w-ld": dict(default=None, metavar="PREFIX",
                   help="LD scores of the regression SNPs, for the weights (one column)"),
    "--w-ld-chr": dict(default=None, metavar="PREFIX", help=f"as --w-ld, {_CHR}"),
    "--overlap-annot": dict(action="store_true",
                            help="partitioned h2 with overlapping annotations: PREFIX.results "
                                 "(proportions of h2 and enrichment with SEs and p) from "
                                 "PREFIX.annot(.gz) next to each --ref-ld(-chr) prefix"),
    "--frqfile": dict(default=None, metavar="PREFIX",
                      help="--overlap-annot with --ref-ld: PREFIX.frq (PLINK --freq), to count "
                           "the SNPs with MAF > 0.05 as M_5_50 does"),
    "--frqfile-chr": dict(default=None, metavar="PREFIX",
                          help=f"as --frqfile with --ref-ld-chr, {_CHR}"),
    "--print-coefficients": dict(action="store_true",
                                 help="--overlap-annot: also the coefficients (tau) in "
                                      ".results"),
    "--not-M-5-50": dict(action="store_true", dest="not_m_5_50",
                         help="M from .l2.M (all SNPs) instead of .l2.M_5_50"),
    "--merge-alleles": dict(default=None, metavar="FILE",
                            help="reference alleles (a .bim or a SNP A1 A2 list): keep its "
                                 "SNPs, Z signed for its A1, mismatched alleles dropped"),
    "--N": dict(type=float, default=None, help="samples per SNP (GEMMA's layout has none)"),
    "--samp-prev": dict(default=None, metavar="P[,P2...]",
                        help="case-control: the sample's prevalence (with --pop-prev); --rg: "
                             "one per file, nan for a quantitative trait"),
    "--pop-prev": dict(default=None, metavar="K[,K2...]",
                       help="case-control: the population prevalence; h2 (and --rg's "
                            "gencov) on the liability scale"),
    "--intercept-h2": dict(default=None, metavar="X[,Y...]",
                           help="fix the h2 intercept at X (--rg: all traits', or one per "
                                "file); default: estimated"),
    "--intercept-gencov": dict(default=None, metavar="X[,Y...]",
                               help="--rg: fix the cross-trait intercepts at X (0 without "
                                    "sample overlap), or one per file (the first ignored)"),
    "--no-intercept": dict(action="store_true",
                           help="fix the h2 intercepts at 1 and the cross-trait one at 0"),
    "--two-step": dict(type=float, default=None, metavar="C",
                       help="two-step estimator's chi2 cutoff (--h2: default 30 with a "
                            "free intercept; --rg: none by default, as ldsc)"),
    "--chisq-max": dict(type=float, default=None, metavar="M",
                        help="leave out SNPs with chi2 >= M (--rg: z1^2 z2^2 >= M^2; "
                             "partitioned h2: default max(0.001 max N, 80), as ldsc)"),
    "--n-blocks": dict(type=int, default=200, help="block-jackknife blocks"),
}

#: ``bayeslmm ldscore``'s options besides its window (LDSC's ``--l2`` names)
LDSCORE_OPTIONS = {
    "--annot": dict(default=None, metavar="FILE",
                    help="annotation-stratified LD scores (one column per annotation, "
                         "<name>L2, and M per annotation): an LDSC .annot(.gz) file, rows "
                         "matched to the reference's SNPs by its SNP column (or, without one, "
                         "one row per SNP in order)"),
}
