"""The commands of ``bayeslmm``: each is parse -> :func:`bayeslmm.load_inputs` -> library ->
reports. A command receives the parsed flags and the run's :class:`StagedOutputs` (files are
committed together at the end, or not at all) and returns its output prefix."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from bayeslmm.errors import InputError
from bayeslmm.inputs import INPUT_FLAGS, Inputs, load_inputs, open_genotypes, read_genotypes
from bayeslmm.registry import genotype_source
from bayeslmm.reports.hsq import hsq_text, log_fit, se_line, write_hsq
from bayeslmm.reports.run_log import RESULTS

log = logging.getLogger("bayeslmm.cli")
results = logging.getLogger(RESULTS)  # stdout (and the .log file)


# ----------------------------------------------------------------------------- helpers
def progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None  # None: the library shows bars on long loops


def output_prefix(out: str) -> Path:
    p = Path(out)
    if p.parent != Path("") and not p.parent.is_dir():
        raise InputError(f"output folder '{p.parent}' does not exist (from --out {out})")
    return p


def _cores(args: argparse.Namespace) -> int | None:
    return None if args.threads is None else max(1, min(args.threads, args.chains))


def input_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that :func:`bayeslmm.load_inputs` takes, by its argument names."""
    return {kw: getattr(args, dest) for dest, kw in INPUT_FLAGS.items() if hasattr(args, dest)
            } | {"progress": progress(args)}


def load(args: argparse.Namespace, **override) -> Inputs:
    """:func:`bayeslmm.load_inputs` with this run's flags (``override`` replaces some)."""
    opts = {**input_options(args), **override}
    if "bfile" not in override and genotype_source(vars(args)) is not None:
        opts["bfile"] = genotypes(args)
    return load_inputs(args.pheno, **opts)


def genotypes(args: argparse.Namespace):
    """--bfile, --pfile, --bgen or --vcf (the registry's formats) with PLINK's filters
    applied (each logged)."""
    o, (fmt, value, opts) = input_options(args), genotype_source(vars(args))
    keys = ("keep", "remove", "extract", "exclude", "chromosomes", "maf", "geno", "progress")
    return read_genotypes(open_genotypes(fmt, value, **opts), **{k: o[k] for k in keys if k in o})


def fit_reml(args: argparse.Namespace, inp: Inputs):
    import bayeslmm

    f = bayeslmm.ml if args.ml else bayeslmm.reml
    kw = {"component_names": inp.names} if isinstance(inp.K, list) else {}
    fit = f(inp.y, inp.K, inp.X, method=args.method, constrain=not args.no_constrain,
            se_method=args.se_method or "ai", **kw)
    log_fit(fit, getattr(args, "prevalence", None), results)
    return fit


def prior_args(args: argparse.Namespace) -> dict[str, str]:
    """--prior NAME=SPEC, checked against the chosen model before any work."""
    from bayeslmm.bayes.posterior import check_priors
    from bayeslmm.bayes.priors import parse_assignments

    priors = parse_assignments(args.prior)
    multi = len(getattr(args, "mpheno_all", ())) > 1
    check_priors(priors, "multitrait" if multi else getattr(args, "model", "linear"))
    return priors


def posterior(args: argparse.Namespace, fit, y, X, staged, prefix: Path, *, K=None,
              names=None, model: str | None = None):
    """The full posterior (:func:`bayeslmm.bayes.posterior.posterior_of_fit`), staged."""
    from bayeslmm.bayes.posterior import posterior_of_fit
    from bayeslmm.reports.posterior_files import FigureOptions, write_posterior_run

    run = posterior_of_fit(fit, y, X, K=K, model=model or getattr(args, "model", "linear"),
                           priors=prior_args(args), prevalence=getattr(args, "prevalence",
                                                                       None),
                           link=getattr(args, "link", "probit"), component_names=names,
                           draws=args.draws, tune=args.tune, chains=args.chains,
                           seed=args.seed, progressbar=not args.quiet, cores=_cores(args),
                           lkj_eta=getattr(args, "lkj_eta", 1.0))
    write_posterior_run(run, prefix, staged, fit=fit, prevalence=getattr(
        args, "prevalence", None), fig_opts=FigureOptions.of(args))
    return run


# ----------------------------------------------------------------------------- engines
def engine_fit(args: argparse.Namespace, staged, *, return_operator: bool = False):
    """``--engine``: REML straight from the genotypes (:func:`bayeslmm.reml_genotypes`) on
    the phenotype and covariates aligned to the genotyped samples; no GRM is read. The
    Krylov engine's passes are kept in PREFIX.resume/ until the outputs are written."""
    from bayeslmm.estimation.catalogue import engine_options
    from bayeslmm.estimation.engines import reml_genotypes, scheduler_client
    from bayeslmm.genotypes.passes import remove_store

    if genotype_source(vars(args)) is None or args.grm or args.mgrm:
        raise InputError("--engine fits from the genotypes: give them, and no --grm/--mgrm")
    if args.ml or args.method not in ("auto", "brent"):
        raise InputError("--engine fits one GRM by REML (--method auto/brent, no --ml)")
    if getattr(args, "model", "linear") != "linear" and args.engine not in ("eigen", "lowrank"):
        raise InputError("the threshold model samples on a decomposition: --engine eigen or "
                         "lowrank, --grm, or --bfile without --engine")
    inp = load(args, kernel=False)
    opts = engine_options(args, output_prefix(args.out))
    staged.on_commit(lambda: remove_store(opts["resume"]))
    with scheduler_client(getattr(args, "scheduler", None)) as client:
        out = reml_genotypes(inp.ds, inp.y, inp.X, engine=args.engine, maf=args.maf,
                             geno=args.geno, client=client, threads=args.threads,
                             progress=progress(args), return_operator=return_operator,
                             se_method=args.se_method, **opts)
    fit = out[0] if return_operator else out
    results.info("REML (engine %s), N=%d\n%s\n%s.", args.engine, fit.nobs,
                 hsq_text(fit).rstrip(), se_line(fit))
    if getattr(fit, "info", None):
        log.info("Krylov engine: %s", ", ".join(f"{k}={v}" for k, v in fit.info.items()))
    return inp, out


# ----------------------------------------------------------------------------- commands
def cmd_grm(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm grm``: PREFIX.grm.bin/.grm.N.bin/.grm.id (and LOCO GRMs)."""
    from bayeslmm.genotypes.kinship import grm, loco_grms
    from bayeslmm.io import write_grm

    prefix = output_prefix(args.out)
    ds = genotypes(args)
    g = grm(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr, progress=progress(args),
            autosome=not args.include_nonautosomal)
    log.info("GRM of %d samples from %d SNPs passing QC (maf >= %g, geno <= %g).", g.N, g.M,
             args.maf, args.geno)
    sfx = (".grm.bin", ".grm.N.bin", ".grm.id")
    staged.write_prefix(prefix, sfx, lambda p: write_grm(g, p))
    if args.loco:
        for c, gc in loco_grms(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                               progress=progress(args)).items():
            log.info("LOCO GRM without chromosome %s: %d SNPs.", c, gc.M)
            staged.write_prefix(f"{prefix}.loco-chr{c}", sfx, lambda p, gc=gc: write_grm(gc, p))
    log.info("GRM written to %s.grm.bin, .grm.N.bin, .grm.id.", prefix)
    return prefix


def _fit_traits(args: argparse.Namespace):
    """Several --mpheno columns: the multi-trait REML/ML fit on one GRM."""
    from bayeslmm.estimation.multitrait import multitrait_ml, multitrait_reml

    if getattr(args, "mgrm", None):
        raise InputError("the multi-trait model takes one GRM (--grm or --bfile), not --mgrm")
    if args.ml and args.command == "sample":
        raise InputError("--ml has no meaning for the posterior; drop it")
    inp = load(args, mpheno=args.mpheno_all)
    # Labels are aligned by load_inputs; the kernel is passed positionally.
    fit = (multitrait_ml if args.ml else multitrait_reml)(
        inp.Y, np.asarray(inp.K), inp.X, se_method=args.se_method or "observed")
    log_fit(fit, logger=results)
    return inp, fit


def cmd_reml(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm reml``: PREFIX.hsq (one trait, several traits, several GRMs, an engine)."""
    prefix = output_prefix(args.out)
    if len(getattr(args, "mpheno_all", ())) > 1:
        fit = _fit_traits(args)[1]
    elif args.engine:
        fit = engine_fit(args, staged)[1]
    else:
        fit = fit_reml(args, load(args))
    write_hsq(fit, f"{prefix}.hsq", staged,
              prevalence=args.prevalence if hasattr(fit, "liability_h2") else None)
    return prefix


def cmd_blup(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm blup``: PREFIX.hsq, PREFIX.indi.blp and, with --bfile, PREFIX.snp.blp."""
    from bayeslmm.blup import allele_effects, blup
    from bayeslmm.reports.writers import write_indi_blp, write_snp_blp

    prefix = output_prefix(args.out)
    inp = load(args)
    fit = fit_reml(args, inp)
    write_hsq(fit, f"{prefix}.hsq", staged)
    write_indi_blp(blup(fit), fit.sigma2, f"{prefix}.indi.blp", staged)
    if inp.ds is not None:
        eff = allele_effects(fit, inp.ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                             progress=progress(args))
        write_snp_blp(eff["snp"].to_numpy(), eff["a1"].to_numpy(), eff["effect"].to_numpy(),
                      f"{prefix}.snp.blp", staged)
        log.info("BLUP of %d SNP effects (per A1 allele) written to %s.snp.blp.",
                 eff.sizes["variant"], prefix)
    return prefix


def _assoc_results(args: argparse.Namespace, tests: list[str], min_maf: float,
                   max_missing: float, staged) -> dict:
    from bayeslmm.association.fixed_variance import assoc, loco_fits, one_test
    from bayeslmm.association.grammar import assoc_krylov
    from bayeslmm.estimation.krylov import KrylovFit

    if args.engine:
        if args.loco:
            raise InputError("--loco builds its GRMs per chromosome; drop --engine (or --loco)")
        inp, (fit, op) = engine_fit(args, staged, return_operator=True)
        if isinstance(fit, KrylovFit):  # GRAMMAR(-Gamma) in one more pass
            return {t: assoc_krylov(fit, op, test=t) for t in tests}
        ds, kw = inp.ds, {"fit": fit}
    elif args.loco:
        if args.grm or args.mgrm:
            raise InputError("--loco computes its GRMs from --bfile; drop --grm/--mgrm")
        from bayeslmm.genotypes.kinship import loco_grms

        ds = genotypes(args)
        grms = loco_grms(ds, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                         progress=progress(args))
        # Every LOCO GRM covers the same samples: align phenotype and covariates once.
        inp = load(args, grm=None, mgrm=None, bfile=None, grms=[next(iter(grms.values()))])
        kw = {"fit": None, "loco": loco_fits(grms, inp.y, inp.X, ml=args.ml,
                                             method=args.method,
                                             constrain=not args.no_constrain)}
    else:
        inp = load(args)
        ds, kw = inp.ds, {"fit": fit_reml(args, inp)}
    fit = kw.pop("fit")
    res = assoc(fit, ds, test=tests, progress=progress(args), min_maf=min_maf,
                max_missing=max_missing, max_r2=0.9999 if args.format == "gemma" else None, **kw)
    return {t: one_test(res, t) for t in tests}


def _assoc_linear(args: argparse.Namespace, tests: list[str], staged, prefix: Path) -> Path:
    """``--test linear``: the marginal OLS test, PREFIX.glm.linear (plink2's layout)."""
    from bayeslmm.association.marginal import linear_assoc
    from bayeslmm.reports.writers import write_assoc_tables

    if len(tests) > 1 or args.grm or args.mgrm or args.engine or args.loco or \
            args.format != "tsv":
        raise InputError("--test linear (marginal OLS, plink2 --glm) runs alone and writes "
                         "plink2's layout: drop the other tests, --grm/--mgrm/--engine/--loco "
                         "and --format")
    inp = load(args, kernel=False)
    res = linear_assoc(inp.ds, inp.y, inp.X, min_maf=args.maf, max_missing=args.geno,
                       progress=progress(args))
    write_assoc_tables({"linear": res}, prefix, "glm", staged, chromosomes=args.chr)
    return prefix


def cmd_assoc(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm assoc``: one table per test, in the layout of --format."""
    from bayeslmm.reports.writers import write_assoc_tables

    prefix = output_prefix(args.out)
    if genotype_source(vars(args)) is None:
        raise InputError("assoc needs the genotypes to test: --bfile, --pfile, --bgen or --vcf")
    from bayeslmm.association.fixed_variance import ALIASES

    given = args.test or (["mlma"] if args.format == "mlma" else ["wald"])
    tests = list(dict.fromkeys(ALIASES.get(t, t) for t in given))
    if "linear" in tests:
        return _assoc_linear(args, tests, staged, prefix)
    qc = (args.maf, args.geno)
    if args.format == "gemma" and qc == (0.0, 1.0):
        qc = (0.01, 0.05)
        log.info("--format gemma: GEMMA's SNP filters on the analysed samples (-maf 0.01, "
                 "-miss 0.05); --maf and --geno change them.")
    per_test = _assoc_results(args, tests, *qc, staged)
    write_assoc_tables(per_test, prefix, args.format, staged, chromosomes=args.chr)
    return prefix


def cmd_sample(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sample``: PREFIX.hsq, .posterior.nc/.tsv, .h2.png (.rg.png: two traits)."""
    prefix = output_prefix(args.out)
    prior_args(args)  # a bad prior fails before any computation
    if args.model in ("bayesc", "bayesr", "bslmm"):  # sparse SNP priors, from the genotypes
        from bayeslmm.reports.sparse import sample_sparse
        return sample_sparse(args, load, staged, prefix)
    if len(getattr(args, "mpheno_all", ())) > 1:
        if len(args.mpheno_all) != 2:
            raise InputError(f"the multi-trait posterior is for two traits; --mpheno gave "
                             f"{len(args.mpheno_all)}")
        inp, fit = _fit_traits(args)
        write_hsq(fit, f"{prefix}.hsq", staged)
        posterior(args, fit, inp.Y, inp.X, staged, prefix, model="multitrait")
        return prefix
    if args.engine:
        from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov
        from bayeslmm.estimation.krylov import KrylovFit
        from bayeslmm.reports.posterior_files import FigureOptions, write_krylov_posterior

        inp, fit = engine_fit(args, staged)
        write_hsq(fit, f"{prefix}.hsq", staged, prevalence=args.prevalence)
        if isinstance(fit, KrylovFit):  # the exact 1-D quadrature, with its MC error
            post = posterior_h2_krylov(fit.model, priors=prior_args(args))
            write_krylov_posterior(post, prefix, staged, seed=args.seed, fit=fit,
                                   fig_opts=FigureOptions.of(args))
        else:  # NUTS on the decomposition the eigen / low-rank engines gave
            posterior(args, fit, inp.y, inp.X, staged, prefix)
        return prefix
    inp = load(args)
    fit = fit_reml(args, inp)
    write_hsq(fit, f"{prefix}.hsq", staged, prevalence=args.prevalence)
    posterior(args, fit, inp.y, inp.X, staged, prefix, K=inp.K, names=inp.names)
    return prefix


def cmd_compare(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm compare``: REML next to the full posterior; PREFIX.compare.tsv, .png."""
    from bayeslmm.bayes import compare
    from bayeslmm.reports.plots import close, plot_compare

    prefix = output_prefix(args.out)
    prior_args(args)
    inp = load(args)
    fit = fit_reml(args, inp)
    run = posterior(args, fit, inp.y, inp.X, staged, prefix, K=inp.K, names=inp.names)
    # the threshold model's h2 is on the liability scale: REML's is transformed to it
    cmp = compare(fit, run.idata, prevalence=args.prevalence if run.liability_scale else None)
    staged.write_text(f"{prefix}.compare.tsv", cmp.table.to_csv(sep="\t"))
    f = (getattr(args, "figure_format", "png"), getattr(args, "dpi", 300))  # as the .h2 figure
    staged.write_with(f"{prefix}.compare.{f[0]}",
                      lambda p: close(plot_compare(cmp, p, fmt=f[0], dpi=f[1])))
    results.info("REML versus full posterior:\n%s\n%s", cmp.table.to_string(), cmp.agreement())
    return prefix


def cmd_sensitivity(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm sensitivity``: h2 under each prior set; PREFIX.sensitivity.tsv, .png."""
    from bayeslmm.bayes import parse_priors, prior_sensitivity
    from bayeslmm.bayes.priors import parse_prior_sets
    from bayeslmm.reports.plots import close, plot_sensitivity

    prefix = output_prefix(args.out)
    sets = parse_prior_sets(args.priors)
    for spec in sets.values():
        parse_priors(spec)
    inp = load(args)
    if isinstance(inp.K, list):
        raise InputError("prior sensitivity is for one GRM; give --grm or --bfile, not --mgrm")
    fit = fit_reml(args, inp)
    sens = prior_sensitivity(inp.y, fit, inp.X, priors=sets,
                             method="quadrature" if args.quadrature else "nuts",
                             draws=args.draws, tune=args.tune, chains=args.chains,
                             seed=args.seed, progressbar=not args.quiet)
    staged.write_text(f"{prefix}.sensitivity.tsv", sens.summary.to_dataframe().to_csv(sep="\t"))
    f = (args.figure_format, args.dpi)
    staged.write_with(f"{prefix}.sensitivity.{f[0]}",
                      lambda p: close(plot_sensitivity(sens, p, fmt=f[0], dpi=f[1])))
    results.info("Prior sensitivity of h2:\n%s", repr(sens))
    return prefix


def cmd_ldpred(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm ldpred``: PREFIX.ldpred.tsv, .ldpred.nc (+ .sscore), h2 and p on stdout."""
    from bayeslmm.reports.ldpred import ldpred_report

    prefix = output_prefix(args.out)
    for line in ldpred_report(prefix, staged, **{**vars(args), "progress": progress(args)}):
        results.info(line)
    return prefix


def cmd_demo(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm demo`` (:mod:`bayeslmm.reports.demo`): files in ``--out``, report on stdout."""
    from bayeslmm.reports.demo import run_demo

    report = run_demo(args.out, staged, draws=args.draws, tune=args.tune, chains=args.chains,
                      seed=args.seed, progress=progress(args), cores=_cores(args))
    print(report, end="", flush=True)  # the report is the demo's result: stdout, not the log
    return Path(args.out) / "demo"


def cmd_ldscore(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm ldscore``: PREFIX.l2.ldscore.gz, .l2.M, .l2.M_5_50 (LDSC's layout, --annot)."""
    from bayeslmm.reports.ldsc import ldscore_report

    prefix = output_prefix(args.out)
    ldscore_report(genotypes(args), prefix, staged, **{**vars(args), "progress": progress(args)})
    return prefix


def cmd_ldsc(args: argparse.Namespace, staged) -> Path:
    """``bayeslmm ldsc --h2``/``--rg``: LD score regression (stdout), .ldsc.tsv (.results)."""
    from bayeslmm.reports.ldsc import ldsc_report

    prefix = output_prefix(args.out)
    lines, files = ldsc_report(**vars(args))
    for line in lines:
        results.info(line)
    for suffix, text in files.items():
        staged.write_text(f"{prefix}{suffix}", text)
    return prefix
