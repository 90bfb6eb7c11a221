"""The ``bayeslmm`` command: GCTA-style flags over the library.

Thin by design (DESIGN.md): parse the flags, read the files, call the library, write the
files. Subcommands::

    bayeslmm grm    --bfile X [--maf F] [--geno F] [--chr C ...] [--loco] --out P
    bayeslmm reml   (--grm P | --mgrm FILE | --bfile X) --pheno F [--mpheno k [k2 ...]]
                    [--covar F] [--qcovar F] [--method M] [--ml] [--no-constrain] --out P
    bayeslmm blup   (same inputs as reml) [--bfile X]                       --out P
    bayeslmm assoc  --bfile X [--grm P] --pheno F [--test T ...] [--loco]   --out P
    bayeslmm sample (same inputs as reml) [--prior h2='Beta(1, 1)' ...] [--draws n]
                    [--tune n] [--chains n] [--seed s]                       --out P
    bayeslmm compare (as sample): REML next to the posterior -> .compare.tsv/.png
    bayeslmm sensitivity (as reml) --priors 'LABEL: NAME=SPEC; ...' [...]   --out P
    bayeslmm demo   [--out DIR]

Every subcommand also takes ``--threads N`` and ``--quiet``; every one that reads genotypes
takes PLINK's filters ``--keep/--remove FILE`` (FID IID), ``--extract/--exclude FILE`` (SNP
IDs), ``--chr``, ``--maf``, ``--geno`` (:mod:`bayeslmm.genotypes.filters`), each logged with what it
removed. A run writes a log of what was read and dropped to stderr and to ``PREFIX.log``.
A bad input ends the run with one line, ``bayeslmm: error: ...``, on stderr and exit status
1; SIGINT and SIGTERM end it with one line and status 130 / 143. No output file is written
then, since all of a run's files are staged and renamed into place only at the very end
(:class:`~bayeslmm.reports.writers.StagedOutputs`). Bugs are not caught: they show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayeslmm.errors import BayesLMMError, InputError
from bayeslmm.inputs import Inputs, load_inputs, read_genotypes
from bayeslmm.registry import ASSOC_TESTS, ENGINES
from bayeslmm.reports.hsq import hsq_text

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
    p.add_argument("--keep", metavar="FILE", help="use only the samples listed (FID IID)")
    p.add_argument("--remove", metavar="FILE", help="leave out the samples listed (FID IID)")
    p.add_argument("--extract", metavar="FILE", help="use only the SNPs listed (one ID a line)")
    p.add_argument("--exclude", metavar="FILE", help="leave out the SNPs listed")
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
    p.add_argument("--mpheno", type=int, nargs="+", default=[1], metavar="K",
                   help="phenotype column (1-based); with reml and sample, two or more columns "
                        "fit the multi-trait model (genetic correlation)")
    p.add_argument("--covar", metavar="FILE", help="discrete covariates (dummy-coded)")
    p.add_argument("--qcovar", metavar="FILE", help="quantitative covariates")
    _qc(p)


def _fit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("auto", "brent", "ai", "fisher", "em"), default="auto",
                   help="auto: spectral Brent for one GRM, AI-REML for several")
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    p.add_argument("--no-constrain", action="store_true",
                   help="allow negative variance components (dense algorithms)")


def _prevalence_flag(p: argparse.ArgumentParser, model: bool = False) -> None:
    p.add_argument("--prevalence", type=float, default=None, metavar="K",
                   help="population prevalence of a case-control trait (0/1 or PLINK 1/2 "
                   "coded; 0 and -9 missing in 1/2): adds h2 on the liability scale "
                   "(V(G)/Vp_L, Lee et al. 2011, as GCTA)")
    if model:
        p.add_argument("--model", choices=("linear", "threshold"), default="linear",
                       help="linear: the LMM (h2_liability by transformation with "
                       "--prevalence); threshold: the liability-threshold (probit) model, "
                       "its threshold placed from --prevalence")
        p.add_argument("--link", choices=("probit", "logit"), default="probit",
                       help="link of the threshold model (logit: free intercept only)")


def _engine_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large N (with --bfile; see bayeslmm.estimation.engines)")
    g.add_argument("--engine", choices=tuple(ENGINES), default=None,
                   help="REML straight from the genotypes: dense eigendecomposition, exact "
                        "low-rank (P < N) or matrix-free Krylov/SLQ; auto picks by N, P and "
                        "free memory (default: the GRM route)")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="dask.distributed scheduler to run the genotype passes on (default: "
                        "local threads, --threads of them)")
    g.add_argument("--probes", type=int, default=30, help="Krylov engine: random probes")
    g.add_argument("--lanczos-steps", type=int, default=20,
                   help="Krylov engine: Lanczos steps (passes over the genotypes)")
    g.add_argument("--probe-seed", type=int, default=0, help="Krylov engine: probe seed")
    g.add_argument("--precision", choices=("float32", "float64"), default="float32",
                   help="Krylov engine: floating type of the products over the int8 "
                        "genotypes (chunk sums in float64; default %(default)s)")


def _posterior_flags(p: argparse.ArgumentParser, prior: bool = True, draws: int = 1000,
                     tune: int = 1000, chains: int = 4, seed: int | None = None) -> None:
    if prior:
        p.add_argument("--prior", action="append", default=[], metavar="NAME=SPEC",
                       help="e.g. h2='Beta(1, 1)' or Vp='HalfNormal(2)'; repeatable")
    p.add_argument("--draws", type=int, default=draws)
    p.add_argument("--tune", type=int, default=tune)
    p.add_argument("--chains", type=int, default=chains)
    p.add_argument("--seed", type=int, default=seed)


class _Parser(argparse.ArgumentParser):
    """argparse with its error on one line (no usage block), as every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see "
                     f"'{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayeslmm`` command (subcommands grm, reml, blup, assoc,
    sample, demo)."""
    parser = _Parser(
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
    _prevalence_flag(p)
    _engine_flags(p)
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
    p.add_argument("--test", choices=tuple(ASSOC_TESTS), default=["exact"],
                   nargs="+", help="one or more tests, run in one pass over the genotypes; "
                   "with several, one file per test: PREFIX.<test>.assoc.tsv")
    p.add_argument("--loco", action="store_true",
                   help="leave-one-chromosome-out: null fit per chromosome (needs --bfile)")
    p.add_argument("--format", choices=("tsv", "mlma", "gemma"), default="tsv",
                   help="output layout: bayeslmm's PREFIX.assoc.tsv (default), GCTA's "
                   "PREFIX.mlma or GEMMA's PREFIX.assoc.txt")
    _engine_flags(p)
    _common(p)
    p.set_defaults(func=cmd_assoc)

    p = sub.add_parser("sample", help="full posterior (NUTS) -> PREFIX.posterior.nc/.tsv, "
                                      ".h2.png")
    _inputs(p)
    _fit_flags(p)
    _prevalence_flag(p, model=True)
    _posterior_flags(p)
    p.add_argument("--lkj-eta", type=float, default=1.0, metavar="ETA",
                   help="several traits: LKJ shape of the r_g and r_e priors (1: uniform)")
    _engine_flags(p)
    _common(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("compare", help="REML (empirical Bayes) vs the full posterior -> "
                                       "PREFIX.compare.tsv, .compare.png")
    _inputs(p)
    _fit_flags(p)
    _prevalence_flag(p, model=True)
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
    (one line on stderr, no traceback), 2 on a command-line syntax error, and 130 / 143
    when stopped by SIGINT / SIGTERM (one line, no output file)."""
    from bayeslmm.cli.interrupts import signals_raise

    with signals_raise():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    from bayeslmm.errors import Interrupted

    # Figures are written to files: no display is needed or wanted. Set here, by the
    # program, not by importing the library (which leaves a user's backend alone).
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    staged = None
    try:
        from bayeslmm.cli.checks import check_args, check_overwrites, input_files
        from bayeslmm.reports.writers import StagedOutputs

        check_args(args)  # before any file is read: a typo costs no time
        with _threads(args.threads), _logging(args.quiet) as buf:
            t0 = time.perf_counter()
            log.info("bayeslmm %s", " ".join(sys.argv[1:] if argv is None else argv))
            _split_mpheno(args)
            staged = StagedOutputs()
            prefix = args.func(args, staged)
            inputs = input_files(args)
            _report_stale(prefix, staged, inputs)
            log.info("Finished in %.1f s.", time.perf_counter() - t0)
            staged.write_text(f"{prefix}.log", "\n".join(buf.lines) + "\n")
            check_overwrites(staged.destinations, inputs)
            staged.commit()
    except Interrupted as exc:
        if staged is not None:
            staged.abort()
        parser.exit(exc.exit_status, f"{PROG}: {exc}; no output written\n")
    except KeyboardInterrupt:  # outside the main thread, where no handler is installed
        if staged is not None:
            staged.abort()
        parser.exit(130, f"{PROG}: interrupted; no output written\n")
    except (BayesLMMError, OSError) as exc:
        if staged is not None:
            staged.abort()
        _exit_if_signalled(parser)
        parser.exit(1, f"{PROG}: error: {_error_line(exc)}\n")
    except BaseException:
        if staged is not None:
            staged.abort()  # no partial output after a bug either
        _exit_if_signalled(parser)
        raise
    return 0


def _exit_if_signalled(parser) -> None:
    """Exit 128 + signal when a signal stopped the run but its exception reached us as
    another one (a library that catches exceptions raised in its callbacks replaces it)."""
    from bayeslmm.cli.interrupts import received
    from bayeslmm.errors import Interrupted

    signum = received()
    if signum is not None:
        exc = Interrupted(signum)
        parser.exit(exc.exit_status, f"{PROG}: {exc}; no output written\n")


def _report_stale(prefix: Path, staged, inputs: list[Path]) -> None:
    """Log the files of an earlier run with this prefix that this run leaves as they are."""
    from bayeslmm.cli.checks import stale_outputs

    stale = stale_outputs(prefix, [*staged.destinations, Path(f"{prefix}.log")], inputs)
    if stale:
        log.warning("%d file(s) with prefix '%s' are from an earlier run and are not rewritten "
                    "by this one, so they may not match these results: %s", len(stale),
                    prefix, ", ".join(str(f) for f in stale))


# ----------------------------------------------------------------------------- inputs
def _input_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that :func:`bayeslmm.load_inputs` takes, by its argument names."""
    g = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    return dict(mpheno=g("mpheno", 1), grm=g("grm"), mgrm=g("mgrm"), bfile=g("bfile"),
                covar=g("covar"), qcovar=g("qcovar"), keep=g("keep"), remove=g("remove"),
                extract=g("extract"), exclude=g("exclude"), chromosomes=g("chr"),
                maf=g("maf", 0.0), geno=g("geno", 1.0),
                include_nonautosomal=g("include_nonautosomal", False),
                grm_cutoff=g("grm_cutoff"), grm_bend=g("grm_bend", False),
                prevalence=g("prevalence"), progress=_progress(args))


def _load(args: argparse.Namespace, grms_given: list | None = None, ds_given=None,
          **override) -> Inputs:
    """:func:`bayeslmm.load_inputs` with this run's flags; ``grms_given`` are GRMs already
    computed (LOCO) and ``ds_given`` the PLINK dataset already opened and filtered."""
    opts = _input_options(args)
    if grms_given is not None:
        opts.update(grm=None, mgrm=None, grms=grms_given)
    if ds_given is not None:
        opts["bfile"] = ds_given
    opts.update(override)
    return load_inputs(args.pheno, **opts)


def _genotypes(args: argparse.Namespace):
    """--bfile with PLINK's filters applied (each logged)."""
    o = _input_options(args)
    return read_genotypes(args.bfile, keep=o["keep"], remove=o["remove"],
                          extract=o["extract"], exclude=o["exclude"],
                          chromosomes=o["chromosomes"], maf=o["maf"], geno=o["geno"],
                          progress=o["progress"])


def _fit(args: argparse.Namespace, inp: Inputs):
    import bayeslmm

    f = bayeslmm.ml if args.ml else bayeslmm.reml
    kw = {"component_names": inp.names} if isinstance(inp.K, list) else {}
    fit = f(inp.y, inp.K, inp.X, method=args.method, constrain=not args.no_constrain, **kw)
    log.info("%s (%s): converged=%s, N=%d\n%s", "ML" if args.ml else "REML", fit.algorithm,
             fit.converged, fit.N,
             hsq_text(fit, getattr(args, "prevalence", None)).rstrip())
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
    from bayeslmm.genotypes.kinship import grm, loco_grms
    from bayeslmm.io import write_grm

    prefix = _prefix(args.out)
    ds = _genotypes(args)
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
    from bayeslmm.reports.hsq import write_hsq

    if len(getattr(args, "mpheno_all", ())) > 1:
        return cmd_reml_multitrait(args, staged)
    prefix = _prefix(args.out)
    if getattr(args, "engine", None):
        return _reml_engine(args, staged, prefix)
    fit = _fit(args, _load(args))
    write_hsq(fit, f"{prefix}.hsq", staged, prevalence=args.prevalence)
    return prefix


@contextlib.contextmanager
def _scheduler_client(args: argparse.Namespace) -> Iterator[Any]:
    """The ``dask.distributed`` client of ``--scheduler`` (closed afterwards), or None."""
    if not getattr(args, "scheduler", None):
        yield None
        return
    from distributed import Client

    try:
        client = Client(args.scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the dask scheduler at '{args.scheduler}': "
                         f"{_error_line(exc)}") from None
    try:
        yield client
    finally:
        client.close()


def _engine_inputs(args: argparse.Namespace):
    """``--engine``: the filtered genotypes, and the phenotype and covariates aligned on the
    genotyped samples (no GRM is read or formed)."""
    if not args.bfile or args.grm or args.mgrm:
        raise InputError("--engine fits from the genotypes: give --bfile and no --grm/--mgrm")
    if args.ml or args.method not in ("auto", "brent"):
        raise InputError("--engine fits one GRM by REML (--method auto/brent, no --ml)")
    if getattr(args, "model", "linear") != "linear":
        raise InputError("--engine fits the linear mixed model; the threshold model needs "
                         "--grm or --bfile without --engine")
    inp = _load(args, kernel=False)
    return inp.ds, inp.y, inp.X


def _engine_fit(args: argparse.Namespace, ds, y, X, client, *,
                return_operator: bool = False):
    """REML straight from the genotypes by :func:`bayeslmm.reml_genotypes`, logged."""
    from bayeslmm.estimation.engines import reml_genotypes

    out = reml_genotypes(ds, y, X, engine=args.engine, maf=args.maf, geno=args.geno,
                         client=client, threads=args.threads, n_probes=args.probes,
                         n_steps=args.lanczos_steps, seed=args.probe_seed,
                         precision=args.precision, progress=_progress(args),
                         return_operator=return_operator)
    fit = out[0] if return_operator else out
    log.info("REML (engine %s), N=%d\n%s", args.engine, fit.nobs if hasattr(fit, "nobs")
             else fit.N, hsq_text(fit).rstrip())
    if getattr(fit, "info", None):
        log.info("Krylov engine: %s", ", ".join(f"{k}={v}" for k, v in fit.info.items()))
    return out


def _reml_engine(args: argparse.Namespace, staged, prefix: Path) -> Path:
    """``reml --engine``: REML straight from --bfile by :func:`bayeslmm.reml_genotypes`."""
    from bayeslmm.reports.writers import write_text

    ds, y, X = _engine_inputs(args)
    with _scheduler_client(args) as client:
        fit = _engine_fit(args, ds, y, X, client)
    write_text(f"{prefix}.hsq", hsq_text(fit), staged)
    return prefix


def _sample_engine(args: argparse.Namespace, staged, prefix: Path,
                   priors: dict[str, str]) -> Path:
    """``sample --engine``: REML from the genotypes, then the posterior of h2: the exact
    1-D quadrature on the Krylov likelihood (with its Monte Carlo error), or NUTS on the
    decomposition the eigen / low-rank engines give."""
    from bayeslmm.estimation.krylov import KrylovFit
    from bayeslmm.reports.writers import write_text

    ds, y, X = _engine_inputs(args)
    with _scheduler_client(args) as client:
        fit = _engine_fit(args, ds, y, X, client)
    write_text(f"{prefix}.hsq", hsq_text(fit), staged)
    if not isinstance(fit, KrylovFit):
        inp = Inputs(y=y, X=X, K=fit.decomposition, names=["GRM"], grms=[], ds=ds,
                     raw_grms=[])
        _posterior(args, inp, fit, priors, staged, prefix)
        return prefix
    from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov, posterior_h2_table
    from bayeslmm.reports import plots

    post = posterior_h2_krylov(fit.model, priors=priors)
    table = posterior_h2_table(post)
    log.info("Posterior of h2 (exact quadrature on the Krylov/SLQ likelihood; beta flat, "
             "Vp integrated):\n%s", table.to_string())
    if post.attrs["mc_flag"]:
        log.warning("the Monte Carlo error of the posterior mean (%.4f) exceeds a tenth of "
                    "the posterior SD: rerun with more --probes", post.attrs["mean_mc_se"])
    write_text(f"{prefix}.posterior.tsv", table.to_csv(sep="\t", float_format="%.6g",
                                                       lineterminator="\n"), staged)
    staged.write_with(f"{prefix}.posterior.nc",
                      lambda p: post.to_netcdf(p, engine="h5netcdf"))
    draws = np.interp(np.random.default_rng(args.seed).uniform(size=20_000),
                      np.cumsum(post["density"].to_numpy()) / post["density"].sum().item(),
                      post["h2"].to_numpy())

    def png(p: Path) -> None:
        fig = plots.plot_h2_posterior(
            draws, extra={"exact (quadrature)": (post["h2"].to_numpy(),
                                                 post["density"].to_numpy())},
            title="Posterior of heritability (Krylov engine)", path=p)
        plots.close(fig)

    staged.write_with(f"{prefix}.h2.png", png)
    return prefix


def _assoc_engine(args: argparse.Namespace, staged, prefix: Path, tests: list[str]):
    """``assoc --engine``: the null fit from the genotypes, then every SNP: the exact test on
    the eigen / low-rank decomposition, GRAMMAR(-Gamma) in one more pass with Krylov."""
    from bayeslmm.association.fixed_variance import assoc, one_test
    from bayeslmm.association.grammar import assoc_krylov
    from bayeslmm.estimation.krylov import KrylovFit

    if args.loco:
        raise InputError("--loco builds its GRMs per chromosome; drop --engine (or --loco)")
    ds, y, X = _engine_inputs(args)
    with _scheduler_client(args) as client:
        fit, op = _engine_fit(args, ds, y, X, client, return_operator=True)
        if isinstance(fit, KrylovFit):
            return {t: assoc_krylov(fit, op, test=t) for t in tests}
    res = assoc(fit, ds, test=tests, progress=_progress(args), min_maf=args.maf,
                max_missing=args.geno)
    return {t: one_test(res, t) for t in tests}


def _write_snp_blp(fit, ds, args: argparse.Namespace, prefix: Path, staged) -> None:
    """PREFIX.snp.blp: the per-allele SNP BLUP (GCTA ``--blup-snp``)."""
    from bayeslmm.blup import allele_effects
    from bayeslmm.reports.writers import write_snp_blp

    eff = allele_effects(fit, ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                         progress=_progress(args))
    write_snp_blp(eff["snp"].to_numpy(), eff["a1"].to_numpy(), eff["effect"].to_numpy(),
                  f"{prefix}.snp.blp", staged)
    log.info("BLUP of %d SNP effects (per A1 allele) written to %s.snp.blp.",
             eff.sizes["variant"], prefix)


def cmd_blup(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm blup``: PREFIX.hsq, PREFIX.indi.blp and, with --bfile, PREFIX.snp.blp."""
    from bayeslmm.blup import blup
    from bayeslmm.reports.hsq import write_hsq
    from bayeslmm.reports.writers import write_indi_blp

    prefix = _prefix(args.out)
    inp = _load(args)
    fit = _fit(args, inp)
    b = blup(fit)
    write_hsq(fit, f"{prefix}.hsq", staged)
    write_indi_blp(b, fit.sigma2, f"{prefix}.indi.blp", staged)
    log.info("BLUP of the genetic values of %d samples written to %s.indi.blp.", fit.N, prefix)
    if inp.ds is not None:
        _write_snp_blp(fit, inp.ds, args, prefix, staged)
    return prefix


def cmd_assoc(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm assoc``: PREFIX.assoc.tsv (one row per SNP)."""
    from bayeslmm.association.fixed_variance import assoc, loco_fits, one_test
    from bayeslmm.reports.writers import ASSOC_FORMATS, write_assoc_as

    prefix = _prefix(args.out)
    if not args.bfile:
        raise InputError("assoc needs the genotypes to test: --bfile PREFIX")
    tests = list(dict.fromkeys(args.test))  # a list: one Dataset with a test dimension
    ds = None
    if getattr(args, "engine", None):
        per_test = _assoc_engine(args, staged, prefix, tests)
    elif args.loco:
        if args.grm or args.mgrm:
            raise InputError("--loco computes its GRMs from --bfile; drop --grm/--mgrm")
        from bayeslmm.genotypes.kinship import loco_grms

        ds = _genotypes(args)
        grms = loco_grms(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                         progress=_progress(args))
        # Every LOCO GRM covers the same samples: align phenotype and covariates once.
        # bfile None: the genotypes are read (and filtered) once, above.
        args_c = argparse.Namespace(**{**vars(args), "grm": None, "mgrm": None,
                                       "bfile": None})
        inp = _load(args_c, grms_given=[next(iter(grms.values()))])
        fits = loco_fits(grms, inp.y, inp.X, ml=args.ml, method=args.method,
                         constrain=not args.no_constrain)
        res = assoc(None, ds, test=tests, loco=fits, progress=_progress(args),
                    min_maf=args.maf, max_missing=args.geno)
    else:
        inp = _load(args)
        ds = inp.ds
        fit = _fit(args, inp)
        res = assoc(fit, ds, test=tests, progress=_progress(args), min_maf=args.maf,
                    max_missing=args.geno)
    if not getattr(args, "engine", None):
        per_test = {t: one_test(res, t) for t in tests}
    suffix = ASSOC_FORMATS[args.format][1]
    for t in tests:
        r = per_test[t]
        if args.chr:
            from bayeslmm.genotypes.kinship import chromosome_mask

            r = r.isel(variant=np.flatnonzero(chromosome_mask(r["chrom"].to_numpy(),
                                                              args.chr)))
        name = f"{prefix}{suffix}" if len(tests) == 1 else f"{prefix}.{t}{suffix}"
        write_assoc_as(r, args.format, name, staged)
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
    from bayeslmm.bayes import marginal_grm, sample
    from bayeslmm.bayes.model_info import model_info
    from bayeslmm.reports import plots
    from bayeslmm.reports.writers import posterior_summary, write_posterior

    K = fit.decomposition if fit.decomposition is not None else inp.K
    kw = {"component_names": inp.names} if isinstance(K, list) else {}
    prevalence = getattr(args, "prevalence", None)
    thresh = getattr(args, "model", "linear") == "threshold"
    if thresh:
        from bayeslmm.bayes.models.threshold import threshold

        if isinstance(K, list):
            raise InputError("--model threshold takes one GRM")
        model = threshold(inp.y, K, inp.X, prevalence=prevalence, link=args.link,
                          priors=priors, store_g=False)
        log.info("Threshold (%s) model, liability h2; %s.", args.link,
                 f"threshold from the prevalence K = {prevalence:g}" if prevalence is not None
                 else "free intercept (the sample taken as the population)")
        pri = model_info(model).priors
        log.info("Priors (as used): %s", pri.describe())
    else:
        model = marginal_grm(inp.y, K, inp.X, priors=priors, **kw)
        pri = model_info(model).priors
        log.info("Priors (as used): %s", pri.describe(list(inp.X.columns)))
    cores = None if args.threads is None else max(1, min(args.threads, args.chains))
    idata = sample(model, draws=args.draws, tune=args.tune, chains=args.chains,
                   seed=args.seed, progressbar=not args.quiet, cores=cores)
    if prevalence is not None and not thresh:
        from bayeslmm.estimation.liability import case_proportion_of, liability_posterior

        idata = liability_posterior(idata, prevalence, case_proportion_of(inp.y))
        log.info("h2_liability: the posterior of h2 transformed draw by draw (Lee et al. "
                 "2011, K = %g).", prevalence)
    if thresh:
        from bayeslmm.bayes.models.threshold import posterior_predictive_cases

        pp = posterior_predictive_cases(idata, model, seed=args.seed)["posterior_predictive"]
        log.info("Posterior predictive check: case proportion %.4f observed, %.4f replicated "
                 "(posterior predictive p = %.3f).", pp.attrs["observed_case_proportion"],
                 float(pp["case_proportion"].mean()), pp.attrs["ppp_case_proportion"])
    post = idata["posterior"]
    log.info("Sampled %d chains x %d draws in %.1f s (max R-hat %.3f, min bulk ESS %.0f, "
             "%d divergences).", args.chains, args.draws, post.attrs.get("wall_time_s", 0),
             post.attrs.get("max_rhat", np.nan), post.attrs.get("min_ess_bulk", np.nan),
             post.attrs.get("n_divergences", 0))
    write_posterior(idata, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged)
    log.info("Posterior summary:\n%s", posterior_summary(idata).to_string())
    h2_prior = pri.get("h2") if thresh else pri.priors.get("h2")

    def png(p: Path) -> None:
        # the REML h2 is on the observed scale; the threshold model's on the liability scale
        fig = plots.plot_h2_posterior(idata, prior=h2_prior, reml=None if thresh else fit,
                                      true_h2=true_h2,
                                      extra=extra, path=p)
        plots.close(fig)

    staged.write_with(f"{prefix}.h2.png", png)
    return idata


def cmd_sample(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sample``: PREFIX.posterior.nc, .posterior.tsv, .h2.png and .hsq."""
    from bayeslmm.bayes import parse_priors
    from bayeslmm.bayes.priors import parse_prior
    from bayeslmm.reports.hsq import write_hsq

    if len(getattr(args, "mpheno_all", ())) > 1:
        return cmd_sample_multitrait(args, staged)
    prefix = _prefix(args.out)
    priors = _priors(args.prior)
    if args.model == "threshold":
        from bayeslmm.bayes.models.threshold import PRIOR_NAMES

        bad = sorted(set(priors) - set(PRIOR_NAMES))
        if bad:
            raise InputError(f"--prior {bad[0]}: the threshold model has priors on "
                             f"{', '.join(PRIOR_NAMES)}")
        for spec in priors.values():
            parse_prior(spec)
    else:
        parse_priors(priors)  # fail on a bad prior before any computation
    if getattr(args, "engine", None):
        return _sample_engine(args, staged, prefix, priors)
    inp = _load(args)
    fit = _fit(args, inp)
    write_hsq(fit, f"{prefix}.hsq", staged, prevalence=args.prevalence)
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
    # the threshold model's h2 is on the liability scale: REML's is transformed to it
    cmp = compare(fit, idata, prevalence=args.prevalence if args.model == "threshold" else None)
    staged.write_text(f"{prefix}.compare.tsv", cmp.table.to_csv(sep="\t"))

    def png(p: Path) -> None:
        from bayeslmm.reports import plots
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
        from bayeslmm.reports import plots
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
    from bayeslmm.bayes.summaries import credible_interval, interval_label
    from bayeslmm.blup import blup
    from bayeslmm.datasets import load_demo
    from bayeslmm.io import write_grm
    from bayeslmm.reports.hsq import write_hsq
    from bayeslmm.reports.writers import write_indi_blp, write_text

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
    _write_snp_blp(fit, inp.ds, ns, prefix, staged)
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
        f"[{lo:.3f}, {hi:.3f}] (NUTS, {args.chains} x {args.draws} draws, max R-hat "
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
    write_text(f"{prefix}.report.txt", report, staged)
    print(report, end="", flush=True)  # the report is the demo's result: stdout, not the log
    log.info("Report written to %s.report.txt.", prefix)
    return prefix


# ----------------------------------------------------------------------------- several traits
def _split_mpheno(args: argparse.Namespace) -> None:
    """``--mpheno k1 k2 ...``: keep the list in ``mpheno_all`` and the first column in
    ``mpheno`` (what the one-trait commands read)."""
    mp = getattr(args, "mpheno", None)
    if not isinstance(mp, list):
        return
    args.mpheno_all = mp
    args.mpheno = mp[0]
    if len(mp) > 1 and args.command not in ("reml", "sample"):
        raise InputError(f"--mpheno takes one column with '{args.command}'; several columns "
                         "(the multi-trait model) work with reml and sample")
    if len(set(mp)) != len(mp):
        raise InputError(f"--mpheno lists a column twice: {mp}")


def _load_traits(args: argparse.Namespace):
    """Inputs aligned on the first trait, and every --mpheno column on those samples."""
    if getattr(args, "mgrm", None):
        raise InputError("the multi-trait model takes one GRM (--grm or --bfile), not --mgrm")
    if args.ml and args.command == "sample":
        raise InputError("--ml has no meaning for the posterior; drop it")
    inp = _load(args, mpheno=args.mpheno_all)
    return inp, inp.Y


def _fit_traits(args: argparse.Namespace, inp, Y):
    from bayeslmm.estimation.multitrait import multitrait_ml, multitrait_reml

    f = multitrait_ml if args.ml else multitrait_reml
    # Labels are aligned by _load; the kernel is passed positionally.
    fit = f(Y, np.asarray(inp.K), inp.X)
    log.info("Multi-trait %s: %d traits, N=%d (complete cases; %d dropped), logL=%.3f, "
             "converged=%s\n%s", "ML" if args.ml else "REML", fit.T, fit.nobs, fit.n_dropped,
             fit.loglik, fit.converged, fit.summary().to_string())
    if fit.rg_ci is not None:
        log.info("r_g 95%% profile-likelihood CI: [%.4f, %.4f]", *fit.rg_ci)
    if fit.tests is not None:
        log.info("Likelihood-ratio tests:\n%s", fit.tests.to_string())
    return fit


def _write_traits_hsq(fit, prefix: Path, staged) -> None:
    from bayeslmm.reports.hsq import write_hsq

    write_hsq(fit, f"{prefix}.hsq", staged)


def cmd_reml_multitrait(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm reml --mpheno k1 k2``: PREFIX.hsq in GCTA's --reml-bivar layout."""
    prefix = _prefix(args.out)
    inp, Y = _load_traits(args)
    _write_traits_hsq(_fit_traits(args, inp, Y), prefix, staged)
    return prefix


def cmd_sample_multitrait(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sample --mpheno k1 k2``: PREFIX.hsq (REML), .posterior.nc/.tsv and
    .rg.png (posteriors of h2_1, h2_2 and r_g with the REML estimates overlaid)."""
    from bayeslmm.bayes import sample
    from bayeslmm.bayes.models.multitrait import multitrait_marginal
    from bayeslmm.reports.multitrait_plots import plot_multitrait_posterior
    from bayeslmm.reports.plots import close
    from bayeslmm.reports.writers import posterior_summary, write_posterior

    prefix = _prefix(args.out)
    priors = _priors(args.prior)
    if len(args.mpheno_all) != 2:
        raise InputError(f"the multi-trait posterior is for two traits; --mpheno gave "
                         f"{len(args.mpheno_all)}")
    inp, Y = _load_traits(args)
    fit = _fit_traits(args, inp, Y)
    _write_traits_hsq(fit, prefix, staged)
    from bayeslmm.bayes.model_info import model_info

    model = multitrait_marginal(Y, fit.model.dec, inp.X, priors=priors, eta=args.lkj_eta)
    log.info("Priors: %s; LKJ(eta=%g) on r_g and r_e.",
             model_info(model).priors, args.lkj_eta)
    cores = None if args.threads is None else max(1, min(args.threads, args.chains))
    idata = sample(model, draws=args.draws, tune=args.tune, chains=args.chains,
                   seed=args.seed, progressbar=not args.quiet, cores=cores)
    post = idata["posterior"]
    log.info("Sampled %d chains x %d draws in %.1f s (max R-hat %.3f, min bulk ESS %.0f, "
             "%d divergences).", args.chains, args.draws, post.attrs.get("wall_time_s", 0),
             post.attrs.get("max_rhat", np.nan), post.attrs.get("min_ess_bulk", np.nan),
             post.attrs.get("n_divergences", 0))
    names = ["h2", "Vp", "r_g", "r_e"]
    write_posterior(idata, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged,
                    var_names=names)
    log.info("Posterior summary:\n%s", posterior_summary(idata, names).to_string())

    def png(p: Path) -> None:
        close(plot_multitrait_posterior(idata, fit, path=p))

    staged.write_with(f"{prefix}.rg.png", png)
    return prefix


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
