"""Empirical Bayes (REML plug-in) against the full posterior, on the demo data.

REML + BLUP is the posterior of the genetic values with sigma_g2 and sigma_e2 fixed at
their estimates; the full posterior integrates over them. This script puts the two side by
side: a table (REML estimate, SE and profile CI next to posterior mean, SD and HDI), the
genetic values (BLUP against the posterior mean) and a figure.

Run: python examples/eb_vs_full_posterior.py [--out DIR]
"""

import argparse
from pathlib import Path

import bayeslmm
from bayeslmm.datasets import load_demo
from bayeslmm.reports.plots import plot_compare


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="example-out")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    y, K = load_demo().phenotype_and_grm()

    fit = bayeslmm.reml(y, K)
    eb = bayeslmm.empirical_bayes(fit, mcmc=False)   # exact: mean = BLUP, cov = PEV
    print(f"EB posterior of g equals BLUP: max |diff| = "
          f"{abs(eb.blup.values - bayeslmm.blup(fit)['g'].values).max():.2e}")

    # latent=True keeps g in the model so its full posterior can be compared with BLUP.
    model = bayeslmm.models.marginal_grm(y, fit.decomposition, latent=True)
    posterior = bayeslmm.sample(model, draws=args.draws, chains=args.chains, seed=2)
    cmp = bayeslmm.compare(fit, posterior)
    print(cmp)
    print("\n" + cmp.genetic_values.to_string())
    cmp.table.to_csv(out / "eb_vs_full.tsv", sep="\t")
    plot_compare(cmp, out / "eb_vs_full.png")
    print(f"\nwrote {out / 'eb_vs_full.tsv'} and {out / 'eb_vs_full.png'}")
    return cmp


if __name__ == "__main__":
    main()
