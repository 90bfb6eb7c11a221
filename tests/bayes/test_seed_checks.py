"""Seeds are checked at the API's door (issue 22): an integer in [0, 2^32 - 1], a
numpy Generator or None; anything else is one InputError before any sampling, on every
sampling path (nutpie with the hand-written density, PyMC's NUTS, the several-kernel
sampler, the empirical-Bayes and prior-sensitivity wrappers, posterior predictive draws)."""

from __future__ import annotations

import numpy as np
import pytest

import bayeslmm
from bayeslmm.bayes import marginal_grm
from bayeslmm.bayes.models.multikernel import marginal_multikernel
from bayeslmm.data import SEED_MAX, check_seed
from bayeslmm.errors import InputError

from helpers import simulate

BAD = [-1, 2**70, SEED_MAX + 1, 1.5, "abc", True, np.int64(-3), [1, 2]]
GOOD = [None, 0, 7, SEED_MAX, np.uint32(SEED_MAX), np.int64(5), np.random.default_rng(1)]


@pytest.fixture(scope="module")
def tiny():
    y, K, *_ = simulate(N=40, P=80, h2=0.4, M=1, seed=0)
    return y, K


@pytest.fixture
def no_sampling(monkeypatch):
    """Any call into a sampler fails the test: the check must come first."""
    import nutpie
    import pymc as pm

    def boom(*a, **k):
        raise AssertionError("a sampler ran before the seed was checked")

    monkeypatch.setattr(nutpie, "sample", boom)
    monkeypatch.setattr(nutpie, "compile_pymc_model", boom)
    monkeypatch.setattr(pm, "sample", boom)


@pytest.mark.parametrize("seed", GOOD, ids=lambda s: type(s).__name__ + (
    "" if isinstance(s, np.random.Generator) else f"={s!r}"))
def test_check_seed_accepts(seed):
    check_seed(seed)  # no error: these are what nutpie, PyMC and numpy take


@pytest.mark.parametrize("seed", BAD, ids=repr)
def test_check_seed_refuses(seed):
    with pytest.raises(InputError, match=r"^seed must be an integer from 0 to 2\^32 - 1"):
        check_seed(seed)


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
@pytest.mark.parametrize("seed", BAD, ids=repr)
def test_sample_refuses_bad_seed_before_sampling(tiny, no_sampling, seed, sampler):
    y, K = tiny
    model = marginal_grm(y, K)
    with pytest.raises(InputError, match="seed must be an integer"):
        bayeslmm.sample(model, draws=5, tune=5, chains=1, seed=seed, sampler=sampler)
    with pytest.raises(InputError, match="seed must be an integer"):
        bayeslmm.sample(model, draws=5, tune=5, chains=1, random_seed=seed, sampler=sampler)


@pytest.mark.parametrize("seed", [-1, 2**70, 1.5, "abc"], ids=repr)
def test_several_kernel_and_wrappers_refuse_bad_seed(tiny, no_sampling, seed):
    y, K = tiny
    two = marginal_multikernel(y, [K, np.diag(np.diag(K)) + 0.5 * K])
    with pytest.raises(InputError, match="seed must be an integer"):
        bayeslmm.sample(two, draws=5, chains=1, seed=seed)
    fit = bayeslmm.reml(y, K)
    from bayeslmm.bayes.empirical_bayes import empirical_bayes
    from bayeslmm.bayes.sensitivity import prior_sensitivity

    with pytest.raises(InputError, match="seed must be an integer"):
        empirical_bayes(fit, draws=5, chains=1, seed=seed)
    with pytest.raises(InputError, match="seed must be an integer"):
        prior_sensitivity(fit, priors={"flat": {"h2": "Beta(1, 1)"}}, draws=5, seed=seed,
                          method="quadrature")


def test_sample_accepts_the_largest_seed_and_repeats(tiny):
    """The accepted direction, through nutpie: seed 2^32 - 1 samples, and the same seed
    gives the same draws (so the seed reaches the sampler unchanged)."""
    y, K = tiny
    model = marginal_grm(y, K)
    a = bayeslmm.sample(model, draws=20, tune=20, chains=1, seed=SEED_MAX, progressbar=False,
                        check=False)
    b = bayeslmm.sample(model, draws=20, tune=20, chains=1, seed=np.uint32(SEED_MAX),
                        progressbar=False, check=False)
    np.testing.assert_array_equal(a["posterior"]["h2"].values, b["posterior"]["h2"].values)
