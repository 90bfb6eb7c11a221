"""The ``bayeslmm`` command: GCTA-style flags over the library.

Thin by design (DESIGN.md): parse the flags, read the files, call the library, write the
files. Subcommands::

    bayeslmm grm    --bfile X [--maf F] [--geno F] [--chr C ...] [--loco] --out P
    bayeslmm reml   (--grm P | --mgrm FILE | --bfile X) --pheno F [--mpheno k]
                    [--covar F] [--qcovar F] [--method M] [--ml] [--no-constrain] --out P
    bayeslmm blup   (same inputs as reml) [--bfile X]                       --out P
    bayeslmm assoc  --bfile X [--grm P] --pheno F [--test T ...] [--loco]   --out P
    bayeslmm sample (same inputs as reml) [--prior h2='Beta(1, 1)' ...] [--draws n]
                    [--tune n] [--chains n] [--seed s]                       --out P
    bayeslmm compare (as sample): REML next to the posterior -> .compare.tsv/.png
    bayeslmm sensitivity (as reml) --priors 'LABEL: NAME=SPEC; ...' [...]   --out P
    bayeslmm demo   [--out DIR]

Every subcommand also takes ``--threads N`` and ``--quiet``. A run writes a log of what was
read and dropped to stderr and to ``PREFIX.log``. A bad input ends the run with one line,
``bayeslmm: error: ...``, on stderr and exit status 1; no output file is written then, since
all of a run's files are staged and renamed into place only at the very end
(:class:`~bayeslmm.io.reports.StagedOutputs`). Bugs are not caught: they show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeslmm.errors import BayesLMMError, InputError

__all__ = ["build_parser", "main"]

PROG = "bayeslmm"
log = logging.getLogger("bayeslmm.cli")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")


# ----------------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, out_default: str = "bayeslmm") -> None:
    p.add_argument("--out", default=out_default, metavar="PREFIX",
                   help=f"output prefix (default: {out_default})")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="BLAS/OpenMP threads and parallel MCMC chains (default: library "
                        "defaults)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, log only to file")


def _qc(p: argparse.ArgumentParser) -> None:
    p.add_argument("--maf", type=float, default=0.0, help="drop SNPs with MAF below this")
    p.add_argument("--geno", type=float, default=1.0,
                   help="drop SNPs with a missing-call rate above this")
    p.add_argument("--chr", nargs="+", default=None, metavar="C",
                   help="use SNPs on these chromosomes only")
    p.add_argument("--include-nonautosomal", action="store_true",
                   help="put SNPs on X/Y/XY/MT (23-26) in the GRM too; by default they are "
                        "left out, as plink1.9 --make-grm-bin and GCTA --autosome do")


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
    p.add_argument("--bfile", metavar="PREFIX",
                   help="PLINK fileset; the GRM is computed from it when no --grm is given")
    p.add_argument("--pheno", required=True, metavar="FILE", help="FID IID y1 y2 ...")
    p.add_argument("--mpheno", type=int, default=1, metavar="K", help="phenotype column (1-based)")
    p.add_argument("--covar", metavar="FILE", help="discrete covariates (dummy-coded)")
    p.add_argument("--qcovar", metavar="FILE", help="quantitative covariates")
    _qc(p)


def _fit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("auto", "brent", "ai", "fisher", "em"), default="auto",
                   help="auto: spectral Brent for one GRM, AI-REML for several")
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    p.add_argument("--no-constrain", action="store_true",
                   help="allow negative variance components (dense algorithms)")


def _posterior_flags(p: argparse.ArgumentParser, prior: bool = True, draws: int = 1000,
                     tune: int = 1000, chains: int = 4, seed: int | None = None) -> None:
    if prior:
        p.add_argument("--prior", action="append", default=[], metavar="NAME=SPEC",
                       help="e.g. h2='Beta(1, 1)' or Vp='HalfNormal(2)'; repeatable")
    p.add_argument("--draws", type=int, default=draws)
    p.add_argument("--tune", type=int, default=tune)
    p.add_argument("--chains", type=int, default=chains)
    p.add_argument("--seed", type=int, default=seed)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayeslmm`` command (subcommands grm, reml, blup, assoc,
    sample, demo)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Bayesian linear mixed models for statistical genetics "
        "(GCTA-style files: .grm.bin, .hsq, .indi.blp, .snp.blp).")
    from bayeslmm import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("grm", help="GCTA GRM from a PLINK fileset")
    p.add_argument("--bfile", required=True, metavar="PREFIX")
    _qc(p)
    p.add_argument("--loco", action="store_true",
                   help="also write one leave-one-chromosome-out GRM per chromosome, "
                        "PREFIX.loco-chrC.grm.*")
    _common(p)
    p.set_defaults(func=cmd_grm)

    p = sub.add_parser("reml", help="variance components by REML/ML -> PREFIX.hsq")
    _inputs(p)
    _fit_flags(p)
    _common(p)
    p.set_defaults(func=cmd_reml)

    p = sub.add_parser("blup", help="REML + BLUP -> PREFIX.hsq, .indi.blp (+ .snp.blp)")
    _inputs(p)
    _fit_flags(p)
    _common(p)
    p.set_defaults(func=cmd_blup)

    p = sub.add_parser("assoc", help="mixed-model association -> PREFIX.assoc.tsv")
    _inputs(p)
    _fit_flags(p)
    p.add_argument("--test", choices=("exact", "grammar", "grammar-gamma"), default=["exact"],
                   nargs="+", help="one or more tests, run in one pass over the genotypes; "
                   "with several, one file per test: PREFIX.<test>.assoc.tsv")
    p.add_argument("--loco", action="store_true",
                   help="leave-one-chromosome-out: null fit per chromosome (needs --bfile)")
    _common(p)
    p.set_defaults(func=cmd_assoc)

    p = sub.add_parser("sample", help="full posterior (NUTS) -> PREFIX.posterior.nc/.tsv, "
                                      ".h2.png")
    _inputs(p)
    _fit_flags(p)
    _posterior_flags(p)
    _common(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("compare", help="REML (empirical Bayes) vs the full posterior -> "
                                       "PREFIX.compare.tsv, .compare.png")
    _inputs(p)
    _fit_flags(p)
    _posterior_flags(p)
    _common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sensitivity", help="prior sensitivity of h2 -> PREFIX.sensitivity.tsv,"
                                           " .sensitivity.png")
    _inputs(p)
    _fit_flags(p)
    p.add_argument("--priors", action="append", default=[], metavar="LABEL:NAME=SPEC;...",
                   help="one prior set per flag, e.g. --priors 'flat: h2=Beta(1, 1)' "
                        "--priors 'IG: sigma_g2=InverseGamma(0.001, 0.001); "
                        "sigma_e2=InverseGamma(0.001, 0.001)'")
    p.add_argument("--quadrature", action="store_true",
                   help="exact posteriors of h2 by quadrature instead of NUTS (fast; beta "
                        "flat; no power-scaling diagnostic)")
    _posterior_flags(p, prior=False)
    _common(p)
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("demo", help="run the whole pipeline on the embedded demo data")
    _posterior_flags(p, prior=False, draws=500, tune=500, chains=2, seed=1)
    _common(p, out_default="demo-out")
    p.set_defaults(func=cmd_demo)
    return parser


# ----------------------------------------------------------------------------- runtime
@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP threads to ``n``: threadpoolctl for the libraries already loaded
    (numpy's BLAS), environment variables for those loaded later (numba, subprocesses)."""
    if n is None:
        yield
        return
    if n < 1:
        raise InputError(f"--threads must be at least 1, got {n}")
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: str(n) for v in THREAD_VARS})
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=n):
            yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


class _LogBuffer(logging.Handler):
    """Keeps the run's log lines, written to ``PREFIX.log`` with the other outputs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _logging(quiet: bool) -> Iterator[_LogBuffer]:
    root = logging.getLogger("bayeslmm")
    buf = _LogBuffer()
    handlers: list[logging.Handler] = [buf]
    if not quiet:
        h = logging.StreamHandler(sys.stderr)
        h.setLevel(logging.INFO)
        h.setFormatter(logging.Formatter("%(message)s"))
        handlers.append(h)
    old_level = root.level
    root.setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    # Warnings (e.g. SamplingWarning on R-hat) belong in the run's log, not only on stderr.
    warn_log = logging.getLogger("py.warnings")
    for h in handlers:
        warn_log.addHandler(h)
    logging.captureWarnings(True)
    try:
        yield buf
    finally:
        logging.captureWarnings(False)
        for h in handlers:
            root.removeHandler(h)
            warn_log.removeHandler(h)
        root.setLevel(old_level)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None  # None: the library shows bars on long loops


def _prefix(out: str) -> Path:
    p = Path(out)
    if p.parent != Path("") and not p.parent.is_dir():
        raise InputError(f"output folder '{p.parent}' does not exist (from --out {out})")
    return p


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        msg = f"{exc.strerror or exc}: '{exc.filename}'"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())  # one line, whatever the message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayeslmm`` command; returns 0, or exits with status 1 on a user error
    (one line on stderr, no traceback) and 2 on a command-line syntax error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    staged = None
    try:
        from bayeslmm.io.reports import StagedOutputs

        with _threads(args.threads), _logging(args.quiet) as buf:
            t0 = time.perf_counter()
            log.info("bayeslmm %s", " ".join(sys.argv[1:] if argv is None else argv))
            staged = StagedOutputs()
            prefix = args.func(args, staged)
            log.info("Finished in %.1f s.", time.perf_counter() - t0)
            staged.write_text(f"{prefix}.log", "\n".join(buf.lines) + "\n")
            staged.commit()
    except (BayesLMMError, OSError) as exc:
        if staged is not None:
            staged.abort()
        parser.exit(1, f"{PROG}: error: {_error_line(exc)}\n")
    except BaseException:
        if staged is not None:
            staged.abort()  # no partial output after a bug or Ctrl-C either
        raise
    return 0


# ----------------------------------------------------------------------------- inputs
@dataclass
class Inputs:
    """Aligned inputs of a fit: phenotype, design, kernel(s) and the genotype dataset."""

    y: pd.Series
    X: pd.DataFrame
    K: Any  # one DataArray, or a list of them
    names: list[str]
    grms: list[Any]
    ds: Any  # the PLINK dataset when --bfile was given
    raw_grms: list[Any]  # the GRMs as read or computed, before alignment


def _read_mgrm(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        prefixes = [ln.strip() for ln in fh if ln.strip()]
    if not prefixes:
        raise InputError(f"--mgrm file '{path}' lists no GRM")
    return prefixes


def _load(args: argparse.Namespace, grms_given: list | None = None,
          ds_given=None) -> Inputs:
    """Read (or compute) the kernel(s), phenotype and covariates and align them by FID/IID;
    ``grms_given`` are GRMs already computed (LOCO), used instead of --grm/--bfile, and
    ``ds_given`` the PLINK dataset already opened (LOCO: opened once, not per chromosome)."""
    from bayeslmm.genotypes import grm
    from bayeslmm.io import (
        align_samples,
        read_covar,
        read_grm,
        read_phenotype,
        read_plink,
        read_qcovar,
    )

    ds = ds_given
    if ds is None and getattr(args, "bfile", None):
        ds = read_plink(args.bfile)
        log.info("Read %d samples and %d variants from PLINK fileset '%s'.",
                 ds.sizes["sample"], ds.sizes["variant"], args.bfile)
    grms = list(grms_given or [])
    if grms:
        pass
    elif getattr(args, "mgrm", None):
        for pre in _read_mgrm(args.mgrm):
            grms.append(read_grm(pre))
    elif getattr(args, "grm", None):
        grms.append(read_grm(args.grm))
    else:
        if ds is None:
            raise InputError("give a kernel: --grm PREFIX, --mgrm FILE or --bfile PREFIX")
        g = grm(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                progress=_progress(args),
                autosome=not getattr(args, "include_nonautosomal", False))
        log.info("Computed the GRM from %d SNPs passing QC (maf >= %g, geno <= %g).",
                 g.M, args.maf, args.geno)
        grms.append(g)
    for g in grms:
        log.info("GRM '%s': %d samples, %d SNPs.", g.label, g.N, g.M)
    grms = _remedies(args, grms)
    y = read_phenotype(args.pheno, mpheno=args.mpheno)
    log.info("Read phenotype '%s' (column %d) of %d samples from '%s'; %d missing.",
             y.name, args.mpheno, len(y), args.pheno, int(y.isna().sum()))
    inputs: dict[str, Any] = {}
    names = ["GRM"] if len(grms) == 1 else [f"GRM{j + 1}" for j in range(len(grms))]
    inputs.update(zip(names, grms, strict=True))
    inputs["phenotype"] = y
    if args.qcovar:
        inputs["qcovar"] = read_qcovar(args.qcovar)
        log.info("Read %d quantitative covariate(s) from '%s'.", inputs["qcovar"].shape[1],
                 args.qcovar)
    if args.covar:
        inputs["covar"] = read_covar(args.covar)
        log.info("Read discrete covariates from '%s' (%d dummy columns).", args.covar,
                 inputs["covar"].shape[1])
    if ds is not None and not grms:
        inputs["bfile"] = ds  # samples must be genotyped when no GRM is read
    a = align_samples(inputs)
    log.info("%d samples in common after dropping missing values.", a.N)
    yk = a["phenotype"]
    X = pd.DataFrame({"intercept": 1.0}, index=yk.index)
    for name in ("qcovar", "covar"):
        if name in a.data:
            X = X.join(a[name])
    kern = [a[n] for n in names]
    K = kern[0].K if len(kern) == 1 else [g.K for g in kern]
    comp = ["G"] if len(kern) == 1 else [g.label or n for g, n in zip(kern, names, strict=True)]
    return Inputs(y=yk, X=X, K=K, names=comp, grms=kern, ds=ds, raw_grms=grms)


def _remedies(args: argparse.Namespace, grms: list) -> list:
    """GCTA's --grm-cutoff and bending, applied to the GRMs as read (kernel_remedies)."""
    from bayeslmm.io import GRM
    from bayeslmm.kernel_remedies import bend, relatedness_cutoff

    cutoff = getattr(args, "grm_cutoff", None)
    if cutoff is not None:
        out = []
        for g in grms:
            keep = relatedness_cutoff(g.values, cutoff)  # logs what it removed
            out.append(g.subset(np.flatnonzero(keep)))
        grms = out
    if getattr(args, "grm_bend", False):
        out = []
        for g in grms:
            b = bend(g.values)  # logs the eigenvalues before and after
            out.append(GRM.from_arrays(b.K, g.ids, n_snps=g.n_snps, M=g.M, label=g.label))
        grms = out
    return grms


def _fit(args: argparse.Namespace, inp: Inputs):
    import bayeslmm

    f = bayeslmm.ml if args.ml else bayeslmm.reml
    kw = {"component_names": inp.names} if isinstance(inp.K, list) else {}
    fit = f(inp.y, inp.K, inp.X, method=args.method, constrain=not args.no_constrain, **kw)
    log.info("%s (%s): converged=%s, N=%d\n%s", "ML" if args.ml else "REML", fit.algorithm,
             fit.converged, fit.N, fit.to_hsq().rstrip())
    if fit.h2_ci is not None:
        log.info("h2 95%% profile-likelihood CI: [%.4f, %.4f]", *fit.h2_ci)
    if fit.k == 1:
        log.info("V(G)/Vp = %.6f; GEMMA's pve (K scaled to mean diagonal 1; here tr(K)/N = "
                 "%.6f) = %.6f.", fit.h2, fit.mean_diag, fit.pve_gemma)
    if fit.boundary:
        log.info("The estimate lies on the boundary (%s).", fit.boundary)
    return fit


# ----------------------------------------------------------------------------- commands
def cmd_grm(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm grm``: PREFIX.grm.bin/.grm.N.bin/.grm.id (and LOCO GRMs)."""
    from bayeslmm.genotypes import grm, loco_grms
    from bayeslmm.io import read_plink, write_grm

    prefix = _prefix(args.out)
    ds = read_plink(args.bfile)
    log.info("Read %d samples and %d variants from PLINK fileset '%s'.",
             ds.sizes["sample"], ds.sizes["variant"], args.bfile)
    g = grm(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr, progress=_progress(args),
            autosome=not getattr(args, "include_nonautosomal", False))
    log.info("GRM of %d samples from %d SNPs passing QC (maf >= %g, geno <= %g).", g.N, g.M,
             args.maf, args.geno)
    sfx = (".grm.bin", ".grm.N.bin", ".grm.id")
    staged.write_prefix(prefix, sfx, lambda p: write_grm(g, p))
    if args.loco:
        for c, gc in loco_grms(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                               progress=_progress(args)).items():
            log.info("LOCO GRM without chromosome %s: %d SNPs.", c, gc.M)
            staged.write_prefix(f"{prefix}.loco-chr{c}", sfx,
                                lambda p, gc=gc: write_grm(gc, p))
    log.info("GRM written to %s.grm.bin, .grm.N.bin, .grm.id.", prefix)
    return prefix


def cmd_reml(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm reml``: PREFIX.hsq."""
    from bayeslmm.io.reports import write_hsq

    prefix = _prefix(args.out)
    fit = _fit(args, _load(args))
    write_hsq(fit, f"{prefix}.hsq", staged)
    return prefix


def _snp_effects(fit, ds, args):
    """Per-A1-allele SNP BLUP (GCTA ``--blup-snp``) from the genotypes of the fit's samples."""
    from bayeslmm.blup import snp_blup
    from bayeslmm.genotypes import standardized_genotype_matrix

    pos = {s: i for i, s in enumerate(ds["sample"].to_numpy().astype(str))}
    missing = [s for s in fit.data.samples if str(s) not in pos]
    if missing:
        raise InputError(f"{len(missing)} fitted samples are not in --bfile {args.bfile}, "
                         f"e.g. '{missing[0]}'")
    sub = ds.isel(sample=[pos[str(s)] for s in fit.data.samples])
    # Frequencies from the fitted samples, as GCTA (its _mu is over the kept samples).
    Z = standardized_genotype_matrix(sub, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                                     progress=_progress(args))
    # check=False: with missing calls (Z = 0 there) diag(ZZ'/P) differs slightly from the
    # GRM's, which divides by the per-pair SNP count; GCTA does not check either.
    b = snp_blup(fit, Z, check=False)
    p = Z["p"].to_numpy()
    sd = np.sqrt(2 * p * (1 - p))
    effect = np.divide(b.to_numpy(), sd, out=np.zeros_like(sd), where=sd > 0)
    return Z["snp"].to_numpy(), Z["a1"].to_numpy(), effect


def cmd_blup(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm blup``: PREFIX.hsq, PREFIX.indi.blp and, with --bfile, PREFIX.snp.blp."""
    from bayeslmm.blup import blup
    from bayeslmm.io.reports import write_hsq, write_indi_blp, write_snp_blp

    prefix = _prefix(args.out)
    inp = _load(args)
    fit = _fit(args, inp)
    b = blup(fit)
    write_hsq(fit, f"{prefix}.hsq", staged)
    write_indi_blp(b, fit.sigma2, f"{prefix}.indi.blp", staged)
    log.info("BLUP of the genetic values of %d samples written to %s.indi.blp.", fit.N, prefix)
    if inp.ds is not None:
        snp, a1, eff = _snp_effects(fit, inp.ds, args)
        write_snp_blp(snp, a1, eff, f"{prefix}.snp.blp", staged)
        log.info("BLUP of %d SNP effects (per A1 allele) written to %s.snp.blp.", len(snp),
                 prefix)
    return prefix


def cmd_assoc(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm assoc``: PREFIX.assoc.tsv (one row per SNP)."""
    from bayeslmm.assoc import assoc
    from bayeslmm.io.reports import write_assoc

    prefix = _prefix(args.out)
    if not args.bfile:
        raise InputError("assoc needs the genotypes to test: --bfile PREFIX")
    tests = list(dict.fromkeys(args.test))  # a list: assoc returns a dict test -> Dataset
    ds = None
    if args.loco:
        if args.grm or args.mgrm:
            raise InputError("--loco computes its GRMs from --bfile; drop --grm/--mgrm")
        from bayeslmm.genotypes import loco_grms
        from bayeslmm.io import read_plink

        ds = read_plink(args.bfile)
        log.info("Read %d samples and %d variants from PLINK fileset '%s'.",
                 ds.sizes["sample"], ds.sizes["variant"], args.bfile)
        fits = {}
        for c, g in loco_grms(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                              progress=_progress(args)).items():
            log.info("Null fit without chromosome %s (%d SNPs):", c, g.M)
            args_c = argparse.Namespace(**{**vars(args), "grm": None, "mgrm": None})
            inp = _load(args_c, grms_given=[g], ds_given=ds)
            fits[c] = _fit(args, inp)
        res = assoc(None, ds, test=tests, loco=fits, progress=_progress(args),
                    min_maf=args.maf, max_missing=args.geno)
    else:
        inp = _load(args)
        ds = inp.ds
        fit = _fit(args, inp)
        res = assoc(fit, ds, test=tests, progress=_progress(args), min_maf=args.maf,
                    max_missing=args.geno)
    for t, r in res.items():
        if args.chr:
            keep = np.isin(r["chrom"].to_numpy().astype(str), [str(c) for c in args.chr])
            r = r.isel(variant=np.flatnonzero(keep))
        name = f"{prefix}.assoc.tsv" if len(res) == 1 else f"{prefix}.{t}.assoc.tsv"
        write_assoc(r, name, staged)
        n_filt = int(r["filtered"].sum()) if "filtered" in r else 0
        n_mono = int((r["monomorphic"] & ~r["filtered"]).sum()) if "filtered" in r else \
            int(r["monomorphic"].sum())
        log.info("%s test: %d variants, %d tested, %d skipped (%d filtered by --maf/--geno, "
                 "%d monomorphic); written to %s; genomic-control lambda %.4f.", t,
                 r.sizes["variant"], r.sizes["variant"] - n_filt - n_mono, n_filt + n_mono,
                 n_filt, n_mono, name, float(r.attrs["lambda_gc"]))
    return prefix


def _priors(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for s in specs:
        name, eq, spec = s.partition("=")
        if not eq or not name.strip() or not spec.strip():
            raise InputError(f"--prior expects NAME=SPEC, e.g. h2='Beta(1, 1)'; got {s!r}")
        out[name.strip()] = spec.strip().strip("'\"")
    return out


def _posterior(args, inp: Inputs, fit, priors: dict[str, str], staged, prefix: Path,
               true_h2: float | None = None, extra=None):
    """Sample the full posterior; stage the netCDF, the summary table and the h2 plot."""
    from bayeslmm import plots
    from bayeslmm.bayes import marginal_grm, sample
    from bayeslmm.bayes.models import model_info
    from bayeslmm.io.reports import posterior_summary, write_posterior

    K = fit.decomposition if fit.decomposition is not None else inp.K
    kw = {"component_names": inp.names} if isinstance(K, list) else {}
    model = marginal_grm(inp.y, K, inp.X, priors=priors, **kw)
    pri = model_info(model).priors
    log.info("Priors (as used): %s", pri.describe(list(inp.X.columns)))
    cores = None if args.threads is None else max(1, min(args.threads, args.chains))
    idata = sample(model, draws=args.draws, tune=args.tune, chains=args.chains,
                   seed=args.seed, progressbar=not args.quiet, cores=cores)
    post = idata["posterior"]
    log.info("Sampled %d chains x %d draws in %.1f s (max R-hat %.3f, min bulk ESS %.0f, "
             "%d divergences).", args.chains, args.draws, post.attrs.get("wall_time_s", 0),
             post.attrs.get("max_rhat", np.nan), post.attrs.get("min_ess_bulk", np.nan),
             post.attrs.get("n_divergences", 0))
    write_posterior(idata, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged)
    log.info("Posterior summary:\n%s", posterior_summary(idata).to_string())
    h2_prior = pri.priors.get("h2")

    def png(p: Path) -> None:
        fig = plots.plot_h2_posterior(idata, prior=h2_prior, reml=fit, true_h2=true_h2,
                                      extra=extra, path=p)
        plots.close(fig)

    staged.write_with(f"{prefix}.h2.png", png)
    return idata


def cmd_sample(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sample``: PREFIX.posterior.nc, .posterior.tsv, .h2.png and .hsq."""
    from bayeslmm.bayes import parse_priors
    from bayeslmm.io.reports import write_hsq

    prefix = _prefix(args.out)
    priors = _priors(args.prior)
    parse_priors(priors)  # fail on a bad prior before any computation
    inp = _load(args)
    fit = _fit(args, inp)
    write_hsq(fit, f"{prefix}.hsq", staged)
    _posterior(args, inp, fit, priors, staged, prefix)
    return prefix


def cmd_compare(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm compare``: REML next to the full posterior; PREFIX.compare.tsv, .png."""
    from bayeslmm.bayes import compare, parse_priors

    prefix = _prefix(args.out)
    priors = _priors(args.prior)
    parse_priors(priors)
    inp = _load(args)
    fit = _fit(args, inp)
    idata = _posterior(args, inp, fit, priors, staged, prefix)
    cmp = compare(fit, idata)
    staged.write_text(f"{prefix}.compare.tsv", cmp.table.to_csv(sep="\t"))

    def png(p: Path) -> None:
        from bayeslmm import plots

        plots.close(cmp.plot(p))

    staged.write_with(f"{prefix}.compare.png", png)
    log.info("REML versus full posterior:\n%s\n%s", cmp.table.to_string(), cmp.agreement())
    return prefix


def _prior_sets(specs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``LABEL: NAME=SPEC; NAME=SPEC`` per --priors flag."""
    out: dict[str, dict[str, str]] = {}
    for s in specs:
        label, colon, rest = s.partition(":")
        if not colon or not label.strip():
            raise InputError(f"--priors expects 'LABEL: NAME=SPEC; ...', got {s!r}")
        out[label.strip()] = _priors([part for part in rest.split(";") if part.strip()])
    if not out:
        raise InputError("give at least one --priors 'LABEL: NAME=SPEC; ...'")
    return out


def cmd_sensitivity(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sensitivity``: h2 under each prior set; PREFIX.sensitivity.tsv, .png."""
    from bayeslmm.bayes import parse_priors, prior_sensitivity

    prefix = _prefix(args.out)
    sets = _prior_sets(args.priors)
    for spec in sets.values():
        parse_priors(spec)
    inp = _load(args)
    if isinstance(inp.K, list):
        raise InputError("prior sensitivity is for one GRM; give --grm or --bfile, not --mgrm")
    fit = _fit(args, inp)
    sens = prior_sensitivity(inp.y, fit, inp.X, priors=sets,
                             method="quadrature" if args.quadrature else "nuts",
                             draws=args.draws, tune=args.tune, chains=args.chains,
                             seed=args.seed, progressbar=not args.quiet)
    staged.write_text(f"{prefix}.sensitivity.tsv",
                      sens.summary.to_dataframe().to_csv(sep="\t"))

    def png(p: Path) -> None:
        from bayeslmm import plots

        plots.close(sens.plot(p))

    staged.write_with(f"{prefix}.sensitivity.png", png)
    # Once: the log (console and file) carries the table and the verdict; with --quiet the
    # console shows no log, so the verdict goes to stdout instead.
    log.info("Prior sensitivity of h2:\n%s", repr(sens))
    if args.quiet:
        print(sens.verdict)
    return prefix


def cmd_demo(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm demo``: GRM -> REML -> BLUP -> posterior -> EB vs full, on the embedded
    data; files in the folder ``--out`` (created), a report on stdout."""
    from bayeslmm.bayes import empirical_bayes, posterior_h2_quadrature
    from bayeslmm.blup import blup
    from bayeslmm.datasets import load_demo
    from bayeslmm.io import write_grm
    from bayeslmm.io.reports import write_hsq, write_indi_blp, write_snp_blp, write_text
    from bayeslmm.summaries import hdi

    demo = load_demo()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "demo"
    t0 = time.perf_counter()
    log.info("Demo data: %s (%s); true h2 = %g.", demo.bfile, demo.description, demo.true_h2)
    ns = argparse.Namespace(bfile=str(demo.bfile), grm=None, mgrm=None, pheno=str(demo.pheno),
                            mpheno=1, covar=None, qcovar=None, maf=0.0, geno=1.0, chr=None,
                            method="auto", ml=False, no_constrain=False, quiet=args.quiet,
                            threads=args.threads, draws=args.draws, tune=args.tune,
                            chains=args.chains, seed=args.seed)
    inp = _load(ns)
    g = inp.raw_grms[0]  # all genotyped samples, as `bayeslmm grm` writes it
    staged.write_prefix(prefix, (".grm.bin", ".grm.N.bin", ".grm.id"),
                        lambda p: write_grm(g, p))
    t_grm = time.perf_counter()
    fit = _fit(ns, inp)
    write_hsq(fit, f"{prefix}.hsq", staged)
    b = blup(fit)
    write_indi_blp(b, fit.sigma2, f"{prefix}.indi.blp", staged)
    snp, a1, eff = _snp_effects(fit, inp.ds, ns)
    write_snp_blp(snp, a1, eff, f"{prefix}.snp.blp", staged)
    t_reml = time.perf_counter()
    # Flat beta so that the NUTS posterior and the exact quadrature share one model.
    priors = {"h2": "Beta(1, 1)", "beta": "Flat()"}
    quad = posterior_h2_quadrature(fit, priors=priors)
    extra = {"exact (quadrature)": (quad["h2"].to_numpy(), quad["density"].to_numpy())}
    idata = _posterior(ns, inp, fit, priors, staged, prefix, true_h2=demo.true_h2,
                       extra=extra)
    t_post = time.perf_counter()
    eb = empirical_bayes(fit, mcmc=False, draws=args.draws, chains=args.chains,
                         seed=args.seed)
    h2 = idata["posterior"]["h2"].to_numpy().ravel()
    lo, hi = hdi(h2, 0.94)
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
        f"  posterior h2 mean {np.mean(h2):.3f}, sd {np.std(h2):.3f}, 94% HDI "
        f"[{lo:.3f}, {hi:.3f}] (NUTS, {args.chains} x {args.draws} draws, max R-hat "
        f"{idata['posterior'].attrs.get('max_rhat', np.nan):.3f})",
        f"  exact     h2 mean {float(quad['mean']):.3f}, sd {float(quad['sd']):.3f} "
        f"(quadrature, same priors): NUTS - exact = "
        f"{np.mean(h2) - float(quad['mean']):+.4f}",
        f"  EB        fixes h2 at its REML value {fit.h2:.3f}: posterior mean of g = BLUP "
        f"(max |diff| {dg:.1e}), mean PEV {np.mean(pev):.4f}; the full posterior instead "
        f"carries h2's uncertainty (sd {np.std(h2):.3f} vs REML SE {fit.h2_se:.3f}).",
        f"  agreement the true h2 is {'inside' if inside else 'OUTSIDE'} the 94% HDI; REML and "
        f"posterior mean differ by {abs(fit.h2 - np.mean(h2)):.3f} "
        f"({abs(fit.h2 - np.mean(h2)) / fit.h2_se:.2f} SE).",
        f"  time      GRM {t_grm - t0:.1f} s, REML+BLUP {t_reml - t_grm:.1f} s, posterior "
        f"{t_post - t_reml:.1f} s",
        f"  files     {out}/demo.grm.*, .hsq, .indi.blp, .snp.blp, .posterior.nc, "
        ".posterior.tsv, .h2.png, .log, .report.txt",
    ]
    report = "\n".join(lines) + "\n"
    write_text(f"{prefix}.report.txt", report, staged)
    print(report, end="", flush=True)  # the report is the demo's result: stdout, not the log
    log.info("Report written to %s.report.txt.", prefix)
    return prefix


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
