"""Benchmark: our BSLMM (bayeslmm.bayes.sparse.bslmm) against GEMMA ``-bslmm 1``, same run.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bslmm.py [--w 20000] [--s 100000]
[--gemma-seeds 1 2] [--draws 2000] [--tune 1000] [--chains 2] [--workdir DIR]
[--gemma-out PREFIX ...]`` (``--gemma-out``: read finished GEMMA runs, OUTDIR/NAME without
the suffix, instead of running GEMMA; their time is then the "total computation time" of
GEMMA's own .log.txt)

Data: GEMMA's mouse_hs1940 example (Debian gemma-doc), phenotype 1 (1,410 mice with a
value). GEMMA runs ``-bslmm 1 -n 1 -w W -s S -seed k`` once per seed (its own kinship, its
SNP filters: missing rate <= 5%, MAF >= 1%); ours runs on exactly the SNPs GEMMA analysed
(read from its ``.param.txt``), allele counts of the .bed's A1 with missing calls set to the
SNP's mean over the analysed mice (GEMMA's imputation), intercept only, GEMMA's priors.

Prints a markdown table: posterior mean and 95% interval (2.5%, 97.5% quantiles) of h, PVE,
rho, PGE, pi and n_gamma per GEMMA chain and for ours, bulk ESS of PVE (arviz-stats) and
ESS/s, wall times, then the top SNPs by GEMMA's PIP with both PIPs.
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import gzip  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import arviz_stats as azs  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bayeslmm.bayes.sparse.bslmm import bslmm  # noqa: E402
from bayeslmm.genotypes.kinship import iter_variant_blocks  # noqa: E402
from bayeslmm.io import read_plink  # noqa: E402

EXAMPLE = Path("/usr/share/doc/gemma/example")
PARAMS = ("h", "pve", "rho", "pge", "pi", "n_gamma")


def _files(work: Path) -> str:
    for ext in ("bed", "bim", "fam"):
        out = work / f"mouse_hs1940.{ext}"
        if not out.exists():
            with gzip.open(EXAMPLE / f"mouse_hs1940.{ext}.gz", "rb") as fin, \
                    open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return str(work / "mouse_hs1940")


def run_gemma(prefix: str, work: Path, seed: int, w: int, s: int) -> tuple[str, float]:
    out = f"bslmm_s{seed}"
    t0 = time.perf_counter()
    subprocess.run(["gemma", "-bfile", prefix, "-bslmm", "1", "-n", "1", "-w", str(w),
                    "-s", str(s), "-seed", str(seed), "-outdir", str(work / "output"),
                    "-o", out], cwd=work, check=True, capture_output=True)
    return str(work / "output" / out), time.perf_counter() - t0


def _logged_secs(out: str) -> float:
    for line in Path(out + ".log.txt").read_text().splitlines():
        if "total computation time" in line:
            return 60.0 * float(line.split("=")[1].split()[0])
    raise ValueError(f"no computation time in {out}.log.txt")


def genotypes(prefix: str, snps: np.ndarray) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """(y, G) on the mice with phenotype 1 and GEMMA's SNPs, missing calls mean-imputed."""
    ds = read_plink(prefix)
    keep = np.flatnonzero(np.isfinite(ds["pheno"].values))
    ds = ds.isel(sample=keep)
    pos = pd.Index(ds["snp"].values).get_indexer(snps)
    assert (pos >= 0).all()
    ds = ds.isel(variant=pos)
    G = np.empty((ds.sizes["sample"], ds.sizes["variant"]))
    for blk in iter_variant_blocks(ds, dtype="float32"):
        G[:, blk.variants] = blk.genotypes
    mean = np.nanmean(G, axis=0)
    G = np.where(np.isnan(G), mean, G)
    return ds["pheno"].values.astype(float), G, pd.Index(snps)


def _row(name: str, draws: dict[str, np.ndarray], secs: float, ess: float) -> str:
    cells = [f"{v.mean():.3g} ({np.quantile(v, 0.025):.3g}, {np.quantile(v, 0.975):.3g})"
             for v in (draws[p] for p in PARAMS)]
    return f"| {name} | " + " | ".join(cells) + f" | {ess:.0f} | {ess / secs:.2f} | {secs:.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--w", type=int, default=20000)
    ap.add_argument("--s", type=int, default=100000)
    ap.add_argument("--gemma-seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--gemma-out", nargs="+", default=None)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench_bslmm_"))
    work.mkdir(parents=True, exist_ok=True)
    prefix = _files(work)

    rows, gemma_pips = [], []
    runs = [run_gemma(prefix, work, seed, a.w, a.s) for seed in a.gemma_seeds] \
        if a.gemma_out is None else [(out, _logged_secs(out)) for out in a.gemma_out]
    a.gemma_seeds = [Path(out).name for out, _ in runs]
    for seed, (out, secs) in zip(a.gemma_seeds, runs, strict=True):
        hyp = pd.read_csv(out + ".hyp.txt", sep=r"\s+")
        param = pd.read_csv(out + ".param.txt", sep="\t")
        ess = float(azs.ess(hyp["pve"].to_numpy()[None, :], method="bulk"))
        rows.append(_row(f"GEMMA {seed}", {p: hyp[p].to_numpy() for p in PARAMS},
                         secs, ess))
        gemma_pips.append(param.set_index("rs")["gamma"])
    snps = gemma_pips[0].index.to_numpy()

    y, G, _ = genotypes(prefix, snps)
    t0 = time.perf_counter()
    tree = bslmm(y, pd.DataFrame(G, columns=snps), draws=a.draws, tune=a.tune,
                 chains=a.chains, seed=a.seed, check=False)
    secs = time.perf_counter() - t0
    post = tree["posterior"]
    ess = float(azs.ess(post["pve"].values, method="bulk"))
    rows.append(_row(f"bayeslmm ({a.chains} x {a.draws})",
                     {p: post[p].values.ravel() for p in PARAMS}, secs, ess))

    print(f"mouse_hs1940 phenotype 1: N = {G.shape[0]}, P = {G.shape[1]}; GEMMA -w {a.w} "
          f"-s {a.s}; ours {a.chains} chains x {a.draws} draws ({a.tune} burn-in), "
          f"OPENBLAS_NUM_THREADS={THREADS}; acceptance {tree.attrs['acceptance']}\n")
    print("| run | " + " | ".join(PARAMS) + " | ESS(pve) | ESS/s | wall s |")
    print("|---" * (len(PARAMS) + 4) + "|")
    print("\n".join(rows))
    ours = tree["snp_summary"].to_dataset().to_dataframe()
    table = pd.DataFrame({f"GEMMA {s}": p for s, p in zip(a.gemma_seeds, gemma_pips,
                                                            strict=True)})
    table["bayeslmm"] = ours["pip"].reindex(table.index).to_numpy()
    table["bayeslmm mcse"] = ours["pip_mcse"].reindex(table.index).to_numpy()
    table = table.sort_values(f"GEMMA {a.gemma_seeds[0]}", ascending=False).head(a.top)
    print("\nTop SNPs by GEMMA's PIP (gamma):\n")
    print("| SNP | " + " | ".join(table.columns) + " |")
    print("|---" * (table.shape[1] + 1) + "|")
    for snp, row in table.iterrows():
        print(f"| {snp} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    ranked = ours["pip"].sort_values(ascending=False)
    print(f"\nOur top 3: {', '.join(f'{k} {v:.3f}' for k, v in ranked.head(3).items())}")


if __name__ == "__main__":
    main()
