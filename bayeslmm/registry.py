"""What the house knows how to do, by name: model families, association tests, engines,
genotype file formats.

A model family, association test or engine is a module that registers itself here when it is
imported; the modules that dispatch (:mod:`bayeslmm.bayes.sampling`, the command line) look it
up by name and import no family. This module knows no family itself and imports nothing of
the package, so every layer may register into it.

Each entry also says which command-line options apply to it (``options``): the command line
refuses an option that applies to none of the chosen model, engine and number of traits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ASSOC_TESTS", "COMMAND_OUTPUTS", "ENGINES", "GENOTYPE_FORMATS", "HABITS",
           "MODEL_FAMILIES",
           "AssocTest", "Engine", "GenotypeFormat", "ModelFamily", "genotype_format",
           "genotype_option_flags", "genotype_source", "register_genotype_format",
           "attach_family_hooks",
           "applicable_options", "assoc_test", "engine", "family_for_kind", "model_family",
           "register_assoc_test", "register_engine", "register_model_family",
           "specific_options", "inapplicable", "claimed_by", "check_applicable"]


@dataclass(frozen=True)
class ModelFamily:
    """A Bayesian model family: how its models are built, compiled and sampled.

    Attributes
    ----------
    name : str
        The family's name (the command line's ``--model`` value where it has one).
    kinds : tuple of str
        The ``ModelInfo.kind`` values of the models its builders make.
    build : callable
        The builder (``marginal_grm``, ``threshold``, ...); None until the family's module is
        imported (the table of families, their kinds and options is declared without PyMC by
        :mod:`bayeslmm.bayes.families`; each family's module then attaches its hooks).
    sample : callable, optional
        Replaces NUTS altogether for this family (several kernels: beta and the scale
        integrated out, a grid over the variance ratios); called as ``sample(model, draws=,
        tune=, chains=, seed=, progressbar=, target_accept=, log_likelihood=, log_prior=,
        **options)``.
    compile : callable, optional
        ``compile(model)`` -> a nutpie compiled model from a hand-written log-density, or None.
    supported : callable, optional
        ``supported(model)`` -> why ``compile`` cannot serve ``model``, or None when it can.
    pointwise_loglik : callable, optional
        ``pointwise_loglik(idata, model)`` -> True after storing per-sample log-likelihoods
        that PSIS-LOO can use in place of PyMC's observed terms.
    nuts_defaults : mapping
        nutpie options this family samples best with (a user's own options win).
    traits : tuple of int
        The numbers of traits the family models.
    options : frozenset of str
        Command-line options (argparse ``dest`` names) that apply to it.
    """

    name: str
    kinds: tuple[str, ...]
    build: Callable[..., Any] | None = None
    sample: Callable[..., Any] | None = None
    compile: Callable[[Any], Any] | None = None
    supported: Callable[[Any], str | None] | None = None
    pointwise_loglik: Callable[[Any, Any], bool] | None = None
    nuts_defaults: Mapping[str, Any] = field(default_factory=dict)
    traits: tuple[int, ...] = (1,)
    options: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AssocTest:
    """An association test by name, with the columns it writes and the options it reads."""

    name: str
    description: str
    columns: tuple[str, ...] = ()
    engines: tuple[str, ...] = ("eigen", "lowrank", "krylov")
    options: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Engine:
    """A REML engine from genotypes (``--engine``) and the options that apply to it."""

    name: str
    description: str
    options: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GenotypeFormat:
    """A genotype file format: its command-line flag, its reader, which files it reads.

    Declared without numpy (:mod:`bayeslmm.io.catalogue`), so the command line lists the
    formats' flags in a fraction of a second; the reader is imported when a file is opened.

    Attributes
    ----------
    name : str
        The flag's argparse ``dest`` (``bfile``, ``pfile``, ``bgen``, ``vcf``): PLINK 2's names.
    flag : mapping
        argparse keywords of ``--NAME`` (``metavar``, ``nargs``, ``help``): the parser adds
        every format's flag in one loop, so a new format needs no command-line code.
    opener : str
        ``"module:function"``; ``function(value, **options)`` opens the lazy labelled dataset
        of :func:`bayeslmm.io.plink.genotype_dataset` from what the flag parsed.
    files : callable
        ``files(value, **options)`` -> the input files the run reads (none may be overwritten).
    options : mapping
        The format's own flags (argparse ``dest`` -> keywords, ``flag`` among them), e.g.
        ``--sample`` of ``--bgen``; refused without the format.
    counted : str
        Which allele the genotype values count (PLINK 1: A1; PLINK 2 and VCF: ALT).
    """

    name: str
    flag: Mapping[str, Any]
    opener: str
    files: Callable[..., list]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    counted: str = ""


MODEL_FAMILIES: dict[str, ModelFamily] = {}
ASSOC_TESTS: dict[str, AssocTest] = {}
ENGINES: dict[str, Engine] = {}
#: genotype formats in the order their flags are listed (``bfile`` first)
GENOTYPE_FORMATS: dict[str, GenotypeFormat] = {}

#: suffixes each command may write after its prefix (LOCO GRMs and per-test tables aside)
_GRM = (".grm.bin", ".grm.N.bin", ".grm.id")
_POSTERIOR = (".hsq", ".posterior.nc", ".posterior.tsv", ".h2.png")
COMMAND_OUTPUTS: dict[str, tuple[str, ...]] = {
    "grm": _GRM, "reml": (".hsq",), "blup": (".hsq", ".indi.blp", ".snp.blp"),
    "assoc": tuple(f"{t}{sfx}" for t in ("", ".exact", ".grammar", ".grammar-gamma", ".wald",
                                          ".lrt", ".score")
                   for sfx in (".assoc.tsv", ".assoc.txt", ".mlma")) + (".glm.linear",),
    # two traits: .rg.png (h2_1, h2_2 and r_g) in place of .h2.png; sparse SNP priors (bayesc/r):
    # GEMMA -bslmm's .param.txt and .hyp.txt, and its .bv.txt (bslmm)
    "sample": (*_POSTERIOR, ".rg.png", ".param.txt", ".hyp.txt", ".bv.txt"),
    "compare": (*_POSTERIOR[1:], ".compare.tsv", ".compare.png"),
    "sensitivity": (".sensitivity.tsv", ".sensitivity.png"),
    "ldscore": (".l2.ldscore.gz", ".l2.M", ".l2.M_5_50"), "ldsc": (".ldsc.tsv", ".results"),
    "ldpred": (".ldpred.tsv", ".ldpred.nc", ".sscore"),
    "demo": (*_GRM, ".hsq", ".indi.blp", ".snp.blp", *_POSTERIOR[1:], ".report.txt"),
}


#: what GCTA, GEMMA and LDSC users type first, and the command it is here
HABITS = {"--reml": "reml", "--make-grm": "grm", "--make-grm-bin": "grm", "--mlma": "assoc",
          "--mlma-loco": "assoc --loco", "--reml-pred-rand": "blup", "--blup-snp": "blup",
          "-gk": "grm", "-lmm": "assoc", "-bslmm": "sample", "--make-grm-part": "grm",
          "--l2": "ldscore"}


def register_genotype_format(fmt: GenotypeFormat) -> GenotypeFormat:
    """Add (or replace, on a module's reload) a genotype file format."""
    GENOTYPE_FORMATS[fmt.name] = fmt
    return fmt


def _lookup(table: Mapping[str, Any], name: str, what: str) -> Any:
    """``table[name]``; a KeyError naming the known entries otherwise."""
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no {what} {name!r}; known: {sorted(table)}") from None


def genotype_format(name: str) -> GenotypeFormat:
    """The format registered under ``name``; KeyError naming the known ones otherwise."""
    return _lookup(GENOTYPE_FORMATS, name, "genotype format")


def genotype_option_flags() -> dict[str, Mapping[str, Any]]:
    """Every format's own flags (argparse ``dest`` -> keywords), each once."""
    out: dict[str, Mapping[str, Any]] = {}
    for fmt in GENOTYPE_FORMATS.values():
        out.update(fmt.options)
    return out


def genotype_source(values: Mapping[str, Any]) -> tuple[str, Any, dict[str, Any]] | None:
    """The genotype format a parsed command line names (``values``: its flags by ``dest``),
    as ``(name, value, options)``; None without genotypes.

    Raises
    ------
    InputError
        Two formats at once, or a format's own flag (``--sample``) without the format.
    """
    from bayeslmm.errors import InputError

    given = [f for f in GENOTYPE_FORMATS.values() if values.get(f.name) is not None]
    if len(given) > 1:
        raise InputError(f"give one genotype fileset; got --{given[0].name} and "
                         f"--{given[1].name}")
    fmt = given[0] if given else None
    for dest in genotype_option_flags():
        if values.get(dest) not in (None, False) and (fmt is None or dest not in fmt.options):
            owners = [f"--{f.name}" for f in GENOTYPE_FORMATS.values() if dest in f.options]
            raise InputError(f"--{dest.replace('_', '-')} applies with {' or '.join(owners)}")
    if fmt is None:
        return None
    return fmt.name, values[fmt.name], {d: values.get(d) for d in fmt.options}


def register_model_family(family: ModelFamily) -> ModelFamily:
    """Add (or replace, on a module's reload) a model family."""
    MODEL_FAMILIES[family.name] = family
    return family


def attach_family_hooks(name: str, **hooks: Any) -> ModelFamily:
    """Give a declared family (:func:`register_model_family`) its builder and sampling hooks
    (``build``, ``sample``, ``compile``, ``supported``, ``pointwise_loglik``)."""
    import dataclasses

    fam = dataclasses.replace(model_family(name), **hooks)
    MODEL_FAMILIES[name] = fam
    return fam


def register_assoc_test(test: AssocTest) -> AssocTest:
    ASSOC_TESTS[test.name] = test
    return test


def register_engine(e: Engine) -> Engine:
    ENGINES[e.name] = e
    return e


def model_family(name: str) -> ModelFamily:
    """The family registered under ``name``; KeyError naming the known ones otherwise."""
    return _lookup(MODEL_FAMILIES, name, "model family")


def family_for_kind(kind: str | None) -> ModelFamily | None:
    """The family whose builders make models of ``kind`` (a ``ModelInfo.kind``), or None."""
    for fam in MODEL_FAMILIES.values():
        if kind in fam.kinds:
            return fam
    return None


def specific_options() -> frozenset[str]:
    """Every option that some family or engine claims: the ones that apply only where they
    are claimed (the other options of a command apply everywhere)."""
    out: set[str] = set()
    for fam in MODEL_FAMILIES.values():
        out |= fam.options
    for e in ENGINES.values():
        out |= e.options
    return frozenset(out)


def applicable_options(*, model: str | None = None, engine: str | None = None,
                       traits: int = 1) -> frozenset[str]:
    """The family- and engine-specific options that apply to a run of ``model`` (a family's
    name; with several traits the family that models them) with ``engine`` (None: the GRM
    route). An option of :func:`specific_options` outside this set does not apply."""
    out: set[str] = set()
    fams = [f for f in MODEL_FAMILIES.values() if traits in f.traits]
    if model is not None:
        fams = [f for f in fams if f.name == model] or \
            [f for f in MODEL_FAMILIES.values() if traits in f.traits and traits > 1]
    for fam in fams:
        out |= fam.options
    if engine is not None:
        out |= ENGINES[engine].options
    return frozenset(out)


def assoc_test(name: str) -> AssocTest:
    return ASSOC_TESTS[name]


def engine(name: str) -> Engine:
    return ENGINES[name]


def inapplicable(given, *, model: str | None = None, engine: str | None = None,
                 traits: int = 1) -> list[str]:
    """Of the options ``given`` (those a user set), the ones that some family or engine
    claims but none of the chosen ones does (:func:`applicable_options`): flags that would
    otherwise be accepted and silently ignored."""
    specific = specific_options()
    ok = applicable_options(model=model, engine=engine, traits=traits)
    return sorted(o for o in given if o in specific and o not in ok)


def claimed_by(option: str) -> list[str]:
    """Where ``option`` applies: the families ("--model NAME", "several traits") and engines
    ("--engine NAME") that claim it, for an error message."""
    out = [("several traits" if f.traits != (1,) else f"--model {f.name}")
           for f in MODEL_FAMILIES.values() if option in f.options]
    return out + [f"--engine {e.name}" for e in ENGINES.values() if option in e.options]


def check_applicable(given, *, model: str = "linear", engine: str | None = None,
                     traits: int = 1, genotypes: bool = True) -> None:
    """Refuse, naming the flag and where it applies, what a run would otherwise accept and
    silently ignore: an option no chosen family or engine claims (:func:`inapplicable`), a
    model of one trait asked for several, what the engines do not apply (the liability
    scale, GRM remedies, several traits), and SNP selections without genotypes."""
    from bayeslmm.errors import InputError

    given = set(given)
    if traits > 1 and model not in ("linear", "multitrait"):
        raise InputError(f"--model {model} is for one trait; --mpheno gave {traits}")
    fam = "multitrait" if traits > 1 else model
    for opt in inapplicable(given, model=fam, engine=engine, traits=traits):
        raise InputError(f"--{opt.replace('_', '-')} does not apply to this run; it applies "
                         f"with {' or '.join(claimed_by(opt))}")
    if engine is not None:
        # the threshold model's prevalence places its threshold: sampled on the decomposition
        # the eigen and low-rank engines give (the Krylov engine has none)
        placed = model == "threshold" and engine in ("eigen", "lowrank")
        for opt in ("grm_cutoff", "grm_bend") if placed else ("prevalence", "grm_cutoff",
                                                              "grm_bend"):
            if opt in given:
                raise InputError(f"--{opt.replace('_', '-')} is not applied by --engine (no "
                                 "GRM is formed); fit with --grm, or --bfile without --engine")
        if traits > 1:
            raise InputError("--engine fits one trait; several --mpheno columns need --grm or "
                             "--bfile without --engine")
    if not genotypes:
        for opt in ("extract", "exclude", "chr", "maf", "geno"):
            if opt in given:
                raise InputError(f"--{opt} selects SNPs, which needs --bfile (a GRM read with "
                                 "--grm is used as it is)")
