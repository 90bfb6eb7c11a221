"""Benchmark: REML + the three association tests vs GEMMA ``-lmm 1`` on the mouse data.

The GEMMA example data (Debian ``gemma-doc``: mouse_hs1940, 1,410 phenotyped samples,
12,226 SNPs of which GEMMA analyses ~10,800) is analysed in the same run by

* GEMMA 0.98: ``gemma -bfile mouse -k k.sXX.txt -lmm 1 -n 1`` (eigendecomposition, null
  REML, per-SNP REML re-estimation and Wald test), given the kinship from ``-gk 2``;
* bayeslmm: ``read_plink`` (lazy), ``bayeslmm.reml`` (eigendecomposition + spectral REML)
  on the same kinship, then one ``assoc`` call running ``"exact"``, ``"grammar"`` and
  ``"grammar-gamma"`` in a single pass that streams the .bed in blocks, on the SNPs that
  pass GEMMA's default QC (the same 10,768 SNPs GEMMA reports).

The kinship is handed to bayeslmm in memory, while GEMMA parses its text file inside its
timed run; reading bayeslmm's own binary GRM (``.grm.bin``) takes about 0.01 s.

Both use the same BLAS thread count (``OPENBLAS_NUM_THREADS``, default the number of CPUs,
set before numpy is imported; GEMMA inherits it).
Run: ``python benchmarks/bench_assoc.py [--threads N] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import sys

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                     help="BLAS threads for both programs (default: the number of CPUs)")
_parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (best of)")
_args = _parser.parse_args()
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(_args.threads)

import gzip  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.association.fixed_variance import assoc, one_test  # noqa: E402
from bayeslmm.io import read_plink  # noqa: E402

EXAMPLE = Path("/usr/share/doc/gemma/example")


def prepare(dest: Path) -> Path:
    for ext in ("bed", "bim", "fam"):
        src = EXAMPLE / f"mouse_hs1940.{ext}.gz"
        if not src.exists():
            sys.exit(f"missing {src}: install the Debian package gemma-doc")
        with gzip.open(src, "rb") as fi, open(dest / f"mouse.{ext}", "wb") as fo:
            shutil.copyfileobj(fi, fo)
    return dest / "mouse"


def gemma(args: list[str], cwd: Path) -> float:
    exe = shutil.which("gemma")
    if exe is None:
        sys.exit("gemma not found: install the Debian package gemma")
    t = time.perf_counter()
    subprocess.run([exe, *args, "-outdir", str(cwd)], cwd=cwd, check=True,
                   capture_output=True)
    return time.perf_counter() - t


def ours(prefix: Path, K_full: np.ndarray):
    """The way a bayeslmm user runs it: open the fileset lazily, fit, test while streaming
    the .bed in blocks (read_plink + assoc; the CLI does the same)."""
    t0 = time.perf_counter()
    ds = read_plink(prefix, exclude_negative_pos=False)  # GEMMA tests SNPs at bp -9, too
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, na_values=["NA", "-9"])
    pheno = fam[5].to_numpy(float)
    keep = np.flatnonzero(np.isfinite(pheno))
    ds = ds.isel(sample=keep)
    t1 = time.perf_counter()
    K = xr.DataArray(K_full[np.ix_(keep, keep)], dims=("sample", "sample_2"),
                     coords={"sample": ds["sample"].values, "sample_2": ds["sample"].values})
    fit = bayeslmm.reml(pd.Series(pheno[keep], index=ds["sample"].values), K)
    t2 = time.perf_counter()
    # One pass over the genotypes for the three tests, on the SNPs GEMMA analyses (its
    # default QC, -maf 0.01 -miss 0.05, applied the same way).
    res = assoc(fit, ds, ["exact", "grammar", "grammar-gamma"], progress=False,
                min_maf=0.01, max_missing=0.05)
    t3 = time.perf_counter()
    ex = res.attrs  # several tests: one Dataset with a test dimension, shared attrs
    return {"open": t1 - t0, "reml": t2 - t1, "assoc": t3 - t2, "total": t3 - t0,
            "N": len(keep), "P": ds.sizes["variant"],
            "tested": int(ex["n_variants"] - ex["n_filtered"] - ex["n_monomorphic"]),
            "fit": fit, "res": res}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        prefix = prepare(d)
        t_gk = gemma(["-bfile", str(prefix), "-gk", "2", "-o", "k"], d)
        K_full = np.loadtxt(d / "k.sXX.txt")
        t_gemma, t_ours, last = [], [], None
        for _ in range(_args.repeat):
            t_gemma.append(gemma(["-bfile", str(prefix), "-k", str(d / "k.sXX.txt"),
                                  "-lmm", "1", "-n", "1", "-o", "a"], d))
            last = ours(prefix, K_full)
            t_ours.append(last["total"])
        g, o = min(t_gemma), min(t_ours)
        gem = pd.read_csv(d / "a.assoc.txt", sep="\t")
    ratio = o / g
    ex = one_test(last["res"], "exact").to_dataframe().set_index("snp").loc[gem["rs"]]
    from scipy import stats

    rho = stats.spearmanr(ex["p"], gem["p_wald"]).statistic
    print(f"BLAS threads: {_args.threads} (OPENBLAS_NUM_THREADS, also for GEMMA); "
          f"{os.cpu_count()} CPUs; best of {_args.repeat}")
    print(f"data: N = {last['N']} phenotyped samples, {last['P']} SNPs, of which "
          f"{last['tested']} pass GEMMA's default QC (-maf 0.01, -miss 0.05) and are tested "
          f"by bayeslmm, {len(gem)} by GEMMA")
    print(f"GEMMA -gk 2 (kinship, not part of the comparison): {t_gk:.2f} s")
    print(f"Spearman(p exact, p GEMMA Wald) = {rho:.6f}")
    print(f"ratio bayeslmm / GEMMA = {ratio:.3f} (target <= 0.1)\n")
    print("| step | time (s) |")
    print("|---|---:|")
    print(f"| GEMMA `-lmm 1` (eigendecomposition, REML, per-SNP REML + Wald) | {g:.2f} |")
    print(f"| bayeslmm: `read_plink` (lazy: .bim/.fam) + phenotype | {last['open']:.2f} |")
    print(f"| bayeslmm: `reml` (eigendecomposition + spectral REML) | {last['reml']:.2f} |")
    print("| bayeslmm: `assoc(fit, ds, [\"exact\", \"grammar\", \"grammar-gamma\"])` "
          f"(one pass, streaming the .bed) | {last['assoc']:.2f} |")
    print(f"| **bayeslmm total (all three tests)** | **{o:.2f}** |")
    print(f"| ratio bayeslmm / GEMMA | {ratio:.3f} |")


if __name__ == "__main__":
    main()
