"""Genotype formats against PLINK 1 ``.bed`` in the same run (issue 26).

A simulated N x P fileset (1% missing calls) is converted by plink2 to ``.pgen``, 8-bit BGEN
(dosages) and bgzipped VCF (GT). For each format the script times, best of ``--repeats``:

* ``open``: opening the fileset (a VCF is decoded into memory here, being text);
* ``pass``: one pass over every variant in blocks, as the genotype operator decodes them
  (int8 counts; float32 dosages for BGEN);
* ``grm``: the GCTA GRM (:func:`bayeslmm.genotypes.kinship.grm`), open included;

and prints each against ``.bed`` as a ratio (targets: ``.pgen`` at most 1.5x, 8-bit BGEN at
most 3x; VCF reported). The GRMs are checked equal to the ``.bed``'s (1e-5).

Usage: OPENBLAS_NUM_THREADS=2 python benchmarks/bench_formats.py [--n 2000] [--p 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--p", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(a.threads))
    import numpy as np
    from bed_reader import to_bed

    from bayeslmm.genotypes.kinship import grm
    from bayeslmm.inputs import open_genotypes
    from bayeslmm.io import iter_variant_blocks

    exe = shutil.which("plink2")
    if exe is None:
        print("plink2 is needed to convert the fileset (Debian package plink2)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    try:
        rng = np.random.default_rng(1)
        G = rng.binomial(2, rng.uniform(0.05, 0.5, a.p), size=(a.n, a.p)).astype(np.float32)
        G[rng.random(G.shape) < 0.01] = np.nan
        to_bed(str(tmp / "g.bed"), G, properties={"fid": [f"f{i}" for i in range(a.n)],
                                                   "iid": [f"i{i}" for i in range(a.n)]})
        del G
        for args in (["--make-pgen"], ["--export", "bgen-1.2", "bits=8"],
                     ["--export", "vcf", "bgz", "id-delim=-"]):
            subprocess.run([exe, "--bfile", "g", "--out", "g", "--threads", str(a.threads),
                            *args], cwd=tmp, check=True, capture_output=True)
        sources = {"bed": ("bfile", str(tmp / "g"), {}),
                   "pgen": ("pfile", str(tmp / "g"), {}),
                   "bgen (8 bits)": ("bgen", [str(tmp / "g.bgen"), "ref-last"],
                                     {"sample": str(tmp / "g.sample")}),
                   "vcf.gz (GT)": ("vcf", [str(tmp / "g.vcf.gz")], {"id_delim": "-"})}
        rows, ref = {}, None
        grm(open_genotypes("bfile", str(tmp / "g")), progress=False)  # imports, compilation
        for name, (fmt, value, opts) in sources.items():
            t_open, ds = _best(lambda f=fmt, v=value, o=opts: open_genotypes(f, v, **o),
                               a.repeats)
            dt = "float32" if ds.attrs.get("dosage") else "int8"
            t_pass, _ = _best(lambda ds=ds, dt=dt: sum(
                b.genotypes.shape[1] for b in iter_variant_blocks(ds, dtype=dt,
                                                                  block_size=1000)), a.repeats)
            t_grm, g = _best(lambda f=fmt, v=value, o=opts: grm(open_genotypes(f, v, **o),
                                                                 progress=False), a.repeats)
            if ref is None:
                ref = g.values
            err = float(np.abs(g.values - ref).max())
            rows[name] = (t_open, t_pass, t_grm, err)
        b = rows["bed"]
        print(f"N = {a.n:,}, P = {a.p:,}; {a.threads} BLAS thread(s); best of {a.repeats}")
        print("| format | open (s) | pass (s) | pass / .bed | GRM (s) | GRM / .bed | "
              "max abs GRM diff |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, (to, tp, tg, err) in rows.items():
            print(f"| {name} | {to:.2f} | {tp:.2f} | {tp / b[1]:.2f} | {tg:.2f} | "
                  f"{tg / b[2]:.2f} | {err:.1e} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
