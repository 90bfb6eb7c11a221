"""The bambi recipe of docs/pymc.md: bambi's formula builds the mean (an intercept, a slope and
a cage effect with its own prior), bayeslmm's GRMNormal is the likelihood, through a bambi
custom family. Evidence: the model bambi builds has the log-density of bambi's own priors plus
the dense N(mu, sigma_g2 K + sigma_e2 I) of y (scipy) at random points, and its per-sample
terms are the exact leave-one-out densities of the partitioned dense covariance.

bambi is not a test dependency (docs/pymc.md says why): without it this module is skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal, norm

import bayeslmm
from bayeslmm.pymc import GRMNormal

bmb = pytest.importorskip("bambi")

N, C = 40, 4


def _recipe(df, dec):
    """The code of docs/pymc.md's bambi paragraph."""
    def grm_normal(name, mu, sigma_g2, sigma_e2, observed=None, dims=None, **kwargs):
        return GRMNormal(name, decomposition=dec, mu=mu, sigma_g2=sigma_g2,
                         sigma_e2=sigma_e2, observed=observed, dims=dims)

    likelihood = bmb.Likelihood("GRMNormal", params=["mu", "sigma_g2", "sigma_e2"],
                                parent="mu", dist=grm_normal)
    family = bmb.Family("grm", likelihood,
                        {"mu": "identity", "sigma_g2": "log", "sigma_e2": "log"})
    return bmb.Model("y ~ x + (1|cage)", df, family=family,
                     priors={"sigma_g2": bmb.Prior("HalfNormal", sigma=2),
                             "sigma_e2": bmb.Prior("HalfNormal", sigma=2)})


def test_the_bambi_recipe_is_the_dense_model():
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((N, 60))
    K = Z @ Z.T / 60
    cage = rng.integers(0, C, N)
    x = rng.standard_normal(N)
    y = (1 + 0.5 * x + rng.multivariate_normal(np.zeros(N), 0.6 * K)
         + rng.normal(0, 0.5, C)[cage] + rng.normal(0, 0.7, N))
    df = pd.DataFrame({"y": y, "x": x, "cage": pd.Categorical([f"c{c}" for c in cage])})
    model = _recipe(df, bayeslmm.decompose(K))
    model.build()
    pmm = model.backend.model
    obs = pmm.observed_RVs[0]
    total = pmm.compile_logp()
    priors = pmm.compile_logp(vars=pmm.free_RVs)
    outs = pmm.replace_rvs_by_values([pmm["mu"], pmm["sigma_g2"], pmm["sigma_e2"]])
    parts = pmm.compile_fn([*outs, pmm.logp(vars=[obs], sum=False)[0]],
                           inputs=pmm.value_vars, on_unused_input="ignore")
    start = pmm.initial_point()
    for _ in range(3):
        pt = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
        mu, sg2, se2, loo = parts(pt)
        V = sg2 * K + se2 * np.eye(N)
        dense = multivariate_normal(mu, V).logpdf(y)
        np.testing.assert_allclose(total(pt), priors(pt) + dense, rtol=0, atol=1e-8)
        P = np.linalg.inv(V)  # p(y_i | y_-i): mean y_i - (P r)_i / P_ii, variance 1 / P_ii
        cond = norm(y - P @ (y - mu) / np.diag(P), 1 / np.sqrt(np.diag(P))).logpdf(y)
        np.testing.assert_allclose(loo, cond, rtol=0, atol=1e-8)
