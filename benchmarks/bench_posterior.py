"""Benchmark: REML vs the full NUTS posterior of the one-kernel LMM, sharing one decomposition.

Run: ``OPENBLAS_NUM_THREADS=2 python benchmarks/bench_posterior.py [--n 5000 2000]``

For each N: simulate (K = ZZ'/P from standardized genotypes, h2 = 0.5), time

* REML (``bayeslmm.reml(y, K, X)``, eigendecomposition included),
* the full posterior (``marginal_grm`` on ``fit.decomposition`` + ``bayeslmm.sample`` with
  4 chains x 1,000 draws, compilation included),
* the naive model (dense ``pm.MvNormal`` with V formed at each step) for a few draws,

and print a markdown table with the ratios (the README records it). Each N runs in two fresh
processes sharing a new, empty numba cache directory: the first pays the one-off compilation
of the model's log-density (what a first run on a machine costs), the second loads it from
the cache (every later run).
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.bayes import marginal_grm, sample  # noqa: E402


def simulate(N: int, P: int, h2: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, P)
    G = rng.binomial(2, freq, size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    y = X @ [1.0, 2.0] + Z @ rng.normal(0, np.sqrt(h2 / P), P) + rng.normal(0, np.sqrt(1 - h2),
                                                                            N)
    return y, K, X


def naive_per_draw(y, K, X, draws: int = 5) -> float:
    """Seconds per draw of the same model written densely (MvNormal, O(N^3) per gradient)."""
    with pm.Model() as m:
        h2 = pm.Beta("h2", 1, 1)
        Vp = pm.HalfNormal("Vp", 2.5 * np.var(y))
        beta = pm.Normal("beta", 0, 10, shape=X.shape[1])
        V = Vp * (h2 * K + (1 - h2) * pt.eye(len(y)))
        pm.MvNormal("y", mu=pt.dot(X, beta), cov=V, observed=y)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.sample(draws, tune=draws, chains=1, model=m, random_seed=1, progressbar=False,
                  nuts_sampler="nutpie", compute_convergence_checks=False)
    return (time.perf_counter() - t) / (2 * draws)


def run(N: int, naive: bool):
    y, K, X = simulate(N, P=2 * N)
    t0 = time.perf_counter()
    fit = bayeslmm.reml(y, K, X)
    t_reml = time.perf_counter() - t0
    t0 = time.perf_counter()
    idata = sample(marginal_grm(y, fit.decomposition, X), draws=1000, tune=1000, chains=4,
                   seed=1, progressbar=False, log_likelihood=False, log_prior=False)
    t_post = time.perf_counter() - t0
    import arviz_stats as azs

    ess = float(azs.ess(idata, var_names=["h2"], method="bulk")["h2"])
    n_div = idata["posterior"].attrs["n_divergences"]
    per_draw_fast = t_post / 8000
    per_draw_naive = naive_per_draw(y, K, X) if naive else float("nan")
    return dict(N=N, reml=t_reml, post=t_post, ratio=(t_reml + t_post) / t_reml, ess=ess,
                div=n_div, h2_reml=fit.h2, h2_post=float(idata["posterior"]["h2"].mean()),
                fast=per_draw_fast, naive=per_draw_naive)


def _worker(N: int, naive: bool, cache: str) -> dict:
    """run(N) in a fresh process whose numba cache lives in ``cache``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    cmd = [sys.executable, __file__, "--worker", str(N)] + (["--naive"] if naive else [])
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[5000, 2000])
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run(args.worker, naive=args.naive)))
        return
    rows = []
    for N in args.n:
        with tempfile.TemporaryDirectory() as cache:
            cold = _worker(N, False, cache)
            # The dense model costs O(N^3) per gradient: time it only where that takes
            # minutes, not hours; the per-draw ratio only grows with N.
            warm = _worker(N, not args.no_naive and N <= 2000, cache)
        rows += [("first run (cold cache)", cold), ("later runs", warm)]
    print(f"\nOPENBLAS_NUM_THREADS={THREADS}; posterior = 4 chains x 1,000 draws (+1,000 tune), "
          "nutpie, compilation included, decomposition shared with REML\n")
    print("| N | numba cache | REML (s, incl. eigh) | posterior (s) | (REML+posterior)/REML "
          "| bulk ESS(h2) | divergences | h2 REML / post. mean | naive/fast per draw |")
    print("|---|---|---|---|---|---|---|---|---|")
    for what, r in rows:
        print(f"| {r['N']} | {what} | {r['reml']:.1f} | {r['post']:.1f} | {r['ratio']:.2f} | "
              f"{r['ess']:.0f} | {r['div']} | {r['h2_reml']:.3f} / {r['h2_post']:.3f} | "
              + (f"{r['naive'] / r['fast']:.0f}x ({r['naive'] * 1e3:.1f} ms vs "
                 f"{r['fast'] * 1e3:.2f} ms) |" if np.isfinite(r["naive"]) else "not run |"))


if __name__ == "__main__":
    main()
