"""Biobank-scale REML and posterior of h2 from genotypes (issue 13): the matrix-free Krylov
engine against the exact eigen path, its cost per pass over the genotypes, and a dask
LocalCluster run.

Sections (each optional):

* ``--accuracy N``: a simulated fileset (3 populations, F_ST = 0.05, 10% close relatives,
  P = 1.6 N SNPs, h2 = 0.4), REML and the 1-D quadrature posterior of h2 by the eigen
  path (GRM + eigendecomposition, the baseline) and by the Krylov engine; |dh2|, posterior
  mean/SD, Monte Carlo errors, passes, wall times.
* ``--scale N P``: a simulated N x P fileset (written with bed-reader's ``create_bed``, SNP by
  SNP), the time of ``--passes`` passes of K V for a block of ``--block`` vectors (the Krylov
  engine's unit of work), bytes of .bed read per pass, peak RSS; the full REML run is
  projected from them (``steps + 2`` passes: QC, trace, Lanczos).
* ``--cluster``: the same passes on a ``dask.distributed.LocalCluster`` (2 workers x 1
  thread), numbers equal to the threaded scheduler's.
* ``--bolt``: ``bolt --reml`` (BOLT-LMM, Debian ``bolt-lmm``) on the accuracy fileset, same
  thread count.
* ``--peer N P``: the Krylov REML against ``bolt --reml`` alone on an N x P fileset (no exact
  path: for N beyond one eigendecomposition).

Usage: python benchmarks/bench_largen.py --accuracy 5000 --scale 100000 5000 --cluster
BLAS threads are pinned to --threads (default 1); dask's threaded scheduler gets --threads
workers too.
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
             seed: int = 1, block: int = 500):
    """Write a structured fileset SNP block by SNP block; return the phenotype."""
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
            for j in range(c):
                bed.write(G[:, j])
    y = g + rng.normal(0, np.sqrt(1 - h2), N) + 0.5 * pops
    return y


def simulate_once(path: Path, N: int, P: int, need_y: bool = True):
    """simulate(), or the fileset (and phenotype) of an earlier run in the same --workdir."""
    import numpy as np

    saved = path.with_suffix(".y.npy")
    if path.exists() and path.with_suffix(".fam").exists() and not need_y:
        return None
    if saved.exists() and path.exists():
        return np.load(saved)
    y = simulate(path, N, P)
    np.save(saved, y)
    return y


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def accuracy(N: int, workdir: Path, threads: int, probes: int, steps: int, bolt: bool):
    import numpy as np
    import pandas as pd

    import bayeslmm
    from bayeslmm.bayes.quadrature_krylov import posterior_h2_krylov
    from bayeslmm.genotypes import grm
    from bayeslmm.io import read_plink

    P = int(1.6 * N)
    path = workdir / f"acc_{N}.bed"
    t0 = time.perf_counter()
    y = simulate_once(path, N, P)
    print(f"simulated {N} x {P} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
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
    t0 = time.perf_counter()
    fit = bayeslmm.reml_genotypes(ds, ys, engine="krylov", n_probes=probes, n_steps=steps,
                                  threads=threads, progress=False)
    t_kry = time.perf_counter() - t0
    t0 = time.perf_counter()
    post = posterior_h2_krylov(fit.model, n_grid=801)
    t_post = time.perf_counter() - t0
    row = {
        "N": N, "P": P,
        "eigen h2 (SE)": f"{ref.h2:.4f} ({ref.h2_se:.4f})",
        "krylov h2 (SE, MC)": f"{fit.h2:.4f} ({fit.h2_se:.4f}, {fit.h2_mc_se:.4f})",
        "|dh2|": f"{abs(fit.h2 - ref.h2):.4f}",
        "post. mean eigen / krylov (MC)": f"{float(post_ref['mean']):.4f} / "
        f"{float(post['mean']):.4f} ({post.attrs['mean_mc_se']:.4f})",
        "post. SD ratio": f"{float(post['sd']) / float(post_ref['sd']):.3f}",
        "passes": fit.info["passes"] + 1,
        "s/pass": f"{fit.info['seconds_per_pass']:.2f}",
        "eigen path s (GRM + eigh + fit)": f"{t_grm:.0f} + {t_eig:.0f} + {t_fit:.1f}",
        "krylov s (REML + posterior)": f"{t_kry:.0f} + {t_post:.1f}",
    }
    if bolt:
        row.update(run_bolt(path, y, labels, workdir, threads))
    return row


def peer(N: int, P: int, workdir: Path, threads: int, probes: int, steps: int) -> dict:
    """Krylov REML against BOLT-LMM --reml on one N x P fileset, same thread count."""
    import pandas as pd

    import bayeslmm
    from bayeslmm.io import read_plink

    path = workdir / f"peer_{N}_{P}.bed"
    t0 = time.perf_counter()
    y = simulate_once(path, N, P)
    print(f"simulated {N} x {P} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ds = read_plink(path)
    labels = ds["sample"].to_numpy().astype(str)
    t0, c0 = time.perf_counter(), time.process_time()
    fit = bayeslmm.reml_genotypes(ds, pd.Series(y, index=labels), engine="krylov",
                                  n_probes=probes, n_steps=steps, threads=threads,
                                  progress=False)
    t_kry, c_kry = time.perf_counter() - t0, time.process_time() - c0
    row = {"N": N, "P": P, "threads": threads,
           "krylov h2 (SE, MC)": f"{fit.h2:.4f} ({fit.h2_se:.4f}, {fit.h2_mc_se:.4f})",
           "krylov s (CPU s)": f"{t_kry:.0f} ({c_kry:.0f})", "passes": fit.info["passes"] + 1,
           "s/pass": f"{fit.info['seconds_per_pass']:.1f}", "peak RSS GB": f"{peak_rss_gb():.1f}"}
    # Printed before BOLT runs, so a BOLT run cut short does not lose it.
    print(table([row]), file=sys.stderr, flush=True)
    row.update(run_bolt(path, y, labels, workdir, threads))
    return row


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
            "BOLT s (CPU s)": f"{t:.0f} ({cpu:.0f})"}


def scale(N: int, P: int, workdir: Path, threads: int, block: int, passes: int,
          steps: int, cluster: bool):
    import numpy as np

    from bayeslmm.genotype_operator import GenotypeOperator
    from bayeslmm.io import read_plink

    path = workdir / f"scale_{N}_{P}.bed"
    t0 = time.perf_counter()
    simulate_once(path, N, P, need_y=False)
    print(f"simulated {N} x {P} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ds = read_plink(path)
    t0 = time.perf_counter()
    op = GenotypeOperator(ds, threads=threads, progress=False)
    t_qc = time.perf_counter() - t0
    V = np.random.default_rng(0).standard_normal((N, block))
    out = op.matmat(V)  # warm-up pass (imports, page cache), not timed
    for _ in range(passes):
        out = op.matmat(V)
    sec = float(np.median(op.stats.seconds[1:]))
    rows = [{
        "N": N, "P": P, "scheduler": f"threads x {threads}", "block": block,
        "s/pass": f"{sec:.1f}", "QC pass s": f"{t_qc:.1f}",
        "MB .bed per pass": f"{op.stats.bed_bytes_per_pass / 1e6:.0f}",
        "GFLOP/pass": f"{4 * N * P * block / 1e9:.0f}",
        "peak RSS GB": f"{peak_rss_gb():.1f}",
        f"projected REML s ({steps + 2} passes)": f"{t_qc + (steps + 1) * sec:.0f}",
        "projected s at P=50,000": f"{(t_qc + (steps + 1) * sec) * 50_000 / P:.0f}",
    }]
    if cluster:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as lc, Client(lc) as client:
            opd = GenotypeOperator(ds, client=client, progress=False)
            outd = opd.matmat(V)  # warm-up: workers import bayeslmm and bed-reader
            for _ in range(passes):
                outd = opd.matmat(V)
            secd = float(np.median(opd.stats.seconds[1:]))
        diff = float(np.abs(outd - out).max())
        rows.append({**rows[0], "scheduler": "LocalCluster 2 x 1", "s/pass": f"{secd:.1f}",
                     "peak RSS GB": "-", "max |diff| vs threads": f"{diff:.1e}",
                     f"projected REML s ({steps + 2} passes)":
                     f"{t_qc + (steps + 1) * secd:.0f}",
                     "projected s at P=50,000": f"{(t_qc + (steps + 1) * secd) * 50_000 / P:.0f}"})
    return rows


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accuracy", type=int, nargs="*", default=[], metavar="N")
    ap.add_argument("--scale", type=int, nargs=2, default=None, metavar=("N", "P"))
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--peer", type=int, nargs=2, default=None, metavar=("N", "P"),
                    help="Krylov REML vs BOLT-LMM --reml on an N x P fileset")
    ap.add_argument("--bolt", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--passes", type=int, default=3, help="timed passes in --scale")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_largen_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"BLAS threads: {args.threads}; dask threads: {args.threads}; workdir {workdir}\n")
    if args.accuracy:
        rows = [accuracy(N, workdir, args.threads, args.probes, args.steps, args.bolt)
                for N in args.accuracy]
        print(f"Accuracy ({args.probes} probes, {args.steps} Lanczos steps):\n")
        print(table(rows) + "\n")
    if args.peer:
        row = peer(*args.peer, workdir, args.threads, args.probes, args.steps)
        print("Krylov REML vs BOLT-LMM --reml (same threads, same run):\n")
        print(table([row]) + "\n")
    if args.scale:
        rows = scale(*args.scale, workdir, args.threads, args.probes + 1, args.passes,
                     args.steps, args.cluster)
        print("Cost per pass (K V for a block of probes + 1 vectors):\n")
        print(table(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
