"""Benchmark: two-trait REML + full posterior of (h2_1, h2_2, r_g, r_e) vs the one-trait
REML + posterior of h2, on one shared decomposition.

Run: ``OPENBLAS_NUM_THREADS=2 python benchmarks/bench_multitrait.py [--n 5000] [--draws 1000]``

Simulates N samples with K = ZZ'/P (standardized genotypes), two traits with h2 = (0.5, 0.3),
r_g = 0.5, r_e = 0.2; decomposes K once; then times, in the same process,

* one trait:  ``bayeslmm.reml(y1, dec)`` and ``marginal_grm(y1, dec)`` sampled by
  ``bayeslmm.sample`` (4 chains x draws, nutpie), once with the same output groups as the
  two-trait model (posterior, sample_stats, log_prior: ``log_likelihood=False``; the
  baseline of the ratio) and once as ``sample()`` runs by default, which adds the per-sample
  leave-one-out log-likelihood group (O(N r) per draw; the two-trait model has none),
* two traits: ``multitrait_reml(Y, dec)`` (with LRTs and the profile CI of r_g) and
  ``multitrait_marginal(Y, dec)`` sampled the same way (hand-written log-density,
  :mod:`bayeslmm.bayes.multitrait_logp`); with ``--graph`` also through PyMC's graph,

and prints a markdown table: wall times (NUTS sampling separately), the two-trait /
one-trait ratio, ESS of r_g, divergences, and the REML and posterior r_g. Both hand-written
densities are numba ``cfunc``s cached on disk: the first process on a machine compiles them
(about 30 s each), later ones load them; the script loads both before timing, as any
process after the first does.
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.bayes import marginal_grm, sample  # noqa: E402
from bayeslmm.bayes.marginal_logp import compile_marginal  # noqa: E402
from bayeslmm.bayes.multitrait_logp import compile_multitrait  # noqa: E402
from bayeslmm.bayes.multitrait_models import multitrait_marginal  # noqa: E402
from bayeslmm.multitrait import multitrait_reml  # noqa: E402


def simulate(N: int, P: int, h2=(0.5, 0.3), rg=0.5, re=0.2, seed=0):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, P)
    G = rng.binomial(2, freq, size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    Cg = np.array([[1, rg], [rg, 1]]) * np.sqrt(np.outer(h2, h2))
    e2 = 1 - np.asarray(h2)
    Ce = np.array([[1, re], [re, 1]]) * np.sqrt(np.outer(e2, e2))
    b = rng.standard_normal((P, 2)) @ np.linalg.cholesky(Cg).T / np.sqrt(P)
    E = rng.standard_normal((N, 2)) @ np.linalg.cholesky(Ce).T
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    Y = X @ np.array([[1.0, 2.0], [-1.0, 0.5]]) + Z @ b + E
    return Y, Z, X


def timed(f, *a, **k):
    t = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t


def ess(idata, name: str) -> float:
    import arviz_stats as azs

    return float(azs.ess(idata, var_names=[name], method="bulk")[name].min())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--p", type=int, default=5000, help="SNPs (K = ZZ'/P)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--graph", action="store_true",
                    help="also sample the two-trait model through PyMC's graph")
    a = ap.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    Y, Z, X = simulate(a.n, a.p, seed=a.seed)
    K = Z @ Z.T / a.p
    dec, t_dec = timed(bayeslmm.decompose, K)
    print(f"N={a.n}, P={a.p}, OPENBLAS_NUM_THREADS={THREADS}; eigendecomposition {t_dec:.1f} s",
          flush=True)
    rows = {}
    warnings.simplefilter("ignore")
    m1 = marginal_grm(Y[:, 0], dec, X)
    m2 = multitrait_marginal(Y, dec, X)
    # Load (in the first process on this machine: compile) the cached cfuncs.
    compile_marginal(m1)
    compile_multitrait(m2)
    fit1, t_reml1 = timed(bayeslmm.reml, Y[:, 0], dec, X)

    def one_trait(log_likelihood: bool) -> dict:
        id1, t_post1 = timed(sample, m1, draws=a.draws, tune=a.draws, chains=a.chains,
                             seed=a.seed, progressbar=False, log_likelihood=log_likelihood)
        return dict(reml=t_reml1, post=t_post1,
                    nuts=id1["posterior"].attrs.get("sampling_time", np.nan),
                    ess=ess(id1, "h2"), div=id1["posterior"].attrs["n_divergences"],
                    est=f"h2 {fit1.h2:.3f} ({fit1.h2_se:.3f})",
                    post_est=f"h2 {float(id1['posterior']['h2'].mean()):.3f} "
                             f"({float(id1['posterior']['h2'].std()):.3f})")

    rows["one trait"] = one_trait(False)
    print("one trait done", rows["one trait"], flush=True)
    rows["one trait, default sample() (+ per-sample LOO log-likelihood)"] = one_trait(True)
    print("one trait (default) done", flush=True)
    fit2, t_reml2 = timed(multitrait_reml, Y, dec, X)

    def two_traits(compiled_logp: bool) -> dict:
        id2, t_post2 = timed(sample, m2, draws=a.draws, tune=a.draws, chains=a.chains,
                             seed=a.seed, progressbar=False, compiled_logp=compiled_logp)
        rg = id2["posterior"]["r_g"]
        return dict(reml=t_reml2, post=t_post2,
                    nuts=id2["posterior"].attrs.get("sampling_time", np.nan),
                    ess=ess(id2, "r_g"), div=id2["posterior"].attrs["n_divergences"],
                    est=f"r_g {fit2.r_g:.3f} ({fit2.r_g_se:.3f}), profile CI "
                        f"[{fit2.rg_ci[0]:.3f}, {fit2.rg_ci[1]:.3f}]",
                    post_est=f"r_g {float(rg.mean()):.3f} ({float(rg.std()):.3f}), "
                             f"95% ETI [{float(rg.quantile(0.025)):.3f}, "
                             f"{float(rg.quantile(0.975)):.3f}]")

    rows["two traits"] = two_traits(True)
    print("two traits done", flush=True)
    if a.graph:
        rows["two traits, PyMC's graph (compiled in-process)"] = two_traits(False)
        print("two traits (PyMC graph) done", flush=True)
    print()
    print("| model | REML (s) | posterior (s) | of which NUTS (s) | REML + posterior (s) | "
          "ESS bulk (h2 / r_g) | divergences | REML est. (SE) | posterior mean (sd) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['reml']:.2f} | {r['post']:.1f} | {r['nuts']:.1f} | "
              f"{r['reml'] + r['post']:.1f} | {r['ess']:.0f} | {r['div']} | {r['est']} | "
              f"{r['post_est']} |")
    one = rows["one trait"]["reml"] + rows["one trait"]["post"]
    two = rows["two traits"]["reml"] + rows["two traits"]["post"]
    default = sum(rows["one trait, default sample() (+ per-sample LOO log-likelihood)"][k]
                  for k in ("reml", "post"))
    print(f"\nratio two / one trait (REML + posterior, same output groups): {two / one:.2f}; "
          f"against the default one-trait sample(): {two / default:.2f}; NUTS sampling only: "
          f"{rows['two traits']['nuts'] / rows['one trait']['nuts']:.2f}")
    print(f"load: {os.getloadavg()}")
    print(f"truth: h2 = (0.5, 0.3), r_g = 0.5, r_e = 0.2; {a.chains} chains x {a.draws} draws "
          f"(+ {a.draws} tuning)")


if __name__ == "__main__":
    main()
