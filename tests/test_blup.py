"""BLUE / BLUP / PEV / prediction (notes 5.2): closed forms, dense brute force, peers."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeslmm
from bayeslmm.blup import blue, blup, predict, snp_blup

from helpers import simulate
from peers import require_module, require_tool, run


def dense_reference(fit, Ks):
    """g, pev, y-tilde with V, V^-1 and P formed explicitly (O(N^3))."""
    y, X = fit.data.y, fit.data.X
    sig = np.atleast_1d(fit.sigma2[:-1])
    V = fit.sigma_e2 * np.eye(len(y)) + sum(s * K for s, K in zip(sig, Ks, strict=True))
    Vi = np.linalg.inv(V)
    C = np.linalg.inv(X.T @ Vi @ X)
    beta = C @ X.T @ Vi @ y
    P = Vi - Vi @ X @ C @ X.T @ Vi
    G = sum(s * K for s, K in zip(sig, Ks, strict=True))
    g = G @ Vi @ (y - X @ beta)
    pev = np.diag(G - G @ P @ G)
    return {"beta": beta, "g": g, "pev": pev, "ytilde": fit.sigma_e2 * Vi @ (y - X @ beta),
            "gk": [s * K @ P @ y for s, K in zip(sig, Ks, strict=True)]}


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def sim_fit():
    y, K, X, Z, g = simulate(N=250, P=400, h2=0.5, M=3, seed=3)
    return bayeslmm.reml(y, K, X), K, Z


# ----------------------------------------------------------------------------- closed forms
def test_blue_blup_pev_equal_dense(sim_fit):
    fit, K, _ = sim_fit
    ref = dense_reference(fit, [K])
    b = blup(fit)
    assert rel(blue(fit).beta, ref["beta"]) < 1e-8
    assert rel(b.g, ref["g"]) < 1e-8
    assert rel(b.pev, ref["pev"]) < 1e-8
    assert rel(b.residual, ref["ytilde"]) < 1e-8
    # PEV lies between 0 and the prior variance; reliability in [0, 1].
    assert np.all(b.pev > 0) and np.all(b.pev < fit.sigma_g2 * np.diag(K))
    assert np.all((b.reliability > 0) & (b.reliability < 1))


def test_blup_residual_identity(sim_fit):
    """(63): y-tilde = sigma_e2 V^-1 (y - X beta) and y - X beta - g-hat = y-tilde."""
    fit, K, _ = sim_fit
    b = blup(fit)
    r = fit.data.y - fit.data.X @ fit.beta.values
    Vi_r = fit.model.apply_Vinv(r, fit.sigma_g2, fit.sigma_e2)
    assert rel(b.residual, fit.sigma_e2 * Vi_r) < 1e-10
    assert rel(r - b.g.values, b.residual) < 1e-10
    assert rel(b.fitted + b.residual, fit.data.y) < 1e-12


def test_kernel_and_snp_views_agree(sim_fit):
    """Z b-hat (ridge, eq. 59, lambda = P sigma_e2 / sigma_g2) equals the kernel BLUP (62)."""
    fit, K, Z = sim_fit
    b_ridge = snp_blup(fit, Z, ridge=True)
    b_dual = snp_blup(fit, Z)
    g = blup(fit).g.values
    assert b_ridge.attrs["ridge_lambda"] == pytest.approx(Z.shape[1] * fit.sigma_e2
                                                          / fit.sigma_g2)
    assert rel(Z @ b_ridge.values, g) < 1e-8
    assert rel(b_dual, b_ridge) < 1e-8
    ds = blup(fit, Z=Z)
    assert ds.b.sizes["variant"] == Z.shape[1]


def test_snp_view_checks_the_kernel(sim_fit):
    fit, K, Z = sim_fit
    with pytest.raises(bayeslmm.InputError, match="does not reproduce"):
        snp_blup(fit, 2 * Z)


def test_predict_training_sample_reproduces_blup(sim_fit):
    fit, K, Z = sim_fit
    b = blup(fit)
    X = fit.data.X
    pk = predict(fit, K[:7], X[:7])
    assert rel(pk.g, b.g[:7]) < 1e-10
    assert rel(pk.y_hat, b.fitted[:7]) < 1e-10
    pz = predict(fit, Z_new=Z[:7], Z=Z, X_new=X[:7])
    assert rel(pz.g, b.g[:7]) < 1e-8
    with pytest.raises(bayeslmm.InputError, match="X_new is needed"):
        predict(fit, K[:7])


def test_predict_new_samples_kernel_equals_snp_view():
    y, K, X, Z, g = simulate(N=300, P=500, h2=0.6, M=1, seed=5)
    tr, te = np.arange(240), np.arange(240, 300)
    fit = bayeslmm.reml(y[tr], K[np.ix_(tr, tr)])
    pk = predict(fit, K[np.ix_(te, tr)])
    pz = predict(fit, Z_new=Z[te], Z=Z[tr])
    assert rel(pk.g, pz.g) < 1e-8
    assert np.corrcoef(pk.g, g[te])[0, 1] > 0.2


def test_labelled_alignment(sim_fit):
    """Labelled cross-kernel columns are aligned to the fit's samples by name."""
    y, K, X, Z, g = simulate(N=120, P=200, seed=8, M=1)
    names = [f"s{i}" for i in range(120)]
    fit = bayeslmm.reml(pd.Series(y, index=names), pd.DataFrame(K, names, names))
    b = blup(fit)
    assert list(b.sample.values[:2]) == ["s0", "s1"]
    perm = np.random.default_rng(0).permutation(120)
    Knew = pd.DataFrame(K[:5][:, perm], index=[f"n{i}" for i in range(5)],
                        columns=[names[i] for i in perm])
    p = predict(fit, Knew)
    assert list(p.sample.values) == [f"n{i}" for i in range(5)]
    assert rel(p.g, b.g[:5]) < 1e-10


def test_low_rank_kernel():
    """K = ZZ'/P with P < N: the economic decomposition's complement path."""
    y, K, X, Z, g = simulate(N=300, P=60, h2=0.5, M=2, seed=11)
    dec = bayeslmm.decompose_genotypes(Z)
    fit = bayeslmm.reml(y, dec, X)
    assert not fit.decomposition.full_rank
    ref = dense_reference(fit, [K])
    b = blup(fit, Z=Z, ridge=True)
    assert rel(b.g, ref["g"]) < 1e-8
    assert rel(b.pev, ref["pev"]) < 1e-7
    assert rel(b.residual, ref["ytilde"]) < 1e-8
    assert rel(Z @ b.b.values, b.g) < 1e-8


def test_several_kernels_dense():
    y, K1, X, Z, g = simulate(N=200, P=300, h2=0.4, M=2, seed=4)
    rng = np.random.default_rng(4)
    groups = rng.integers(0, 20, 200)
    K2 = (groups[:, None] == groups[None, :]).astype(float)
    y = y + rng.normal(0, 0.6, 20)[groups]
    fit = bayeslmm.reml(y, [K1, K2], X)
    assert fit.decomposition is None
    ref = dense_reference(fit, [K1, K2])
    b = blup(fit)
    assert b.g_component.sizes["component"] == 2
    assert rel(b.g, ref["g"]) < 1e-8
    for k in range(2):
        assert rel(b.g_component[:, k], ref["gk"][k]) < 1e-8
    assert rel(b.pev, ref["pev"]) < 1e-8
    assert rel(b.residual, ref["ytilde"]) < 1e-8
    assert rel(fit.data.y - fit.data.X @ fit.beta.values - b.g, b.residual) < 1e-10
    p = predict(fit, [K1[:4], K2[:4]], X[:4])
    assert rel(p.g, b.g[:4]) < 1e-10


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), N=st.integers(20, 60), P=st.integers(5, 80),
       M=st.integers(1, 3))
def test_property_two_views_agree(seed, N, P, M):
    """For any data, Z (Z'Z + lambda I)^-1 Z'r == sigma_g2 K V^-1 r (Woodbury, eq. 62)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.standard_normal((N, M - 1))])
    y = X @ rng.standard_normal(M) + Z @ rng.normal(0, 0.1, P) + rng.standard_normal(N)
    fit = bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X)
    if fit.sigma_g2 <= 1e-8 * fit.Vp:
        return  # h2 = 0 on the boundary: b = 0 trivially
    b = snp_blup(fit, Z, ridge=True)
    ref = dense_reference(fit, [K])["g"]
    assert np.allclose(Z @ b.values, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())


# ----------------------------------------------------------------------------- peers
def _sleepstudy(tmp_path):
    rscript = require_tool("Rscript")
    code = (
        "suppressMessages(library(lme4)); data(sleepstudy);"
        f"write.csv(sleepstudy, '{tmp_path}/sleep.csv', row.names=FALSE);"
        "m <- lmer(Reaction ~ Days + (1|Subject), sleepstudy, REML=TRUE,"
        " control=lmerControl(optimizer='bobyqa', optCtrl=list(rhobeg=1e-3, rhoend=1e-12)));"
        "re <- ranef(m, condVar=TRUE)$Subject;"
        "write.csv(data.frame(Subject=rownames(re), u=re[[1]],"
        " condvar=as.numeric(attr(re, 'postVar'))),"
        f" '{tmp_path}/ranef.csv', row.names=FALSE);"
        "vc <- as.data.frame(VarCorr(m));"
        f"write.csv(data.frame(s=vc$vcov, b=c(fixef(m))), '{tmp_path}/vc.csv', row.names=FALSE)"
    )
    run([rscript, "-e", code], cwd=tmp_path)
    data = pd.read_csv(tmp_path / "sleep.csv")
    ranef = pd.read_csv(tmp_path / "ranef.csv")
    vc = pd.read_csv(tmp_path / "vc.csv")
    return data, ranef, vc


@pytest.mark.peer
def test_random_intercept_blups_match_lme4(tmp_path):
    """Reaction ~ Days + (1|Subject) on lme4's sleepstudy: K = ZZ' (Z = subject indicators).

    g-hat = sigma_g2 ZZ' P y = Z u-hat, so every observation of a subject carries that
    subject's conditional mode u-hat (lme4's ranef).
    """
    data, ranef, vc = _sleepstudy(tmp_path)
    subj = data["Subject"].astype(str).to_numpy()
    Zg = (subj[:, None] == ranef["Subject"].astype(str).to_numpy()[None, :]).astype(float)
    X = np.column_stack([np.ones(len(data)), data["Days"].to_numpy(float)])
    fit = bayeslmm.reml(data["Reaction"].to_numpy(float), Zg @ Zg.T, X)
    assert fit.sigma2 == pytest.approx(vc["s"].to_numpy(), rel=1e-5)
    assert fit.beta.values == pytest.approx(vc["b"].to_numpy(), rel=1e-6)
    g = blup(fit).g.values
    u_ours = np.linalg.lstsq(Zg, g, rcond=None)[0]  # per-subject value of g
    assert rel(u_ours, ranef["u"]) < 1e-4
    assert np.allclose(Zg @ u_ours, g, atol=1e-9)


@pytest.mark.peer
def test_random_intercept_blups_match_statsmodels(tmp_path):
    sm = require_module("statsmodels.formula.api")
    data, ranef, _ = _sleepstudy(tmp_path)
    import statsmodels.formula.api as smf

    assert sm is not None
    m = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"]).fit(reml=True)
    re = pd.Series({str(k): float(v.iloc[0]) for k, v in m.random_effects.items()})
    subj = data["Subject"].astype(str).to_numpy()
    levels = re.index.to_numpy()
    Zg = (subj[:, None] == levels[None, :]).astype(float)
    X = np.column_stack([np.ones(len(data)), data["Days"].to_numpy(float)])
    fit = bayeslmm.reml(data["Reaction"].to_numpy(float), Zg @ Zg.T, X)
    u_ours = np.linalg.lstsq(Zg, blup(fit).g.values, rcond=None)[0]
    # statsmodels' optimiser stops earlier than lme4's / ours: agreement to ~1e-3.
    assert rel(u_ours, re.values) < 1e-3


def test_blup_result_layout(sim_fit):
    fit, K, Z = sim_fit
    b = blup(fit)
    assert isinstance(b, xr.Dataset)
    assert set(["g", "pev", "residual", "reliability", "fitted"]) <= set(b.data_vars)
    df = b.to_dataframe()
    assert len(df) == fit.N
    buf = io.StringIO()
    df.to_csv(buf)
