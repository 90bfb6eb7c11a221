"""Benchmark: the per-SNP Wald test as a user meets it, whole command against whole command.

GEMMA's example mouse data (Debian ``gemma-doc``: mouse_hs1940, phenotype 1, 1,410 analysed
samples), timed in the same run with the same BLAS threads:

* GEMMA 0.98: ``gemma -bfile mouse -gk 2`` then ``gemma -bfile mouse -k kin -lmm 1`` (kinship,
  eigendecomposition, null REML, per-SNP REML and Wald test, reading and writing);
* bayeslmm: ``bayeslmm grm --bfile mouse`` then ``bayeslmm assoc --bfile mouse --grm G
  --pheno P --test wald --format gemma`` (the same steps, GEMMA's layout and SNP filters),
  and, separately, the work of the second command in-process with the imports excluded
  (read, REML, the per-SNP tests, write).

Prints both wall times and their ratios (targets in the association issue: the command at
most 0.5x GEMMA's, the work at most 0.25x).
Run: ``python benchmarks/bench_assoc_command.py [--threads N] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path("/usr/share/doc/gemma/example")


def best(cmd, cwd, repeat, env):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, **{v: str(args.threads) for v in
                              ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMBA_NUM_THREADS")})
    gemma = shutil.which("gemma")
    if gemma is None:
        sys.exit("GEMMA is not installed (Debian package gemma)")
    exe = Path(sys.executable).with_name("bayeslmm")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for ext in ("bed", "bim", "fam"):
            with gzip.open(EXAMPLE / f"mouse_hs1940.{ext}.gz", "rb") as fi, \
                    open(d / f"mouse.{ext}", "wb") as fo:
                shutil.copyfileobj(fi, fo)
        fam = [ln.split() for ln in (d / "mouse.fam").read_text().splitlines()]
        (d / "y.phen").write_text("".join(f"{r[0]} {r[1]} {r[5]}\n" for r in fam))
        g_kin = best([gemma, "-bfile", "mouse", "-gk", "2", "-o", "kin"], d, args.repeat, env)
        g_lmm = best([gemma, "-bfile", "mouse", "-k", "output/kin.sXX.txt", "-lmm", "1", "-o",
                      "lmm"], d, args.repeat, env)
        b_grm = best([str(exe), "grm", "--bfile", "mouse", "--out", "g", "--quiet"], d,
                     args.repeat, env)
        b_assoc = best([str(exe), "assoc", "--bfile", "mouse", "--grm", "g", "--pheno",
                        "y.phen", "--test", "wald", "--format", "gemma", "--out", "a",
                        "--quiet"], d, args.repeat, env)
        work = subprocess.run(
            [sys.executable, "-c", WORK, str(d), str(args.repeat)], env=env, check=True,
            capture_output=True, text=True).stdout.split()
        t_work, n_snps = float(work[0]), int(work[1])
    g_total, b_total = g_kin + g_lmm, b_grm + b_assoc
    print(f"BLAS/numba threads: {args.threads}; best of {args.repeat}; {n_snps} SNPs tested\n")
    print("| step | GEMMA (s) | bayeslmm (s) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| kinship command | {g_kin:.2f} | {b_grm:.2f} | {b_grm / g_kin:.2f} |")
    print(f"| association command (Wald, lambda per SNP) | {g_lmm:.2f} | {b_assoc:.2f} | "
          f"{b_assoc / g_lmm:.2f} |")
    print(f"| both commands | {g_total:.2f} | {b_total:.2f} | {b_total / g_total:.2f} |")
    print(f"| association work in-process (read, REML, tests, write; no imports) | "
          f"{g_lmm:.2f} | {t_work:.2f} | {t_work / g_lmm:.2f} |")
    return 0


WORK = r"""
import sys, time
from pathlib import Path
import bayeslmm
from bayeslmm.association import assoc, one_test
from bayeslmm.reports.writers import write_assoc_as
d, repeat = Path(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(repeat + 1):  # the first run loads numba's cache
    t0 = time.perf_counter()
    inp = bayeslmm.load_inputs(d / "y.phen", grm=d / "g", bfile=d / "mouse")
    fit = bayeslmm.reml(inp.y, inp.K, inp.X)
    res = assoc(fit, inp.ds, "wald", min_maf=0.01, max_missing=0.05)
    write_assoc_as(res, "gemma", d / "w.assoc.txt")
    times.append(time.perf_counter() - t0)
n = int((~res["filtered"] & ~res["monomorphic"]).sum())
print(min(times[1:]), n)
"""

if __name__ == "__main__":
    sys.exit(main())
