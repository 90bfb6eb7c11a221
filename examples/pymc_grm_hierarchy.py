"""Your own PyMC hierarchy around the GRM term: mice in cages, with a cage effect of its own.

The model (brms: ``y ~ x + (1 | cage) + (1 | gr(id, cov = K))``):

    y = X beta + b_cage[cage] + g + e,   b_cage ~ N(0, tau^2),   g ~ N(0, sigma_g2 K),
    e ~ N(0, sigma_e2 I),

written as a plain ``pm.Model``: the cage effects are the user's (non-centred, a
HalfNormal prior on tau), and ``bayeslmm.pymc.GRMNormal`` integrates g out over the
eigendecomposition of K (O(r M) per gradient: the cage indicators join X as constant
columns). The per-sample log-likelihood is the exact leave-one-out density, so
``arviz_stats.loo`` is leave-one-mouse-out.

Run: python examples/pymc_grm_hierarchy.py [--n 200] [--cages 10] [--sampler pymc]
"""

import argparse

import numpy as np
import pymc as pm
import pytensor.tensor as pt

import bayeslmm
from bayeslmm.pymc import GRMNormal


def simulate(n: int, cages: int, seed: int):
    """Genotypes, a GRM, cages and a phenotype with h2 = 0.4 and a cage SD of 0.6."""
    rng = np.random.default_rng(seed)
    P = 2 * n
    G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(n, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    K = Z @ Z.T / P
    cage = rng.integers(0, cages, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    truth = {"h2": 0.4, "Vp": 1.0, "tau": 0.6, "beta": np.array([5.0, 0.3])}
    g = Z @ rng.normal(0, np.sqrt(truth["h2"] / P), P)
    b_cage = rng.normal(0, truth["tau"], cages)
    y = X @ truth["beta"] + b_cage[cage] + g + rng.normal(0, np.sqrt(1 - truth["h2"]), n)
    return y, K, X, cage, truth


def build(y, K, X, cage, cages: int) -> pm.Model:
    """The user's model: their priors, their cage hierarchy, and the GRM likelihood."""
    dec = bayeslmm.decompose(K)  # once; shared with bayeslmm.reml(y, dec, X) if wanted
    onehot = np.eye(cages)[cage]  # cage indicators: constant columns, rotated once
    with pm.Model(coords={"covariate": ["intercept", "x"], "cage": np.arange(cages)}) as model:
        beta = pm.Normal("beta", mu=[y.mean(), 0.0], sigma=10 * y.std(), dims="covariate")
        h2 = pm.Beta("h2", 1.0, 1.0)
        Vp = pm.HalfNormal("Vp", 2.5 * y.var())
        tau = pm.HalfNormal("tau", 1.0)
        cage_z = pm.Normal("cage_z", 0.0, 1.0, dims="cage")
        b_cage = pm.Deterministic("b_cage", tau * cage_z, dims="cage")
        pm.Deterministic("sigma_g2", h2 * Vp)
        GRMNormal("y", decomposition=dec, sigma_g2=h2 * Vp, sigma_e2=(1.0 - h2) * Vp,
                  X=np.hstack([X, onehot]), beta=pt.concatenate([beta, b_cage]),
                  observed=y)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="mice N")
    ap.add_argument("--cages", type=int, default=10)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)
    y, K, X, cage, truth = simulate(args.n, args.cages, args.seed)
    model = build(y, K, X, cage, args.cages)
    with model:
        idata = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                          cores=1, nuts_sampler=args.sampler, random_seed=args.seed,
                          progressbar=False)
        pm.compute_log_likelihood(idata, progressbar=False)
    divergences = int(idata["sample_stats"]["diverging"].sum())
    post = idata["posterior"]
    print(f"N = {args.n} mice in {args.cages} cages; sampler {args.sampler}; "
          f"divergences: {divergences}")
    for name in ("h2", "Vp", "tau"):
        v = post[name].values.ravel()
        lo, hi = np.quantile(v, [0.025, 0.975])
        print(f"{name:>4}: mean {v.mean():.3f}, 95% central interval [{lo:.3f}, {hi:.3f}] "
              f"(true {truth[name]})")
    try:
        import arviz_stats

        loo = arviz_stats.loo(idata)
        print(f"PSIS-LOO (leave one mouse out): elpd {float(loo.elpd):.1f} "
              f"(se {float(loo.se):.1f})")
    except ImportError:  # arviz_stats comes with arviz >= 1; the LOO terms are stored anyway
        pass
    return {"idata": idata, "divergences": divergences, "truth": truth}


if __name__ == "__main__":
    main()
