"""The model families: their names, the kinds of model they build, the numbers of traits they
model and the command-line options that apply to them, declared without importing PyMC.

This is the one table the command line checks a run's flags against before any work (and
that sampling finds a model's family in); each family's module
(:mod:`bayeslmm.bayes.models`) attaches its builder and its sampling hooks to its entry when
it is imported (:func:`bayeslmm.registry.attach_family_hooks`). A new family is a line here
and a module there.
"""

from bayeslmm.registry import ModelFamily, register_model_family

_SAMPLING = frozenset({"prior", "draws", "tune", "chains", "seed"})

for _family in (
        ModelFamily(name="linear", kinds=("fixed", "random", "marginal"),
                    options=_SAMPLING | {"prevalence"}),
        ModelFamily(name="multikernel", kinds=("marginal-dense",), options=_SAMPLING),
        ModelFamily(name="multitrait", kinds=("multitrait",), traits=(2,),
                    nuts_defaults={"adaptation": "low_rank"},
                    options=_SAMPLING | {"lkj_eta"}),
        ModelFamily(name="threshold", kinds=("threshold",),
                    options=_SAMPLING | {"prevalence", "link"}),
        # No PyMC model: discrete indicators, sampled by collapsed Gibbs (bayes/sparse/).
        ModelFamily(name="bayesc", kinds=("bayesc",), options=_SAMPLING),
        ModelFamily(name="bayesr", kinds=("bayesr",), options=_SAMPLING),
        ModelFamily(name="bslmm", kinds=("bslmm",), options=_SAMPLING)):
    register_model_family(_family)
