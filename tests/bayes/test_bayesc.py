"""BayesC (bayes/sparse/): the collapsed Gibbs sampler against exhaustive enumeration.

Evidence (docs/sparse-priors.md, "What it is checked against"): with P = 8 SNPs the
posterior over the 2^P models is computed exactly, each model's marginal likelihood a dense
Gaussian (scipy.stats.multivariate_normal) of the covariates' contrasts Q_2'y
(scipy.linalg.null_space), its posterior mean of b_S the ridge solution of notes eq. 58.
The sampler's PIPs and posterior mean effects must agree within 4 Monte Carlo SE (batch
means); the same sampler run with a wrong pi must not.
"""

from __future__ import annotations

import itertools

import arviz_stats as azs
import numpy as np
import pytest
from scipy import linalg, stats

from bayeslmm import registry
from bayeslmm.bayes.sparse.bayesc import bayesc
from bayeslmm.errors import InputError

N, P = 60, 8
SIGMA_B2, SIGMA_E2 = 0.15, 1.0
DRAWS, CHAINS = 4000, 4


@pytest.fixture(scope="module")
def problem():
    """Correlated SNPs (pairs in LD), two causal, an intercept and one covariate."""
    rng = np.random.default_rng(20240)
    latent = rng.standard_normal((N, P))
    latent[:, 1::2] = 0.7 * latent[:, 0::2] + 0.7 * latent[:, 1::2]  # LD within pairs
    G = (latent > -0.3).astype(float) + (latent > 0.9)  # allele counts 0, 1, 2
    Z = (G - G.mean(0)) / G.std(0)
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    b = np.zeros(P)
    b[[0, 5]] = [0.45, -0.3]
    y = X @ [1.0, 0.5] + Z @ b + rng.standard_normal(N)
    return y, Z, X


@pytest.fixture(scope="module")
def models(problem):
    """Every model S: |S|, log p(y | S) and E(b | S, y), on the contrasts Q_2'y."""
    y, Z, X = problem
    Q2 = linalg.null_space(X.T)
    yt, Zt = Q2.T @ y, Q2.T @ Z
    n = yt.size
    out = []
    for mask in itertools.product([0, 1], repeat=P):
        S = np.flatnonzero(mask)
        A = Zt[:, S]
        cov = SIGMA_E2 * np.eye(n) + SIGMA_B2 * A @ A.T
        ll = stats.multivariate_normal(np.zeros(n), cov).logpdf(yt)
        mean = np.zeros(P)
        if S.size:
            mean[S] = np.linalg.solve(A.T @ A + SIGMA_E2 / SIGMA_B2 * np.eye(S.size), A.T @ yt)
        out.append((S.size, ll, np.array(mask, float), mean))
    k, ll, masks, means = (np.array(v) for v in zip(*out, strict=True))
    return k, ll, masks, means


def _summaries(log_w, masks, means):
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    return w @ masks, w @ means


def exact_fixed_pi(models, pi):
    k, ll, masks, means = models
    return _summaries(ll + k * np.log(pi) + (P - k) * np.log1p(-pi), masks, means)


def exact_beta_pi(models, a, b):
    """pi integrated against its Beta(a, b) density on a 1-D grid (Gauss-Legendre)."""
    k, ll, masks, means = models
    x, wq = np.polynomial.legendre.leggauss(200)
    grid, wq = (x + 1) / 2, wq / 2
    prior = stats.beta(a, b).pdf(grid)
    lik_pi = np.exp(np.outer(k, np.log(grid)) + np.outer(P - k, np.log1p(-grid)))
    return _summaries(ll + np.log(lik_pi @ (wq * prior)), masks, means)


def z_scores(tree, pip, effect):
    s = tree["snp_summary"]
    return np.concatenate([(s["pip"].values - pip) / s["pip_mcse"].values,
                           (s["effect_mean"].values - effect) / s["effect_mcse"].values])


@pytest.fixture(scope="module")
def fixed_run(problem):
    y, Z, X = problem
    return bayesc(y, Z, X, pi=0.25, sigma_b2=SIGMA_B2, sigma_e2=SIGMA_E2, draws=DRAWS,
                  tune=200, chains=CHAINS, seed=11, check=False)


def test_pips_and_effects_equal_enumeration_with_fixed_hyperparameters(fixed_run, models):
    pip, effect = exact_fixed_pi(models, 0.25)
    assert 0.05 < pip.min() and pip.max() > 0.8  # an informative problem: not all 0 or 1
    z = z_scores(fixed_run, pip, effect)
    assert np.all(np.abs(z) < 4), z
    # and the errors are MC-sized, not hidden by a huge SE
    assert np.all(fixed_run["snp_summary"]["pip_mcse"].values < 0.01)


def test_a_wrong_pi_fails_the_enumeration_check(problem, models):
    """The refused direction: a sampler with a mis-specified prior (pi 0.5, not 0.25)."""
    y, Z, X = problem
    wrong = bayesc(y, Z, X, pi=0.5, sigma_b2=SIGMA_B2, sigma_e2=SIGMA_E2, draws=1000,
                   tune=100, chains=CHAINS, seed=12, check=False)
    pip, effect = exact_fixed_pi(models, 0.25)
    assert np.abs(z_scores(wrong, pip, effect)).max() > 4
    # while the enumeration at the pi it was given agrees with it
    pip, effect = exact_fixed_pi(models, 0.5)
    assert np.abs(z_scores(wrong, pip, effect)).max() < 4


@pytest.mark.parametrize("a,b", [(2.0, 6.0)])
def test_pips_equal_enumeration_with_pi_integrated_over_its_beta_prior(problem, models, a, b):
    y, Z, X = problem
    tree = bayesc(y, Z, X, pi=(a, b), sigma_b2=SIGMA_B2, sigma_e2=SIGMA_E2, draws=DRAWS,
                  tune=200, chains=CHAINS, seed=13, check=False)
    pip, effect = exact_beta_pi(models, a, b)
    assert np.abs(z_scores(tree, pip, effect)).max() < 4
    # the refused direction: the same check against the mirrored prior Beta(b, a) fails
    pip_w, effect_w = exact_beta_pi(models, b, a)
    assert np.abs(z_scores(tree, pip_w, effect_w)).max() > 4
    # pi's posterior mean is the enumeration's: pi | S ~ Beta(a + |S|, b + P - |S|), so
    # E(pi | y) = sum_S w_S (a + |S|) / (a + b + P), w_S from the beta-binomial prior of |S|
    k, ll, *_ = models
    log_w = ll + stats.betabinom(P, a, b).logpmf(k) - np.log(stats.binom(P, 0.5).pmf(k)) \
        - P * np.log(0.5)  # the beta-binomial spread over the comb(P, k) models of size k
    w = np.exp(log_w - log_w.max())
    exact = w @ ((a + k) / (a + b + P)) / w.sum()
    pi = tree["posterior"]["pi"]
    se = float(azs.mcse(tree, var_names=["pi"], method="mean")["pi"])
    assert abs(float(pi.mean()) - exact) < 4 * se


def test_the_tree_holds_the_posterior_and_per_snp_summaries(fixed_run):
    post = fixed_run["posterior"]
    assert set(post.data_vars) == {"pi", "sigma_b2", "sigma_e2", "pve", "n_included"}
    assert post.sizes == {"chain": CHAINS, "draw": DRAWS}
    assert np.all(post["pi"].values == 0.25) and np.all(post["sigma_e2"].values == SIGMA_E2)
    pve = post["pve"].values
    assert np.all((pve >= 0) & (pve < 1))
    assert set(np.unique(post["n_included"].values)) <= set(range(P + 1))
    assert fixed_run["snp_summary"].sizes == {"variant": P}
    assert fixed_run.attrs["model_family"] == "bayesc"


def test_same_seed_same_draws_another_seed_other_draws(problem):
    y, Z, X = problem
    runs = [bayesc(y, Z, X, draws=50, tune=10, chains=2, seed=s, batches=5, check=False)
            for s in (3, 3, 4)]
    a, b, c = (r["posterior"]["sigma_e2"].values for r in runs)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # the chains differ


def test_registered_as_a_family_without_pymc():
    import bayeslmm.bayes.models  # noqa: F401

    fam = registry.model_family("bayesc")
    assert fam.build is bayesc and fam.kinds == ("bayesc",)
    assert registry.family_for_kind("bayesc") is fam
    assert "prevalence" not in fam.options and "seed" in fam.options


@pytest.mark.parametrize("kw,message", [
    ({"pi": 0.0}, "strictly between 0 and 1"),
    ({"pi": (1.0, -1.0)}, "Beta prior"),
    ({"sigma_b2": -1.0}, "sigma_b2 must be a positive number"),
    ({"sigma_b2": (0.0, 1.0)}, "nu > 0"),
    ({"sigma_e2": (1.0, 2.0, 3.0)}, "(nu, s2) pair"),
    ({"seed": -1}, "seed must be an integer"),
    ({"draws": 0}, "draws must be an integer >= 1"),
    ({"draws": 4, "batches": 5}, "batches (5) cannot exceed draws (4)"),
])
def test_bad_arguments_are_refused_in_one_line(problem, kw, message):
    y, Z, X = problem
    args = {"draws": 10, "tune": 0, "chains": 1, "batches": 2, **kw}
    with pytest.raises(InputError, match=None) as err:
        bayesc(y, Z, X, **args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_genotypes_are_refused_and_good_ones_accepted(problem):
    y, Z, X = problem
    bad = Z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        bayesc(y, bad, X, draws=10, tune=0, chains=1, batches=2)
    with pytest.raises(InputError, match="rows but y has"):
        bayesc(y, Z[:-1], X, draws=10, tune=0, chains=1, batches=2)
    tree = bayesc(y, Z, X, draws=10, tune=0, chains=1, batches=2, check=False)
    assert np.isfinite(tree["snp_summary"]["pip"].values).all()


def exact_free_sigma_e2(problem, pi, extra_dof=0):
    """PIPs, effects and E(sigma_e2 | y) with sigma_e2 under p ∝ 1/sigma_e2, integrated on a
    grid in log sigma_e2 (where that prior is flat). Each model's Gaussian is evaluated
    through the eigenvalues mu_i of A'A (A = Q_2'Z_S): log|sigma_e2 I + sigma_b2 A A'| =
    n log sigma_e2 + sum log(1 + sigma_b2 mu_i / sigma_e2), and the quadratic form by
    Woodbury (checked against scipy at one point). ``extra_dof`` counts the contrasts as
    n + extra_dof values: the wrong degrees of freedom of a sampler that forgot the
    covariates took M of them."""
    y, Z, X = problem
    Q2 = linalg.null_space(X.T)
    yt, Zt = Q2.T @ y, Q2.T @ Z
    n = yt.size + extra_dof
    s2 = np.exp(np.linspace(np.log(0.2), np.log(5.0), 600))
    lw, effs, out_masks = [], [], []
    for mask in itertools.product([0, 1], repeat=P):
        S = np.flatnonzero(mask)
        A = Zt[:, S]
        mu, V = np.linalg.eigh(A.T @ A) if S.size else (np.zeros(0), np.zeros((0, 0)))
        u = V.T @ (A.T @ yt)
        lam = s2 / SIGMA_B2
        logdet = n * np.log(s2) + np.log1p(SIGMA_B2 * mu[None, :] / s2[:, None]).sum(1)
        quad = (yt @ yt - ((u**2)[None, :] / (lam[:, None] + mu[None, :])).sum(1)) / s2
        ll = -0.5 * (logdet + quad) + S.size * np.log(pi) + (P - S.size) * np.log1p(-pi)
        mean = np.zeros((s2.size, P))
        if S.size:
            mean[:, S] = (u[None, :] / (lam[:, None] + mu[None, :])) @ V.T
        lw.append(ll)
        effs.append(mean)
        out_masks.append(np.array(mask, float))
        if S.size == 2 and extra_dof == 0:  # the Woodbury forms against scipy, once
            ref = stats.multivariate_normal(
                np.zeros(n), s2[7] * np.eye(n) + SIGMA_B2 * A @ A.T).logpdf(yt)
            assert np.isclose(-0.5 * (logdet[7] + quad[7]) - n / 2 * np.log(2 * np.pi), ref)
    lw = np.array(lw)  # (models, grid): the grid is uniform in log sigma_e2
    w = np.exp(lw - lw.max())
    w /= w.sum()
    pip = w.sum(1) @ np.array(out_masks)
    effect = np.einsum("mg,mgp->p", w, np.array(effs))
    return pip, effect, float(w.sum(0) @ s2)


def test_free_sigma_e2_equals_enumeration_on_a_grid_with_n_minus_m_dof(problem):
    """S14 with the covariates' M degrees of freedom taken off; the refused direction: the
    same reference with N - M + 2 values (covariates not counted) is far off."""
    y, Z, X = problem
    tree = bayesc(y, Z, X, pi=0.25, sigma_b2=SIGMA_B2, sigma_e2=(0.0, 0.0), draws=DRAWS,
                  tune=200, chains=CHAINS, seed=14, check=False)
    pip, effect, se2 = exact_free_sigma_e2(problem, 0.25)
    assert np.abs(z_scores(tree, pip, effect)).max() < 4
    post = tree["posterior"]["sigma_e2"]
    mcse = float(azs.mcse(tree, var_names=["sigma_e2"], method="mean")["sigma_e2"])
    assert abs(float(post.mean()) - se2) < 4 * mcse
    _, _, se2_wrong = exact_free_sigma_e2(problem, 0.25, extra_dof=X.shape[1])
    assert abs(float(post.mean()) - se2_wrong) > 4 * mcse
