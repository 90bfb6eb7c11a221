"""Variance-component fits: closed forms, brute force, boundaries, algorithms, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import bayeslmm
from bayeslmm.errors import CollinearityError, ConvergenceWarning, InputError, KernelError
from bayeslmm.likelihood.single import dense_loglik
from bayeslmm.reports.hsq import hsq_text

from helpers import simulate


@pytest.fixture(scope="module")
def small():
    return simulate(N=150, P=300, h2=0.6, seed=11)


def brute_force_reml(y, X, Ks, reml=True):
    """Maximise the dense likelihood over log variances with a generic optimiser."""
    k = len(Ks)

    def f(log_theta):
        t = np.exp(log_theta)
        return -dense_loglik(y, X, Ks, t[:k], t[k], reml)

    best = None
    for start in ([0.0] * (k + 1), [-1.0] * k + [0.5], [0.5] * k + [-1.0]):
        r = optimize.minimize(f, start, method="Nelder-Mead",
                              options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
        if best is None or r.fun < best.fun:
            best = r
    return np.exp(best.x), -best.fun


def test_spectral_reml_equals_brute_force_dense_optimum(small):
    y, K, X, *_ = small
    fit = bayeslmm.reml(y, K, X)
    theta, ll = brute_force_reml(y, X, [K])
    assert fit.loglik >= ll - 1e-9
    np.testing.assert_allclose(fit.sigma2, theta, rtol=1e-5)
    assert fit.h2 == pytest.approx(theta[0] / theta.sum(), abs=1e-6)
    assert fit.converged and fit.boundary is None


def test_ml_equals_brute_force(small):
    y, K, X, *_ = small
    fit = bayeslmm.ml(y, K, X)
    theta, ll = brute_force_reml(y, X, [K], reml=False)
    assert fit.loglik == pytest.approx(ll, abs=1e-8)
    np.testing.assert_allclose(fit.sigma2, theta, rtol=1e-5)


def test_beta_is_gls_and_labelled(small):
    y, K, X, *_ = small
    Xdf = pd.DataFrame(X, columns=["intercept", "sex"])
    fit = bayeslmm.reml(y, K, Xdf)
    V = fit.sigma_g2 * K + fit.sigma_e2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    cov = np.linalg.inv(X.T @ Vi @ X)
    np.testing.assert_allclose(fit.beta.values, cov @ X.T @ Vi @ y, rtol=1e-8)  # (49)
    np.testing.assert_allclose(fit.beta_cov.values, cov, rtol=1e-8)
    assert list(fit.beta.index) == ["intercept", "sex"]
    assert list(fit.estimates().covariate.values) == ["intercept", "sex"]


def test_standard_errors_from_inverse_ai_and_delta_method(small):
    y, K, X, *_ = small
    fit = bayeslmm.reml(y, K, X)
    N = len(y)
    V = fit.sigma_g2 * K + fit.sigma_e2 * np.eye(N)
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    Py = P @ y
    A = [K, np.eye(N)]
    cov = np.linalg.inv(0.5 * np.array([[Py @ a @ P @ b @ Py for b in A] for a in A]))
    np.testing.assert_allclose(fit.cov, cov, rtol=1e-7)
    g, e = fit.sigma2
    grad = np.array([e, -g]) / (g + e) ** 2
    assert fit.h2_se == pytest.approx(np.sqrt(grad @ cov @ grad), rel=1e-7)
    assert fit.Vp_se == pytest.approx(np.sqrt(cov.sum()), rel=1e-7)


def test_lrt_and_profile_ci(small):
    y, K, X, *_ = small
    fit = bayeslmm.reml(y, K, X)
    ols = bayeslmm.ols(y, X)
    ll0 = -0.5 * (len(y) - 2) * (np.log(2 * np.pi * ols.sigma2) + 1)
    assert fit.loglik_null == pytest.approx(ll0, rel=1e-12)
    assert fit.lrt_p == pytest.approx(0.5 * stats.chi2.sf(2 * (fit.loglik - ll0), 1), rel=1e-10)
    lo, hi = fit.h2_ci
    assert lo < fit.h2 < hi
    cut = fit.loglik - 0.5 * stats.chi2.ppf(0.95, 1)
    for h in (lo, hi):
        assert fit.model.profile(h).loglik[0] == pytest.approx(cut, abs=1e-6)


def test_intercept_only_boundary_gives_sample_variance(rng):
    # Notes 4.1: with no genetic signal (h2 estimate on the boundary) REML's residual variance
    # is the sample variance with N - 1.
    N = 200
    y = rng.normal(3.0, 2.0, N)
    Z = rng.standard_normal((N, 400))
    fit = bayeslmm.reml(y, Z @ Z.T / 400)
    if fit.boundary == "h2=0":
        assert fit.sigma_e2 == pytest.approx(np.var(y, ddof=1), rel=1e-10)
        assert fit.sigma_g2 == 0.0
    else:  # an interior optimum still must beat the boundary
        assert fit.loglik >= fit.loglik_null


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_h2_zero_is_flagged_boundary_with_sigma_e2_rss_over_n_minus_m(seed):
    y, K, X, *_ = simulate(N=200, P=400, h2=0.0, seed=seed)
    fit = bayeslmm.reml(y, K, X)
    deriv = (fit.model.profile(1e-6).loglik[0] - fit.model.profile(0.0).loglik[0]) / 1e-6
    if deriv <= 0:  # the likelihood falls away from 0: the optimum is the boundary
        assert fit.boundary == "h2=0" and fit.h2 == 0.0
        assert fit.sigma_e2 == pytest.approx(bayeslmm.ols(y, X).sigma2, rel=1e-10)
        assert fit.lrt == 0.0 and fit.lrt_p == 1.0
        assert fit.h2_ci[0] == 0.0
    else:
        assert fit.boundary is None and fit.h2 > 0


def test_h2_one_is_flagged_boundary(rng):
    N = 100
    Z = rng.standard_normal((N, 300))
    K = Z @ Z.T / 300
    y = np.linalg.cholesky(K) @ rng.standard_normal(N)  # no residual at all
    fit = bayeslmm.reml(y, K)
    assert fit.boundary == "h2=1" and fit.h2 == 1.0


@pytest.mark.parametrize("method", ["ai", "fisher", "em"])
def test_dense_algorithms_agree_with_spectral_on_one_kernel(small, method):
    y, K, X, *_ = small
    spectral = bayeslmm.reml(y, K, X)
    dense = bayeslmm.reml(y, K, X, method=method, tol=1e-11)
    assert dense.converged
    assert dense.h2 == pytest.approx(spectral.h2, abs=1e-6)
    assert dense.loglik == pytest.approx(spectral.loglik, abs=1e-8)
    assert dense.loglik_null == pytest.approx(spectral.loglik_null, rel=1e-12)
    np.testing.assert_allclose(dense.beta.values, spectral.beta.values, rtol=1e-5)


def test_two_kernels_all_algorithms_and_brute_force_agree(rng):
    N = 120
    y, K1, X, *_ = simulate(N=N, P=200, h2=0.4, seed=5)
    groups = np.repeat(np.arange(20), N // 20)
    Zg = (groups[:, None] == np.arange(20)).astype(float)
    K2 = Zg @ Zg.T
    y = y + Zg @ rng.normal(0, 0.6, 20)
    fits = {m: bayeslmm.reml(y, [K1, K2], X, method=m, tol=1e-11, component_names=["grm", "fam"])
            for m in ("ai", "fisher", "em")}
    theta, ll = brute_force_reml(y, X, [K1, K2])
    for m, f in fits.items():
        assert f.converged, m
        np.testing.assert_allclose(f.sigma2, theta, rtol=2e-4, err_msg=m)
        assert f.loglik >= ll - 1e-7
    f = fits["ai"]
    assert f.h2.shape == (2,)
    table = f.summary()
    for row in ("V(grm)", "V(fam)", "V(e)", "Vp", "V(grm)/Vp", "V(fam)/Vp", "Sum of V(G)/Vp"):
        assert row in table.index
    assert table.loc["Sum of V(G)/Vp", "Variance"] == pytest.approx(f.h2.sum())


def test_constrained_keeps_components_non_negative_unconstrained_may_not(rng):
    N = 100
    y, K1, X, *_ = simulate(N=N, P=200, h2=0.0, seed=8)
    Z = rng.standard_normal((N, 150))
    K2 = Z @ Z.T / 150
    con = bayeslmm.reml(y, [K1, K2], X)
    assert np.all(con.sigma2 >= 0)
    unc = bayeslmm.reml(y, [K1, K2], X, constrain=False)
    assert unc.loglik >= con.loglik - 1e-8


def test_non_convergence_is_reported_with_history(small):
    y, K, X, *_ = small
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = bayeslmm.reml(y, K, X, method="em", max_iter=3)
    assert not fit.converged
    assert len(fit.history) == 3 and "loglik" in fit.history


def test_summary_is_laid_out_like_gcta_hsq(small):
    y, K, X, *_ = small
    fit = bayeslmm.reml(y, K, X)
    table = fit.summary()
    assert list(table.index) == ["V(G)", "V(e)", "Vp", "V(G)/Vp", "logL", "logL0", "LRT", "df",
                                 "Pval", "n"]
    assert list(table.columns) == ["Variance", "SE"]
    text = hsq_text(fit)
    assert text.splitlines()[0] == "Source\tVariance\tSE"
    assert text.splitlines()[-1] == f"n\t{len(y)}"


def test_labels_align_kernel_to_phenotype_order(small):
    y, K, X, *_ = small
    ids = [f"s{i}" for i in range(len(y))]
    perm = np.random.default_rng(0).permutation(len(y))
    Kdf = pd.DataFrame(K[np.ix_(perm, perm)], index=np.array(ids)[perm],
                       columns=np.array(ids)[perm])
    fit_lab = bayeslmm.reml(pd.Series(y, index=ids), Kdf, pd.DataFrame(X, index=ids))
    fit = bayeslmm.reml(y, K, X)
    # The argmax of a smooth maximum is only determined to ~sqrt(machine epsilon).
    assert fit_lab.h2 == pytest.approx(fit.h2, abs=1e-7)
    assert fit_lab.loglik == pytest.approx(fit.loglik, abs=1e-9)
    assert list(fit_lab.data.samples[:2]) == ["s0", "s1"]


def test_precomputed_decomposition_is_used_as_is(small):
    y, K, X, *_ = small
    dec = bayeslmm.decompose(K)
    fit = bayeslmm.reml(y, dec, X)
    assert fit.decomposition is dec
    assert fit.h2 == pytest.approx(bayeslmm.reml(y, K, X).h2, abs=1e-12)


def test_bad_input_messages(small):
    y, K, X, *_ = small
    y_nan = y.copy()
    y_nan[5] = np.nan
    with pytest.raises(InputError, match="missing or non-finite.*position 5"):
        bayeslmm.reml(y_nan, K, X)
    with pytest.raises(InputError, match="150 x 150 but y has 149"):
        bayeslmm.reml(y[:-1], K)
    with pytest.raises(CollinearityError, match="'dup'"):
        bayeslmm.reml(y, K, pd.DataFrame({"intercept": 1.0, "x": X[:, 1], "dup": 2 * X[:, 1]}))
    # An indefinite K is fitted on h2 < 1 / (1 - s_min) (tests/test_kernel_remedies.py);
    # refusing it is opt-in.
    with pytest.raises(KernelError, match="not positive semi-definite"):
        bayeslmm.decompose(K - 2 * np.eye(len(y)), indefinite=False)
    with pytest.raises(KernelError, match="not symmetric"):
        Kbad = K.copy()
        Kbad[0, 1] += 0.5
        bayeslmm.reml(y, Kbad)
    with pytest.raises(InputError, match="method must be one of"):
        bayeslmm.reml(y, K, method="newton")


def test_no_warnings_on_a_clean_fit(small):
    y, K, X, *_ = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bayeslmm.reml(y, K, X)


def test_xarray_inputs_carry_labels(small):
    xr = pytest.importorskip("xarray")
    y, K, X, *_ = small
    ids = [f"id{i}" for i in range(len(y))]
    yx = xr.DataArray(y, dims="sample", coords={"sample": ids})
    Kx = xr.DataArray(K, dims=("sample", "sample_"), coords={"sample": ids, "sample_": ids})
    Xx = xr.DataArray(X, dims=("sample", "covariate"),
                      coords={"sample": ids, "covariate": ["mu", "age"]})
    fit = bayeslmm.reml(yx, Kx, Xx)
    assert list(fit.beta.index) == ["mu", "age"]
    assert fit.data.samples[0] == "id0"
    assert fit.h2 == pytest.approx(bayeslmm.reml(y, K, X).h2, abs=1e-7)


def test_a_grm_read_from_files_is_aligned_by_its_labels_and_missing_values_dropped(
        tmp_path, caplog):
    """reml(y, read_grm(prefix)) when the GRM holds more samples than y, in another order,
    and y (labelled) has missing values: the fit equals the one on the matrix subset and
    ordered by hand, and the drop is logged."""
    import logging

    from bayeslmm.datasets import load_demo
    from bayeslmm.genotypes import grm
    from bayeslmm.io import read_grm, read_phenotype, write_grm

    demo = load_demo()
    write_grm(grm(demo.bfile), tmp_path / "k")
    K = read_grm(tmp_path / "k")
    y_all = read_phenotype(demo.pheno)
    rng = np.random.default_rng(3)
    y = y_all.iloc[rng.permutation(len(y_all))[:300]].copy()  # fewer samples, shuffled
    y.iloc[[4, 17, 99]] = np.nan
    with caplog.at_level(logging.INFO, logger="bayeslmm"):
        fit = bayeslmm.reml(y, K)
    kept = y.dropna()
    assert "dropped for a missing phenotype" in caplog.text
    # the reference, aligned by hand: positions of the kept (FID, IID) pairs in the GRM
    pos = {(f, i): j for j, (f, i) in enumerate(zip(K.ids["fid"], K.ids["iid"], strict=True))}
    idx = np.array([pos[t] for t in kept.index])
    ref = bayeslmm.reml(kept.to_numpy(), K.values[np.ix_(idx, idx)])
    assert fit.nobs == len(kept) == ref.nobs
    np.testing.assert_allclose(fit.h2, ref.h2, rtol=1e-10)
    np.testing.assert_allclose(fit.llf, ref.llf, rtol=1e-12)
    # both directions: an unlabelled phenotype with NaN is still refused
    idx_all = np.array([pos[t] for t in y.index])
    with pytest.raises(InputError, match="missing or non-finite"):
        bayeslmm.reml(y.to_numpy(), K.values[np.ix_(idx_all, idx_all)])


@pytest.mark.parametrize("kernels", [1, 2])
def test_observed_information_is_the_hessian_of_the_loglik(kernels):
    """se_method='observed': the inverse negative Hessian of the REML log-likelihood in the
    variances, here by finite differences of the dense likelihood; 'ai' is unchanged (GCTA)
    and 'expected' differs from both (a convention each)."""
    y, K, X, Z = simulate(N=150, h2=0.5, seed=21)[:4]
    Ks = [K] if kernels == 1 else [K, Z[:, :40] @ Z[:, :40].T / 40]
    ai = bayeslmm.reml(y, Ks, X)
    obs = bayeslmm.reml(y, Ks, X, se_method="observed")
    exp_ = bayeslmm.reml(y, Ks, X, se_method="expected")
    np.testing.assert_array_equal(ai.sigma2, obs.sigma2)
    s = obs.sigma2
    k = s.size
    eps = 1e-4 * s.sum()

    def ll(v):
        return dense_loglik(y, X, Ks, v[:-1], v[-1], reml=True)

    H = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * eps, np.eye(k)[j] * eps
            H[i, j] = (ll(s + e_i + e_j) - ll(s + e_i - e_j) - ll(s - e_i + e_j)
                       + ll(s - e_i - e_j)) / (4 * eps**2)
    np.testing.assert_allclose(obs.cov, np.linalg.inv(-H), rtol=1e-4)
    assert obs.se_method == "observed" and ai.se_method == "ai"
    assert not np.allclose(exp_.h2_se, obs.h2_se, rtol=1e-3)
    with pytest.raises(InputError, match="se_method"):
        bayeslmm.reml(y, K, X, se_method="sandwich")
