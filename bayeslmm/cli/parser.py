"""The ``bayeslmm`` argument parser: GCTA-style flags, one sub-parser per command (grm, reml,
blup, assoc, sample, compare, sensitivity, demo; ``bayeslmm COMMAND --help`` lists each one's
flags). The choices of ``--engine`` and ``--test`` are what :mod:`bayeslmm.registry` holds."""

from __future__ import annotations

import argparse
import sys

from bayeslmm import __version__
from bayeslmm.association.catalogue import ASSOC_FLAGS
from bayeslmm.estimation import catalogue as est
from bayeslmm.io.catalogue import LDSC_FLAGS, LDSCORE_OPTIONS, QC_FLAGS  # fills GENOTYPE_FORMATS
from bayeslmm.registry import GENOTYPE_FORMATS, HABITS, genotype_option_flags
from bayeslmm.reports.formats import posterior_flags

__all__ = ["PROG", "build_parser"]

PROG = "bayeslmm"


def _common(p: argparse.ArgumentParser, out_default: str = "bayeslmm") -> None:
    p.add_argument("--out", default=out_default, metavar="PREFIX",
                   help=f"output prefix (default: {out_default})")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="BLAS/OpenMP threads and parallel MCMC chains (default: library "
                        "defaults)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or step messages; results still go to stdout, "
                   "warnings and errors to stderr, the whole log to PREFIX.log")


def _genotypes(p: argparse.ArgumentParser, required: bool = False) -> None:
    """--bfile, --pfile, --bgen, --vcf and their own flags, as the registry declares them."""
    g = p.add_mutually_exclusive_group(required=required)
    for name, fmt in GENOTYPE_FORMATS.items():
        g.add_argument(f"--{name}", **fmt.flag)
    for dest, kw in genotype_option_flags().items():
        p.add_argument(kw["flag"], dest=dest, **{k: v for k, v in kw.items() if k != "flag"})


def _inputs(p: argparse.ArgumentParser, kernel: bool = True) -> None:
    if kernel:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--grm", metavar="PREFIX", help="GCTA binary GRM (PREFIX.grm.bin/.N/.id)")
        g.add_argument("--mgrm", metavar="FILE",
                       help="file listing several GRM prefixes, one per line (GCTA)")
        p.add_argument("--grm-cutoff", type=float, default=None, metavar="C",
                       help="drop one of each pair of samples with GRM entry > C (GCTA's "
                            "--grm-cutoff rule); an indefinite GRM is fitted as is otherwise")
        p.add_argument("--grm-bend", action="store_true",
                       help="bend the GRM(s) to PSD by GCTA's eigenvalue bending (negative "
                            "eigenvalues made small positive, trace kept)")
    _genotypes(p)
    p.add_argument("--pheno", required=True, metavar="FILE", help="FID IID y1 y2 ...")
    p.add_argument("--mpheno", type=int, nargs="+", default=[1], metavar="K",
                   help="phenotype column (1-based); with reml and sample, two or more columns "
                        "fit the multi-trait model (genetic correlation)")
    p.add_argument("--covar", metavar="FILE", help="discrete covariates (dummy-coded)")
    p.add_argument("--qcovar", metavar="FILE", help="quantitative covariates")
    _add(p, QC_FLAGS)


def _prevalence_flag(p: argparse.ArgumentParser, model: bool = False) -> None:
    _add(p, {k: v for k, v in est.LIABILITY_FLAGS.items() if model or k == "--prevalence"})


def _engine_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large N (with genotypes; see bayeslmm.estimation.engines)")
    _add(g, est.ENGINE_FLAGS)


def _add(p, table) -> None:
    """Add the flags of a declarative table (flag -> argparse keywords)."""
    for flag, kw in table.items():
        p.add_argument(flag, **kw)


class _Help(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless it says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        h, d = action.help or "", action.default
        if "default" in h or action.nargs == 0 or d in (None, [], argparse.SUPPRESS):
            return h
        return f"{h} (default: {' '.join(map(str, d)) if isinstance(d, list) else '%(default)s'})"


class _Parser(argparse.ArgumentParser):
    """argparse with its error on one line (no usage block), as every other error, naming
    the command a GCTA/GEMMA user meant (``bayeslmm --reml ...`` is ``bayeslmm reml ...``)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, formatter_class=_Help, **kw)

    def parse_known_args(self, args=None, namespace=None):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        meant = next((HABITS[a] for a in getattr(self, "argv", ()) if a in HABITS), None)
        hint = (f"; commands are words here: '{self.prog} {meant} ...' does what GCTA/GEMMA's "
                f"flag does" if meant else f" (see '{self.prog} --help')")
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayeslmm`` command (subcommands grm, reml, blup, assoc,
    sample, demo)."""
    parser = _Parser(
        prog=PROG, description="Bayesian linear mixed models for statistical genetics "
        "(GCTA-style files: .grm.bin, .hsq, .indi.blp, .snp.blp).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("grm", help="GCTA GRM from genotypes (.bed, .pgen, BGEN, VCF)")
    _genotypes(p, required=True)
    _add(p, QC_FLAGS)
    p.add_argument("--loco", action="store_true",
                   help="also write one leave-one-chromosome-out GRM per chromosome, "
                        "PREFIX.loco-chrC.grm.*")
    _common(p)

    p = sub.add_parser("reml", help="variance components by REML/ML -> PREFIX.hsq")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    _prevalence_flag(p)
    _engine_flags(p)
    _common(p)

    p = sub.add_parser("blup", help="REML + BLUP -> PREFIX.hsq, .indi.blp (+ .snp.blp)")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    _common(p)

    p = sub.add_parser("assoc", help="mixed-model association -> PREFIX.assoc.tsv")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    _add(p, ASSOC_FLAGS)
    _engine_flags(p)
    _common(p)

    p = sub.add_parser("sample", help="full posterior (NUTS) -> PREFIX.posterior.nc/.tsv, "
                                      ".h2.png")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    _prevalence_flag(p, model=True)
    _add(p, posterior_flags())
    p.add_argument("--lkj-eta", type=float, default=1.0, metavar="ETA",
                   help="several traits: LKJ shape of the r_g and r_e priors (1: uniform)")
    _engine_flags(p)
    _common(p)

    p = sub.add_parser("compare", help="REML (empirical Bayes) vs the full posterior -> "
                                       "PREFIX.compare.tsv, .compare.png")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    _prevalence_flag(p, model=True)
    _add(p, posterior_flags())
    _common(p)

    p = sub.add_parser("sensitivity", help="prior sensitivity of h2 -> PREFIX.sensitivity.tsv,"
                                           " .sensitivity.png")
    _inputs(p)
    _add(p, est.FIT_FLAGS)
    p.add_argument("--priors", action="append", default=[], metavar="LABEL:NAME=SPEC;...",
                   help="one prior set per flag, e.g. --priors 'flat: h2=Beta(1, 1)' "
                        "--priors 'IG: sigma_g2=InverseGamma(0.001, 0.001); "
                        "sigma_e2=InverseGamma(0.001, 0.001)'")
    p.add_argument("--quadrature", action="store_true",
                   help="exact posteriors of h2 by quadrature instead of NUTS (fast; beta "
                        "flat; no power-scaling diagnostic)")
    _add(p, posterior_flags(prior=False))
    _common(p)

    p = sub.add_parser("ldscore", help="LD scores of a reference panel (LDSC --l2) -> "
                       "PREFIX.l2.ldscore.gz, .l2.M, .l2.M_5_50")
    _genotypes(p, required=True)
    _add(p, QC_FLAGS)
    _add(p.add_mutually_exclusive_group(required=True), est.LDSCORE_FLAGS)
    _add(p, LDSCORE_OPTIONS)
    _common(p)

    p = sub.add_parser("ldsc", help="LD score regression: h2, partitioned h2 (LDSC --h2) or "
                       "genetic correlation (--rg) -> PREFIX.ldsc.tsv (.results)")
    _add(p, LDSC_FLAGS)
    _common(p)

    p = sub.add_parser("ldpred", help="LDpred SNP effects from summary statistics and an LD "
                       "reference -> PREFIX.ldpred.tsv, .ldpred.nc (+ .sscore of --target)")
    _add(p, est.LDPRED_FLAGS)
    _add(p.add_mutually_exclusive_group(), est.LDSCORE_FLAGS)
    _common(p)

    p = sub.add_parser("demo", help="run the whole pipeline on the embedded demo data")
    _add(p, posterior_flags(prior=False, draws=500, tune=500, chains=2, seed=1, figures=False))
    _common(p, out_default="demo-out")
    return parser
