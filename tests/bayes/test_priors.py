"""Prior specs: parsing (no eval), validation, defaults and the implied h2 prior."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pymc as pm
import pytest

from bayeslmm.bayes import implied_h2_prior, marginal_grm, parse_prior, parse_priors
from bayeslmm.bayes.priors import Prior, default_priors, plot_implied_h2_prior
from bayeslmm.errors import InputError


@pytest.mark.parametrize("text, family, params", [
    ("Beta(1, 1)", "Beta", {"alpha": 1.0, "beta": 1.0}),
    ("HalfNormal(2)", "HalfNormal", {"sigma": 2.0}),
    ("halfnormal(sigma=2.5)", "HalfNormal", {"sigma": 2.5}),
    ("InverseGamma(0.001, 0.001)", "InverseGamma", {"alpha": 0.001, "beta": 0.001}),
    ("Normal(-1, sigma=1e3)", "Normal", {"mu": -1.0, "sigma": 1000.0}),
    ("Exponential(scale=2)", "Exponential", {"lam": 0.5}),
    ("HalfStudentT(3, 1)", "HalfStudentT", {"nu": 3.0, "sigma": 1.0}),
    ("HalfCauchy(1)", "HalfCauchy", {"beta": 1.0}),
    ("Flat", "Flat", {}),
    ("Jeffreys()", "Jeffreys", {}),
])
def test_parse_prior(text, family, params):
    p = parse_prior(text)
    assert p.family == family and p.params == params
    assert parse_prior(str(p)) == p  # round trip through the printed form


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "Normal(1, x)", "Foo(1)", "Beta(1)", "Beta(1, 2, 3)",
    "HalfNormal(-1)", "Normal(mu=1, mu=2)", "Beta(1, beta=2, alpha=3)", "HalfNormal(1",
    "HalfNormal(sigma=[1])", "Uniform(1, 0)", "",
])
def test_bad_prior_strings(text):
    with pytest.raises(InputError):
        parse_prior(text)


def test_parse_priors_validation():
    out = parse_priors({"h2": "Beta(2, 2)", "Vp": "HalfNormal(1)"})
    assert out["h2"] == Prior("Beta", {"alpha": 2.0, "beta": 2.0})
    with pytest.raises(InputError, match="unknown parameter 'sigma_a2'"):
        parse_priors({"sigma_a2": "HalfNormal(1)"})
    with pytest.raises(InputError, match="mix"):
        parse_priors({"h2": "Beta(1, 1)", "sigma_g2": "HalfNormal(1)"})
    with pytest.raises(InputError, match="positive"):
        parse_priors({"sigma_g2": "Normal(0, 1)"})
    with pytest.raises(InputError, match="unit"):
        parse_priors({"h2": "HalfNormal(1)"})
    with pytest.raises(InputError):
        parse_priors({"beta": 3})


def test_defaults_are_the_table_scaled_to_data(rng):
    # DEFAULT_PRIORS["linear"]: h2 ~ Beta(1, 1), Vp ~ HalfNormal(2.5 var(y)), beta flat
    y = rng.normal(10, 3, 200)
    X = np.column_stack([np.ones(200), rng.normal(5, 2, 200)])
    pri = default_priors(None, y, X)
    assert pri.parameterisation == "h2"
    assert pri["Vp"].params["sigma"] == pytest.approx(2.5 * np.var(y, ddof=1))
    assert str(pri["h2"]) == "Beta(alpha=1, beta=1)" and pri["beta"].family == "Flat"
    assert pri.beta_mu.size == 0
    pri2 = default_priors({"sigma_g2": "InverseGamma(1, 1)"}, y, X)
    assert pri2.parameterisation == "variances" and pri2["sigma_e2"].family == "HalfNormal"


def test_implied_h2_prior():
    flat = implied_h2_prior({"h2": "Beta(1, 1)"}, n=20000, seed=1)
    assert abs(flat.mean() - 0.5) < 0.01 and abs(flat.std() - np.sqrt(1 / 12)) < 0.01
    # Two vague inverse gammas push h2 to the ends: the textbook surprise this tool shows.
    ig = implied_h2_prior({"sigma_g2": "InverseGamma(0.001, 0.001)",
                           "sigma_e2": "InverseGamma(0.001, 0.001)"}, n=20000, seed=1)
    assert np.mean((ig < 0.05) | (ig > 0.95)) > 0.8
    # Equal half-normals: symmetric about 1/2 but not flat: (sigma_g2, sigma_e2) has a uniform
    # angle, so h2 = tan/(1 + tan) piles up in the middle (density 4/pi at 1/2, 2/pi at 0).
    hn = implied_h2_prior({"sigma_g2": "HalfNormal(1)", "sigma_e2": "HalfNormal(1)"},
                          n=40000, seed=2)
    assert abs(hn.mean() - 0.5) < 0.01 and hn.std() < np.sqrt(1 / 12) - 0.02
    with pytest.raises(InputError, match="improper"):
        implied_h2_prior({"sigma_g2": "Jeffreys()"})
    ax = plot_implied_h2_prior({"h2": "Beta(2, 5)"}, seed=0)
    assert ax.get_xlabel() == "$h^2$"


def test_pymc_distribution_and_callable_priors(small):
    y, K, X, Z, g = small
    m = marginal_grm(y, K, X, priors={"h2": pm.Beta.dist(2.0, 3.0),
                                      "Vp": lambda name, **kw: pm.Gamma(name, 2.0, 1.0, **kw)})
    # beta is sampled through beta_z (non-centred on its conditional posterior).
    assert {v.name for v in m.free_RVs} == {"beta_z", "h2", "Vp"}
    lp = m.compile_logp(vars=[m["h2"]], jacobian=False)
    pt = m.initial_point()
    h = 1 / (1 + np.exp(-pt["h2_logodds__"]))
    from scipy import stats

    assert lp(pt) == pytest.approx(stats.beta.logpdf(h, 2, 3))


def test_describe_prints_the_beta_prior_as_used():
    # The default beta prior is the table's Flat(); a prior the user gave is shown as given.
    from bayeslmm.bayes.priors import default_priors

    y = np.array([1.0, 3.0, 2.0, 6.0])
    assert default_priors(None, y, np.ones((4, 1))).describe(["intercept"])["beta"] == "Flat()"
    assert default_priors({"beta": "Normal(0, 10)"}, y, np.ones((4, 1))).describe()[
        "beta"] == "Normal(mu=0, sigma=10)"
    assert default_priors({"beta": "Flat()"}, y, np.ones((4, 1))).describe()["beta"] == "Flat()"
