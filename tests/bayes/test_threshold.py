"""The threshold (probit/logit) model of a case-control trait.

Evidence:
* closed form: the model's log-density at random points equals a direct scipy computation
  (Beta prior, standard-normal z, Bernoulli-probit/logit likelihood with eta built from a
  kernel factor checked against K itself), full-rank and low-rank K;
* brute force: for a group kernel (K = group indicators, rank = number of groups < N) the
  likelihood factorises over groups into 1-D integrals, so the exact posterior of h2 is
  computed here by Gauss-Hermite quadrature on a grid and compared with both samplers (the
  augmented Gibbs sampler, the default, and NUTS; more options of the augmented one in
  tests/bayes/test_augmented.py);
* simulation on real mouse genotypes (slow): recovery of liability h2;
* peer (slow, peer): brms ``bernoulli(link = "probit")`` with ``(1 | gr(id, cov = K))``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from bayeslmm.bayes import sample
from bayeslmm.bayes.compare import compare_liability
from bayeslmm.bayes.model_info import model_info
from bayeslmm.bayes.models.threshold import (
    posterior_predictive_cases,
    threshold,
    threshold_logp,
)
from bayeslmm.errors import InputError

FAST = "FAST_COMPILE"  # tiny graphs: pytensor's Python implementations beat a C compile


def _simulate(N, P, h2, prevalence, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    g = Z @ rng.normal(0, np.sqrt(h2 / P), P)
    liab = g + rng.normal(0, np.sqrt(1 - h2), N)
    y = (liab > stats.norm.isf(prevalence)).astype(float)
    return y, K, Z


def _direct_logp(y, K, h2, z, mu, beta_x=None, Xc=None, link="probit", resid=1.0):
    """log p(h2, z, y) (no Jacobian) written from the model's definition, not its code."""
    S, U = np.linalg.eigh(K)
    keep = S > 1e-10 * S.max()
    S, U = S[keep], U[:, keep]
    np.testing.assert_allclose((U * S) @ U.T, K, atol=1e-10)  # the factor is K's
    sg = resid * h2 / (1 - h2)
    # any factor L with L L' = sigma_g2 K gives the same density for z ~ N(0, I): use U'z
    # with z given in the eigenbasis of ascending eigenvalues (the model's order)
    eta = mu + U @ (np.sqrt(sg * S) * z)
    if beta_x is not None:
        eta = eta + Xc @ beta_x
    if link == "probit":
        ll = stats.norm.logcdf(np.where(y == 1, eta, -eta)).sum()
    else:
        ll = stats.bernoulli.logpmf(y, special.expit(eta)).sum()
    return stats.beta.logpdf(h2, 1, 1) + stats.norm.logpdf(z).sum() + ll, U


@pytest.mark.parametrize("low_rank", [False, True])
def test_logp_equals_direct_computation_probit_prevalence(low_rank):
    rng = np.random.default_rng(5)
    y, K, Z = _simulate(40, 25 if low_rank else 200, 0.5, 0.3, seed=1)
    K_prev = 0.2
    m = threshold(y, K, prevalence=K_prev)
    dec = model_info(m).decomposition
    assert dec.rank == (25 if low_rank else 40)
    fn = m.compile_logp(jacobian=False, mode=FAST)
    for h2 in (0.1, 0.5, 0.93):
        z = rng.standard_normal(dec.rank)
        mu = stats.norm.ppf(K_prev) * np.sqrt(h2 / (1 - h2) + 1)
        ref, U = _direct_logp(y, K, h2, z, mu)
        # eigenvectors are unique up to sign: align ours to the reference's columns
        sign = np.sign(np.sum(U * dec.U, axis=0))
        pt = {"h2_logodds__": special.logit(h2), "g_raw": z * sign}
        assert fn(pt) == pytest.approx(ref, rel=1e-9, abs=1e-8)


def test_logp_free_intercept_covariates_and_logit():
    rng = np.random.default_rng(6)
    y, K, _ = _simulate(30, 80, 0.4, 0.4, seed=2)
    x = rng.standard_normal(30)
    X = np.column_stack([np.ones(30), x])
    for link, resid, isd in (("probit", 1.0, 1.0), ("logit", np.pi**2 / 3, 1.8)):
        m = threshold(y, K, X, link=link)
        dec = model_info(m).decomposition
        h2, mu, b = 0.3, -0.4, 0.7
        z = rng.standard_normal(dec.rank)
        ref, U = _direct_logp(y, K, h2, z, mu, np.array([b]), (x - x.mean())[:, None],
                              link=link, resid=resid)
        ref += stats.norm.logpdf(mu, 0, isd) + stats.norm.logpdf(b, 0, isd / x.std())
        sign = np.sign(np.sum(U * dec.U, axis=0))
        # the intercept is sampled as mu / sd(liability): its Jacobian sd_l joins the density
        sd_l = np.sqrt(resid * h2 / (1 - h2) + resid)
        ref += np.log(sd_l)
        pt = {"h2_logodds__": special.logit(h2), "g_raw": z * sign, "intercept_std": mu / sd_l,
              "beta_x": np.array([b])}
        assert m.compile_logp(jacobian=False, mode=FAST)(pt) == pytest.approx(ref, rel=1e-9)
        # the Jacobian of the logit transform of h2 is the only difference with jacobian=True
        jac = np.log(h2 * (1 - h2))
        assert threshold_logp(m, pt, mode=FAST) == pytest.approx(ref + jac, rel=1e-9)


def test_bad_inputs_are_clear_errors():
    y, K, _ = _simulate(30, 50, 0.4, 0.4, seed=3)
    with pytest.raises(InputError, match="link must be"):
        threshold(y, K, link="cloglog")
    with pytest.raises(InputError, match="with link='logit' leave it None"):
        threshold(y, K, prevalence=0.1, link="logit")
    with pytest.raises(InputError, match="strictly between"):
        threshold(y, K, prevalence=1.2)
    with pytest.raises(InputError, match="unknown parameter"):
        threshold(y, K, priors={"Vp": "HalfNormal(1)"})
    with pytest.raises(InputError, match="no controls|only cases"):
        threshold(np.ones(30), K)
    with pytest.raises(InputError, match="not a case-control trait"):
        threshold(np.linspace(0, 1, 30), K)
    yy = y.copy()
    yy[0] = np.nan
    with pytest.raises(InputError, match="1 missing values; drop"):
        threshold(yy, K)
    with pytest.raises(InputError, match="intercept column"):
        threshold(y, K, np.random.default_rng(0).standard_normal((30, 1)))


# ------------------------------------------------------------------ brute-force posterior
def _groups_data(n_groups=15, size=4, h2=0.5, prevalence=0.3, seed=7):
    rng = np.random.default_rng(seed)
    grp = np.repeat(np.arange(n_groups), size)
    Zg = (grp[:, None] == np.arange(n_groups)[None, :]).astype(float)
    sg = h2 / (1 - h2)
    liab = stats.norm.ppf(prevalence) * np.sqrt(1 + sg) + Zg @ rng.normal(0, np.sqrt(sg),
                                                                          n_groups)
    y = (liab + rng.standard_normal(grp.size) > 0).astype(float)
    return y, Zg @ Zg.T, grp


def _exact_posterior_h2(y, grp, prevalence, n_grid=2000, n_gh=80):
    """p(h2 | y) on a grid: per group, 1-D Gauss-Hermite over the group effect."""
    h = (np.arange(n_grid) + 0.5) / n_grid
    sg = h / (1 - h)
    x, w = np.polynomial.hermite_e.hermegauss(n_gh)  # weight exp(-x^2/2)
    w = w / np.sqrt(2 * np.pi)
    mu = stats.norm.ppf(prevalence) * np.sqrt(1 + sg)  # (G,)
    logpost = np.zeros(n_grid)
    for k in np.unique(grp):
        yk = y[grp == k]
        eta = mu[:, None] + np.sqrt(sg)[:, None] * x[None, :]  # (grid, nodes)
        ll = (yk.sum() * stats.norm.logcdf(eta) + (yk.size - yk.sum())
              * stats.norm.logcdf(-eta))
        logpost += special.logsumexp(ll, b=w[None, :], axis=1)
    p = np.exp(logpost - logpost.max())
    p /= p.sum()
    return h, p


@pytest.fixture(scope="module", params=["augmented", "nuts"])
def groups_fit(request):
    y, K, grp = _groups_data()
    m = threshold(y, K, prevalence=0.3)
    # the augmented sampler's draws are 4 sweeps each (ESS ~0.4 per draw): 600 suffice
    n = {"augmented": (600, 300), "nuts": (1000, 1000)}[request.param]
    idata = sample(m, draws=n[0], tune=n[1], chains=4, seed=4, progressbar=False,
                   method=request.param)
    assert idata["posterior"].attrs["sampler"] == request.param.replace("nuts", "nutpie")
    return y, K, grp, m, idata


def test_posterior_matches_brute_force(groups_fit):
    y, K, grp, m, idata = groups_fit
    assert model_info(m).decomposition.rank == 15  # low rank: 15 groups, N = 60
    h, p = _exact_posterior_h2(y, grp, 0.3)
    mean = float(np.sum(h * p))
    sd = float(np.sqrt(np.sum((h - mean) ** 2 * p)))
    cdf = np.cumsum(p)
    q = np.interp([0.1, 0.5, 0.9], cdf, h)
    draws = idata["posterior"]["h2"].values.reshape(-1)
    post = idata["posterior"]
    assert post.attrs["n_divergences"] == 0 and post.attrs["max_rhat"] < 1.01
    ess = post.attrs["min_ess_bulk"]
    mcse = sd / np.sqrt(ess)
    assert abs(draws.mean() - mean) < 4 * mcse, (draws.mean(), mean, mcse)
    assert draws.std() == pytest.approx(sd, rel=0.1)
    np.testing.assert_allclose(np.quantile(draws, [0.1, 0.5, 0.9]), q, atol=5 * mcse)
    # the reference itself is not trivially the prior (Beta(1,1): mean 0.5, sd 0.289)
    assert abs(sd - 0.2887) > 0.03


def test_posterior_predictive_case_proportion(groups_fit):
    y, K, grp, m, idata = groups_fit
    out = posterior_predictive_cases(idata, m, seed=1)
    pp = out["posterior_predictive"]
    assert pp["y"].shape == (4, idata["posterior"].sizes["draw"], 60)
    assert pp.attrs["observed_case_proportion"] == pytest.approx(y.mean())
    # the fitted model reproduces the sample's case proportion ...
    assert pp.attrs["ppp_case_proportion"] > 0.05
    # ... and the check can fail: the same draws against a flipped phenotype
    m_flip = threshold(1 - y, K, prevalence=0.3)
    bad = posterior_predictive_cases(idata, m_flip, seed=1)["posterior_predictive"]
    if abs(1 - 2 * y.mean()) > 0.15:
        assert bad.attrs["ppp_case_proportion"] < 0.05


def test_compare_liability_table(groups_fit):
    import bayeslmm

    y, K, grp, m, idata = groups_fit
    fit = bayeslmm.reml(y, K)
    tab = compare_liability(fit, idata, 0.3, true_h2=0.5)
    lia = fit.liability_h2(0.3)
    assert tab.loc["REML (Lee transform)", "h2"] == pytest.approx(lia.h2)
    assert tab.loc["threshold posterior", "h2"] == pytest.approx(
        float(idata["posterior"]["h2"].mean()))
    assert list(tab["interval"]) == ["95% Wald", "95% HDI"]
    assert tab.loc["threshold posterior", "lower"] < tab.loc["threshold posterior", "upper"]
    assert "error" in tab.columns


def test_compare_liability_follows_the_interval_convention(groups_fit):
    """Under set_interval(kind="eti") the posterior row is the equal-tailed interval (the
    draws' 2.5% and 97.5% quantiles, computed here directly), named so; the HDI differs."""
    import bayeslmm
    from bayeslmm.bayes.summaries import INTERVAL, set_interval

    y, K, grp, m, idata = groups_fit
    fit = bayeslmm.reml(y, K)
    draws = idata["posterior"]["h2"].values.reshape(-1)
    hdi_row = compare_liability(fit, idata, 0.3).loc["threshold posterior"]
    saved = (INTERVAL.prob, INTERVAL.kind)
    try:
        set_interval(kind="eti")
        tab = compare_liability(fit, idata, 0.3, prob=0.9)
    finally:
        set_interval(*saved)
    row = tab.loc["threshold posterior"]
    np.testing.assert_allclose([row.lower, row.upper], np.quantile(draws, [0.05, 0.95]),
                               rtol=1e-12)
    assert list(tab["interval"]) == ["90% Wald", "90% ETI"]
    lia = fit.liability_h2(0.3)
    assert tab.loc["REML (Lee transform)", "upper"] == pytest.approx(
        lia.h2 + stats.norm.ppf(0.95) * lia.h2_se)
    # the default convention is unchanged afterwards, and the 95% HDI is another interval
    assert (INTERVAL.prob, INTERVAL.kind) == saved
    assert (hdi_row.lower, hdi_row.upper) != (row.lower, row.upper)


def test_compare_puts_liability_reml_next_to_the_threshold_posterior(groups_fit):
    """compare() on a threshold posterior: REML transformed with K (Lee et al., computed here
    from the fit's observed-scale h2) against the posterior of liability h2; without K, or
    with K and a linear model's posterior, a clear error."""
    import bayeslmm
    from bayeslmm.bayes import compare
    from bayeslmm.errors import InputError

    y, K, grp, m, idata = groups_fit
    fit = bayeslmm.reml(y, K)
    cmp = compare(fit, idata, prevalence=0.3)
    row = cmp.table.loc["h2"]
    P = y.mean()
    z = stats.norm.pdf(stats.norm.isf(0.3))
    factor = 0.3**2 * 0.7**2 / (z**2 * P * (1 - P))
    assert row.reml == pytest.approx(fit.h2 * factor, rel=1e-10)
    assert row.reml_se == pytest.approx(fit.h2_se * factor, rel=1e-10)
    draws = idata["posterior"]["h2"].values.reshape(-1)
    assert row.post_mean == pytest.approx(draws.mean())
    assert row.reml_lower == pytest.approx(row.reml - 1.959964 * row.reml_se, rel=1e-6)
    assert list(cmp.table.index) == ["h2"] and row.post_interval == "95% HDI"
    from bayeslmm.reports.plots import plot_compare

    fig = plot_compare(cmp)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "REML, Lee transform (K = 0.3)" in labels and "REML 95% Wald CI" in labels
    with pytest.raises(InputError, match="prevalence"):
        compare(fit, idata)


# ------------------------------------------------------------------ real genotypes
@pytest.mark.slow
def test_recovers_liability_h2_on_mouse_genotypes(mouse):
    """Liability h2 = 0.5, prevalence 0.3, simulated on a GRM of 500 HS mice (gemma-doc)."""
    import bayeslmm

    _, K_all = mouse
    rng = np.random.default_rng(2011)
    idx = np.sort(rng.choice(K_all.shape[0], 500, replace=False))
    K = K_all[np.ix_(idx, idx)]
    K = K / np.mean(np.diag(K))  # unit mean diagonal: sigma_g2 / (sigma_g2 + 1) is h2
    dec = bayeslmm.decompose(K)
    h2, prev = 0.5, 0.3
    g = dec.U @ (np.sqrt(h2 * dec.S) * rng.standard_normal(dec.rank))
    y = (g + rng.normal(0, np.sqrt(1 - h2), len(idx)) > stats.norm.isf(prev)).astype(float)
    m = threshold(y, dec, prevalence=prev, store_g=False)
    idata = sample(m, draws=1000, tune=1000, chains=2, seed=9, progressbar=False, check=False)
    # One replicate: a 95% interval misses 1 time in 20 by design, so the assertion uses the
    # 99% HDI; calibration over many replicates is benchmarks/bench_threshold.py --coverage.
    tab = compare_liability(bayeslmm.reml(y, dec), idata, prev, true_h2=h2, prob=0.99)
    print(tab.to_string())
    row = tab.loc["threshold posterior"]
    assert row.lower < h2 < row.upper
    assert abs(row.error) < 2.5 * row.se
    assert row.h2 > 0.15 and row.se < 0.16  # the data inform h2 (prior: mean 0.5, SD 0.29)
    assert idata["posterior"].attrs["max_rhat"] < 1.02


# ------------------------------------------------------------------ peer: brms
BRMS_SCRIPT = r"""
suppressPackageStartupMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv("data.csv", colClasses = c("character", "integer"))
K <- as.matrix(read.table("K.txt"))
rownames(K) <- colnames(K) <- d$id
# h2 = sd^2 / (1 + sd^2) ~ Beta(1, 1): the density of sd is 2 sd / (1 + sd^2)^2 (flat prior
# on sd plus this term); the intercept ~ Normal(0, 1), as in bayeslmm's threshold model.
sv <- stanvar(scode = "target += log(2) + log(sd_1[1]) - 2 * log1p(square(sd_1[1]));",
              block = "model")
pri <- c(prior(normal(0, 1), class = Intercept), set_prior("", class = "sd"))
t0 <- Sys.time()
fit <- brm(y ~ 1 + (1 | gr(id, cov = K)), data = d, data2 = list(K = K),
           family = bernoulli(link = "probit"), prior = pri, stanvars = sv,
           chains = as.integer(args[1]), iter = 2 * as.integer(args[2]),
           warmup = as.integer(args[2]), cores = as.integer(args[1]), seed = 1,
           refresh = 0, silent = 2, backend = "rstan")
t1 <- Sys.time()
dr <- as_draws_df(fit)
sd <- dr[["sd_id__Intercept"]]
h2 <- sd^2 / (1 + sd^2)
write.csv(data.frame(h2 = h2, intercept = dr[["b_Intercept"]]), "draws.csv", row.names = FALSE)
ess <- posterior::ess_bulk(matrix(h2, ncol = as.integer(args[1])))
st <- rstan::get_elapsed_time(fit$fit)
cat(sprintf("%f %f %f\n", as.numeric(difftime(t1, t0, units = "secs")), sum(st), ess),
    file = "timing.txt")
"""


def run_brms(y, K, tmp_path, chains=2, draws=500, timeout=1800):
    """brms bernoulli(probit) + (1 | gr(id, cov = K)) with bayeslmm's default priors; returns
    the draws (h2, intercept) and (wall s incl. compile, sampling s, ESS bulk of h2)."""
    import subprocess

    import pandas as pd

    from peers import missing, r_env_with_boost, require_tool

    rscript = require_tool("Rscript")
    probe = subprocess.run([rscript, "-e", "cat(requireNamespace('brms', quietly=TRUE))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "TRUE":
        missing("the R package brms (Debian r-cran-brms)")
    ids = [f"s{i}" for i in range(len(y))]
    pd.DataFrame({"id": ids, "y": y.astype(int)}).to_csv(tmp_path / "data.csv", index=False)
    np.savetxt(tmp_path / "K.txt", K, fmt="%.17g")
    (tmp_path / "fit.R").write_text(BRMS_SCRIPT)
    proc = subprocess.run([rscript, "fit.R", str(chains), str(draws)], cwd=tmp_path,
                          env=r_env_with_boost(tmp_path), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"brms failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    draws_df = pd.read_csv(tmp_path / "draws.csv")
    wall, samp, ess = map(float, (tmp_path / "timing.txt").read_text().split())
    return draws_df, (wall, samp, ess)


@pytest.mark.slow
@pytest.mark.peer
def test_threshold_posterior_agrees_with_brms(tmp_path):
    y, K, _ = _simulate(300, 600, 0.5, 0.3, seed=21)
    # 2 x 1,000: with 2 x 500 brms's own mean of the intercept sat 0.07 from a 4 x 1,500 run
    # of it (4 of its stated MCSE), too little to compare against
    brms, _ = run_brms(y, K, tmp_path, chains=2, draws=1000)
    m = threshold(y, K, store_g=False)  # free intercept ~ Normal(0, 1), h2 ~ Beta(1, 1)
    idata = sample(m, draws=1000, tune=1000, chains=4, seed=2, progressbar=False)
    ours = idata["posterior"]["h2"].values.reshape(-1)
    ours_mu = idata["posterior"]["intercept"].values.reshape(-1)
    import arviz_stats as azs

    ess_ours = float(azs.ess(idata["posterior"]["h2"].values, method="bulk"))
    ess_brms = float(azs.ess(brms["h2"].values.reshape(2, -1), method="bulk"))
    sd = ours.std()
    mcse = np.sqrt(sd**2 / ess_ours + brms["h2"].std() ** 2 / ess_brms)
    print(f"h2 mean: bayeslmm {ours.mean():.4f}, brms {brms['h2'].mean():.4f} (MCSE of the "
          f"difference {mcse:.4f}); sd {sd:.4f} vs {brms['h2'].std():.4f}")
    assert abs(ours.mean() - brms["h2"].mean()) < 3.5 * mcse
    assert sd == pytest.approx(brms["h2"].std(), rel=0.15)
    np.testing.assert_allclose(np.quantile(ours, [0.1, 0.5, 0.9]),
                               np.quantile(brms["h2"], [0.1, 0.5, 0.9]), atol=4 * mcse)
    mcse_mu = np.sqrt(ours_mu.var() / float(azs.ess(
        idata["posterior"]["intercept"].values, method="bulk")) + brms["intercept"].var()
        / float(azs.ess(brms["intercept"].values.reshape(2, -1), method="bulk")))
    assert abs(ours_mu.mean() - brms["intercept"].mean()) < 3.5 * mcse_mu
