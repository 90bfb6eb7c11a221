"""The registry: every family, association test and engine registers itself, and the table of
which options apply where answers both ways."""

import bayeslmm.association.catalogue  # noqa: F401  (registers the tests)
import bayeslmm.bayes.models  # noqa: F401  (registers the families)
import bayeslmm.estimation.catalogue  # noqa: F401  (registers the engines; bayeslmm is lazy)
from bayeslmm import registry
from bayeslmm.bayes.models import marginal_grm, threshold
from bayeslmm.bayes.models.multitrait import multitrait_marginal


def test_families_are_registered_with_their_builders():
    assert registry.model_family("linear").build is marginal_grm
    assert registry.model_family("threshold").build is threshold
    assert registry.model_family("multitrait").build is multitrait_marginal
    assert registry.family_for_kind("marginal-dense").name == "multikernel"
    assert registry.family_for_kind("no such kind") is None


def test_sampling_hooks_where_a_family_has_them():
    assert registry.model_family("multikernel").sample is not None
    assert registry.model_family("linear").sample is None  # NUTS
    for name in ("linear", "multitrait", "threshold"):
        assert registry.model_family(name).compile is not None
    assert registry.model_family("multitrait").nuts_defaults == {"adaptation": "low_rank"}


def test_options_apply_where_claimed_and_not_elsewhere():
    lin = registry.applicable_options(model="linear")
    thr = registry.applicable_options(model="threshold")
    two = registry.applicable_options(traits=2)
    kry = registry.applicable_options(model="linear", engine="krylov")
    eig = registry.applicable_options(model="linear", engine="eigen")
    assert "link" in thr and "link" not in lin
    assert "lkj_eta" in two and "lkj_eta" not in lin
    assert "probes" in kry and "probes" not in eig and "probes" not in lin
    assert "scheduler" in eig and "scheduler" not in lin
    assert {"link", "lkj_eta", "probes", "scheduler"} <= registry.specific_options()


def test_assoc_tests_and_engines_are_the_command_lines_choices():
    from bayeslmm.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    test_action = next(a for a in sub["assoc"]._actions if a.dest == "test")
    engine_action = next(a for a in sub["reml"]._actions if a.dest == "engine")
    assert set(test_action.choices) == set(registry.ASSOC_TESTS)
    assert set(engine_action.choices) == set(registry.ENGINES)
    assert "krylov" not in registry.assoc_test("exact").engines
