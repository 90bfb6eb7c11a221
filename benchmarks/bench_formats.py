"""Genotype formats against PLINK 1 ``.bed`` in the same run (issue 26).

A simulated N x P fileset (1% missing calls) is converted by plink2 to ``.pgen``, 8-bit BGEN
(dosages) and bgzipped VCF (GT). For each format the script times, best of ``--repeats``:

* ``open``: opening the fileset (a VCF is decoded into memory here, being text);
* ``pass``: one pass over every variant in blocks, as the genotype operator decodes them
  (int8 counts; float32 dosages for BGEN);
* ``grm``: the GCTA GRM (:func:`bayeslmm.genotypes.kinship.grm`), open included;

and prints each against ``.bed`` as a ratio (targets: ``.pgen`` at most 1.5x, 8-bit BGEN at
most 3x; VCF reported). The GRMs are checked equal to the ``.bed``'s (1e-5). Two more rows:
``pgen (dosages)``, the ``.pgen`` of the same calls with dosages (written by pgenlib; the
dosage path of a ``.pgen``, whose GRM differs from the ``.bed``'s by design), and
``bgen, cbgen per variant``: the same BGEN pass with cbgen's one call per variant (the reader
before its vectorised path), whose dosages are checked identical.

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


def _dosage_pgen(tmp: Path, n: int, p: int) -> None:
    """``gd.pgen`` beside plink2's ``g.pgen``: the same calls with dosages (each call moved by
    up to 0.2 toward the middle, missing kept), written by pgenlib, plink2's library."""
    import numpy as np
    import pgenlib

    from bayeslmm.io import iter_variant_blocks, read_pgen

    ds = read_pgen(tmp / "g")
    rng = np.random.default_rng(2)
    w = pgenlib.PgenWriter(str(tmp / "gd.pgen").encode(), n, variant_ct=p,
                           dosage_present=True)
    for b in iter_variant_blocks(ds, dtype="float32", block_size=1000):
        g = b.genotypes.T.copy()
        g += np.where(g < 1, 1, np.where(g > 1, -1, 0)) * rng.uniform(0, 0.2, g.shape)
        w.append_dosages_batch(np.ascontiguousarray(np.where(np.isnan(g), -9, g),
                                                    dtype=np.float32))
    w.close()
    for s in (".pvar", ".psam"):
        shutil.copy(tmp / f"g{s}", tmp / f"gd{s}")


def _cbgen_pass(ds, repeats: int) -> float:
    """The BGEN pass as cbgen gives it, one call per variant (P(het) + 2 P(hom ALT), float32,
    the first allele ALT as ``ref-last``), checked identical to the reader's dosages."""
    import numpy as np
    from cbgen import bgen_file

    from bayeslmm.io import iter_variant_blocks

    reader = ds.attrs["genotype_reader"]
    cols = ds["bed_index"].values if "bed_index" in ds else np.arange(reader.n_variants)

    def run():
        out = []
        with bgen_file(reader.path) as bf:
            for block in np.array_split(cols, max(1, cols.size // 1000)):
                d = np.empty((block.size, reader.n_samples), np.float32)
                for k, j in enumerate(block):
                    p = bf.read_probability(int(reader.offsets[j]), precision=32)
                    d[k] = p[:, 1] + 2.0 * p[:, 0]
                out.append(d)
        return np.concatenate(out)

    t, ref = _best(run, repeats)
    got = np.concatenate([b.genotypes.T for b in iter_variant_blocks(ds, dtype="float32",
                                                                      block_size=1000)])
    if not np.array_equal(got.view(np.uint32), ref.view(np.uint32)):
        raise AssertionError("the BGEN reader's dosages differ from cbgen's")
    return t


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
        _dosage_pgen(tmp, a.n, a.p)
        sources = {"bed": ("bfile", str(tmp / "g"), {}),
                   "pgen": ("pfile", str(tmp / "g"), {}),
                   "pgen (dosages)": ("pfile", str(tmp / "gd"), {}),
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
            if fmt == "bgen":
                rows["bgen, cbgen per variant"] = (t_open, _cbgen_pass(ds, a.repeats), np.nan,
                                                   np.nan)
        b = rows["bed"]
        print(f"N = {a.n:,}, P = {a.p:,}; {a.threads} BLAS thread(s); best of {a.repeats}")
        print("| format | open (s) | pass (s) | pass / .bed | GRM (s) | GRM / .bed | "
              "max abs GRM diff |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, (to, tp, tg, err) in rows.items():
            grm_cells = ("- | - | -" if np.isnan(tg) else
                         f"{tg:.2f} | {tg / b[2]:.2f} | {err:.1e}")
            print(f"| {name} | {to:.2f} | {tp:.2f} | {tp / b[1]:.2f} | {grm_cells} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
