"""The covariance layer: spectral and dense V agree with V formed by hand, and REML on the
residual space of X is invariant to what must not matter (issue: y + X c, a y, c K)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayeslmm
from bayeslmm.covariance.structures import (
    Covariates,
    DenseCovariance,
    SpectralCovariance,
    inverse_cholesky,
)
from bayeslmm.likelihood.single import DenseLMM, dense_loglik


def _problem(seed: int, N: int, P: int, M: int):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.1, 0.5, P), size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / np.where(G.std(0) > 0, G.std(0), 1.0)
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N)] + [rng.standard_normal(N) for _ in range(M - 1)])
    y = X @ np.arange(1.0, M + 1) + Z @ rng.normal(0, np.sqrt(0.5 / P), P) \
        + rng.normal(0, np.sqrt(0.5), N)
    return y, K, X, Z


@pytest.mark.parametrize("P", [15, 200])  # low rank (P < N) and full rank minus one
def test_spectral_covariance_equals_v_formed_by_hand(P):
    y, K, X, Z = _problem(1, 60, P, 2)
    sigma2 = (0.7, 0.4)
    V = 0.7 * K + 0.4 * np.eye(60)
    for cov in (SpectralCovariance(bayeslmm.decompose(K)),
                SpectralCovariance(bayeslmm.decompose_genotypes(Z))):
        A = np.random.default_rng(2).standard_normal((60, 3))
        np.testing.assert_allclose(cov.solve(A, sigma2), np.linalg.solve(V, A), rtol=1e-9,
                                   atol=1e-10)
        assert cov.logdet(sigma2) == pytest.approx(np.linalg.slogdet(V)[1], rel=1e-10)
        np.testing.assert_allclose(cov.matrix(sigma2), V, atol=1e-10)
        np.testing.assert_allclose(cov.kernel_diag(), np.diag(K), atol=1e-10)
        np.testing.assert_allclose(cov.kernel_solve_kernel_diag(sigma2, [0.7]),
                                   np.diag(0.49 * K @ np.linalg.solve(V, K)), atol=1e-10)
        xVx, BVx = cov.block_quadratics(A, X, sigma2)
        np.testing.assert_allclose(xVx, np.diag(A.T @ np.linalg.solve(V, A)), rtol=1e-9)
        np.testing.assert_allclose(BVx, X.T @ np.linalg.solve(V, A), rtol=1e-9, atol=1e-9)
        Ui = inverse_cholesky(cov, sigma2)
        np.testing.assert_allclose(Ui @ Ui.T, np.linalg.inv(V), rtol=1e-8, atol=1e-10)


def test_dense_covariance_and_model_equal_the_reference():
    y, K, X, _ = _problem(3, 50, 80, 2)
    K2 = np.kron(np.eye(10), np.ones((5, 5)))  # a group-indicator kernel
    cov = DenseCovariance((K, K2), ("G", "cage"))
    sigma2 = np.array([0.5, 0.2, 0.3])
    V = 0.5 * K + 0.2 * K2 + 0.3 * np.eye(50)
    np.testing.assert_allclose(cov.matrix(sigma2), V)
    np.testing.assert_allclose(cov.solve(y, sigma2), np.linalg.solve(V, y), rtol=1e-9)
    m = DenseLMM(cov, y, X)
    for reml in (True, False):
        ev = m.evaluate(sigma2, reml)
        assert ev["ll"] == pytest.approx(dense_loglik(y, X, [K, K2], sigma2[:2], 0.3, reml),
                                         rel=1e-10)
    # V not positive definite: evaluate says so instead of raising
    assert m.evaluate(np.array([-5.0, 0.0, 0.01])) is None


def test_covariates_qr_round_trip():
    y, _, X, _ = _problem(4, 40, 10, 3)
    c = Covariates.of(X)
    np.testing.assert_allclose(c.Q @ c.R, X, atol=1e-12)
    np.testing.assert_allclose(c.coefficients(y), np.linalg.lstsq(X, y, rcond=None)[0])
    np.testing.assert_allclose(X.T @ c.residualize(y), 0, atol=1e-10)


def _fit_summary(fit):
    return np.array([fit.h2])  # the variance ratio is a function of h2 for a fixed K


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), N=st.integers(25, 60), low_rank=st.booleans(),
       M=st.integers(1, 3), log_offset=st.floats(-2, 6), log_scale=st.floats(-4, 4),
       sign=st.sampled_from([-1.0, 1.0]))
def test_reml_is_invariant_to_span_x_shifts_and_scaling(seed, N, low_rank, M, log_offset,
                                                       log_scale, sign):
    """y + X c (offsets up to 1e6 phenotype SDs) and a y give the same h2, variance ratio and
    log-likelihood differences; beta moves by c and scales by a."""
    y, K, X, Z = _problem(seed, N, N // 3 if low_rank else 3 * N, M)
    dec = bayeslmm.decompose_genotypes(Z) if low_rank else bayeslmm.decompose(K)
    base = bayeslmm.reml(y, dec, X)
    rng = np.random.default_rng(seed + 1)
    c = rng.standard_normal(M) * 10**log_offset * y.std()
    a = sign * 10**log_scale
    shifted = bayeslmm.reml(y + X @ c, dec, X)
    scaled = bayeslmm.reml(a * y, dec, X)
    np.testing.assert_allclose(_fit_summary(shifted), _fit_summary(base), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(_fit_summary(scaled), _fit_summary(base), rtol=1e-8, atol=1e-10)
    # Forming y + X c rounds y at eps |X c| per element: the residual, and with it the
    # log-likelihood, can only agree to about N eps 10^log_offset (1e-8 alone failed at
    # N = 25, offset 1e6: 1.07e-8, with y_r differing by 2e-9 before any fitting).
    assert shifted.loglik == pytest.approx(base.loglik, abs=1e-8 + N * 1e-15 * 10**log_offset)
    # REML's density is of y_r: scaling y by a divides it by |a|^(N - M)
    assert scaled.loglik + (N - M) * np.log(abs(a)) == pytest.approx(base.loglik, abs=1e-8)
    assert shifted.loglik - shifted.loglik_null == pytest.approx(base.loglik - base.loglik_null,
                                                                 abs=1e-8)
    np.testing.assert_allclose(shifted.beta.values - c, base.beta.values,
                               atol=1e-6 * (1 + np.abs(c).max()))
    np.testing.assert_allclose(scaled.beta.values, a * base.beta.values,
                               rtol=1e-6, atol=1e-8 * abs(a) * y.std())


def test_huge_offset_on_the_demo_data_changes_nothing():
    """The issue's report: demo phenotype + 1e4 / 1e5 moved h2 and + 1e6 crashed brentq."""
    from bayeslmm.datasets import load_demo

    y, K = load_demo().phenotype_and_grm()
    base = bayeslmm.reml(y, K)
    # (beyond ~1e8 the stored y + offset itself has lost the phenotype's last digits)
    for off in (1e4, 1e5, 1e6):
        fit = bayeslmm.reml(y + off, K)
        assert fit.h2 == pytest.approx(base.h2, abs=1e-8), off
        assert fit.loglik == pytest.approx(base.loglik, abs=1e-7)
        assert fit.beta.iloc[0] - off == pytest.approx(base.beta.iloc[0], abs=1e-6)


@pytest.mark.parametrize("k", [-6, -3, 3, 6])
def test_rescaling_k_moves_nothing_but_sigma_g2(k):
    y, K, X, _ = _problem(5, 80, 300, 2)
    base = bayeslmm.reml(y, K, X)
    fit = bayeslmm.reml(y, K * 10.0**k, X)
    assert fit.loglik == pytest.approx(base.loglik + 0.0, abs=1e-6)
    assert fit.sigma_e2 == pytest.approx(base.sigma_e2, rel=1e-6)
    assert fit.sigma_g2 * 10.0**k == pytest.approx(base.sigma_g2, rel=1e-6)
    np.testing.assert_allclose(fit.beta.values, base.beta.values, rtol=1e-6)
    assert fit.sigma_g2_se * 10.0**k == pytest.approx(base.sigma_g2_se, rel=1e-5)


def test_assoc_rotation_and_cholesky_strategies_agree():
    y, K, X, Z = _problem(6, 120, 40, 2)
    G = np.random.default_rng(7).binomial(2, 0.3, size=(120, 25)).astype(float)
    for dec in (bayeslmm.decompose(K), bayeslmm.decompose_genotypes(Z)):
        fit = bayeslmm.reml(y, dec, X)
        rot = bayeslmm.assoc(fit, G, "exact", strategy="rotation")
        cho = bayeslmm.assoc(fit, G, "exact", strategy="cholesky")
        np.testing.assert_allclose(rot.chi2.values, cho.chi2.values, rtol=1e-8)
        # against x'Px formed densely from V
        V = fit.sigma_g2 * K + fit.sigma_e2 * np.eye(120)
        Vi = np.linalg.inv(V)
        P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
        Gc = G - G.mean(0)
        chi2 = (Gc.T @ P @ y) ** 2 / np.einsum("ij,ij->j", Gc, P @ Gc)
        np.testing.assert_allclose(rot.chi2.values, chi2, rtol=1e-7)
    with pytest.raises(bayeslmm.InputError, match="strategy"):
        bayeslmm.assoc(fit, G, "exact", strategy="qr")


# ----------------------------------------------------------------------------- alignment
def test_one_alignment_rule_names_what_is_wrong():
    import pandas as pd

    from bayeslmm.errors import AlignmentError

    rng = np.random.default_rng(8)
    ids = [f"s{i}" for i in range(12)]
    y = pd.Series(rng.standard_normal(12), index=ids)
    K = np.eye(12) + 0.1
    # labelled kernel in another order is aligned (both directions of the rule)
    Kdf = pd.DataFrame(K, index=ids, columns=ids)
    perm = rng.permutation(12)
    fit = bayeslmm.reml(y, Kdf)
    fit_p = bayeslmm.reml(y.iloc[perm], Kdf)
    assert fit_p.loglik == pytest.approx(fit.loglik, abs=1e-9)
    with pytest.raises(AlignmentError, match="duplicated sample IDs"):
        bayeslmm.reml(pd.Series(y.values, index=ids[:-1] + ["s0"]), K)
    with pytest.raises(AlignmentError, match="row and column sample labels disagree"):
        bayeslmm.reml(y, pd.DataFrame(K, index=ids, columns=ids[::-1]))
    with pytest.raises(AlignmentError, match="lacks 1 of the 12"):
        bayeslmm.reml(y, Kdf.drop(index="s3", columns="s3").reindex(
            index=ids[:3] + ids[4:] + ["zz"], columns=ids[:3] + ids[4:] + ["zz"]).fillna(0))
    pairs = pd.MultiIndex.from_tuples([("a b", "c"), ("a", "b c"), ("x", "y")])
    with pytest.raises(AlignmentError, match="whitespace"):
        bayeslmm.reml(pd.Series([1.0, 2.0, 0.5], index=pairs), np.eye(3))


def test_genotypes_must_be_allele_counts():
    y, K, X, _ = _problem(9, 40, 100, 1)
    fit = bayeslmm.reml(y, K)
    G = np.random.default_rng(1).binomial(2, 0.3, size=(40, 5)).astype(float)
    G[1, 1] = np.nan
    assert np.isfinite(bayeslmm.assoc(fit, G).chi2.values).all()  # missing is fine
    G[3, 2] = 3.0
    with pytest.raises(bayeslmm.InputError, match="first 3.0 at sample '3', SNP"):
        bayeslmm.assoc(fit, G)
