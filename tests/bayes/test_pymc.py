"""The GRM term for any PyMC model (bayeslmm.pymc): GRMNormal and grm_effect.

Evidence: a dense ``pm.MvNormal`` (log-density and gradient), the closed form of the
conditional normal p(y_i | y_-i) from the partitioned dense covariance (LOO terms), sample
moments against V (forward draws), and the package's ``marginal_grm`` posterior (slow).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy.stats import multivariate_normal, norm

import bayeslmm
from bayeslmm.errors import InputError, KernelError
from bayeslmm.pymc import GRMNormal, grm_effect

N, M = 50, 2
ROOT = Path(__file__).resolve().parents[2]


def _case(P: int, seed: int = 5):
    """N = 50 samples, K = ZZ'/P (full rank for P > N, rank P below), two covariates, a
    phenotype far from zero (the intercept's part must not cancel)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = 20.0 + X[:, 1] * 0.5 + rng.standard_normal(N)
    return y, K, X


@pytest.fixture(params=[80, 30], ids=["full-rank", "rank-30"], scope="module")
def case(request):
    return _case(request.param)


def _priors():
    beta = pm.Normal("beta", 20.0, 10.0, shape=M)
    sg = pm.HalfNormal("sigma_g2", 2.0)
    se = pm.HalfNormal("sigma_e2", 2.0)
    return beta, sg, se


def _grm_model(y, dec, X, form: str = "X") -> pm.Model:
    with pm.Model() as model:
        beta, sg, se = _priors()
        mean = {"X": {"X": X, "beta": beta}, "mu": {"mu": pt.dot(X, beta)},
                "both": {"X": X[:, :1], "beta": beta[:1], "mu": X[:, 1] * beta[1]}}[form]
        GRMNormal("y", decomposition=dec, sigma_g2=sg, sigma_e2=se, observed=y, **mean)
    return model


def _dense_model(y, K, X) -> pm.Model:
    with pm.Model() as model:
        beta, sg, se = _priors()
        pm.MvNormal("y", mu=pt.dot(X, beta), cov=sg * K + se * np.eye(N), observed=y)
    return model


def _points(model, n: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    ip = model.initial_point()
    return [{k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in ip.items()} for _ in range(n)]


def _compiled(model):
    """log p and its gradient in one compiled function (one compilation per model)."""
    return model.compile_fn([model.logp(), model.dlogp()])


def _logp_dlogp(fn, points):
    return [(float(lp), np.asarray(dlp)) for lp, dlp in map(fn, points)]


# ------------------------------------------------------------------- log-density, gradient
def test_logp_and_gradient_equal_dense_mvnormal(case):
    y, K, X = case
    dec = bayeslmm.decompose(K)
    grm, dense = _grm_model(y, dec, X), _dense_model(y, K, X)
    pts = _points(grm)
    for (lp, dlp), (lp_d, dlp_d) in zip(_logp_dlogp(_compiled(grm), pts),
                                        _logp_dlogp(_compiled(dense), pts), strict=True):
        assert abs(lp - lp_d) < 1e-8
        np.testing.assert_allclose(dlp, dlp_d, rtol=0, atol=1e-8)
    # the unregistered distribution's terms sum to the same log p(y)
    p = pts[0]
    sg, se = np.exp(p["sigma_g2_log__"]), np.exp(p["sigma_e2_log__"])
    d = GRMNormal.dist(decomposition=dec, sigma_g2=sg, sigma_e2=se, X=X, beta=p["beta"])
    ref = pm.logp(pm.MvNormal.dist(X @ p["beta"], sg * K + se * np.eye(N)), y).eval()
    assert abs(float(pm.logp(d, y).sum().eval()) - float(ref)) < 1e-8


def test_mean_forms_agree_and_a_rotated_design_costs_no_rotation():
    """X with beta, a general mu and a mix define one density; with X the compiled
    log-density and gradient hold no N x r constant (U is applied once, at compile time),
    while a general mu is rotated at each evaluation."""
    y, K, X = _case(30)
    dec = bayeslmm.decompose(K)
    fns = {form: _compiled(_grm_model(y, dec, X, form)) for form in ("X", "mu", "both")}
    pts = _points(_grm_model(y, dec, X))
    ref = _logp_dlogp(fns["X"], pts)
    for form in ("mu", "both"):
        for (lp, dlp), (lp_r, dlp_r) in zip(_logp_dlogp(fns[form], pts), ref, strict=True):
            assert abs(lp - lp_r) < 1e-9
            np.testing.assert_allclose(dlp, dlp_r, rtol=0, atol=1e-9)

    def largest_constant(fn) -> int:
        return max(getattr(v, "data", np.empty(0)).size for v in fn.f.maker.fgraph.variables)

    assert largest_constant(fns["X"]) < N * dec.rank
    assert largest_constant(fns["mu"]) >= N * dec.rank


def test_permuting_samples_leaves_logp_unchanged():
    y, K, X = _case(30)
    dec = bayeslmm.decompose(K)
    perm = np.random.default_rng(2).permutation(N)
    base = _grm_model(y, dec, X)
    pts = _points(base)
    f0 = base.compile_logp()
    f1 = _grm_model(y[perm], dec.reorder(perm), X[perm]).compile_logp()
    assert all(abs(float(f0(p)) - float(f1(p))) < 1e-9 for p in pts)
    # by labels: the decomposition is put in y's order by the one alignment rule
    labels = np.array([f"f{i} i{i}" for i in range(N)])
    labelled = bayeslmm.decompose(K, samples=labels)
    with pm.Model() as by_label:
        beta, sg, se = _priors()
        GRMNormal("y", decomposition=labelled, samples=labels[perm], sigma_g2=sg,
                  sigma_e2=se, X=X[perm], beta=beta, observed=y[perm])
    f2 = by_label.compile_logp()
    assert all(abs(float(f0(p)) - float(f2(p))) < 1e-9 for p in pts)
    # refused: permuting y and X but not K is another model
    f3 = _grm_model(y[perm], dec, X[perm]).compile_logp()
    assert all(abs(float(f0(p)) - float(f3(p))) > 1e-3 for p in pts)


# ------------------------------------------------------------------- pointwise LOO
def _dense_loo(y, mu, V):
    """log p(y_i | y_-i) from the conditional normal of the partitioned covariance."""
    out = np.empty(N)
    for i in range(N):
        o = np.arange(N) != i
        w = np.linalg.solve(V[np.ix_(o, o)], V[o, i])
        m = mu[i] + w @ (y[o] - mu[o])
        v = V[i, i] - V[i, o] @ w
        out[i] = norm.logpdf(y[i], m, np.sqrt(v))
    return out


def test_pointwise_loglik_is_exact_leave_one_out(case):
    y, K, X = case
    dec = bayeslmm.decompose(K)
    model = _grm_model(y, dec, X)
    rng = np.random.default_rng(3)
    shape = (2, 3)
    post = xr.Dataset({
        "beta": (("chain", "draw", "beta_dim_0"), 20 + rng.normal(0, 0.5, (*shape, M))),
        "sigma_g2": (("chain", "draw"), rng.uniform(0.2, 2.0, shape)),
        "sigma_e2": (("chain", "draw"), rng.uniform(0.2, 2.0, shape))},
        coords={"chain": [0, 1], "draw": [0, 1, 2]})
    idata = xr.DataTree.from_dict({"posterior": post})
    ll = pm.compute_log_likelihood(idata, model=model, progressbar=False)["log_likelihood"]
    ll = ll["y"].values
    joint = model.compile_fn(model.logp(vars=model.observed_RVs + model.potentials))
    obs_only = model.compile_fn(model.logp(vars=model.observed_RVs))
    for c in range(2):
        for t in range(3):
            beta = post["beta"].values[c, t]
            sg, se = post["sigma_g2"].values[c, t], post["sigma_e2"].values[c, t]
            V = sg * K + se * np.eye(N)
            loo = _dense_loo(y, X @ beta, V)
            np.testing.assert_allclose(ll[c, t], loo, rtol=0, atol=1e-8)
            # the model's density stays log p(y); the LOO terms alone are not it
            point = {"beta": beta, "sigma_g2_log__": np.log(sg),
                     "sigma_e2_log__": np.log(se)}
            dense = multivariate_normal(X @ beta, V).logpdf(y)
            assert abs(float(joint(point)) - float(dense)) < 1e-8
            assert abs(float(obs_only(point)) - float(dense)) > 1e-2
    # the same terms as bayeslmm.sample(log_likelihood=True) stores for marginal_grm
    from bayeslmm.bayes.loo import marginal_loo_loglik
    from bayeslmm.data import prepare

    pkg = marginal_loo_loglik(post.rename({"beta_dim_0": "covariate"}), prepare(y, None, X),
                              dec)
    np.testing.assert_allclose(ll, pkg.values, rtol=0, atol=1e-9)


# ------------------------------------------------------------------- forward draws
def _moments_match(draws, mean, V, z: float = 5.0) -> bool:
    """Sample mean and covariance within z standard errors of (mean, V), elementwise; the
    covariance's from the Wishart: var(S_ij) = (V_ij^2 + V_ii V_jj) / n."""
    n = draws.shape[0]
    m_ok = np.all(np.abs(draws.mean(0) - mean) < z * np.sqrt(np.diag(V) / n))
    C = np.cov(draws, rowvar=False)
    sd = np.sqrt((V**2 + np.outer(np.diag(V), np.diag(V))) / n)
    return bool(m_ok and np.all(np.abs(C - V) < z * sd))


@pytest.mark.parametrize("P", [9, 3], ids=["full-rank", "rank-3"])
def test_forward_draws_have_covariance_V(P):
    rng = np.random.default_rng(7)
    n_small = 6
    Zg = rng.standard_normal((n_small, P))
    K = Zg @ Zg.T / P
    X = np.column_stack([np.ones(n_small), rng.standard_normal(n_small)])
    dec = bayeslmm.decompose(K)
    beta, sg, se = np.array([1.0, -2.0]), 1.5, 0.5
    V = sg * K + se * np.eye(n_small)
    draws = pm.draw(GRMNormal.dist(decomposition=dec, sigma_g2=sg, sigma_e2=se, X=X,
                                   beta=beta, size=(40_000,)), random_seed=11)
    assert draws.shape == (40_000, n_small)
    assert _moments_match(draws, X @ beta, V)
    # refused: the check tells V from a covariance that misses the complement or K
    U = dec.U
    assert not _moments_match(draws, X @ beta, sg * K + se * U @ U.T) or dec.full_rank
    assert not _moments_match(draws, X @ beta, (sg + se) * np.eye(n_small))
    assert not _moments_match(draws, X @ beta + 0.05, V)


def test_prior_and_posterior_predictive_in_a_model():
    rng = np.random.default_rng(8)
    n_small = 5
    Zg = rng.standard_normal((n_small, 3))
    K = Zg @ Zg.T / 3
    dec = bayeslmm.decompose(K)
    V = 1.2 * K + 0.3 * np.eye(n_small)
    with pm.Model() as fixed:  # known variances: the prior predictive of y is N(0, V)
        GRMNormal("y", decomposition=dec, sigma_g2=1.2, sigma_e2=0.3,
                  observed=rng.standard_normal(n_small))
    with pm.Model() as free:
        sg = pm.HalfNormal("sigma_g2", 1.0)
        se = pm.HalfNormal("sigma_e2", 1.0)
        GRMNormal("y", decomposition=dec, sigma_g2=sg, sigma_e2=se,
                  observed=rng.standard_normal(n_small))
    post = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"sigma_g2": (("chain", "draw"), np.full((1, 4000), 1.2)),
         "sigma_e2": (("chain", "draw"), np.full((1, 4000), 0.3))})})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(draws=4000, model=fixed, random_seed=1)
        pp = pm.sample_posterior_predictive(post, model=free, random_seed=2,
                                            progressbar=False)
    for group in (prior["prior_predictive"], pp["posterior_predictive"]):
        draws = group["y"].values.reshape(-1, n_small)
        assert draws.shape == (4000, n_small)
        assert _moments_match(draws, np.zeros(n_small), V)
        assert not _moments_match(draws, np.zeros(n_small), 1.5 * np.eye(n_small))


# ------------------------------------------------------------------- the latent effect
def test_grm_effect_has_covariance_sigma_g2_K():
    rng = np.random.default_rng(9)
    n_small = 6
    Zg = rng.standard_normal((n_small, 4))
    K = Zg @ Zg.T / 4
    with pm.Model() as model:
        g = grm_effect("g", decomposition=K, sigma_g2=1.3)
    assert model["g_z"].eval().shape == (4,)  # rank-4 K: four latent values, not six
    draws = pm.draw(g, draws=8000, random_seed=3)
    assert _moments_match(draws, np.zeros(n_small), 1.3 * K)
    assert not _moments_match(draws, np.zeros(n_small), 1.3 * np.eye(n_small))


def test_grm_effect_under_a_gaussian_likelihood_is_the_marginal_model():
    """Integrating g ~ N(0, sigma_g2 K) out of y | g ~ N(X beta + g, sigma_e2) gives
    GRMNormal: checked at one point through the Gaussian identity
    log p(y) = log p(y | g) + log p(g) - log p(g | y), g | y from the dense posterior."""
    y, K, X = _case(30)
    dec = bayeslmm.decompose(K)
    sg, se, beta = 0.8, 0.6, np.array([20.0, 0.5])
    with pm.Model() as latent:
        g = grm_effect("g", decomposition=dec, sigma_g2=sg)
        pm.Normal("y", mu=pt.dot(X, beta) + g, sigma=np.sqrt(se), observed=y)
    # the mode of z: u = sqrt(sg S) z has posterior mean sg S / (sg S + se) U'(y - X beta)
    r = y - X @ beta
    u_hat = sg * dec.S / (sg * dec.S + se) * (dec.U.T @ r)
    z_hat = u_hat / np.sqrt(sg * dec.S)
    # p(z | y) is Gaussian with precision 1 + sg S / se (diagonal), so at its mode
    # log p(y) = log p(y, z_hat) - log p(z_hat | y) = joint - 1/2 sum log(prec) + r/2 log 2 pi
    prec = 1.0 + sg * dec.S / se
    joint = float(latent.compile_logp()({"g_z": z_hat}))
    marg = joint - 0.5 * np.sum(np.log(prec)) + 0.5 * dec.rank * np.log(2 * np.pi)
    dense = float(pm.logp(pm.MvNormal.dist(X @ beta, sg * K + se * np.eye(N)), y).eval())
    assert abs(marg - dense) < 1e-8
    assert abs(joint - dense) > 1e-2  # refused: the joint at the mode is not the marginal


# ------------------------------------------------------------------- refusals
def test_inputs_refused_with_one_line():
    y, K, X = _case(30)
    dec = bayeslmm.decompose(K)
    bad_K = K - 0.5 * np.eye(N)  # indefinite: V is not a covariance for every h2
    cases = [
        (dict(X=X[:-1], beta=np.zeros(M)), InputError, "X must have N = 50 rows"),
        (dict(X=X), InputError, "give X and beta together"),
        (dict(observed=y[:-1]), InputError, "observed must be a vector of N = 50"),
        (dict(observed=np.where(np.arange(N) == 3, np.nan, y)), InputError, "NaN"),
        (dict(decomposition=bad_K), KernelError, "indefinite"),
    ]
    for kw, cls, msg in cases:
        args = dict(decomposition=dec, sigma_g2=1.0, sigma_e2=1.0, observed=y) | kw
        with pm.Model(), pytest.raises(cls, match=msg) as err:
            GRMNormal("y", **args)
        assert "\n" not in str(err.value)
    with pm.Model(coords={"eigen": [0, 1]}), pytest.raises(InputError, match="rank 30"):
        grm_effect("g", decomposition=dec, sigma_g2=1.0)
    with pm.Model():  # accepted: the same inputs, well formed
        GRMNormal("y", decomposition=dec, sigma_g2=1.0, sigma_e2=1.0, X=X, beta=np.zeros(M),
                  observed=y)
        grm_effect("g", decomposition=dec, sigma_g2=1.0)


# ------------------------------------------------------------------- sampling (slow)
@pytest.mark.slow
def test_posterior_equals_marginal_grm(small):
    """The same priors through GRMNormal in a hand-written model (nutpie) and through
    bayeslmm's marginal_grm: posterior means of h2 and sigma_g2 within 4 MCSE."""
    import arviz_stats as azs

    from bayeslmm.bayes.priors import default_priors

    y, K, X, *_ = small
    dec = bayeslmm.decompose(K)
    pri = default_priors(None, y, X)
    with pm.Model():
        beta = pm.Normal("beta", mu=pri.beta_mu, sigma=pri.beta_sigma) if pri.beta_mu.size \
            else pri["beta"].create("beta", shape=(X.shape[1],))
        h2, Vp = pri["h2"].create("h2"), pri["Vp"].create("Vp")
        sg = pm.Deterministic("sigma_g2", h2 * Vp)
        GRMNormal("y", decomposition=dec, sigma_g2=sg, sigma_e2=(1 - h2) * Vp, X=X,
                  beta=beta, observed=y)
        ours = pm.sample(draws=1000, tune=700, chains=2, cores=1, nuts_sampler="nutpie",
                         random_seed=5, progressbar=False)
    ref = bayeslmm.sample(bayeslmm.models.marginal_grm(y, dec, X), draws=1000, tune=700,
                          chains=2, seed=6, progressbar=False)
    a, b = ours["posterior"].to_dataset(), ref["posterior"].to_dataset()
    for name in ("h2", "sigma_g2"):
        mcse = np.hypot(float(azs.mcse(a[name].values)), float(azs.mcse(b[name].values)))
        gap = abs(float(a[name].mean()) - float(b[name].mean()))
        assert gap < 4 * mcse, (name, gap, mcse)
    # refused: the exact posterior under another prior on h2 is told apart
    other = bayeslmm.posterior_h2_quadrature(dec, y, X, priors={"h2": "Beta(8, 2)",
                                                                 "Vp": "Jeffreys()"})
    mcse = float(azs.mcse(a["h2"].values))
    assert abs(float(a["h2"].mean()) - float(other["mean"])) > 4 * mcse


def _example():
    spec = importlib.util.spec_from_file_location(
        "pymc_grm_hierarchy", ROOT / "examples" / "pymc_grm_hierarchy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_example_user_hierarchy_samples_without_divergences():
    """The example (cage effects of the user's own with the GRM term), with PyMC's sampler:
    no divergence, and the truth inside the posterior's 99% intervals."""
    out = _example().main(["--n", "100", "--cages", "8", "--draws", "400", "--tune", "400",
                           "--sampler", "pymc"])
    assert out["divergences"] == 0
    post = out["idata"]["posterior"]
    for name in ("h2", "Vp", "tau"):
        lo, hi = np.quantile(post[name].values, [0.005, 0.995])
        assert lo < out["truth"][name] < hi, name
    assert float(post["tau"].mean()) > 0.2  # the cage effect is found, not shrunk away
    ll = out["idata"]["log_likelihood"]["y"]
    assert ll.shape[-1] == 100  # one LOO term per mouse
