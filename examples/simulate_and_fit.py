"""Simulate a phenotype on a GRM and fit it by REML (notes sections 3-4).

Run: python examples/simulate_and_fit.py [--n 1000] [--h2 0.4]
"""

import argparse

import numpy as np

import bayeslmm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="samples N")
    ap.add_argument("--snps", type=int, default=2000, help="SNPs P in the GRM")
    ap.add_argument("--h2", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    N, P = args.n, args.snps
    G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)          # standardized genotypes (notes section 3)
    K = Z @ Z.T / P                          # the GRM
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    y = (X @ [10.0, 0.5] + Z @ rng.normal(0, np.sqrt(args.h2 / P), P)
         + rng.normal(0, np.sqrt(1 - args.h2), N))

    fit = bayeslmm.reml(y, K, X)
    print(fit)
    print(f"\ntrue h2 = {args.h2}; estimate {fit.h2:.3f} +- {fit.h2_se:.3f}")
    ols = bayeslmm.ols(y, X)
    print("\nOLS ignoring relatedness:\n" + ols.summary().to_string())


if __name__ == "__main__":
    main()
