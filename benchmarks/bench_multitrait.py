"""Benchmark: two-trait REML + full posterior of (h2_1, h2_2, r_g, r_e) vs the one-trait
REML + posterior of h2, on one shared decomposition.

Run: ``OPENBLAS_NUM_THREADS=2 python benchmarks/bench_multitrait.py [--n 5000] [--draws 1000]
[--repeat 2] [--graph] [--diagonal]``

Simulates N samples with K = ZZ'/P (standardized genotypes), two traits with h2 = (0.5, 0.3),
r_g = 0.5, r_e = 0.2; decomposes K once; then times, in the same process,

* one trait:  ``bayeslmm.reml(y1, dec)`` and ``marginal_grm(y1, dec)`` sampled by
  ``bayeslmm.sample`` (4 chains x draws, nutpie), once with the same output groups as the
  two-trait model (posterior, sample_stats, log_prior: ``log_likelihood=False``; the
  baseline of the ratio) and once as ``sample()`` runs by default, which adds the per-sample
  leave-one-out log-likelihood group (O(N r) per draw; the two-trait model has none),
* two traits: ``multitrait_reml(Y, dec)`` (with LRTs and the profile CI of r_g) and
  ``multitrait_marginal(Y, dec)`` sampled the same way (hand-written log-density,
  :mod:`bayeslmm.bayes.compiled.multitrait`; nutpie's low-rank modified mass matrix, the
  default for two traits); with ``--graph`` also through PyMC's graph and with
  ``--diagonal`` with nutpie's diagonal mass matrix (the default before),

and prints a markdown table: wall times (NUTS sampling separately), the two-trait /
one-trait ratio, ESS of r_g, divergences, and the REML and posterior r_g. The one- and
two-trait posteriors are timed alternately ``--repeat`` times and the fastest of each is
kept. Both hand-written densities are numba ``cfunc``s cached on disk: the first process on a
machine compiles them (about 30 s each), later ones load them; an untimed warm-up loads both
(and PyMC's log-prior functions) before timing, as in any process after the first.
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
from bayeslmm.bayes.models.multitrait import multitrait_marginal  # noqa: E402
from bayeslmm.estimation.multitrait import multitrait_reml  # noqa: E402


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
    ap.add_argument("--repeat", type=int, default=2,
                    help="time one and two traits alternately this many times; the fastest "
                         "of each is reported (a shared machine's load varies)")
    ap.add_argument("--graph", action="store_true",
                    help="also sample the two-trait model through PyMC's graph")
    ap.add_argument("--diagonal", action="store_true",
                    help="also sample two traits with nutpie's diagonal mass matrix")
    a = ap.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    Y, Z, X = simulate(a.n, a.p, seed=a.seed)
    K = Z @ Z.T / a.p
    dec, t_dec = timed(bayeslmm.decompose, K)
    print(f"N={a.n}, P={a.p}, OPENBLAS_NUM_THREADS={THREADS}; eigendecomposition {t_dec:.1f} s",
          flush=True)
    warnings.simplefilter("ignore")
    m1 = marginal_grm(Y[:, 0], dec, X)
    m2 = multitrait_marginal(Y, dec, X)
    # Warm-up, untimed: loads the cached cfuncs (in the first process on a machine: compiles
    # them) and the log-prior functions, as in any process after the first.
    for m in (m1, m2):
        sample(m, draws=20, tune=20, chains=1, seed=0, progressbar=False, check=False,
               log_likelihood=False)

    def one_trait(log_likelihood: bool) -> dict:
        fit1, t_reml1 = timed(bayeslmm.reml, Y[:, 0], dec, X)
        id1, t_post1 = timed(sample, m1, draws=a.draws, tune=a.draws, chains=a.chains,
                             seed=a.seed, progressbar=False, log_likelihood=log_likelihood)
        return dict(reml=t_reml1, post=t_post1,
                    nuts=id1["posterior"].attrs.get("sampling_time", np.nan),
                    ess=ess(id1, "h2"), div=id1["posterior"].attrs["n_divergences"],
                    est=f"h2 {fit1.h2:.3f} ({fit1.h2_se:.3f})",
                    post_est=f"h2 {float(id1['posterior']['h2'].mean()):.3f} "
                             f"({float(id1['posterior']['h2'].std()):.3f})")

    def two_traits(compiled_logp: bool = True, **nuts) -> dict:
        fit2, t_reml2 = timed(multitrait_reml, Y, dec, X)
        id2, t_post2 = timed(sample, m2, draws=a.draws, tune=a.draws, chains=a.chains,
                             seed=a.seed, progressbar=False, compiled_logp=compiled_logp,
                             nuts=nuts)
        rg = id2["posterior"]["r_g"]
        return dict(reml=t_reml2, post=t_post2,
                    nuts=id2["posterior"].attrs.get("sampling_time", np.nan),
                    ess=ess(id2, "r_g"), div=id2["posterior"].attrs["n_divergences"],
                    est=f"r_g {fit2.r_g:.3f} ({fit2.r_g_se:.3f}), profile CI "
                        f"[{fit2.rg_ci[0]:.3f}, {fit2.rg_ci[1]:.3f}]",
                    post_est=f"r_g {float(rg.mean()):.3f} ({float(rg.std()):.3f}), "
                             f"95% ETI [{float(rg.quantile(0.025)):.3f}, "
                             f"{float(rg.quantile(0.975)):.3f}]")

    ones, twos = [], []
    for k in range(a.repeat):
        ones.append(one_trait(False))
        twos.append(two_traits())
        print(f"round {k + 1}: one trait {ones[-1]['reml'] + ones[-1]['post']:.1f} s, two "
              f"traits {twos[-1]['reml'] + twos[-1]['post']:.1f} s (REML + posterior); load "
              f"{os.getloadavg()}", flush=True)
    rows = {"one trait": min(ones, key=lambda r: r["reml"] + r["post"]),
            "two traits": min(twos, key=lambda r: r["reml"] + r["post"])}
    rows["one trait, default sample() (+ per-sample LOO log-likelihood)"] = one_trait(True)
    if a.diagonal:
        rows["two traits, diagonal mass matrix"] = two_traits(adaptation="diag")
    if a.graph:
        rows["two traits, PyMC's graph (compiled in-process)"] = two_traits(False)
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
    per_round = [(t["reml"] + t["post"]) / (o["reml"] + o["post"])
                 for o, t in zip(ones, twos, strict=True)]
    default = sum(rows["one trait, default sample() (+ per-sample LOO log-likelihood)"][k]
                  for k in ("reml", "post"))
    print(f"\nratio two / one trait (REML + posterior, same output groups, fastest of "
          f"{a.repeat}): {two / one:.2f} (per round: "
          f"{', '.join(f'{r:.2f}' for r in per_round)}); against the default one-trait "
          f"sample(): {two / default:.2f}; NUTS sampling only: "
          f"{rows['two traits']['nuts'] / rows['one trait']['nuts']:.2f}")
    print(f"load: {os.getloadavg()}")
    print(f"truth: h2 = (0.5, 0.3), r_g = 0.5, r_e = 0.2; {a.chains} chains x {a.draws} draws "
          f"(+ {a.draws} tuning)")

if __name__ == "__main__":
    main()
