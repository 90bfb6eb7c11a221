"""Partitioned heritability on real mice: a GRM plus a grouping column, by formula.

GEMMA's public example (Debian package gemma-doc): 1,940 heterogeneous-stock mice, 12,226
SNPs, six phenotypes in the .fam (phenotype 1 is the one GEMMA's README calls CD8). The
.fam's family ID (85 groups of 1 to 351 mice) is a housing/breeding group recorded with the
data: it plays the cage's role here, and sex is a categorical covariate.

    phenotype ~ sex + (1 | grm) + (1 | group)

fitted by REML (``bayeslmm.fit``) and sampled (``bayeslmm.model`` + ``bayeslmm.sample``:
beta integrated out, importance sampling of the three log-variances); the table and the
figure put the per-component and total h2 posteriors next to REML.

Run: python examples/partitioned_mouse.py [--pheno-col 1] [--n-samples N] [--out DIR]
"""

import argparse
import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

import bayeslmm
from bayeslmm.bayes.components import component_table, plot_components
from bayeslmm.genotypes.kinship import grm
from bayeslmm.io import read_plink

EXAMPLE = Path("/usr/share/doc/gemma/example")


def mouse_files(dest: Path) -> Path:
    """Decompress the GEMMA mouse fileset into dest (once); its PLINK prefix."""
    dest.mkdir(parents=True, exist_ok=True)
    for ext in ("bed", "bim", "fam"):
        src = EXAMPLE / f"mouse_hs1940.{ext}.gz"
        out = dest / f"mouse_hs1940.{ext}"
        if not src.exists():
            raise SystemExit(f"{src} not found: install the Debian package gemma-doc")
        if not out.exists():
            with gzip.open(src, "rb") as fi, open(out, "wb") as fo:
                shutil.copyfileobj(fi, fo)
    return dest / "mouse_hs1940"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pheno-col", type=int, default=1, help="phenotype 1..6 of the .fam")
    ap.add_argument("--n-samples", type=int, default=None,
                    help="use the first N mice (a quick run)")
    ap.add_argument("--out", default="example-out")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = read_plink(mouse_files(out / "data"))
    if args.n_samples:
        ds = ds.isel(sample=slice(0, args.n_samples))
    fam = pd.read_csv(out / "data" / "mouse_hs1940.fam", sep=r"\s+", header=None,
                      na_values=["NA", "-9"])
    fam = fam.iloc[: ds.sizes["sample"]]
    df = pd.DataFrame({"iid": fam[1].astype(str), "group": fam[0].astype(str),
                       "sex": fam[4].map({1: "male", 2: "female"}),
                       "phenotype": fam[4 + args.pheno_col]})
    K = grm(ds)
    ids = K.ids["iid"].astype(str)
    Kdf = pd.DataFrame(K.K.values, index=ids, columns=ids)

    formula = "phenotype ~ sex + (1 | grm) + (1 | group)"
    from bayeslmm.formula import design

    d = design(formula, df, {"grm": Kdf}, id="iid")
    print(d.describe())
    t = time.perf_counter()
    fit = bayeslmm.fit(formula, data=df, kernels={"grm": Kdf}, id="iid")
    print(f"REML ({fit.algorithm}) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    model = bayeslmm.model(formula, data=df, kernels={"grm": Kdf}, id="iid")
    idata = bayeslmm.sample(model, draws=args.draws, chains=args.chains, seed=1,
                            progressbar=False)
    post = idata["posterior"]
    print(f"posterior in {time.perf_counter() - t:.1f} s: method {post.attrs['method']}, "
          f"PSIS k-hat {post.attrs.get('pareto_k', np.nan):.2f}, importance ESS "
          f"{post.attrs.get('ess_importance', np.nan):.0f} from "
          f"{post.attrs.get('n_proposals', 0)} proposals")
    table = component_table(fit, idata)
    print(table.round(4).to_string())
    print(table.attrs["interval"])
    table.to_csv(out / "partitioned_h2.tsv", sep="\t")
    plot_components(fit, idata, out / "partitioned_h2.png")
    print(f"wrote {out / 'partitioned_h2.tsv'} and {out / 'partitioned_h2.png'}")


if __name__ == "__main__":
    main()
