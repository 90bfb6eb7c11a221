"""Prediction from the sparse priors (bayes/sparse/predict.py, docs/sparse-priors.md eqs. S15,
S16) against exhaustive enumeration through Henderson's mixed-model equations.

For each of the 2^P models S (P = 4), E(beta, b_S | S, y) solves the joint equations
[X'X, X'Z_S; Z_S'X, Z_S'Z_S + lambda I] [beta; b_S] = [X'y; Z_S'y] (numpy.linalg.solve; not
the projection the sampler uses), and the model's weight is its restricted likelihood (the
contrasts Q_2'y, scipy) times its prior. The posterior means of beta and of the training
samples' genetic values and phenotypes must match within the Monte Carlo error the effects
carry (each within 4 MCSE, summed with the weights that map them: a conservative bound)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import linalg, stats

from bayeslmm.bayes.sparse.bayesc import bayesc
from bayeslmm.bayes.sparse.bayesr import bayesr
from bayeslmm.bayes.sparse.predict import sparse_predict
from bayeslmm.errors import InputError

N, P = 50, 4
PI, SIGMA_B2, SIGMA_E2 = 0.3, 0.2, 1.0


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(16)
    G = rng.binomial(2, [0.2, 0.3, 0.4, 0.5], size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = X @ [3.0, 0.8] + Z @ [0.5, 0.0, -0.2, 0.0] + rng.standard_normal(N)
    return y, Z, X


@pytest.fixture(scope="module")
def exact(problem):
    y, Z, X = problem
    Q2 = linalg.null_space(X.T)
    yt, Zt = Q2.T @ y, Q2.T @ Z
    lam = SIGMA_E2 / SIGMA_B2
    lw, betas, bs = [], [], []
    for mask in itertools.product([0, 1], repeat=P):
        S = np.flatnonzero(mask)
        cov = SIGMA_E2 * np.eye(yt.size) + SIGMA_B2 * Zt[:, S] @ Zt[:, S].T
        lw.append(stats.multivariate_normal(np.zeros(yt.size), cov).logpdf(yt)
                  + S.size * np.log(PI) + (P - S.size) * np.log1p(-PI))
        W = np.column_stack([X, Z[:, S]])
        C = W.T @ W + np.diag(np.r_[np.zeros(X.shape[1]), np.full(S.size, lam)])
        sol = np.linalg.solve(C, W.T @ y)  # Henderson's mixed-model equations
        b = np.zeros(P)
        b[S] = sol[X.shape[1]:]
        betas.append(sol[:X.shape[1]])
        bs.append(b)
    w = np.exp(np.array(lw) - max(lw))
    w /= w.sum()
    return w @ np.array(betas), w @ np.array(bs)


@pytest.fixture(scope="module")
def run(problem):
    y, Z, X = problem
    return bayesc(y, Z, X, pi=PI, sigma_b2=SIGMA_B2, sigma_e2=SIGMA_E2, draws=3000, tune=100,
                  chains=4, seed=16, check=False)


def test_beta_mean_equals_enumeration_of_the_mixed_model_equations(problem, exact, run):
    y, Z, X = problem
    beta_exact, b_exact = exact
    mcse = run["snp_summary"]["effect_mcse"].to_numpy()
    H = np.linalg.lstsq(X, Z, rcond=None)[0]  # beta moves by -H db when b moves by db
    bound = 4 * np.abs(H) @ mcse
    beta = run["fixed_effects"]["beta_mean"].to_numpy()
    assert np.all(np.abs(beta - beta_exact) < bound), (beta, beta_exact, bound)
    assert list(run["fixed_effects"]["covariate"].values) == ["intercept", "x1"]
    # the refused direction: least squares of y on X alone (Z b left in the residual)
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.any(np.abs(ols - beta_exact) > bound)


def test_training_samples_predicted_as_new_give_the_posterior_means(problem, exact, run):
    y, Z, X = problem
    beta_exact, b_exact = exact
    mcse = run["snp_summary"]["effect_mcse"].to_numpy()
    H = np.linalg.lstsq(X, Z, rcond=None)[0]
    pred = sparse_predict(run, Z, X)
    g_bound = 4 * np.abs(Z) @ mcse
    assert np.all(np.abs(pred["g"].to_numpy() - Z @ b_exact) < g_bound)
    y_bound = 4 * np.abs(Z - X @ H) @ mcse  # y_hat = X beta0 + (Z - X H) E(b | y)
    assert np.all(np.abs(pred["y_hat"].to_numpy() - (X @ beta_exact + Z @ b_exact)) < y_bound)
    assert list(pred["sample"].values) == [str(i) for i in range(N)]


def test_new_samples_and_refusals(problem, run):
    y, Z, X = problem
    pred = sparse_predict(run, Z[:3], X[:3], samples=["a", "b", "c"])
    assert list(pred["sample"].values) == ["a", "b", "c"]
    with pytest.raises(InputError, match="X_new is needed"):
        sparse_predict(run, Z[:3])
    with pytest.raises(InputError, match="expected \\(3, 2\\)"):
        sparse_predict(run, Z[:3], X[:3, :1])
    with pytest.raises(InputError, match="4 columns"):
        sparse_predict(run, Z[:3, :2], X[:3])
    # an intercept-only BayesR fit needs no X_new
    tree = bayesr(y, Z, draws=20, tune=0, chains=1, batches=2, check=False)
    assert sparse_predict(tree, Z[:2]).sizes == {"sample": 2}
