"""Benchmark: the two-kernel posterior against one-kernel REML + posterior, in the same run.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_multikernel.py [--n 2000] [--draws 1000]``

For each N: simulate genotypes on two "chromosomes" (P = N SNPs each), K1 and K2 their GRMs
(GCTA standardization), h2 = (0.3, 0.2); then time

* baseline: one-kernel REML (eigendecomposition included) + its posterior with
  ``bayeslmm.sample`` (4 chains x ``draws``, the compiled one-kernel density) on K = the
  GRM of all SNPs. It runs twice and the second (warm numba cache) time is the baseline:
  the smaller denominator;
* two kernels: AI-REML on (K1, K2) + the posterior (``--scenario cage``: a GRM and cages
  of 5, which goes through the low-rank (Woodbury) route) through ``bayeslmm.sample`` (beta
  and the scale integrated out exactly, the log variance ratios on a checked quadrature
  grid; 4 x ``draws`` independent draws);
* one density value of the two-kernel model (one Cholesky of V).

Prints a markdown table: wall times, ratio to the baseline, method, factorisations of V,
the grid check (largest error of the interpolated log density and log-likelihood at
exact check points), bulk ESS of each h2 and of sigma_e2, divergences, and the posterior
mean (SD) of each h2 against REML (SE).
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.bayes import marginal_grm, sample  # noqa: E402
from bayeslmm.bayes.models.multikernel import density_of  # noqa: E402


def simulate(N: int, scenario: str = "grms", seed: int = 0):
    """``grms``: two full-rank GRMs (P = N SNPs each; K = GRM of all SNPs for the baseline).
    ``cage``: one GRM (P = N SNPs; the baseline's K) and cages of 5 (rank N / 5)."""
    rng = np.random.default_rng(seed)
    P = N
    f = rng.uniform(0.05, 0.5, 2 * P)
    G = rng.binomial(2, f, size=(N, 2 * P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    X = np.column_stack([np.ones(N), rng.standard_normal(N)])
    if scenario == "cage":
        Z1 = Z[:, :P]
        K1 = Z1 @ Z1.T / P
        cage = np.arange(N) // 5
        K2 = (cage[:, None] == cage[None, :]).astype(float)
        g = Z1 @ rng.normal(0, np.sqrt(0.3 / P), P) + rng.normal(0, np.sqrt(0.2), N // 5 + 1)[
            cage]
        return X @ [1.0, 0.5] + g + rng.normal(0, np.sqrt(0.5), N), X, K1, K1, K2
    Z1, Z2 = Z[:, :P], Z[:, P:]
    K1, K2, K = Z1 @ Z1.T / P, Z2 @ Z2.T / P, Z @ Z.T / (2 * P)
    g = Z1 @ rng.normal(0, np.sqrt(0.3 / P), P) + Z2 @ rng.normal(0, np.sqrt(0.2 / P), P)
    y = X @ [1.0, 0.5] + g + rng.normal(0, np.sqrt(0.5), N)
    return y, X, K, K1, K2


def run(N: int, draws: int, chains: int, scenario: str) -> dict:
    import arviz_stats as azs

    y, X, K, K1, K2 = simulate(N, scenario)
    out: dict = {"N": N}
    names = ["chr1", "chr2"] if scenario == "grms" else ["grm", "cage"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key in ("one_kernel_cold_s", "one_kernel_s"):
            t = time.perf_counter()
            fit1 = bayeslmm.reml(y, K, X)
            one = sample(marginal_grm(y, fit1.decomposition, X), draws=draws, chains=chains,
                         seed=1, progressbar=False)
            out[key] = time.perf_counter() - t
        out["one_kernel_ess"] = one["posterior"].attrs["min_ess_bulk"]
        t = time.perf_counter()
        fit2 = bayeslmm.reml(y, [K1, K2], X, component_names=names)
        out["reml2_s"] = time.perf_counter() - t
        model = marginal_grm(y, [K1, K2], X, component_names=names)
        t = time.perf_counter()
        two = sample(model, draws=draws, chains=chains, seed=1, progressbar=False)
        out["posterior2_s"] = time.perf_counter() - t
    post = two["posterior"]
    out.update({k: post.attrs.get(k, float("nan")) for k in (
        "method", "n_cholesky", "grid_check_logp", "grid_check_loglik", "n_divergences",
        "max_rhat")})
    ess = azs.ess(two["posterior"].to_dataset()[["h2", "sigma_e2"]], method="bulk")
    out["ess_h2"] = np.asarray(ess["h2"].values)
    out["ess_e"] = float(ess["sigma_e2"].values)
    h2 = post["h2"].values.reshape(-1, 2)
    out["h2_mean"], out["h2_sd"] = h2.mean(0), h2.std(0)
    out["reml_h2"], out["reml_h2_se"] = np.asarray(fit2.h2), np.asarray(fit2.h2_se)
    d = density_of(model)
    tt = np.log(np.r_[fit2.sigma2])
    t = time.perf_counter()
    for _ in range(3):
        d.logp(tt)
    out["logp_s"] = (time.perf_counter() - t) / 3
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--scenario", choices=["grms", "cage"], default="grms")
    args = ap.parse_args(argv)
    print(f"OPENBLAS_NUM_THREADS={THREADS}; {args.chains} x {args.draws} draws; scenario "
          f"{args.scenario}; load average {os.getloadavg()[0]:.1f}\n")
    print("| N | one kernel REML + posterior (s, cold / warm) | two kernels REML (s) | "
          "two-kernel posterior (s) | ratio | method | Choleskys | grid check logp / "
          "loglik | bulk ESS h2 (each), sigma_e2 | divergences | h2 posterior mean (SD) | "
          "h2 REML (SE) | logp (s) |")
    print("|" + "---|" * 13)
    for N in args.n:
        r = run(N, args.draws, args.chains, args.scenario)
        total2 = r["reml2_s"] + r["posterior2_s"]
        h2p = ", ".join(f"{m:.3f} ({s:.3f})" for m, s in zip(r["h2_mean"], r["h2_sd"],
                                                            strict=True))
        h2r = ", ".join(f"{m:.3f} ({s:.3f})" for m, s in zip(r["reml_h2"], r["reml_h2_se"],
                                                            strict=True))
        ess = ", ".join(f"{e:.0f}" for e in r["ess_h2"])
        print(f"| {N} | {r['one_kernel_cold_s']:.1f} / {r['one_kernel_s']:.1f} | "
              f"{r['reml2_s']:.1f} | {r['posterior2_s']:.1f} | "
              f"{total2 / r['one_kernel_s']:.1f} | {r['method']} | {r['n_cholesky']} | "
              f"{r['grid_check_logp']:.1e} / {r['grid_check_loglik']:.1e} | {ess}, "
              f"{r['ess_e']:.0f} | {r['n_divergences']} | {h2p} | {h2r} | "
              f"{r['logp_s']:.3f} |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
