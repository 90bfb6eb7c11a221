"""Spectral multi-trait likelihood against a dense NT x NT computation (brute force)."""

import numpy as np
import pytest

import bayeslmm
from bayeslmm.likelihood.multitrait import MultiTraitSpectral, dense_multitrait_loglik


def _random_psd(rng, T, floor=0.0):
    A = rng.standard_normal((T, T))
    return A @ A.T + floor * np.eye(T)


@pytest.fixture(params=["full", "low"])
def case(request, rng):
    N, P = 50, (120 if request.param == "full" else 20)
    Z = rng.standard_normal((N, P))
    dec = bayeslmm.decompose(Z @ Z.T / P) if request.param == "full" else \
        bayeslmm.decompose_genotypes(Z)
    X = np.column_stack([np.ones(N), rng.standard_normal(N), rng.uniform(size=N)])
    return dec, X, rng


@pytest.mark.parametrize("T", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_spectral_equals_dense(case, T, reml):
    dec, X, rng = case
    Y = rng.standard_normal((dec.N, T)) + 5.0
    model = MultiTraitSpectral(dec, Y, X)
    K = dec.kernel()
    for _ in range(3):
        Sg, Se = _random_psd(rng, T), _random_psd(rng, T, 0.05)
        ours = model.loglik(Sg, Se, reml)
        ref = dense_multitrait_loglik(Y, X, K, Sg, Se, reml)
        assert ours == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(case, reml):
    dec, X, rng = case
    T = 2
    Y = rng.standard_normal((dec.N, T))
    model = MultiTraitSpectral(dec, Y, X)
    Sg, Se = _random_psd(rng, T), _random_psd(rng, T, 0.1)
    ev = model.evaluate(Sg, Se, reml)
    h = 1e-6
    for which, G in (("g", ev.grad_g), ("e", ev.grad_e)):
        for a, b in [(0, 0), (0, 1), (1, 1)]:
            E = np.zeros((T, T))
            E[a, b] = E[b, a] = 1.0
            shift = [(Sg + s * h * E, Se) if which == "g" else (Sg, Se + s * h * E)
                     for s in (1, -1)]
            fd = (model.loglik(*shift[0], reml) - model.loglik(*shift[1], reml)) / (2 * h)
            assert np.sum(G * E) == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_one_trait_equals_the_one_trait_likelihood(case):
    dec, X, rng = case
    y = rng.standard_normal(dec.N)
    one = bayeslmm.SpectralLMM(dec, y, X)
    multi = MultiTraitSpectral(dec, y[:, None], X)
    for reml in (True, False):
        assert multi.loglik([[0.7]], [[0.4]], reml) == pytest.approx(
            one.loglik(0.7, 0.4, reml), rel=1e-12)


def test_reml_invariant_to_span_of_X(case):
    dec, X, rng = case
    Y = rng.standard_normal((dec.N, 2))
    Sg, Se = _random_psd(rng, 2), _random_psd(rng, 2, 0.1)
    base = MultiTraitSpectral(dec, Y, X).loglik(Sg, Se)
    shifted = Y + 1e4 * X @ rng.standard_normal((X.shape[1], 2))
    assert MultiTraitSpectral(dec, shifted, X).loglik(Sg, Se) == pytest.approx(base, abs=1e-8)
    # A reparameterised X spans the same space: REML and ML unchanged.
    A = rng.standard_normal((X.shape[1], X.shape[1]))
    for reml in (True, False):
        assert MultiTraitSpectral(dec, Y, X @ A).loglik(Sg, Se, reml) == pytest.approx(
            MultiTraitSpectral(dec, Y, X).loglik(Sg, Se, reml), abs=1e-9)


def test_not_positive_definite_is_minus_infinity(case):
    dec, X, rng = case
    model = MultiTraitSpectral(dec, rng.standard_normal((dec.N, 2)), X)
    assert model.loglik(np.eye(2), -np.eye(2)) == -np.inf
    assert np.isfinite(model.loglik(np.eye(2), np.eye(2)))


def test_shape_mismatch_is_an_input_error(case):
    dec, X, rng = case
    with pytest.raises(bayeslmm.InputError, match="same number of samples"):
        MultiTraitSpectral(dec, rng.standard_normal((dec.N - 1, 2)), X)
