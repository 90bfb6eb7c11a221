"""The shared decomposition: eigen and thin-SVD forms, PSD checks."""

import numpy as np
import pytest

import bayeslmm
from bayeslmm.covariance.structures import SpectralCovariance
from bayeslmm.errors import KernelError


def test_decomposition_rebuilds_kernel(sim):
    _, K, *_ = sim
    dec = bayeslmm.decompose(K)
    np.testing.assert_allclose(dec.kernel(), K, atol=1e-10)
    # Centred genotypes are orthogonal to the ones vector: a GRM has rank N - 1.
    assert dec.rank == K.shape[0] - 1 and not dec.full_rank
    np.testing.assert_allclose(dec.U.T @ dec.U, np.eye(dec.rank), atol=1e-10)


def test_low_rank_svd_equals_eigen_on_the_nonzero_part(rng):
    N, P = 60, 20
    Z = rng.standard_normal((N, P))
    dec_svd = bayeslmm.decompose_genotypes(Z)
    dec_eig = bayeslmm.decompose(Z @ Z.T / P)
    assert dec_svd.rank == dec_eig.rank == P
    np.testing.assert_allclose(dec_svd.S, dec_eig.S, rtol=1e-10)
    np.testing.assert_allclose(dec_svd.kernel(), Z @ Z.T / P, atol=1e-12)


def test_gram_includes_the_complement(rng):
    N, P = 50, 10
    Z = rng.standard_normal((N, P))
    dec = bayeslmm.decompose_genotypes(Z)
    a, b = rng.standard_normal((N, 3)), rng.standard_normal(N)
    sg, se = 0.7, 0.4
    V = sg * Z @ Z.T / P + se * np.eye(N)
    w = 1 / (sg * dec.S + se)
    cov = SpectralCovariance(dec)
    got = cov.rotate(a).gram(w, 1 / se, cov.rotate(b))
    np.testing.assert_allclose(got, a.T @ np.linalg.solve(V, b), rtol=1e-10)


@pytest.mark.parametrize(
    "K, message",
    [
        (np.array([[1.0, 0.5], [0.4, 1.0]]), "not symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "not positive semi-definite"),
        (np.ones((2, 3)), "square"),
    ],
)
def test_bad_kernels_are_rejected_with_a_reason(K, message):
    with pytest.raises(KernelError, match=message):
        bayeslmm.decompose(K, indefinite=False)  # indefinite K is accepted by default


def test_rounding_negative_eigenvalues_are_clipped(rng):
    Z = rng.standard_normal((30, 5))
    K = Z @ Z.T / 5
    K = K - 1e-13 * np.eye(30)
    dec = bayeslmm.decompose(K)
    assert dec.rank == 5 and np.all(dec.S > 0)


def test_psd_by_cholesky_clears_exactly_what_check_psd_passes_silently():
    """A Cholesky of K + 1e-6 max(diag K) I clears a PSD kernel (GRM, group kernel,
    rounding-level negative eigenvalues) and refuses an indefinite or zero one, which then
    go to check_psd on the spectrum."""
    from bayeslmm.covariance.decomposition import check_psd, psd_by_cholesky

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((60, 40))
    K = Z @ Z.T / 40  # rank 40 < 60: PSD with zero eigenvalues
    g = rng.integers(0, 5, 60)
    groups = (g[:, None] == g[None, :]).astype(float)
    w, U = np.linalg.eigh(K)
    for ok in (K, groups, (U * np.where(w < 1e-8, -1e-12, w)) @ U.T):
        assert psd_by_cholesky(ok, 1e-6)
        check_psd(np.linalg.eigvalsh(ok), 1e-6, "K")  # no error, no warning
    indefinite = (U * np.where(w < 1e-8, -0.05, w)) @ U.T
    assert not psd_by_cholesky(indefinite, 1e-6)
    with pytest.raises(KernelError, match="not positive semi-definite"):
        check_psd(np.linalg.eigvalsh(indefinite), 1e-6, "K")
    assert not psd_by_cholesky(np.zeros((5, 5)), 1e-6)
