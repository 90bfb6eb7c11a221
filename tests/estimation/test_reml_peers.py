"""REML / ML against tools we did not write: glimix-core, GEMMA, lme4, statsmodels."""

import shutil

import numpy as np
import pandas as pd
import pytest

import bayeslmm

from helpers import gemma_log_values, gemma_se_pve, simulate
from peers import require_module, require_tool, run

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("restricted", [True, False])
@pytest.mark.parametrize("h2", [0.2, 0.7])
def test_glimix_core_reml_and_ml(restricted, h2):
    lmm_mod = require_module("glimix_core.lmm")
    economic_qs = require_module("numpy_sugar.linalg").economic_qs
    y, K, X, *_ = simulate(N=250, P=500, h2=h2, seed=int(h2 * 10))
    theirs = lmm_mod.LMM(y, X, economic_qs(K), restricted=restricted)
    theirs.fit(verbose=False)
    ours = (bayeslmm.reml if restricted else bayeslmm.ml)(y, K, X)
    assert ours.h2 == pytest.approx(theirs.v0 / (theirs.v0 + theirs.v1), abs=1e-5)
    assert ours.sigma_g2 == pytest.approx(theirs.v0, rel=1e-4)
    assert ours.sigma_e2 == pytest.approx(theirs.v1, rel=1e-4)
    # Same complete log-likelihood, constants included.
    assert ours.loglik == pytest.approx(theirs.lml(), abs=1e-6)
    np.testing.assert_allclose(ours.beta.values, theirs.beta, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.xdist_group("gemma_mouse")
def test_gemma_null_model_reml_on_mouse_data(mouse_dir, gemma_mouse):
    """GEMMA -lmm 1 on the gemma-doc mouse data, with GEMMA's own -gk 2 kinship given to us."""
    fam = pd.read_csv(mouse_dir / "mouse_hs1940.fam", sep=r"\s+", header=None)
    pheno = pd.to_numeric(fam[5], errors="coerce")
    keep = pheno.notna().to_numpy()
    K = np.loadtxt(gemma_mouse["kinship"])[np.ix_(keep, keep)]
    fit = bayeslmm.reml(pheno[keep].to_numpy(), K)
    g = gemma_log_values(gemma_mouse["log"])
    assert g["number of analyzed individuals"] == keep.sum() == fit.N
    assert fit.sigma_g2 == pytest.approx(g["vg estimate in the null model"], rel=1e-3)
    assert fit.sigma_e2 == pytest.approx(g["ve estimate in the null model"], rel=1e-3)
    assert fit.h2 == pytest.approx(g["pve estimate in the null model"], abs=2e-4)
    assert fit.h2_se == pytest.approx(g["se(pve) in the null model"], rel=0.02)
    # GEMMA prints the REML log-likelihood with the same constants, to 6 digits.
    assert fit.loglik == pytest.approx(g["REMLE log-likelihood in the null model"], abs=0.01)
    # GEMMA's se(pve) is the observed information's (the Hessian of the REML log-likelihood
    # in lambda, delta method), which se_method="observed" gives; GCTA's AI is 2% off here.
    obs = bayeslmm.reml(pheno[keep].to_numpy(), K, se_method="observed")
    assert gemma_se_pve(obs, K) == pytest.approx(g["se(pve) in the null model"], rel=1e-3)


@pytest.fixture(scope="module")
def sleepstudy(tmp_path_factory):
    """lme4's sleepstudy data and lme4's REML and ML fits of Reaction ~ Days + (1|Subject)."""
    rscript = require_tool("Rscript")
    out = tmp_path_factory.mktemp("lme4")
    code = """
    suppressMessages(library(lme4)); data(sleepstudy)
    write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
    fits <- list(reml = lmer(Reaction ~ Days + (1|Subject), sleepstudy, REML = TRUE))
    fits$ml <- update(fits$reml, REML = FALSE)
    rows <- lapply(names(fits), function(k) { m <- fits[[k]]; vc <- as.data.frame(VarCorr(m))
      data.frame(fit = k, sigma_g2 = vc$vcov[1], sigma_e2 = vc$vcov[2], b0 = fixef(m)[1],
                 b1 = fixef(m)[2], se0 = sqrt(vcov(m)[1, 1]), se1 = sqrt(vcov(m)[2, 2]),
                 loglik = as.numeric(logLik(m))) })
    write.csv(do.call(rbind, rows), "lme4.csv", row.names = FALSE)
    write.csv(data.frame(Subject = rownames(ranef(fits$reml)$Subject),
                         b = ranef(fits$reml)$Subject[, 1]), "ranef.csv", row.names = FALSE)
    """
    run([rscript, "-e", code], cwd=out)
    data = pd.read_csv(out / "sleepstudy.csv")
    return data, pd.read_csv(out / "lme4.csv").set_index("fit"), pd.read_csv(out / "ranef.csv")


@pytest.mark.parametrize("kind", ["reml", "ml"])
def test_lme4_random_intercept(sleepstudy, kind):
    data, lme4, _ = sleepstudy
    Z = pd.get_dummies(data["Subject"]).to_numpy(dtype=float)
    X = pd.DataFrame({"(Intercept)": 1.0, "Days": data["Days"].astype(float)})
    fit = (bayeslmm.reml if kind == "reml" else bayeslmm.ml)(data["Reaction"], Z @ Z.T, X)
    ref = lme4.loc[kind]
    assert fit.sigma_g2 == pytest.approx(ref.sigma_g2, rel=1e-5)
    assert fit.sigma_e2 == pytest.approx(ref.sigma_e2, rel=1e-5)
    np.testing.assert_allclose(fit.beta.values, [ref.b0, ref.b1], rtol=1e-6)
    np.testing.assert_allclose(fit.beta_se.values, [ref.se0, ref.se1], rtol=1e-5)
    # lme4's REML log-likelihood leaves out the +1/2 log|X'X| term of notes 4.3.2.
    offset = 0.5 * np.linalg.slogdet(X.T @ X)[1] if kind == "reml" else 0.0
    assert fit.loglik - offset == pytest.approx(ref.loglik, abs=1e-4)


def test_statsmodels_mixedlm_random_intercept(rng):
    sm = require_module("statsmodels.api")
    n_groups, per = 40, 6
    groups = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=groups.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, n_groups)[groups] + rng.normal(0, 1.0, groups.size)
    X = np.column_stack([np.ones_like(x), x])
    Z = (groups[:, None] == np.arange(n_groups)).astype(float)
    ours = bayeslmm.reml(y, Z @ Z.T, X)
    theirs = sm.MixedLM(y, X, groups).fit(reml=True)
    assert ours.sigma_g2 == pytest.approx(float(np.asarray(theirs.cov_re)[0, 0]), rel=1e-4)
    assert ours.sigma_e2 == pytest.approx(theirs.scale, rel=1e-4)
    np.testing.assert_allclose(ours.beta.values, theirs.fe_params, rtol=1e-5)


def test_peer_helpers_fail_when_required(monkeypatch):
    # The switch CI relies on: with BAYESLMM_REQUIRE_PEERS a missing peer is a failure.
    import peers

    monkeypatch.setenv("BAYESLMM_REQUIRE_PEERS", "1")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception):
        peers.require_tool("gemma")


def test_results_speak_statsmodels_vocabulary(rng):
    """params / bse / cov_params() / conf_int() / pvalues / llf / nobs mean what they mean in
    statsmodels: fixed effects agree with MixedLM's, OLS with OLS's."""
    sm = require_module("statsmodels.api")
    n_groups, per = 30, 5
    groups = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=groups.size)
    y = 2 + 0.3 * x + rng.normal(0, 0.7, n_groups)[groups] + rng.normal(0, 1.0, groups.size)
    X = pd.DataFrame({"const": 1.0, "x": x})
    Z = (groups[:, None] == np.arange(n_groups)).astype(float)
    ours = bayeslmm.reml(y, Z @ Z.T, X, component_names=["Group"])
    theirs = sm.MixedLM(y, X, groups).fit(reml=True)
    assert list(ours.params.index) == ["const", "x", "Group Var", "Residual Var"]
    np.testing.assert_allclose(ours.fe_params.values, theirs.fe_params.values, rtol=1e-5)
    np.testing.assert_allclose(ours.bse[["const", "x"]].values, theirs.bse_fe.values, rtol=1e-3)
    np.testing.assert_allclose(ours.pvalues[["const", "x"]].values,
                               theirs.pvalues[["const", "x"]].values, rtol=1e-2, atol=1e-12)
    assert np.isnan(ours.pvalues["Group Var"])  # a boundary null: use the LRT
    ci = ours.conf_int()
    np.testing.assert_allclose(ci.loc[["const", "x"]].values,
                               theirs.conf_int().loc[["const", "x"]].values, rtol=1e-3)
    C = ours.cov_params()
    np.testing.assert_allclose(np.sqrt(np.diag(C.values)), ours.bse.values)
    assert ours.nobs == theirs.nobs == y.size and ours.llf == ours.loglik
    ols_ours = bayeslmm.ols(y, X)
    ols_theirs = sm.OLS(y, X).fit()
    np.testing.assert_allclose(ols_ours.cov_params().values, ols_theirs.cov_params().values,
                               rtol=1e-10)
    assert ols_ours.llf == pytest.approx(ols_theirs.llf, rel=1e-12)
    assert ols_ours.nobs == ols_theirs.nobs
@pytest.mark.slow
def test_gemma_pve_convention_with_centred_kinship(mouse_dir, tmp_path):
    """GEMMA's pve scales h2 by the kinship's mean diagonal: with its centred kinship
    (-gk 1, mean diagonal != 1) our ``pve_gemma`` is GEMMA's pve and ``h2`` is not."""
    gemma = require_tool("gemma")
    prefix = str(mouse_dir / "mouse_hs1940")
    snp = pd.read_csv(mouse_dir / "mouse_hs1940.bim", sep=r"\s+", header=None, nrows=1)[1]
    (tmp_path / "one.snp").write_text(snp.iloc[0] + "\n")
    run([gemma, "-bfile", prefix, "-gk", "1", "-outdir", str(tmp_path), "-o", "c"],
        cwd=tmp_path)
    run([gemma, "-bfile", prefix, "-k", str(tmp_path / "c.cXX.txt"), "-lmm", "1", "-n", "1",
         "-snps", str(tmp_path / "one.snp"), "-outdir", str(tmp_path), "-o", "l"],
        cwd=tmp_path)
    g = gemma_log_values(tmp_path / "l.log.txt")
    fam = pd.read_csv(mouse_dir / "mouse_hs1940.fam", sep=r"\s+", header=None)
    pheno = pd.to_numeric(fam[5], errors="coerce")
    keep = pheno.notna().to_numpy()
    K = np.loadtxt(tmp_path / "c.cXX.txt")[np.ix_(keep, keep)]
    fit = bayeslmm.reml(pheno[keep].to_numpy(), K)
    assert abs(fit.mean_diag - 1) > 0.05
    assert fit.pve_gemma == pytest.approx(g["pve estimate in the null model"], abs=2e-4)
    assert abs(fit.h2 - g["pve estimate in the null model"]) > 1e-2
    assert fit.sigma_g2 == pytest.approx(g["vg estimate in the null model"], rel=1e-3)
