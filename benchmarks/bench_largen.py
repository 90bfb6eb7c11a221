"""Biobank-scale REML and posterior of h2 from genotypes (issue 13): the matrix-free Krylov
engine against the exact eigen path, the cost of a pass over the genotypes (before / after
the int8 cache, same run), full REML + posterior runs at scale, a dask LocalCluster run, and
BOLT-LMM.

Sections (each optional):

* ``--accuracy N``: a simulated fileset (3 populations, F_ST = 0.05, 10% close relatives,
  P = 1.6 N SNPs, h2 = 0.4), REML and the 1-D quadrature posterior of h2 by the eigen
  path (GRM + eigendecomposition, the baseline) and by the Krylov engine with float64 and
  with float32 products (same probes); |dh2|, posterior mean/SD, Monte Carlo errors,
  passes, wall times.
* ``--profile N P``: where a pass's time goes. Per-pass time of K V for a block of
  ``--probes + 1`` vectors by the previous pass (bed-reader float64 read + standardize +
  dask matmul, re-created here as the baseline) and by the operator (int8 cache; float64
  and float32 products; no cache), interleaved in one run, with GFLOP/s and bytes per pass;
  and a one-thread breakdown of one chunk's stages.
* ``--scale N P``: a simulated N x P fileset; with ``--reml``, the full Krylov REML +
  posterior of h2 (wall time, passes, time per pass, GFLOP/s, bytes per pass, peak RSS);
  without, ``--passes`` timed passes and a projection. ``--cluster`` repeats it on a
  ``dask.distributed.LocalCluster`` (``--threads`` workers x 1 thread; in a subprocess, so
  each run's peak RSS is its own; the workers' peaks are reported too).
* ``--bolt``: ``bolt --reml`` (BOLT-LMM, Debian ``bolt-lmm``) on the accuracy fileset.
* ``--peer N P``: the Krylov REML against ``bolt --reml`` alone on an N x P fileset (no exact
  path: for N beyond one eigendecomposition), same thread count, same run.

The two issue-13 runs (prepared; each one command, hours of machine time):

    python benchmarks/bench_largen.py --scale 100000 50000 --reml --cluster --threads 2 \
        --workdir /tmp/bench_largen
    python benchmarks/bench_largen.py --peer 50000 20000 --threads 2 --workdir /tmp/bench_largen

BLAS threads are pinned to --threads (default 1); dask's threaded scheduler gets --threads
workers, each running its products with one BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def simulate(path: Path, N: int, P: int, h2: float = 0.4, fst: float = 0.05, n_pops: int = 3,
             seed: int = 1, block: int = 500, missing: float = 0.0):
    """Write a structured fileset SNP block by SNP block (``missing``: fraction of calls
    set missing at random after the phenotype is drawn); return the phenotype."""
    import numpy as np
    from bed_reader import create_bed

    rng = np.random.default_rng(seed)
    pops = rng.integers(0, n_pops, N)
    n_rel = N // 10
    kid, par = rng.choice(N, n_rel, replace=False), rng.choice(N, n_rel)
    g = np.zeros(N)
    per = -(-P // 10)
    chrom = np.repeat(np.arange(1, 11).astype(str), per)[:P]
    bp = (np.arange(P) % per + 1) * 10_000  # 10 kb apart, 1 cM per Mb (BOLT checks the map)
    props = {"chromosome": chrom, "bp_position": bp, "cm_position": bp / 1e6}
    with create_bed(path, iid_count=N, sid_count=P, properties=props) as bed:
        for s in range(0, P, block):
            c = min(block, P - s)
            p_anc = rng.uniform(0.05, 0.5, c)
            a, b = p_anc * (1 - fst) / fst, (1 - p_anc) * (1 - fst) / fst
            freq = rng.beta(a, b, size=(n_pops, c))
            G = rng.binomial(2, freq[pops]).astype(np.float32)
            G[kid] = np.where(rng.random((n_rel, c)) < 0.5, G[par], G[kid])
            p = G.mean(0) / 2
            Z = (G - 2 * p) / np.sqrt(2 * p * (1 - p) + 1e-12)
            g += Z @ rng.normal(0, np.sqrt(h2 / P), c)
            if missing > 0:
                G[rng.random(G.shape) < missing] = np.nan
            for j in range(c):
                bed.write(G[:, j])
    y = g + rng.normal(0, np.sqrt(1 - h2), N) + 0.5 * pops
    return y


def simulate_once(path: Path, N: int, P: int, missing: float = 0.0):
    """simulate(), or the fileset of an earlier run in the same --workdir: (bed path, y)."""
    import numpy as np

    if missing > 0:
        path = path.with_name(f"{path.stem}_miss{missing:g}.bed")
    saved = path.with_suffix(".y.npy")
    if saved.exists() and path.exists() and path.with_suffix(".fam").exists():
        return path, np.load(saved)
    t0 = time.perf_counter()
    y = simulate(path, N, P, missing=missing)
    print(f"simulated {N} x {P} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    np.save(saved, y)
    return path, y


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def load() -> str:
    return os.getloadavg().__repr__() if hasattr(os, "getloadavg") else "?"


def accuracy(N: int, workdir: Path, threads: int, probes: int, steps: int, bolt: bool):
    import numpy as np
    import pandas as pd

    import bayeslmm
    from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov
    from bayeslmm.genotypes.kinship import grm
    from bayeslmm.io import read_plink

    P = int(1.6 * N)
    path, y = simulate_once(workdir / f"acc_{N}.bed", N, P)
    ds = read_plink(path)
    labels = ds["sample"].to_numpy().astype(str)
    ys = pd.Series(y, index=labels)
    t0 = time.perf_counter()
    K = np.asarray(grm(ds).K)
    t_grm = time.perf_counter() - t0
    t0 = time.perf_counter()
    dec = bayeslmm.decompose(K)
    t_eig = time.perf_counter() - t0
    del K
    t0 = time.perf_counter()
    ref = bayeslmm.reml(ys, dec)
    post_ref = bayeslmm.posterior_h2_quadrature(ref, n_grid=801)
    t_fit = time.perf_counter() - t0
    rows, fits = [], {}
    for precision in ("float64", "float32"):
        t0 = time.perf_counter()
        fit = bayeslmm.reml_genotypes(ds, ys, engine="krylov", n_probes=probes, n_steps=steps,
                                      threads=threads, progress=False, precision=precision)
        t_kry = time.perf_counter() - t0
        t0 = time.perf_counter()
        post = posterior_h2_krylov(fit.model, n_grid=801)
        t_post = time.perf_counter() - t0
        fits[precision] = (fit, post)
        rows.append({
            "N": N, "P": P, "products": precision,
            "eigen h2 (SE)": f"{ref.h2:.4f} ({ref.h2_se:.4f})",
            "krylov h2 (SE, MC)": f"{fit.h2:.4f} ({fit.h2_se:.4f}, {fit.h2_mc_se:.4f})",
            "|dh2| vs eigen": f"{abs(fit.h2 - ref.h2):.4f}",
            "post. mean eigen / krylov (MC)": f"{float(post_ref['mean']):.4f} / "
            f"{float(post['mean']):.4f} ({post.attrs['mean_mc_se']:.4f})",
            "post. SD ratio": f"{float(post['sd']) / float(post_ref['sd']):.3f}",
            "yHy change": f"{fit.yHy_change:.1e}",
            "passes": fit.info["passes"],
            "s/pass": f"{fit.info['seconds_per_pass']:.2f}",
            "eigen path s (GRM + eigh + fit)": f"{t_grm:.0f} + {t_eig:.0f} + {t_fit:.1f}",
            "krylov s (REML + posterior)": f"{t_kry:.0f} + {t_post:.1f}",
        })
    (f64, p64), (f32, p32) = fits["float64"], fits["float32"]
    rows[1]["|dh2| float32 vs float64"] = f"{abs(f32.h2 - f64.h2):.1e}"
    rows[1]["|d post. mean|, SD ratio vs float64"] = (
        f"{abs(float(p32['mean']) - float(p64['mean'])):.1e}, "
        f"{float(p32['sd']) / float(p64['sd']):.5f}")
    if bolt:
        rows[0].update(run_bolt(path, y, labels, workdir, threads))
    return rows


def peer(N: int, P: int, workdir: Path, threads: int, probes: int, steps: int) -> dict:
    """Krylov REML against BOLT-LMM --reml on one N x P fileset, same thread count."""
    import pandas as pd

    import bayeslmm
    from bayeslmm.io import read_plink

    path, y = simulate_once(workdir / f"peer_{N}_{P}.bed", N, P)
    ds = read_plink(path)
    labels = ds["sample"].to_numpy().astype(str)
    t0, c0 = time.perf_counter(), time.process_time()
    fit = bayeslmm.reml_genotypes(ds, pd.Series(y, index=labels), engine="krylov",
                                  n_probes=probes, n_steps=steps, threads=threads,
                                  progress=False)
    t_kry, c_kry = time.perf_counter() - t0, time.process_time() - c0
    row = {"N": N, "P": P, "threads": threads,
           "krylov h2 (SE, MC)": f"{fit.h2:.4f} ({fit.h2_se:.4f}, {fit.h2_mc_se:.4f})",
           "krylov s (CPU s)": f"{t_kry:.0f} ({c_kry:.0f})", "passes": fit.info["passes"],
           "s/pass": f"{fit.info['seconds_per_pass']:.1f}", "peak RSS GB": f"{peak_rss_gb():.1f}"}
    # Printed before BOLT runs, so a BOLT run cut short does not lose it.
    print(table([row]), f"load {load()}", file=sys.stderr, flush=True)
    bolt = run_bolt(path, y, labels, workdir, threads)
    row.update({k: v for k, v in bolt.items() if not k.startswith("_")})
    if "_h2" in bolt:
        row["|dh2| / BOLT SE"] = f"{abs(fit.h2 - bolt['_h2']) / bolt['_se']:.2f}"
        c = bolt_scale(path)
        h2_b = c * fit.h2 / (c * fit.h2 + 1 - fit.h2)
        row["ours on BOLT's scale (c)"] = f"{h2_b:.4f} ({c:.4f})"
        row["|dh2| / BOLT SE, same scale"] = f"{abs(h2_b - bolt['_h2']) / bolt['_se']:.2f}"
        row["wall time ours / BOLT"] = f"{t_kry / bolt['_t']:.2f}"
    return row


def bolt_scale(path: Path, every: int = 4) -> float:
    """How much larger our GRM's genetic variance is on BOLT's kernel: c with
    K_ours ~ K_BOLT / c, so that sigma_g2 on BOLT's scale is c sigma_g2.

    GCTA's GRM (ours) divides each SNP by sqrt(2 p (1 - p)), BOLT-LMM by the SNP's observed
    SD. Under population structure genotypes are out of Hardy-Weinberg proportions (the
    Wahlund effect: var > 2 p (1 - p)), so BOLT's kernel is smaller by the harmonic mean of
    var / (2 p (1 - p)) over SNPs, and h2 = sigma_g2 / (sigma_g2 + sigma_e2) is not invariant to
    a kernel's scale. Estimated from every ``every``-th SNP.
    """
    import numpy as np
    from bed_reader import open_bed

    with open_bed(path) as bed:
        G = bed.read(index=np.s_[:, ::every], dtype="float32")
    p = np.nanmean(G, axis=0) / 2
    ratio = np.nanvar(G, axis=0) / (2 * p * (1 - p))
    return float(1 / np.mean(1 / ratio))


def run_bolt(path: Path, y, labels, workdir: Path, threads: int) -> dict:
    exe = shutil.which("bolt")
    if exe is None:
        return {"BOLT": "not installed"}
    import re

    phen = workdir / "bolt.phen"
    with open(phen, "w") as fh:
        fh.write("FID IID y\n")
        for lab, v in zip(labels, y, strict=True):
            fid, iid = lab.split(" ", 1)
            fh.write(f"{fid} {iid} {v:.8g}\n")
    pre = str(path.with_suffix(""))
    cmd = [exe, f"--bfile={pre}", f"--phenoFile={phen}", "--phenoCol=y", "--reml",
           f"--numThreads={threads}", "--maxModelSnps=100000000"]
    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    t = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    out = proc.stdout + proc.stderr
    m = re.search(r"h2g\s*\(1,1\):\s*([-\d.eE]+)\s*\(([-\d.eE]+)\)", out)
    if proc.returncode != 0 or m is None:
        (workdir / "bolt.log").write_text(out)
        return {"BOLT": f"failed (rc {proc.returncode}; log {workdir / 'bolt.log'})"}
    return {"BOLT h2 (SE)": f"{float(m[1]):.4f} ({float(m[2]):.4f})",
            "BOLT s (CPU s)": f"{t:.0f} ({cpu:.0f})",
            "_h2": float(m[1]), "_se": float(m[2]), "_t": t}


# ----------------------------------------------------------------------------- profile
class _LegacyChunks:
    """The previous operator's reader (the baseline): each dask chunk one bed-reader
    float64 read, standardized in float64 before the products."""

    def __init__(self, ds):
        import numpy as np

        self.ds = ds
        self.shape = (ds.sizes["sample"], ds.sizes["variant"])
        self.dtype = np.dtype(np.float64)
        self.ndim = 2

    def __getitem__(self, key):
        import numpy as np

        from bayeslmm.io.plink import iter_variant_blocks

        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        pos = np.arange(self.shape[1])[cols]
        blk = next(iter_variant_blocks(self.ds, block_size=pos.size, variants=pos,
                                       num_threads=1))
        return blk.genotypes[rows]


def legacy_pass(ds, threads: int):
    """K V as the operator computed it before the int8 cache (64 MiB float64 chunks)."""
    import dask
    import dask.array as da
    import numpy as np
    from threadpoolctl import threadpool_limits

    from bayeslmm.genotypes.operator import standardize_inplace

    N, P = ds.sizes["sample"], ds.sizes["variant"]
    chunk = max(1, min(P, 64 * 2**20 // (8 * N)))
    G = da.from_array(_LegacyChunks(ds), chunks=(N, chunk), name=False, meta=np.empty((0, 0)))
    Z = G.map_blocks(lambda g: standardize_inplace(np.array(g, dtype=np.float64)),
                     dtype=np.float64, meta=np.empty((0, 0)))

    def run(V):
        with threadpool_limits(limits=1, user_api="blas"):
            return dask.compute(Z @ (Z.T @ V), scheduler="threads", num_workers=threads)[0] / P

    return run


def stage_breakdown(ds, block: int, c: int = 1024) -> list[dict]:
    """One thread, one chunk of ``c`` SNPs: seconds per stage, before and after."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from bayeslmm.genotypes.operator import decode_chunk, standardize_inplace
    from bayeslmm.io.plink import iter_variant_blocks

    N = ds.sizes["sample"]
    c = min(c, ds.sizes["variant"])
    pos = np.arange(c)
    V = np.random.default_rng(1).standard_normal((N, block))

    def best(f, n=3):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = f()
            ts.append(time.perf_counter() - t0)
        return min(ts), out

    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        t_read, g = best(lambda: next(iter_variant_blocks(ds, block_size=c, variants=pos,
                                                          num_threads=1)).genotypes)
        t_std, Z = best(lambda: standardize_inplace(g.copy(order="F")))
        t_p1, W = best(lambda: Z.T @ V)
        t_p2, _ = best(lambda: Z @ W)
        t_dec, (counts, _, _) = best(lambda: decode_chunk(ds, pos, None))
        F = np.empty((N, min(c, 256)), dtype=np.float32, order="F")
        V32 = V.astype(np.float32)
        t_cast, _ = best(lambda: [np.copyto(F, counts[:, a:a + F.shape[1]])
                                  for a in range(0, c - F.shape[1] + 1, F.shape[1])])
        t_q1, W32 = best(lambda: F.T @ V32)
        t_q2, _ = best(lambda: F @ W32)
        scale = c / F.shape[1]
        t_q1, t_q2 = t_q1 * scale, t_q2 * scale
        acc, part = np.zeros((N, block)), np.ones((N, block))
        t_red, _ = best(lambda: np.add(acc, part, out=acc))
    flops = 2 * N * c * block
    ns = 1e9 / (N * c)
    col = f"stage (1 thread, chunk of {c} SNPs)"
    stages = [("before: bed-reader float64 read", t_read, None),
              ("before: standardize (float64)", t_std, None),
              ("before: Z'V + Z W (dgemm)", t_p1 + t_p2, 2 * flops),
              ("after, decode pass only: bed-reader int8 + counts", t_dec, None),
              ("after: int8 -> float32 cast (256-SNP buffer)", t_cast, None),
              ("after: G'V + G U (sgemm, 256 SNPs)", t_q1 + t_q2, 2 * flops),
              ("after: the chunk's share of the reduction (N x b float64 add)", t_red, None)]
    for name, t, fl in stages:
        rows.append({col: name, "ns / genotype": f"{t * ns:.2f}",
                     "GFLOP/s": f"{fl / t / 1e9:.1f}" if fl else ""})
    return rows


def profile(N: int, P: int, workdir: Path, threads: int, block: int, passes: int,
            missing: float) -> tuple[list[dict], list[dict]]:
    """Per-pass time before / after, interleaved in one run, and the one-chunk stages."""
    import numpy as np

    from bayeslmm.genotypes.operator import GenotypeOperator
    from bayeslmm.io import read_plink

    path, _ = simulate_once(workdir / f"scale_{N}_{P}.bed", N, P, missing=missing)
    ds = read_plink(path)
    V = np.random.default_rng(0).standard_normal((N, block))
    legacy = legacy_pass(ds, threads)
    ops = {}
    for name, kw in [("int8 cache, float64", {"precision": "float64"}),
                     ("int8 cache, float32", {"precision": "float32"}),
                     ("packed .bed (2-bit, decoded in the kernel), float32",
                      {"precision": "float32", "cache": "packed"}),
                     ("packed .bed (2-bit, decoded in the kernel), float64",
                      {"precision": "float64", "cache": "packed"}),
                     ("no cache (bed-reader int8 every pass), float32",
                      {"precision": "float32", "cache": "none"})]:
        ops[name] = GenotypeOperator(ds, threads=threads, progress=False, **kw)
    times = {"before: bed-reader float64 + standardize + dask matmul": []}
    times.update({k: [] for k in ops})
    ref = legacy(V)  # warm-up (imports, page cache)
    outs = {k: op.matmat(V) for k, op in ops.items()}
    for _ in range(passes):  # interleaved: the machine's load hits every variant alike
        t0 = time.perf_counter()
        legacy(V)
        times["before: bed-reader float64 + standardize + dask matmul"].append(
            time.perf_counter() - t0)
        for k, op in ops.items():
            t0 = time.perf_counter()
            op.matmat(V)
            times[k].append(time.perf_counter() - t0)
    base = float(np.median(times["before: bed-reader float64 + standardize + dask matmul"]))
    bed_bytes = ((N + 3) // 4) * P
    rows = []
    for k, ts in times.items():
        sec = float(np.median(ts))
        op = ops.get(k)
        if op is None:
            read, err, dec = f"{bed_bytes / 1e6:.0f} MB .bed", "-", "-"
        else:
            gb = op.stats.genotype_bytes_per_pass
            read = f"{gb / 1e6:.0f} MB {'int8' if op.cached else '.bed'}"
            dec_s = op.stats.decode_seconds[0]
            err = f"{np.abs(outs[k] - ref).max() / np.abs(ref).max():.1e}"
            dec = f"{dec_s:.1f}"
        rows.append({"N": N, "P": P, "missing": missing, "pass": k, "threads": threads,
                     "block": block, "s/pass": f"{sec:.2f}", "speed-up": f"{base / sec:.1f}x",
                     "GFLOP/s": f"{4 * N * P * block / sec / 1e9:.1f}",
                     "genotype bytes read / pass": read, "decode pass s": dec,
                     "max rel. diff vs before": err})
    return rows, stage_breakdown(ds, block)


# ----------------------------------------------------------------------------- scale
def worker_peak_rss_gb(client) -> list[float]:
    def peak():
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    return [round(v, 2) for v in client.run(peak).values()]


def scale_reml(N: int, P: int, workdir: Path, threads: int, probes: int, steps: int,
               scheduler: str, missing: float) -> dict:
    """The full Krylov REML + posterior of h2 on an N x P fileset, with per-pass stats."""
    import contextlib

    import pandas as pd

    import bayeslmm
    from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov
    from bayeslmm.io import read_plink

    path, y = simulate_once(workdir / f"scale_{N}_{P}.bed", N, P, missing=missing)
    ds = read_plink(path)
    ys = pd.Series(y, index=ds["sample"].to_numpy().astype(str))
    stack = contextlib.ExitStack()
    client = None
    if scheduler == "cluster":
        from distributed import Client, LocalCluster

        lc = stack.enter_context(LocalCluster(n_workers=threads, threads_per_worker=1,
                                              processes=True, dashboard_address=None))
        client = stack.enter_context(Client(lc))
    with stack:
        t0 = time.perf_counter()
        fit = bayeslmm.reml_genotypes(ds, ys, engine="krylov", n_probes=probes, n_steps=steps,
                                      threads=threads, client=client, progress=True)
        t_reml = time.perf_counter() - t0
        t0 = time.perf_counter()
        post = posterior_h2_krylov(fit.model, n_grid=2001)
        t_post = time.perf_counter() - t0
        workers = worker_peak_rss_gb(client) if client is not None else []
    info = fit.info
    b = probes + 1
    row = {
        "N": N, "P": P, "missing": missing,
        "scheduler": f"threads x {threads}" if client is None
        else f"LocalCluster {threads} x 1",
        "h2 (SE, MC)": f"{fit.h2:.4f} ({fit.h2_se:.4f}, {fit.h2_mc_se:.4f})",
        "posterior mean (SD, MC)": f"{float(post['mean']):.4f} ({float(post['sd']):.4f}, "
        f"{post.attrs['mean_mc_se']:.4f})",
        "REML + posterior s": f"{t_reml:.0f} + {t_post:.1f}",
        "decode pass s": f"{info['decode_seconds']:.0f}",
        "passes (decode + products)": f"{info['decode_passes']} + {info['product_passes']}",
        "s / product pass": f"{info['seconds_per_pass']:.1f}",
        "GFLOP/s": f"{info['gflops']:.1f}",
        "bytes / pass": f"{info['genotype_bytes_per_pass'] / 1e9:.2f} GB int8 + "
        f"{N * b * 4 / 1e6:.0f} MB vectors in, {N * b * 8 / 1e6:.0f} MB out per "
        f"{'worker' if client is not None else 'chunk'}",
        ".bed bytes (decode)": f"{info['bed_bytes_per_pass'] / 1e9:.2f} GB",
        "peak RSS GB": f"{peak_rss_gb():.2f}" + (f" + workers {workers}" if workers else ""),
    }
    return row


def scale_passes(N: int, P: int, workdir: Path, threads: int, block: int, passes: int,
                 steps: int, missing: float) -> dict:
    """Timed passes only, and the projected REML (decode + steps passes)."""
    import numpy as np

    from bayeslmm.genotypes.operator import GenotypeOperator
    from bayeslmm.io import read_plink

    path, _ = simulate_once(workdir / f"scale_{N}_{P}.bed", N, P, missing=missing)
    ds = read_plink(path)
    op = GenotypeOperator(ds, threads=threads, progress=False)
    V = np.random.default_rng(0).standard_normal((N, block))
    op.matmat(V)  # warm-up pass, not timed
    for _ in range(passes):
        op.matmat(V)
    sec = float(np.median(op.stats.seconds[1:]))
    dec = op.stats.decode_seconds[0]
    return {"N": N, "P": P, "scheduler": f"threads x {threads}", "block": block,
            "s/pass": f"{sec:.2f}", "decode pass s": f"{dec:.1f}",
            "GB int8 per pass": f"{op.stats.genotype_bytes_per_pass / 1e9:.2f}",
            "GFLOP/s": f"{4 * N * P * block / sec / 1e9:.1f}",
            "peak RSS GB": f"{peak_rss_gb():.1f}",
            f"projected REML s ({steps} passes + decode)": f"{dec + steps * sec:.0f}",
            "projected s at P=50,000": f"{(dec + steps * sec) * 50_000 / P:.0f}"}


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accuracy", type=int, nargs="*", default=[], metavar="N")
    ap.add_argument("--profile", type=int, nargs=2, default=None, metavar=("N", "P"))
    ap.add_argument("--scale", type=int, nargs=2, default=None, metavar=("N", "P"))
    ap.add_argument("--reml", action="store_true",
                    help="--scale: the full REML + posterior (else timed passes only)")
    ap.add_argument("--cluster", action="store_true",
                    help="--scale --reml: also on a LocalCluster of --threads workers")
    ap.add_argument("--scheduler", choices=("threads", "cluster"), default="threads",
                    help=argparse.SUPPRESS)  # the --cluster subprocess
    ap.add_argument("--peer", type=int, nargs=2, default=None, metavar=("N", "P"),
                    help="Krylov REML vs BOLT-LMM --reml on an N x P fileset")
    ap.add_argument("--bolt", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="BLAS threads of the main process (default --threads; the passes "
                         "always run one per dask thread). 1 on a shared machine: OpenBLAS "
                         "threads on busy cores slow small SVDs and eigh 30-50x")
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--passes", type=int, default=3, help="timed passes in --profile/--scale")
    ap.add_argument("--missing", type=float, default=0.0,
                    help="fraction of calls missing at random in --profile/--scale filesets")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    blas = args.blas_threads or args.threads
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(blas)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_largen_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"BLAS threads: {blas}; dask threads: {args.threads}; workdir {workdir}; "
          f"load {load()}\n", flush=True)
    if args.accuracy:
        rows = [r for N in args.accuracy
                for r in accuracy(N, workdir, args.threads, args.probes, args.steps, args.bolt)]
        print(f"Accuracy ({args.probes} probes, {args.steps} Lanczos steps):\n")
        print(table(rows) + "\n", flush=True)
    if args.profile:
        rows, stages = profile(*args.profile, workdir, args.threads, args.probes + 1,
                               args.passes, args.missing)
        print(f"Cost per pass (K V for a block of {args.probes + 1} vectors), load {load()}:\n")
        print(table(rows) + "\n")
        print(table(stages) + "\n", flush=True)
    if args.peer:
        row = peer(*args.peer, workdir, args.threads, args.probes, args.steps)
        print(f"Krylov REML vs BOLT-LMM --reml (same threads, same run), load {load()}:\n")
        print(table([row]) + "\n", flush=True)
    if args.scale and args.reml:
        row = scale_reml(*args.scale, workdir, args.threads, args.probes, args.steps,
                         args.scheduler, args.missing)
        print(f"Krylov REML + posterior of h2 ({args.probes} probes, {args.steps} steps), "
              f"load {load()}:\n")
        print(table([row]) + "\n", flush=True)
        if args.cluster and args.scheduler == "threads":
            # A fresh process: its peak RSS is the cluster run's own.
            cmd = [sys.executable, __file__, "--scale", *map(str, args.scale), "--reml",
                   "--scheduler", "cluster", "--threads", str(args.threads),
                   "--blas-threads", str(blas),
                   "--probes", str(args.probes), "--steps", str(args.steps),
                   "--missing", str(args.missing), "--workdir", str(workdir)]
            subprocess.run(cmd, check=True)
    elif args.scale:
        row = scale_passes(*args.scale, workdir, args.threads, args.probes + 1, args.passes,
                           args.steps, args.missing)
        print(f"Cost per pass (K V for a block of {args.probes + 1} vectors), load {load()}:\n")
        print(table([row]) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
