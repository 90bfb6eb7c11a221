"""Multi-trait REML/ML fits: one-trait equivalence, dense brute force, GEMMA's mvLMM."""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

import bayeslmm
from bayeslmm.estimation.multitrait import multitrait_ml, multitrait_reml

from helpers import simulate, simulate_two
from peers import require_tool, run


@pytest.fixture(scope="module")
def two():
    return simulate_two()


@pytest.fixture(scope="module")
def fit2(two):
    Y, K, X, _ = two
    return multitrait_reml(Y, K, X)


@pytest.mark.parametrize("restricted", [True, False])
def test_one_trait_reproduces_reml(restricted):
    y, K, X, *_ = simulate(N=150, P=300, h2=0.5, seed=3)
    one = (bayeslmm.reml if restricted else bayeslmm.ml)(y, K, X)
    multi = (multitrait_reml if restricted else multitrait_ml)(y[:, None], K, X)
    assert multi.loglik == pytest.approx(one.loglik, abs=1e-8)
    assert multi.Sigma_g.values[0, 0] == pytest.approx(one.sigma_g2, rel=1e-5)
    assert multi.Sigma_e.values[0, 0] == pytest.approx(one.sigma_e2, rel=1e-5)
    assert multi.h2 == pytest.approx(one.h2, abs=1e-6)
    np.testing.assert_allclose(multi.B.values[0], one.beta.values, rtol=1e-6)
    # SEs differ by design: ours invert the observed information (GEMMA's choice), checked
    # against a dense Hessian below; bayeslmm.reml inverts the AI matrix (GCTA's).


def _dense_hessian(Y, X, K, Sg, Se, reml=True):
    """GEMMA's Hessian 1/2 tr(P V_j P V_k) - y'P V_j P V_k P y, formed densely (NT x NT)."""
    N, T = Y.shape
    V = np.kron(Sg, K) + np.kron(Se, np.eye(N))
    XT = np.kron(np.eye(T), X)
    Vi = linalg.inv(V)
    P = Vi - Vi @ XT @ np.linalg.solve(XT.T @ Vi @ XT, XT.T @ Vi) if reml else Vi
    y = Y.T.reshape(-1)
    r = y if reml else y - XT @ np.linalg.solve(XT.T @ Vi @ XT, XT.T @ Vi @ y)
    Py = P @ r
    dV = []
    for A in (K, np.eye(N)):
        for a, b in [(0, 0), (1, 1), (0, 1)]:
            E = np.zeros((T, T))
            E[a, b] = E[b, a] = 1.0
            dV.append(np.kron(E, A))
    H = np.array([[0.5 * np.trace(P @ Dj @ P @ Dk) - Py @ Dj @ P @ Dk @ Py for Dk in dV]
                  for Dj in dV])
    return H


def test_observed_information_equals_dense_hessian(two):
    Y, K, X, _ = two
    Y, K, X = Y[:80], K[:80, :80], X[:80]
    fit = multitrait_reml(Y, K, X, tests=False)
    H = _dense_hessian(Y, X, K, fit.Sigma_g.values, fit.Sigma_e.values)
    np.testing.assert_allclose(fit.information, -H, rtol=1e-5, atol=1e-6 * np.abs(H).max())


def test_fit_is_the_maximum_and_matches_dense(fit2, two):
    Y, K, X, _ = two
    from bayeslmm.likelihood.multitrait import dense_multitrait_loglik

    Sg, Se = fit2.Sigma_g.values, fit2.Sigma_e.values
    assert fit2.loglik == pytest.approx(dense_multitrait_loglik(Y, X, K, Sg, Se), rel=1e-10)
    rng = np.random.default_rng(1)
    for _ in range(5):  # any small PSD perturbation lowers the likelihood
        A = 0.03 * rng.standard_normal((2, 2))
        assert fit2.model.loglik(Sg + A @ A.T, Se) <= fit2.loglik + 1e-9
        assert fit2.model.loglik(Sg, Se + A @ A.T) <= fit2.loglik + 1e-9
    assert fit2.converged


def test_results_vocabulary(fit2):
    assert list(fit2.params.index) == ["Vg_1", "Vg_2", "Cg_12", "Ve_1", "Ve_2", "Ce_12"]
    assert fit2.llf == fit2.loglik and fit2.nobs == 200
    ci = fit2.conf_int()
    assert (ci["lower"] < fit2.params).all() and (fit2.params < ci["upper"]).all()
    np.testing.assert_allclose(fit2.bse.values ** 2, np.diag(fit2.cov_params().values))
    table = fit2.summary()
    assert {"h2_1", "h2_2", "rg_12", "re_12"} <= set(table.index)
    Sg = fit2.Sigma_g.values
    assert fit2.r_g == pytest.approx(Sg[0, 1] / np.sqrt(Sg[0, 0] * Sg[1, 1]))
    assert 0 < fit2.r_g_se < 1
    assert "profile-likelihood" in repr(fit2)


def test_delta_method_matches_numerical_jacobian(fit2):
    cov = fit2.cov_params().values
    p0 = fit2.params.values

    def rg(p):
        return p[2] / np.sqrt(p[0] * p[1])

    J = np.array([(rg(p0 + h) - rg(p0 - h)) / (2e-7) for h in np.eye(6) * 1e-7])
    assert fit2.r_g_se == pytest.approx(np.sqrt(J @ cov @ J), rel=1e-5)


def test_lrt_and_profile_ci_both_directions():
    # Strong shared genetics: r_g = 0 rejected; independent genetics: not rejected.
    Y, K, X, _ = simulate_two(N=300, rg=0.9, h2=(0.7, 0.7), seed=4)
    fit = multitrait_reml(Y, K, X)
    assert fit.tests.loc["r_g=0", "p"] < 1e-3
    lo, hi = fit.rg_ci
    assert lo < fit.r_g <= hi and lo > 0.3
    Y, K, X, _ = simulate_two(N=300, rg=0.0, h2=(0.7, 0.7), seed=5)
    fit0 = multitrait_reml(Y, K, X)
    assert fit0.tests.loc["r_g=0", "p"] > 0.05
    assert fit0.tests.loc["|r_g|=1", "p"] < 1e-3
    lo, hi = fit0.rg_ci
    assert lo < 0 < hi
    # The profile bounds are where the profile drops by chi2_1(0.95)/2 below the maximum.
    from bayeslmm.estimation.multitrait import profile_rg

    Sg, Se = fit0.Sigma_g.values, fit0.Sigma_e.values
    for bound in (lo, hi):
        if abs(bound) < 1:
            drop = fit0.loglik - profile_rg(fit0.model, True, bound, Sg, Se)
            assert drop == pytest.approx(0.5 * 3.8414588, abs=1e-3)
    # LR of r_g = 0 agrees with a direct constrained evaluation (Sigma_g diagonal).
    ll0 = fit0.tests.loc["r_g=0", "loglik_null"]
    assert ll0 <= fit0.loglik
    assert fit0.model.loglik(np.diag(np.diag(Sg)), Se) <= ll0 + 1e-6


def test_blup_and_prediction_equal_dense(two, fit2):
    Y, K, X, _ = two
    Sg, Se, B = fit2.Sigma_g.values, fit2.Sigma_e.values, fit2.B.values
    N = Y.shape[0]
    V = np.kron(Sg, K) + np.kron(Se, np.eye(N))
    r = (Y - X @ B.T).T.reshape(-1)
    g = (np.kron(Sg, K) @ np.linalg.solve(V, r)).reshape(2, N).T
    np.testing.assert_allclose(fit2.blup().values, g, rtol=1e-7, atol=1e-10)
    # Predicting the training samples from their own kernel rows gives the BLUP back.
    np.testing.assert_allclose(fit2.predict(K[:7]).values, g[:7], rtol=1e-7, atol=1e-10)
    Xn = X[:7]
    np.testing.assert_allclose(fit2.predict(K[:7], Xn).values, g[:7] + Xn @ B.T, rtol=1e-7)
    with pytest.raises(bayeslmm.InputError, match="K_new"):
        fit2.predict(K[:7, :5])


def test_blup_low_rank_equals_dense(two):
    Y, K, X, _ = two
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((Y.shape[0], 30))
    dec = bayeslmm.decompose_genotypes(Z)
    fit = multitrait_reml(Y, dec, X, tests=False)
    Kl = dec.kernel()
    Sg, Se, B = fit.Sigma_g.values, fit.Sigma_e.values, fit.B.values
    N = Y.shape[0]
    r = (Y - X @ B.T).T.reshape(-1)
    g = (np.kron(Sg, Kl) @ np.linalg.solve(np.kron(Sg, Kl) + np.kron(Se, np.eye(N)), r))
    np.testing.assert_allclose(fit.blup().values, g.reshape(2, N).T, rtol=1e-6, atol=1e-9)


def test_complete_cases_logged_and_labels_aligned(two, caplog):
    Y, K, X, _ = two
    ids = [f"s{i}" for i in range(Y.shape[0])]
    frame = pd.DataFrame(Y, index=ids, columns=["height", "weight"])
    frame.iloc[3, 0] = np.nan
    frame.iloc[[5, 9], 1] = np.nan
    Kdf = pd.DataFrame(K, index=ids, columns=ids)
    Xdf = pd.DataFrame(X, index=ids, columns=["intercept", "age"])
    with caplog.at_level(logging.INFO, logger="bayeslmm.estimation.multitrait"):
        fit = multitrait_reml(frame.iloc[::-1], Kdf, Xdf, tests=False)
    assert "197 of 200 samples kept; 3 dropped" in caplog.text
    assert "height: 1, weight: 2" in caplog.text
    keep = np.ones(200, bool)
    keep[[3, 5, 9]] = False
    ref = multitrait_reml(Y[keep], K[np.ix_(keep, keep)], X[keep], tests=False)
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-7)
    assert fit.traits == ("height", "weight") and fit.n_dropped == 3
    assert list(fit.B.columns) == ["intercept", "age"]


@pytest.mark.parametrize("bad, match", [
    (lambda Y: Y[:, :1] * 0 + 1, "constant"),
    (lambda Y: np.full_like(Y, np.nan), "only 0 samples"),
    (lambda Y: Y[:10], "10"),
])
def test_bad_input_is_one_clear_error(two, bad, match):
    Y, K, X, _ = two
    with pytest.raises(bayeslmm.InputError, match=match):
        multitrait_reml(bad(Y), K, None, tests=False)


def test_bad_level_and_mismatched_decomposition(two):
    Y, K, X, _ = two
    with pytest.raises(bayeslmm.InputError, match="ci_level"):
        multitrait_reml(Y, K, ci_level=1.5)
    Yn = Y.copy()
    Yn[0, 0] = np.nan
    with pytest.raises(bayeslmm.InputError, match="complete cases"):
        multitrait_reml(Yn, bayeslmm.decompose(K), tests=False)


# ----------------------------------------------------------------------------- peer
def _gemma_mv_log(path):
    """GEMMA's mvLMM log: logL values and the Vg/Ve matrices (lower triangles) with SEs."""
    lines = open(path).read().splitlines()
    out = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if "log-likelihood in the null model" in line:
            out[line.split("log-likelihood")[0].strip("# ").strip()] = float(line.split("=")[1])
        for key in ("REMLE estimate for Vg", "REMLE estimate for Ve", "MLE estimate for Vg",
                    "MLE estimate for Ve"):
            if line.startswith(f"## {key}"):
                est = [list(map(float, lines[i + 1 + k].split())) for k in range(2)]
                se = [list(map(float, lines[i + 4 + k].split())) for k in range(2)]
                out[key] = (est, se)
        i += 1
    return out


@pytest.fixture(scope="module")
def gemma_mv(mouse_dir, gemma_mouse, tmp_path_factory):
    # GEMMA's own -gk 2 kinship, computed once per session (conftest's gemma_mouse; the
    # tests using it share an xdist group, so it runs on one worker).
    gemma = require_tool("gemma")
    out = tmp_path_factory.mktemp("gemma_mv")
    prefix = str(mouse_dir / "mouse_hs1940")
    # One SNP keeps GEMMA's per-SNP tests short; the null model is fitted first regardless.
    bim = pd.read_csv(mouse_dir / "mouse_hs1940.bim", sep=r"\s+", header=None)
    (out / "snps.txt").write_text(str(bim.iloc[0, 1]) + "\n")
    run([gemma, "-bfile", prefix, "-k", str(gemma_mouse["kinship"]), "-lmm", "1", "-n", "1",
         "6", "-snps", str(out / "snps.txt"), "-outdir", str(out), "-o", "mv"], cwd=out)
    return {"kinship": gemma_mouse["kinship"], "log": _gemma_mv_log(out / "mv.log.txt")}


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.xdist_group("gemma_mouse")
@pytest.mark.parametrize("restricted", [True, False])
def test_gemma_mvlmm_null_model(mouse_dir, gemma_mv, restricted):
    fam = pd.read_csv(mouse_dir / "mouse_hs1940.fam", sep=r"\s+", header=None)
    Y = fam[[5, 10]].apply(pd.to_numeric, errors="coerce").to_numpy()
    K = np.loadtxt(gemma_mv["kinship"])
    fit = (multitrait_reml if restricted else multitrait_ml)(Y, K, tests=False)
    assert fit.nobs == 1197
    g = gemma_mv["log"]
    tag = "REMLE" if restricted else "MLE"
    bse = fit.bse
    for comp, S in (("Vg", fit.Sigma_g.values), ("Ve", fit.Sigma_e.values)):
        est, se = g[f"{tag} estimate for {comp}"]
        # GEMMA prints the REML matrices as lower triangles, the ML ones in full.
        theirs = np.array([[est[0][0], est[1][0]], [est[1][0], est[1][-1]]])
        np.testing.assert_allclose(S, theirs, rtol=5e-3)
        c = comp[1]
        ours_se = [bse[f"V{c}_1"], bse[f"C{c}_12"], bse[f"V{c}_2"]]
        np.testing.assert_allclose(ours_se, [se[0][0], se[1][0], se[1][1]], rtol=0.05)
    if restricted:
        assert fit.loglik == pytest.approx(g["REMLE"], abs=0.01)
    else:
        # GEMMA's printed ML log-likelihood (-2866.78) is not the Gaussian log-density of the
        # data at its own printed ML estimates, which is -2867.0745 by a dense NT x NT
        # evaluation (test below); ours is the maximum of that density.
        from bayeslmm.likelihood.multitrait import dense_multitrait_loglik

        keep = np.isfinite(Y).all(axis=1)
        est_g, _ = g["MLE estimate for Vg"]
        est_e, _ = g["MLE estimate for Ve"]
        Sg = np.array([[est_g[0][0], est_g[1][0]], [est_g[1][0], est_g[1][1]]])
        Se = np.array([[est_e[0][0], est_e[1][0]], [est_e[1][0], est_e[1][1]]])
        at_theirs = fit.model.loglik(Sg, Se, reml=False)
        assert fit.loglik >= at_theirs - 1e-6
        assert fit.loglik == pytest.approx(at_theirs, abs=0.01)
        Kc = K[np.ix_(keep, keep)][:300, :300]
        Yc = Y[keep][:300]
        small = multitrait_ml(Yc, Kc, tests=False)
        assert small.model.loglik(Sg, Se, reml=False) == pytest.approx(
            dense_multitrait_loglik(Yc, np.ones((300, 1)), Kc, Sg, Se, reml=False), rel=1e-10)


def test_trait_without_genetic_variance_is_a_result_not_an_error():
    from bayeslmm.reports.hsq import hsq_text

    Y, K, X, _ = simulate_two(N=150, h2=(0.6, 1e-12), rg=0.0, seed=9)
    fit = multitrait_reml(Y, K, X)
    assert np.isfinite(fit.loglik) and fit.converged
    assert fit.rg_ci is None or -1 <= fit.rg_ci[0] <= fit.rg_ci[1] <= 1
    # Without an interval (r_g undefined at Vg = 0) the .hsq is still written, minus its row.
    import dataclasses

    text = hsq_text(dataclasses.replace(fit, rg_ci=None))
    assert text.startswith("Source\tVariance\tSE\n") and text.endswith("\nn\t150\n")


@pytest.mark.parametrize("reml", [True, False])
def test_se_methods_equal_dense_information_matrices(reml):
    """Two traits: the expected (Fisher) and average information equal 1/2 tr(P D_a P D_b)
    and 1/2 y'P D_a P D_b P y with V = Sigma_g (x) K + Sigma_e (x) I formed densely at the
    fit (F from V^-1 for ML), and observed = 2 AI - F (notes 4.3); the default stays
    observed."""
    Y, K, X, _ = simulate_two(N=120, P=240, seed=3)  # an interior fit (r_g 0.67)
    fits = {m: (multitrait_reml if reml else multitrait_ml)(Y, K, X, tests=False, se_method=m)
            for m in ("observed", "ai", "expected")}
    f = fits["observed"]
    assert multitrait_reml(Y, K, X, tests=False).se_method == "observed"
    N, T = Y.shape
    Sg, Se = f.Sigma_g.to_numpy(), f.Sigma_e.to_numpy()
    V = np.kron(Sg, K) + np.kron(Se, np.eye(N))
    Vi = np.linalg.inv(V)
    XT = np.kron(np.eye(T), X)
    # the quadratic part is y'Py with REML's projection P for ML too (beta profiled out);
    # the log-determinant part is log|V| (+ log|X_T'V^-1X_T| for REML)
    P = Vi - Vi @ XT @ np.linalg.solve(XT.T @ Vi @ XT, XT.T @ Vi)
    PF = P if reml else Vi
    E = {(0, 0): np.diag([1.0, 0]), (1, 1): np.diag([0, 1.0]),
         (0, 1): np.array([[0, 1.0], [1, 0]])}
    # params order: Vg_1, Vg_2, Cg_12, Ve_1, Ve_2, Ce_12
    D = [np.kron(E[k], K) for k in ((0, 0), (1, 1), (0, 1))] + \
        [np.kron(E[k], np.eye(N)) for k in ((0, 0), (1, 1), (0, 1))]
    Py = P @ Y.T.reshape(-1)  # vec(Y), trait-major
    F = 0.5 * np.array([[np.trace(PF @ da @ PF @ db) for db in D] for da in D])
    AI = 0.5 * np.array([[Py @ da @ (P @ (db @ Py)) for db in D] for da in D])
    np.testing.assert_allclose(fits["expected"].information, F, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(fits["ai"].information, AI, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(fits["observed"].information, 2 * AI - F, rtol=1e-4, atol=1e-7)
    assert not np.allclose(fits["ai"].bse, fits["observed"].bse, rtol=1e-3)  # they differ
    with pytest.raises(bayeslmm.InputError, match="se_method"):
        multitrait_reml(Y, K, X, tests=False, se_method="hessian")
