"""LDpred (issue 25): held-out prediction of LDpred2-auto, -inf and individual-level BLUP in a
sparse simulation, and the time of LDpred2-auto against the size of the summary statistics.

* ``--predict N P``: genotypes in LD (tests/helpers.ld_cohort's latent random walk, blocks of
  200 SNPs on 5 chromosomes), a sparse trait (P/100 effects, h2 = 0.5), split 2:1 into a
  training and a test set. From the training set: its marginal statistics and in-sample LD
  (window 1 Mb) -> LDpred2-auto and LDpred-inf (at auto's h2); and SNP-BLUP at the REML h2
  of the same training genotypes (the individual-level baseline). Reported: the correlation
  of each score with the true genetic value of the test samples, and the run times.
* ``--time M``: LDpred2-auto (2 chains x 300 + 200 sweeps) on M SNPs over a simulated
  2,000-sample reference (5 Mb of 1,000 SNPs per chromosome), wall time per sweep.

    python benchmarks/bench_ldpred.py --predict 3000 2000
    python benchmarks/bench_ldpred.py --time 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def genotypes(N: int, P: int, seed: int, block: int = 200):
    from helpers import ld_cohort

    parts = [ld_cohort(N=N, P=min(block, P - s), seed=seed + s)[0] for s in range(0, P, block)]
    return np.concatenate(parts, axis=1)


def dataset(G):
    from bayeslmm.io import genotype_dataset

    N, P = G.shape
    fam = pd.DataFrame({"fid": [f"f{i}" for i in range(N)], "iid": [f"i{i}" for i in range(N)]})
    chrom = (np.arange(P) * 5 // P + 1).astype(str)
    bim = pd.DataFrame({"chrom": chrom, "snp": [f"rs{j}" for j in range(P)],
                        "pos": np.arange(P) * 5000 + 1, "a1": "C", "a2": "A"})
    return genotype_dataset(fam, bim, G)


def sumstats(Z, y):
    N = Z.shape[0]
    r = Z.T @ y / N
    return pd.DataFrame({"SNP": [f"rs{j}" for j in range(Z.shape[1])], "A1": "C", "A2": "A",
                         "Z": r * np.sqrt(N) / np.sqrt(1 - r**2), "N": float(N)})


def predict(N: int, P: int, seed: int = 1) -> list[dict]:
    import bayeslmm
    from bayeslmm.bayes.ldpred import ldpred_gibbs, ldpred_inf
    from bayeslmm.genotypes.ldmatrix import ld_matrix

    rng = np.random.default_rng(seed)
    G = genotypes(N, P, seed)
    mu, sd = G.mean(0), G.std(0)
    ok = sd > 0
    G, mu, sd = G[:, ok], mu[ok], sd[ok]
    Z = (G - mu) / sd
    P = Z.shape[1]
    causal = rng.choice(P, max(P // 100, 1), replace=False)
    g = Z[:, causal] @ rng.normal(0, 1, causal.size)
    y = g + rng.normal(0, g.std(), N)  # h2 = 0.5
    tr, te = np.arange(N) < 2 * N // 3, np.arange(N) >= 2 * N // 3
    Ztr = (G[tr] - G[tr].mean(0)) / G[tr].std(0)
    ytr = (y[tr] - y[tr].mean()) / y[tr].std()
    ld = ld_matrix(dataset(G[tr]), 1000, "kb", progress=False)
    ss = sumstats(Ztr, ytr)
    rows = []
    t0 = time.perf_counter()
    auto = ldpred_gibbs(ss, ld, h2=0.2, p=0.05, auto=True, burn=300, draws=500, chains=2)
    rows.append(("LDpred2-auto", auto.effects["beta_std"].to_numpy(), time.perf_counter() - t0))
    t0 = time.perf_counter()
    inf = ldpred_inf(ss, ld, auto.h2)
    rows.append(("LDpred-inf (auto's h2)", inf.effects["beta_std"].to_numpy(),
                 time.perf_counter() - t0))
    t0 = time.perf_counter()
    K = Ztr @ Ztr.T / P
    fit = bayeslmm.reml(ytr, K)
    lam = P * (1 - fit.h2) / fit.h2
    blup = np.linalg.solve(Ztr.T @ Ztr + lam * np.eye(P), Ztr.T @ ytr)
    rows.append((f"SNP-BLUP at the REML h2 {fit.h2:.3f} (individual data)", blup,
                 time.perf_counter() - t0))
    Zte = (G[te] - G[tr].mean(0)) / G[tr].std(0)
    out = []
    for name, b, sec in rows:
        r = np.corrcoef(Zte @ b, g[te])[0, 1]
        out.append({"N train/test": f"{tr.sum()}/{te.sum()}", "P": P, "causal": causal.size,
                    "method": name, "corr(score, true g) in test": f"{r:.3f}",
                    "seconds": f"{sec:.1f}"})
    out[0]["h2, p (auto)"] = f"{auto.h2:.3f}, {auto.p:.4f}"
    return out


def timing(M: int, seed: int = 2) -> dict:
    from bayeslmm.bayes.ldpred import ldpred_gibbs
    from bayeslmm.genotypes.ldmatrix import ld_matrix

    G = genotypes(2000, M, seed)
    keep = G.std(0) > 0
    G = G[:, keep]
    Z = (G - G.mean(0)) / G.std(0)
    rng = np.random.default_rng(seed)
    y = Z[:, rng.choice(G.shape[1], 50, replace=False)] @ rng.normal(0, 1, 50)
    y = (y - y.mean()) / y.std() + rng.normal(0, 1, y.size)
    y = (y - y.mean()) / y.std()
    t0 = time.perf_counter()
    ld = ld_matrix(dataset(G), 500, "kb", progress=False)
    t_ld = time.perf_counter() - t0
    ss = sumstats(Z, y)
    t0 = time.perf_counter()
    ldpred_gibbs(ss, ld, h2=0.2, p=0.01, auto=True, burn=200, draws=300, chains=2)
    t = time.perf_counter() - t0
    return {"M": G.shape[1], "reference N": 2000, "LD non-zeros per SNP": f"{ld.R.nnz / ld.M:.0f}",
            "LD matrix s": f"{t_ld:.1f}", "auto 2 x 500 sweeps s": f"{t:.1f}",
            "ms / sweep": f"{1000 * t / 1000:.1f}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predict", type=int, nargs=2, metavar=("N", "P"))
    ap.add_argument("--time", type=int, metavar="M")
    args = ap.parse_args()
    rows = []
    if args.predict:
        rows += predict(*args.predict)
    if args.time:
        rows.append(timing(args.time))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
