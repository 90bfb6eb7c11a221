"""What the house knows how to do, by name: model families, association tests, engines.

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

__all__ = ["ASSOC_TESTS", "ENGINES", "MODEL_FAMILIES", "AssocTest", "Engine", "ModelFamily",
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


MODEL_FAMILIES: dict[str, ModelFamily] = {}
ASSOC_TESTS: dict[str, AssocTest] = {}
ENGINES: dict[str, Engine] = {}


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
    try:
        return MODEL_FAMILIES[name]
    except KeyError:
        raise KeyError(f"no model family {name!r}; known: {sorted(MODEL_FAMILIES)}") from None


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
        for opt in ("prevalence", "grm_cutoff", "grm_bend"):
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
