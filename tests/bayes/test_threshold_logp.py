"""The hand-written threshold log-density (bayeslmm.bayes.compiled.threshold) against references.

Value: a direct scipy computation written from the model's definition (Beta prior on h2
with the logit Jacobian, standard-normal z, probit likelihood, the intercept's prior and
Jacobian); gradient and stored values: PyMC's compiled graph of the same model.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from bayeslmm.bayes.compiled.marginal import evaluate, expand
from bayeslmm.bayes.compiled.threshold import compile_threshold, supported
from bayeslmm.bayes.model_info import model_info
from bayeslmm.bayes.models.threshold import threshold

FAST = "FAST_COMPILE"


def _data(N=40, P=25, seed=1, covariates=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    y = (Z @ rng.normal(0, 0.2, P) + rng.standard_normal(N) > 0.5).astype(float)
    X = np.column_stack([np.ones(N), rng.normal(2.0, 3.0, (N, covariates))])
    return y, K, X


CASES = {
    "prevalence-full-rank": dict(N=40, P=200, kw=dict(prevalence=0.2)),
    "prevalence-low-rank-beta25": dict(N=40, P=25, kw=dict(prevalence=0.05,
                                                           priors={"h2": "Beta(2, 5)"})),
    "free-intercept-covariates": dict(N=35, P=60, covariates=2,
                                      kw=dict(priors={"intercept": "Normal(0.3, 2)"})),
}


def _split(model, x):
    info = model_info(model)
    r, Mx = info.decomposition.rank, info.data.M - 1
    free_mu = info.prevalence is None
    point = {"h2_logodds__": x[0], "g_raw": x[1:1 + r]}
    k = 1 + r
    if free_mu:
        point["intercept_std"] = x[k]
        k += 1
    if Mx:
        point["beta_x"] = x[k:k + Mx]
    return point


def _direct(model, x):
    """log p at the unconstrained point, from the model's definition (scipy)."""
    info = model_info(model)
    dec, data = info.decomposition, info.data
    p = _split(model, x)
    h2 = special.expit(p["h2_logodds__"])
    pri = info.priors["h2"].params
    lp = stats.beta.logpdf(h2, pri["alpha"], pri["beta"]) + np.log(h2 * (1 - h2))
    sg = h2 / (1 - h2)
    sd_l = np.sqrt(1 + sg)
    z = p["g_raw"]
    lp += stats.norm.logpdf(z).sum()
    if info.prevalence is None:
        mu = p["intercept_std"] * sd_l
        ip = info.priors["intercept"].params
        lp += stats.norm.logpdf(mu, ip["mu"], ip["sigma"]) + np.log(sd_l)
    else:
        mu = stats.norm.ppf(info.prevalence) * sd_l
    eta = mu + dec.U @ (np.sqrt(sg * dec.S) * z)
    if "beta_x" in p:
        Xo = data.X[:, 1:]
        sd = Xo.std(axis=0)
        eta = eta + (Xo - Xo.mean(0)) @ p["beta_x"]
        lp += stats.norm.logpdf(p["beta_x"], 0, 1 / sd).sum()
    return lp + stats.norm.logcdf(np.where(data.y == 1, eta, -eta)).sum()


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_value_gradient_and_stored_values(case):
    c = CASES[case]
    y, K, X = _data(c["N"], c["P"], covariates=c.get("covariates", 0))
    model = threshold(y, K, X, **c["kw"])
    assert supported(model) is None
    compiled = compile_threshold(model)
    dlogp = model.compile_dlogp(jacobian=True, mode=FAST)
    uv = model.unobserved_value_vars
    fn = model.compile_fn(uv, inputs=model.value_vars, on_unused_input="ignore",
                          point_fn=False, mode=FAST)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.normal(scale=1.2, size=compiled._n_dim)
        lp, g = evaluate(compiled, x)
        assert lp == pytest.approx(_direct(model, x), rel=1e-10, abs=1e-8)
        point = _split(model, x)
        np.testing.assert_allclose(g, dlogp(point), rtol=1e-8, atol=1e-8)
        ours = expand(compiled, x)
        ref = fn(*[point[v.name] for v in model.value_vars])
        assert list(ours) == [v.name for v in uv]
        for v, val in zip(uv, ref, strict=True):
            np.testing.assert_allclose(ours[v.name], val, rtol=1e-10, atol=1e-12,
                                       err_msg=v.name)


def test_models_not_covered_fall_back():
    y, K, _ = _data()
    assert "link" in supported(threshold(y, K, link="logit"))
    assert "prior on the prevalence" in supported(threshold(y, K, prevalence="Beta(2, 20)"))
    assert "prior" in supported(threshold(y, K, priors={"h2": "Uniform(0.1, 0.9)"}))
    assert compile_threshold(threshold(y, K, link="logit")) is None


def test_extreme_point_is_rejected_not_nan():
    """Far in the tail (h2 -> 1, large z) log Phi underflows to -inf: nutpie is told to
    reject the step (code 4), as PyMC's graph gives -inf there too."""
    y, K, _ = _data()
    compiled = compile_threshold(threshold(y, K, prevalence=0.2))
    x = np.zeros(compiled._n_dim)
    lp, g = evaluate(compiled, x)
    assert np.isfinite(lp) and np.all(np.isfinite(g))
    x[0], x[1:] = 30.0, 5.0
    lp, _ = evaluate(compiled, x)
    assert not np.isfinite(lp) or lp < -1e3
