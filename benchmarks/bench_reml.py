"""REML for one GRM against the eigendecomposition it stands on (issue: foundation).

Target: the whole REML fit (validation, decomposition, rotation, grid + Brent, SEs, LRT,
profile CI) takes at most 1.2x the time of ``numpy.linalg.eigh`` on the same kernel,
measured in the same run. Prints a markdown table for the README.

Usage: python benchmarks/bench_reml.py [--sizes 2000 5000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    # BLAS threads must be pinned before numpy loads.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    import bayeslmm

    rows = []
    for N in args.sizes:
        rng = np.random.default_rng(N)
        P = 2 * N
        G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(N, P)).astype(float)
        Z = (G - G.mean(0)) / G.std(0)
        K = Z @ Z.T / P
        y = Z @ rng.normal(0, np.sqrt(0.5 / P), P) + rng.normal(0, np.sqrt(0.5), N)
        t_eig, t_reml = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            np.linalg.eigh(K)
            t_eig.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fit = bayeslmm.reml(y, K)
            t_reml.append(time.perf_counter() - t0)
        e, r = min(t_eig), min(t_reml)
        rows.append((N, e, r, r / e, fit.h2))
        print(f"N={N}: eigh {e:.2f} s, REML {r:.2f} s, ratio {r / e:.3f}, h2={fit.h2:.3f}",
              file=sys.stderr)
    print(f"\nBLAS threads: {args.threads}\n")
    print("| N | eigh (s) | REML incl. eigh (s) | ratio (target <= 1.2) |")
    print("|---|---|---|---|")
    for N, e, r, ratio, _ in rows:
        print(f"| {N} | {e:.2f} | {r:.2f} | {ratio:.3f} |")
    return 0 if all(row[3] <= 1.2 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
