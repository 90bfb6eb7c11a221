"""The ray decomposition and the grid posterior of several kernels.

* closed forms: along a ray sigma = sigma_e2 (e^u, 1) the density equals
  MultiKernelDensity's density of t (itself checked against scipy's MvNormal), the scale
  integral equals adaptive quadrature of it, the drawn (s, beta) follow it, and the
  log-likelihood of a draw is scipy's MvNormal;
* the mode search against a dense optimiser; the grid sampler against its own interpolant;
  the grid check in both directions (a corrupted interpolant is caught and importance
  sampling takes over); three kernels route to importance sampling;
* real data (slow): GEMMA's HS mouse data with two GRMs (chromosomes 1-10 and 11-19), the grid
  and importance posteriors against a brute-force grid over t = log sigma that evaluates
  the dense density (no ray code);
* peer (slow, peer): brms with two ``gr()`` terms on the same kernels and priors.
"""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from bayeslmm.bayes.multikernel import grid as mg
from bayeslmm.bayes.multikernel import rays as mr
from bayeslmm.bayes.multikernel import sampling as mks
from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.bayes.priors import default_priors
from bayeslmm.data import prepare
from bayeslmm.errors import SamplingWarning

from helpers import two_kernels


def _density(y, Ks, X, spec=None, dirichlet=None) -> MultiKernelDensity:
    data = prepare(y, list(Ks), X)
    return MultiKernelDensity.of(data, default_priors(spec, data.y, data.X,
                                                      kind="lmm-variances"),
                                 dirichlet=dirichlet)


# ------------------------------------------------------------------ closed forms
CASES = [
    (None, None),
    ({"sigma_g2": "InverseGamma(2, 1)", "sigma_e2": "HalfCauchy(1)", "beta": "Normal(0, 3)"},
     None),
    ({"beta": "Flat()"}, None),
    ({"beta": "Normal(0, 2)"}, [2.0, 1.0, 3.0]),
]


@pytest.mark.parametrize(("spec", "dirichlet"), CASES)
def test_ray_density_scale_integral_and_draws(spec, dirichlet):
    y, K1, K2, X = two_kernels(80)
    d = _density(y, [K1, K2], X, spec, dirichlet)
    U = np.array([np.log([0.3 / 0.6, 0.2 / 0.6]), np.log([1.5 / 0.2, 0.01 / 0.2])])
    rays = mr.rays_at(d, U)
    terms = mr.terms_of(d, rays)
    lm = mr.log_marginal(d, rays, terms)
    rng = np.random.default_rng(1)
    for i, u in enumerate(U):
        # the density along the ray is the density of t = (s + u, s) (unit Jacobian)
        S = np.log(rays.q[i] / 78) + np.array([[-0.3, 0.0, 0.4]])
        f = mr.log_integrand(d, rays.take([i]), terms.take([i]), S) + terms.const[i]
        np.testing.assert_allclose(f[0], [d.logp(np.r_[s + u, s]) for s in S[0]],
                                   rtol=0, atol=1e-9)

        # the s-integral against adaptive quadrature
        centre = float(np.log(rays.q[i] / 78))
        Z = integrate.quad(lambda s, u=u, i=i: np.exp(d.logp(np.r_[s + u, s]) - lm[i]),
                           centre - 8, centre + 8, points=[centre], limit=200,
                           epsabs=1e-13)[0]
        assert np.log(Z) == pytest.approx(0.0, abs=1e-7)
        # moments of s and of beta (E beta = E mu_s, logp_beta's mu from a Cholesky of V)
        # by the trapezoid rule on a fine grid (spectrally accurate for this integrand)
        grid = centre + np.linspace(-3.0, 3.0, 601)
        vals = [d.logp_beta(np.r_[s + u, s]) for s in grid]
        w = np.exp(np.array([v[0] for v in vals]) - lm[i])
        assert max(w[0], w[-1]) < 1e-12 * w.max()
        w /= w.sum()
        m1 = float(w @ grid)
        sd = float(np.sqrt(w @ (grid - m1) ** 2))
        mu0 = float(w @ np.array([v[1][0] for v in vals]))
        n = 8_000
        many = rays.take(np.full(n, i))
        s, beta = mr.draw_scale_and_beta(d, many, rng)
        assert abs(s.mean() - m1) < 4 * sd / np.sqrt(n)
        assert s.std() == pytest.approx(sd, rel=0.03)  # 4 SEs
        L = vals[300][2]
        beta_sd = np.sqrt(np.linalg.inv(L @ L.T)[0, 0])
        assert abs(beta[:, 0].mean() - mu0) < 4 * beta_sd / np.sqrt(n)
        # log N(y | X beta, V) of a draw, against scipy
        for j in range(2):
            sig = np.exp(np.r_[s[j] + u, s[j]])
            V = sig[0] * K1 + sig[1] * K2 + sig[2] * np.eye(80)
            ref = stats.multivariate_normal(X @ beta[j], V).logpdf(y)
            assert mr.loglik_at(d, many.take([j]), s[j:j + 1], beta[j:j + 1])[0] == \
                pytest.approx(ref, abs=1e-8)


def test_find_mode_matches_a_dense_optimiser():
    y, K1, K2, X = two_kernels(100, seed=3)
    d = _density(y, [K1, K2], X)

    def neg(u):
        return -float(mr.log_marginal(d, mr.rays_at(d, u[None]))[0])

    ref = optimize.minimize(neg, np.zeros(2), method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-9}).x
    for u0 in (None, np.array([4.0, -4.0])):  # default start; a start far away
        m = mg.find_mode(d, u0)
        assert m.converged and m.n_evals < 80
        sd = np.sqrt(np.diag(m.cov))
        # the search stops when the Newton step is below 0.3 SDs
        np.testing.assert_array_less(np.abs(m.u - ref), 0.3 * sd)
    # its curvature is the secant one over +- 1 SD: close to the Hessian at the mode
    h = 1e-3
    H = np.array([[(neg(ref + h * (ei + ej)) - neg(ref + h * (ei - ej))
                    - neg(ref - h * (ei - ej)) + neg(ref - h * (ei + ej))) / (4 * h * h)
                   for ej in np.eye(2)] for ei in np.eye(2)])
    np.testing.assert_allclose(m.cov, np.linalg.inv(H), rtol=0.35)


def _fit(N=120, seed=5):
    y, K1, K2, X = two_kernels(N, seed=seed)
    d = _density(y, [K1, K2], X)
    m = mg.find_mode(d)
    return d, mg.build_grid(d, m)


def test_grid_draws_follow_the_interpolant():
    d, fit = _fit()
    assert fit.complete and fit.n_nodes < 200
    Z, violations = mg.sample_grid(fit, 20_000, np.random.default_rng(2))
    assert violations == 0
    # the interpolated density's moments by a fine Riemann sum over the grid's box
    fine = [np.linspace(a[0], a[-1], 400) for a in fit.axes]
    F = mg.interpolate_on_grid(fit.axes, fit.logp, fine)
    w = np.exp(F - F.max())
    w /= w.sum()
    Zf = np.stack(np.meshgrid(*fine, indexing="ij"), -1)
    mean = np.einsum("ij,ijk->k", w, Zf)
    sd = np.sqrt(np.einsum("ij,ijk->k", w, (Zf - mean) ** 2))
    np.testing.assert_array_less(np.abs(Z.mean(0) - mean), 4 * sd / np.sqrt(len(Z)))
    np.testing.assert_allclose(Z.std(0), sd, rtol=0.03)
    # and the other direction: these draws are not those of the same density shifted by
    # half an SD
    assert np.max(np.abs(Z.mean(0) - (mean + 0.5 * sd)) / (sd / np.sqrt(len(Z)))) > 20


def test_grid_check_catches_a_corrupted_interpolant(monkeypatch):
    d, fit = _fit()
    rng = np.random.default_rng(3)
    Z, _ = mg.sample_grid(fit, 8, rng)
    good = mg.check_grid(d, fit, Z, rng)
    assert all(good[name] < tol for name, tol in mg.CHECK_TOL.items())
    # a bump of 0.3 in the tabulated log density and 3% in q near the mode
    centre = tuple(int(np.argmin(np.abs(a))) for a in fit.axes)
    logp = fit.logp.copy()
    logp[centre] += 0.3
    pieces = fit.pieces.copy()
    pieces[centre][1] += 0.03
    bad_fit = mg.GridFit(fit.centre, fit.A, fit.axes, logp, pieces, fit.n_evals, True)
    Zb, _ = mg.sample_grid(bad_fit, 8, rng)
    bad = mg.check_grid(d, bad_fit, Zb, rng)
    assert bad["logp"] > mg.CHECK_TOL["logp"] and bad["loglik"] > mg.CHECK_TOL["loglik"]
    # through the sampler: a corrupted grid is caught, importance sampling takes over
    monkeypatch.setattr(mks, "build_grid", lambda *a, **k: bad_fit)
    with pytest.warns(SamplingWarning, match="interpolant disagrees"):
        out = mks.sample_multikernel(d, draws=250, chains=2, seed=1, progressbar=False)
    assert out["posterior"].attrs["method"] == "importance"


def test_three_kernels_use_importance_sampling():
    y, K1, K2, X = two_kernels(80, seed=6)
    K3 = np.random.default_rng(0).standard_normal((80, 30))
    K3 = K3 @ K3.T / 30
    d = _density(y, [K1, K2, K3], X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = mks.sample_multikernel(d, draws=250, chains=2, seed=4, progressbar=False)
    post = out["posterior"]
    assert post.attrs["method"] == "importance" and post.attrs["pareto_k"] < 0.7
    assert post["h2"].shape == (2, 250, 3) and "importance" in out.children
    assert out["importance"]["log_ratio"].shape[1] == 3


# ------------------------------------------------------------------ real data (slow)
@pytest.fixture(scope="module")
def mouse_two_grms(mouse_dir):
    """GEMMA's mouse phenotype on its first 300 phenotyped mice, with the GRMs of chromosomes
    1-10 and 11-19 (each GRM from ~5,000 SNPs)."""
    from bayeslmm.genotypes.kinship import grm
    from bayeslmm.io import read_plink

    ds = read_plink(mouse_dir / "mouse_hs1940")
    y = ds["pheno"].to_numpy()
    idx = np.flatnonzero(np.isfinite(y))[:300]
    ds = ds.isel(sample=idx)
    K1 = grm(ds, chromosomes=[str(c) for c in range(1, 11)], progress=False).values
    K2 = grm(ds, chromosomes=[str(c) for c in range(11, 20)], progress=False).values
    return y[idx], K1, K2, np.ones((len(idx), 1))


def brute_force_t(d: MultiKernelDensity, h: float = 0.9, drop: float = 11.0) -> dict:
    """Posterior moments of h2 (and h2_total) from the dense density of t = log sigma on a
    regular grid (spacing h) in the frame of the t-mode (L-BFGS) and its Hessian, no ray
    code: +- 5.4 to start, each face moved out by a layer while the density on it is within
    ``drop`` of the maximum."""
    mode, cov = mks.find_mode(d)
    lam, E = np.linalg.eigh(cov)
    A = E * np.sqrt(lam)
    lo, hi = np.full(3, -6), np.full(3, 6)  # in units of h
    known: dict = {}
    while True:
        axes = [np.arange(lo[a], hi[a] + 1) for a in range(3)]
        idx = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        new = [tuple(i) for i in idx if tuple(i) not in known]
        for i in new:
            known[i] = d.logp(mode + (h * np.asarray(i, dtype=float)) @ A.T)
        lp = np.array([known[tuple(i)] for i in idx])
        cube = lp.reshape([a.size for a in axes]) - lp.max()
        moved = False
        for a in range(3):
            if np.take(cube, 0, axis=a).max() > -drop:
                lo[a] -= 1
                moved = True
            if np.take(cube, -1, axis=a).max() > -drop:
                hi[a] += 1
                moved = True
        if not moved:
            break
        assert len(known) < 20_000
    T = mode + (h * idx) @ A.T
    w = np.exp(lp - lp.max())
    w /= w.sum()
    s = np.exp(T)
    h2 = s[:, :2] / s.sum(1, keepdims=True)
    m = w @ h2
    return {"h2": m, "h2_sd": np.sqrt(w @ (h2 - m) ** 2), "h2_total": w @ h2.sum(1)}


@pytest.mark.slow
def test_mouse_two_grms_posterior_matches_brute_force(mouse_two_grms):
    """Real data, where last round's easy simulations did not reach: HS mice, two GRMs."""
    y, K1, K2, X = mouse_two_grms
    d = _density(y, [K1, K2], X)
    ref = brute_force_t(d)
    for method in ("grid", "importance"):
        out = mks.sample_multikernel(d, draws=1000, chains=4, seed=7, progressbar=False,
                                     method=method)
        post = out["posterior"]
        h2 = post["h2"].values.reshape(-1, 2)
        ess = post.attrs["min_ess_bulk"]
        assert ess > 1000
        mcse = ref["h2_sd"] / np.sqrt(ess)
        np.testing.assert_array_less(np.abs(h2.mean(0) - ref["h2"]), 4 * mcse)
        np.testing.assert_allclose(h2.std(0), ref["h2_sd"], rtol=0.1)
        assert abs(post["h2_total"].values.mean() - ref["h2_total"]) < \
            4 * np.std(h2.sum(1)) / np.sqrt(ess)
        if method == "grid":
            assert post.attrs["n_cholesky"] < 200
            assert max(post.attrs[f"grid_check_{c}"] for c in ("logp", "loglik")) < 0.01


# ------------------------------------------------------------------ peer: brms
BRMS_TWO_KERNELS = r"""
suppressPackageStartupMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv("data.csv", colClasses = c("character", "numeric"))
d$id2 <- d$id
K1 <- as.matrix(read.table("K1.txt")); K2 <- as.matrix(read.table("K2.txt"))
rownames(K1) <- colnames(K1) <- rownames(K2) <- colnames(K2) <- d$id
s <- as.numeric(args[3])
# bayeslmm's priors: sigma_j^2, sigma_e^2 ~ HalfNormal(s) on the variances (so on an SD,
# density 2 N(sd^2 | 0, s) 2 sd), a flat intercept.
sv <- stanvar(scode = paste0(
  "target += normal_lpdf(square(sd_1[1]) | 0, ", s, ") + log(sd_1[1]);",
  "target += normal_lpdf(square(sd_2[1]) | 0, ", s, ") + log(sd_2[1]);",
  "target += normal_lpdf(square(sigma) | 0, ", s, ") + log(sigma);"), block = "model")
pri <- c(set_prior("", class = "Intercept"), set_prior("", class = "sd"),
         set_prior("", class = "sigma"))
fit <- brm(y ~ 1 + (1 | gr(id, cov = K1)) + (1 | gr(id2, cov = K2)), data = d,
           data2 = list(K1 = K1, K2 = K2), prior = pri, stanvars = sv,
           chains = as.integer(args[1]), iter = 2 * as.integer(args[2]),
           warmup = as.integer(args[2]), cores = as.integer(args[1]), seed = 1,
           refresh = 0, silent = 2, backend = "rstan", control = list(adapt_delta = 0.95))
dr <- as_draws_df(fit)
v1 <- dr[["sd_id__Intercept"]]^2; v2 <- dr[["sd_id2__Intercept"]]^2; ve <- dr[["sigma"]]^2
write.csv(data.frame(v1 = v1, v2 = v2, ve = ve, chain = dr[[".chain"]]), "draws.csv",
          row.names = FALSE)
"""


@pytest.mark.slow
@pytest.mark.peer
def test_two_kernel_posterior_agrees_with_brms(tmp_path):
    """brms y ~ 1 + (1 | gr(id, cov = K1)) + (1 | gr(id2, cov = K2)) (latent effects sampled
    by NUTS in Stan) against the grid posterior (latent effects integrated out), same data,
    kernels and priors: N = 150, two GRMs of 300 SNPs each. brms mixes slowly on variance
    components (bulk ESS ~200 of 4 x 1,000 draws), so its own ESS sets the tolerance."""
    import arviz_stats as azs
    import pandas as pd

    from peers import missing, r_env_with_boost, require_tool

    rscript = require_tool("Rscript")
    probe = subprocess.run([rscript, "-e", "cat(requireNamespace('brms', quietly=TRUE))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "TRUE":
        missing("the R package brms (Debian r-cran-brms)")
    N, rng = 150, np.random.default_rng(8)
    Z1, Z2 = rng.standard_normal((N, 300)), rng.standard_normal((N, 300))
    K1, K2 = Z1 @ Z1.T / 300, Z2 @ Z2.T / 300  # positive definite: brms factors them
    y = 1.0 + Z1 @ rng.normal(0, np.sqrt(0.4 / 300), 300) \
        + Z2 @ rng.normal(0, np.sqrt(0.3 / 300), 300) + rng.normal(0, np.sqrt(0.3), N)
    scale = 2.5 * float(np.var(y, ddof=1))
    ids = [f"s{i}" for i in range(N)]
    pd.DataFrame({"id": ids, "y": y}).to_csv(tmp_path / "data.csv", index=False)
    np.savetxt(tmp_path / "K1.txt", K1, fmt="%.17g")
    np.savetxt(tmp_path / "K2.txt", K2, fmt="%.17g")
    (tmp_path / "fit.R").write_text(BRMS_TWO_KERNELS)
    proc = subprocess.run([rscript, "fit.R", "4", "1000", repr(scale)], cwd=tmp_path,
                          env=r_env_with_boost(tmp_path), capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise AssertionError(f"brms failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    brms = pd.read_csv(tmp_path / "draws.csv")
    spec = {"sigma_g2": f"HalfNormal({scale!r})", "sigma_e2": f"HalfNormal({scale!r})",
            "beta": "Flat()"}
    d = _density(y, [K1, K2], np.ones((N, 1)), spec)
    out = mks.sample_multikernel(d, draws=1000, chains=4, seed=9, progressbar=False)
    post = out["posterior"]
    assert post.attrs["method"] == "grid"
    ours = np.column_stack([post["sigma_g2"].values.reshape(-1, 2),
                            post["sigma_e2"].values.reshape(-1)])
    theirs = brms[["v1", "v2", "ve"]].to_numpy()
    vp_o, vp_t = ours.sum(1, keepdims=True), theirs.sum(1, keepdims=True)
    for name, a, b in (("h2", ours[:, :2] / vp_o, theirs[:, :2] / vp_t),
                       ("sigma", ours, theirs)):
        for j in range(a.shape[1]):
            chains = b[:, j].reshape(4, -1)  # as_draws_df: chain by chain
            ess_b = float(azs.ess(chains, method="bulk"))
            # brms converged and mixed well enough to compare with
            assert ess_b > 100 and float(azs.rhat(chains)) < 1.05, (name, j, ess_b)
            mcse = np.sqrt(a[:, j].var() / post.attrs["min_ess_bulk"] + b[:, j].var() / ess_b)
            print(f"{name}[{j}]: bayeslmm {a[:, j].mean():.4f} ({a[:, j].std():.4f}), brms "
                  f"{b[:, j].mean():.4f} ({b[:, j].std():.4f}), MCSE of the difference "
                  f"{mcse:.4f}, brms ESS {ess_b:.0f}")
            assert abs(a[:, j].mean() - b[:, j].mean()) < 4 * mcse, (name, j)
            assert a[:, j].std() == pytest.approx(b[:, j].std(), rel=0.2), (name, j)
