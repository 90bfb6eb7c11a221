"""Each builder's log-density equals a dense reference at random points (scipy MvNormal +
the priors' logp), and the forms that describe the same model agree."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

import bayeslmm
from bayeslmm.bayes import fixed_effects, marginal_grm, random_effects
from bayeslmm.errors import InputError

from .conftest import to_values

# Small graphs: PyTensor's Python implementations beat compiling them (seconds each).
FAST = "FAST_COMPILE"

PRI = {"h2": "Beta(2, 3)", "Vp": "InverseGamma(3, 2)", "beta": "Normal(0, 5)"}
PRI_VAR = {"sigma_g2": "HalfNormal(1.5)", "sigma_e2": "HalfStudentT(4, 1)",
           "beta": "Normal(1, 10)"}


_COMPILED: dict = {}


def _logp(model, natural):
    # One compilation per model (each costs seconds), kept with the model it belongs to.
    hit = _COMPILED.get(id(model))
    if hit is None or hit[0] is not model:
        hit = _COMPILED[id(model)] = (model, model.compile_logp(jacobian=False, mode=FAST))
    return float(hit[1](to_values(model, natural)))


def _points(rng, M, n=3):
    for _ in range(n):
        yield {"h2": rng.uniform(0.05, 0.95), "Vp": rng.uniform(0.5, 2.0),
               "beta": rng.normal(0, 2, M)}


def test_marginal_logp_equals_dense(small, rng):
    y, K, X, Z, g = small
    N, M = X.shape
    m = marginal_grm(y, K, X, priors=PRI, beta_param="direct")
    for p in _points(rng, M):
        V = p["Vp"] * (p["h2"] * K + (1 - p["h2"]) * np.eye(N))
        ref = (stats.multivariate_normal(X @ p["beta"], V).logpdf(y)
               + stats.beta.logpdf(p["h2"], 2, 3) + stats.invgamma.logpdf(p["Vp"], 3, scale=2)
               + stats.norm.logpdf(p["beta"], 0, 5).sum())
        assert _logp(m, p) == pytest.approx(ref, rel=1e-10, abs=1e-8)


def test_marginal_variances_parameterisation(small, rng):
    y, K, X, Z, g = small
    m = marginal_grm(y, K, X, priors=PRI_VAR, beta_param="direct")
    for _ in range(3):
        sg, se, b = rng.uniform(0.1, 2), rng.uniform(0.1, 2), rng.normal(0, 1, 2)
        V = sg * K + se * np.eye(len(y))
        ref = (stats.multivariate_normal(X @ b, V).logpdf(y) + stats.halfnorm.logpdf(sg, 0, 1.5)
               + np.log(2) + stats.t.logpdf(se, 4, 0, 1) + stats.norm.logpdf(b, 1, 10).sum())
        assert _logp(m, {"sigma_g2": sg, "sigma_e2": se, "beta": b}) == pytest.approx(ref)


def test_low_rank_thin_svd_and_decomposition_agree(rng):
    """K = ZZ'/P with P < N: the thin SVD path (complement term) equals dense and full K."""
    N, P = 80, 25
    Z = rng.standard_normal((N, P))
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = X @ [1.0, -1.0] + Z @ rng.normal(0, 0.2, P) + rng.standard_normal(N)
    m_z = marginal_grm(y, X=X, Z=Z, priors=PRI, beta_param="direct")
    m_k = marginal_grm(y, K, X, priors=PRI, beta_param="direct")
    m_d = marginal_grm(y, X=X, decomposition=bayeslmm.decompose_genotypes(Z), priors=PRI,
                       beta_param="direct")
    assert "y_null" in m_z.named_vars and m_z.coords["eigen"].__len__() == P
    for p in _points(rng, 2):
        V = p["Vp"] * (p["h2"] * K + (1 - p["h2"]) * np.eye(N))
        ll = stats.multivariate_normal(X @ p["beta"], V).logpdf(y)
        lz, lk, ld = _logp(m_z, p), _logp(m_k, p), _logp(m_d, p)
        assert lz == pytest.approx(lk, rel=1e-9) and lz == pytest.approx(ld, rel=1e-9)
        prior = (stats.beta.logpdf(p["h2"], 2, 3) + stats.invgamma.logpdf(p["Vp"], 3, scale=2)
                 + stats.norm.logpdf(p["beta"], 0, 5).sum())
        assert lz == pytest.approx(ll + prior, rel=1e-9)


def test_marginal_matches_spectral_ml(sim300, rng):
    """The sampled model's likelihood is SpectralLMM's ML log-likelihood (eq. 48)."""
    y, K, X, Z, fit = sim300
    m = marginal_grm(y, fit.decomposition, X, priors={**PRI, "beta": "Flat()"},
                     beta_param="direct")
    ll = m.compile_fn(m.datalogp, inputs=m.value_vars, mode=FAST)
    for p in _points(rng, 2):
        vals = to_values(m, p)
        ref = fit.model.loglik(p["h2"] * p["Vp"], (1 - p["h2"]) * p["Vp"], reml=False,
                               beta=p["beta"])
        assert float(ll(vals)) == pytest.approx(ref, rel=1e-10)


def test_random_effects_logp_and_marginal_identity(small, rng):
    """Dense check, and log p(y) = log p(y|b) + log p(b) - log p(b|y) (eq. 58) links the
    explicit model to the marginal one."""
    y, K, X, Z, g = small
    N, P = Z.shape
    m = random_effects(y, X, Z, priors=PRI)
    mm = marginal_grm(y, K, X, priors=PRI, beta_param="direct")
    for p in _points(rng, 2):
        z = rng.standard_normal(P)
        sg, se = p["h2"] * p["Vp"], (1 - p["h2"]) * p["Vp"]
        b = np.sqrt(sg / P) * z
        cond = stats.norm.logpdf(y, X @ p["beta"] + Z @ b, np.sqrt(se)).sum()
        prior = (stats.beta.logpdf(p["h2"], 2, 3) + stats.invgamma.logpdf(p["Vp"], 3, scale=2)
                 + stats.norm.logpdf(p["beta"], 0, 5).sum())
        ref = cond + stats.norm.logpdf(z).sum() + prior
        assert _logp(m, {**p, "b_raw": z}) == pytest.approx(ref, rel=1e-10)
        # eq. 58: b | y ~ N(Xi Z'r / se, Xi), Xi = (P/sg I + Z'Z/se)^-1
        Xi = np.linalg.inv(P / sg * np.eye(P) + Z.T @ Z / se)
        mean = Xi @ Z.T @ (y - X @ p["beta"]) / se
        log_b_prior = stats.norm.logpdf(b, 0, np.sqrt(sg / P)).sum()
        log_b_post = stats.multivariate_normal(mean, Xi).logpdf(b)
        marginal = cond + log_b_prior - log_b_post
        assert marginal + prior == pytest.approx(_logp(mm, p), rel=1e-9)


def test_fixed_effects_logp(small, rng):
    y, K, X, Z, g = small
    m = fixed_effects(y, X, priors={"sigma_e2": "InverseGamma(2, 1)", "beta": "Normal(0, 3)"})
    for _ in range(3):
        se, b = rng.uniform(0.2, 3), rng.normal(0, 1, 2)
        ref = (stats.norm.logpdf(y, X @ b, np.sqrt(se)).sum()
               + stats.invgamma.logpdf(se, 2, scale=1) + stats.norm.logpdf(b, 0, 3).sum())
        assert _logp(m, {"sigma_e2": se, "beta": b}) == pytest.approx(ref, rel=1e-9)


def test_several_kernels_dense_path(small, rng):
    y, K, X, Z, g = small
    K2 = np.kron(np.eye(12), np.ones((10, 10)))  # group (e.g. cage) indicators
    m = marginal_grm(y, [K, K2], X, priors=PRI_VAR, component_names=["grm", "cage"])
    assert list(m.coords["component"]) == ["grm", "cage"]
    sg, se, b = np.array([0.4, 0.2]), 0.5, np.array([1.0, 2.0])
    V = sg[0] * K + sg[1] * K2 + se * np.eye(len(y))
    ref = (stats.multivariate_normal(X @ b, V).logpdf(y)
           + stats.halfnorm.logpdf(sg, 0, 1.5).sum() + np.log(2)
           + stats.t.logpdf(se, 4, 0, 1) + stats.norm.logpdf(b, 1, 10).sum())
    assert _logp(m, {"sigma_g2": sg, "sigma_e2": se, "beta": b}) == pytest.approx(ref)
    # With the second variance at 0, the dense path equals the spectral one.
    m1 = marginal_grm(y, K, X, priors=PRI_VAR, beta_param="direct")
    l1 = m1.compile_fn(m1.datalogp, inputs=m1.value_vars, mode=FAST)
    l2 = m.compile_fn(m.datalogp, inputs=m.value_vars, mode=FAST)
    v1 = to_values(m1, {"sigma_g2": 0.4, "sigma_e2": se, "beta": b})
    v2 = to_values(m, {"sigma_g2": np.array([0.4, 1e-300]), "sigma_e2": se, "beta": b})
    assert float(l1(v1)) == pytest.approx(float(l2(v2)), rel=1e-10)
    # several kernels: the shares of Vp have the Dirichlet prior, so h2 takes none
    with pytest.raises(InputError, match="give a prior on Vp, not on h2"):
        marginal_grm(y, [K, K2], X, priors={"h2": "Beta(1, 1)"})


def test_builder_input_errors(small):
    y, K, X, Z, g = small
    with pytest.raises(InputError, match="unknown parameter"):
        marginal_grm(y, K, X, priors={"sigma": "HalfNormal(1)"})
    with pytest.raises(InputError):
        marginal_grm(y, K[:10], X)
    with pytest.raises(InputError, match="Z"):
        random_effects(y, X)
    with pytest.raises(InputError, match="not both"):
        marginal_grm(y, K, X, Z=Z)
    assert special.expit(0) == 0.5  # keeps the import used


@pytest.mark.parametrize("beta_prior", ["Normal(0, 5)", "Flat()", "StudentT(3, 0, 4)"])
def test_conditional_beta_is_the_same_model(small, rng, beta_prior):
    """beta = E(beta | variances, y) + L^-T z: density in (z, variances) equals the direct
    density at the mapped beta plus log|L^-T| (an affine change of variables)."""
    y, K, X, Z, g = small
    N, M = X.shape
    pri = {**PRI, "beta": beta_prior}
    direct = marginal_grm(y, K, X, priors=pri, beta_param="direct")
    cond = marginal_grm(y, K, X, priors=pri)
    assert "beta_z" in [rv.name for rv in cond.free_RVs]
    beta_graph = cond.replace_rvs_by_values([cond["beta"]])[0]
    beta_of = cond.compile_fn(beta_graph, inputs=cond.value_vars, on_unused_input="ignore",
                               mode=FAST)
    logp_cond = cond.compile_logp(jacobian=False, mode=FAST)
    logp_direct = direct.compile_logp(jacobian=False, mode=FAST)
    for p in _points(rng, M):
        z = rng.normal(size=M)
        point = to_values(cond, {"h2": p["h2"], "Vp": p["Vp"], "beta_z": z})
        beta = np.asarray(beta_of(point))
        V = p["Vp"] * (p["h2"] * K + (1 - p["h2"]) * np.eye(N))
        Vi = np.linalg.inv(V)
        A = X.T @ Vi @ X
        if beta_prior.startswith("Normal"):
            A = A + np.eye(M) / 25
            mean = np.linalg.solve(A, X.T @ Vi @ y)
        else:
            mean = np.linalg.solve(A, X.T @ Vi @ y)
        L = np.linalg.cholesky(A)
        np.testing.assert_allclose(beta, mean + np.linalg.solve(L.T, z), rtol=1e-8)
        log_jac = -np.log(np.diag(L)).sum()
        want = float(logp_direct(to_values(direct, {"h2": p["h2"], "Vp": p["Vp"],
                                                     "beta": beta}))) + log_jac
        got = float(logp_cond(point))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-7)


def test_conditional_beta_many_covariates_uses_lapack_path(rng):
    """More covariates than SMALL_M: the LAPACK-based branch defines the same beta map."""
    from bayeslmm.bayes.models.marginal import SMALL_M

    N, M = 60, SMALL_M + 2
    Z = rng.standard_normal((N, 100))
    K = Z @ Z.T / 100
    X = np.column_stack([np.ones(N), rng.standard_normal((N, M - 1))])
    y = X @ rng.normal(size=M) + rng.standard_normal(N)
    cond = marginal_grm(y, K, X, priors={"beta": "Flat()"})
    beta_graph = cond.replace_rvs_by_values([cond["beta"]])[0]
    beta_of = cond.compile_fn(beta_graph, inputs=cond.value_vars, on_unused_input="ignore",
                               mode=FAST)
    z = rng.normal(size=M)
    point = to_values(cond, {"h2": 0.4, "Vp": 1.3, "beta_z": z})
    V = 1.3 * (0.4 * K + 0.6 * np.eye(N))
    A = X.T @ np.linalg.solve(V, X)
    mean = np.linalg.solve(A, X.T @ np.linalg.solve(V, y))
    L = np.linalg.cholesky(A)
    np.testing.assert_allclose(beta_of(point), mean + np.linalg.solve(L.T, z), rtol=1e-8)


def test_metadata_survives_do_observe_and_clone(small):
    """Issue 10: what a builder knew (data, decomposition, priors) is found again on models
    PyMC derives from it -- pm.do, pm.observe, clone_model -- with no attribute patched
    onto pm.Model; a model not built here has none."""
    import pymc as pm
    from pymc.model.fgraph import clone_model

    from bayeslmm.bayes.model_info import find_info, model_info

    y, K, X, Z, g = small
    model = marginal_grm(y, K, X)
    info = model_info(model)
    derived = {"do": pm.do(model, {"h2": 0.4}),
               "observe": pm.observe(model, {"h2": 0.4}),
               "clone": clone_model(model)}
    for how, m in derived.items():
        assert find_info(m) is info, how
    # the intervention really happened (so the check above is about a different model)
    assert "h2" not in [rv.name for rv in derived["do"].free_RVs]
    assert "h2" in [rv.name for rv in derived["observe"].observed_RVs]
    with pm.Model() as plain:
        pm.Normal("x")
    assert find_info(plain) is None
    with pytest.raises(InputError, match="not built by bayeslmm"):
        model_info(plain)
