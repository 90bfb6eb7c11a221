"""The REML engines from genotypes (``--engine``) and the options each reads, declared without
numpy so that the command line can list them quickly. The engines themselves are in
:mod:`bayeslmm.estimation.engines`."""

from __future__ import annotations

from bayeslmm.registry import Engine, register_engine

__all__ = ["ENGINES", "ENGINE_FLAGS", "FIT_FLAGS", "LDPRED_FLAGS", "LDSCORE_FLAGS",
           "LIABILITY_FLAGS", "engine_options"]

ENGINES = ("auto", "eigen", "lowrank", "krylov")
_PASSES = frozenset({"scheduler", "memory"})  # every engine runs its passes on dask
for _e, _what, _opts in (
        ("auto", "picks eigen, lowrank or krylov by N, P and free memory (logged)",
         {"probes", "lanczos_steps", "probe_seed", "precision", "no_resume"}),
        ("eigen", "the GRM from the genotypes, then its eigendecomposition (N up to ~15,000)",
         set()),
        ("lowrank", "K = ZZ'/P through the P x P matrix Z'Z, exact (P < N)", set()),
        ("krylov", "matrix-free: block Lanczos + stochastic Lanczos quadrature, any N and P",
         {"probes", "lanczos_steps", "probe_seed", "precision", "no_resume"})):
    register_engine(Engine(_e, _what, options=frozenset(_opts) | _PASSES))

#: the engines' command-line flags (argparse keywords), added by the parser in one loop
ENGINE_FLAGS = {
    "--engine": dict(choices=ENGINES, default=None,
                     help="REML straight from the genotypes: dense eigendecomposition, exact "
                          "low-rank (P < N) or matrix-free Krylov/SLQ; auto picks by N, P and "
                          "free memory (default: the GRM route)"),
    "--scheduler": dict(metavar="ADDRESS", default=None,
                        help="dask.distributed scheduler to run the genotype passes on "
                             "(default: local threads, --threads of them)"),
    "--probes": dict(type=int, default=30, help="Krylov engine: random probes"),
    "--lanczos-steps": dict(type=int, default=20,
                            help="Krylov engine: Lanczos steps (passes over the genotypes)"),
    "--probe-seed": dict(type=int, default=0, help="Krylov engine: probe seed"),
    "--precision": dict(choices=("float32", "float64"), default="float32",
                        help="Krylov engine: floating type of the products over the int8 "
                             "genotypes (chunk sums in float64; default %(default)s)"),
    "--memory": dict(type=int, default=None, metavar="MB",
                     help="memory budget in MiB, as PLINK's (default: the free memory): picks "
                          "the engine (auto) and whether the passes keep the genotypes "
                          "decoded in memory (1 byte a call) or read a .bed's 2-bit bytes"),
    "--no-resume": dict(action="store_true",
                        help="Krylov engine: keep no PREFIX.resume/ folder (by default each "
                             "completed pass is kept there, a stopped run started again "
                             "resumes after it, and success removes the folder)"),
}


def engine_options(args, prefix) -> dict:
    """``reml_genotypes``'s keywords from the engines' flags: the Krylov settings, the memory
    budget in bytes and the resume folder ``PREFIX.resume`` (Krylov only: the other engines
    make one or two passes)."""
    from bayeslmm.errors import InputError

    a = vars(args)
    if a.get("memory") is not None and a["memory"] < 1:
        raise InputError(f"--memory must be a positive number of MiB, got {a['memory']}")
    resume = (None if a.get("no_resume") or a.get("engine") not in ("krylov", "auto")
              else f"{prefix}.resume")
    return {"n_probes": a["probes"], "n_steps": a["lanczos_steps"], "seed": a["probe_seed"],
            "precision": a["precision"], "resume": resume,
            "memory": None if a.get("memory") is None else a["memory"] * 2**20}


#: the variance-component fit's flags (reml, blup, assoc, sample, compare, sensitivity)
FIT_FLAGS = {
    "--method": dict(choices=("auto", "brent", "ai", "fisher", "em"), default="auto",
                     help="auto: spectral Brent for one GRM, AI-REML for several"),
    "--ml": dict(action="store_true", help="maximum likelihood instead of REML"),
    "--no-constrain": dict(action="store_true",
                           help="allow negative variance components (dense algorithms)"),
    "--se-method": dict(choices=("ai", "observed", "expected"), default=None,
                        help="information matrix of the variance components' SEs: average "
                        "(GCTA's), observed (GEMMA's se(pve)) or expected (Fisher); default: ai "
                        "for one trait, observed for two traits (GEMMA) and --engine krylov"),
}

#: ``bayeslmm ldscore``'s window, one of three (LDSC's --ld-wind-kb/-cm/-snps)
LDSCORE_FLAGS = {
    "--ld-wind-kb": dict(type=float, default=None, metavar="KB",
                         help="window: SNPs within KB kilobases on the same chromosome"),
    "--ld-wind-cm": dict(type=float, default=None, metavar="CM",
                         help="window: SNPs within CM centimorgans (.bim column 3)"),
    "--ld-wind-snps": dict(type=int, default=None, metavar="K",
                           help="window: the K SNPs on either side (same chromosome)"),
}

#: ``bayeslmm ldpred`` (:mod:`bayeslmm.reports.ldpred`); its LD window is LDSCORE_FLAGS'
LDPRED_FLAGS = {
    "--sumstats": dict(required=True, metavar="FILE",
                       help="summary statistics: LDSC .sumstats(.gz), plink2 .glm.linear, "
                            "GEMMA .assoc.txt (with --N) or GCTA-COJO .ma"),
    "--ref": dict(required=True, metavar="PREFIX",
                  help="PLINK reference panel (.bed/.bim/.fam) for the LD matrix"),
    "--target": dict(default=None, metavar="PREFIX",
                     help="PLINK fileset to score with the effects -> PREFIX.sscore"),
    "--method": dict(choices=("auto", "grid", "inf"), default="auto",
                     help="LDpred2-auto (p and h2 sampled), -grid (fixed --p, --h2) or "
                          "LDpred-inf (closed form)"),
    "--h2": dict(type=float, default=None, metavar="H2",
                 help="SNP heritability (e.g. from 'bayeslmm ldsc --h2'; auto: its start)"),
    "--p": dict(type=float, default=None, metavar="P",
                help="fraction of non-zero effects (grid; auto: its start, default 0.01)"),
    "--shrinkage": dict(choices=("exact", "published"), default="exact",
                        help="residual variance 1 - h2 (SNP-BLUP's) or 1 (LDpred's M/(N h2))"),
    "--N": dict(type=float, default=None, help="samples per SNP (GEMMA's layout has none)"),
    "--burn": dict(type=int, default=500, help="Gibbs sweeps discarded per chain"),
    "--draws": dict(type=int, default=1000, help="Gibbs sweeps kept per chain"),
    "--chains": dict(type=int, default=2, help="independent chains"),
    "--seed": dict(type=int, default=None, help="random seed (default 0)"),
}

#: case-control traits: --prevalence (reml, sample, compare), --model and --link (sample,
#: compare)
LIABILITY_FLAGS = {
    "--prevalence": dict(type=float, default=None, metavar="K",
                         help="population prevalence of a case-control trait (0/1 or PLINK 1/2 "
                         "coded; 0 and -9 missing in 1/2): adds h2 on the liability scale "
                         "(V(G)/Vp_L, Lee et al. 2011, as GCTA)"),
    "--model": dict(choices=("linear", "threshold", "bayesc", "bayesr", "bslmm"),
                    default="linear",
                    help="linear: the LMM (h2_liability by transformation with --prevalence); "
                    "threshold: the liability-threshold (probit) model, its threshold placed "
                    "from --prevalence; bayesc (sample): sparse point-normal SNP effects from "
                    "the genotypes, --prior pi='Beta(a, b)' or pi=NUMBER, -> GEMMA -bslmm's "
                    "PREFIX.param.txt (per-SNP PIP) and .hyp.txt; bayesr (sample): GCTB's four-"
                    "component mixture, likewise; bslmm (sample): GEMMA -bslmm's model (a GRM "
                    "term plus sparse effects, --prior h=, rho=, pi=NUMBER or "
                    "log10_pi='Uniform(a, b)') -> its .param.txt, .hyp.txt and .bv.txt"),
    "--link": dict(choices=("probit", "logit"), default="probit",
                   help="link of the threshold model (logit: free intercept only)"),
}
