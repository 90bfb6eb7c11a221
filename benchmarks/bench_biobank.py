"""UK-Biobank size on two cores (issue 27): REML h2, its posterior and GRAMMAR-Gamma
association from one Krylov run over a PLINK fileset read straight from its 2-bit packing.

* ``--simulate N P``: writes ``WORKDIR/bb_N_P.bed/.bim/.fam`` and its phenotype (``.y.npy``)
  with numba, byte by byte: 3 populations (F_ST = 0.05, Balding-Nichols frequencies), 10%
  of the samples sharing half their genotypes with another sample (close relatives), 1%
  missing calls, h2 = 0.4 spread over every SNP (the infinitesimal model). Genotypes come
  from a counter-based hash of (seed, sample, SNP), so a relative's genotype is recomputed,
  not stored, and the rows are filled in parallel. Reused when present.
* ``--run N P``: ``bayeslmm assoc --engine krylov --test grammar-gamma`` on it (as a
  subprocess, so the peak RSS is the run's own), with ``--memory`` (default 8192 MiB: past
  half of it the passes read the .bed's bytes, not an int8 copy) and the REML's posterior
  of h2 from the same Lanczos run (``sample --engine krylov`` reuses no pass, so the
  benchmark times the posterior in-process on the saved fit: see ``posterior``). Reports
  wall time per stage, passes, peak RSS, h2 against the simulated value.
* ``--cache int8``: the same run with the int8 cache (the last round's engine) for the ratio.

Commands of record (issue 27):

    python benchmarks/bench_biobank.py --simulate 500000 100000 --workdir /data/bb
    python benchmarks/bench_biobank.py --run 500000 100000 --threads 2 --workdir /data/bb
    python benchmarks/bench_biobank.py --run 100000 50000 --threads 2 --cache int8 packed \\
        --workdir /data/bb
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]


@njit(inline="always")
def _mix(x):
    """splitmix64's finaliser: a counter-based uniform in [0, 1)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def _genotype(seed, i, j, f):
    key = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
           + np.uint64(i) * np.uint64(0x100000001B3) + np.uint64(j) * np.uint64(0xD6E8FEB86659FD93))
    return (_mix(key) < f) + (_mix(key + np.uint64(1)) < f)


@njit(parallel=True, cache=True)
def _block(seed, j0, freq, pops, parent, missing, beta, mean, packed, g):
    """SNPs j0.. of ``freq`` (n_pops, c) into ``packed`` (c, nbytes) in .bed coding (A1 =
    the counted allele: 00 two copies, 10 one, 11 none, 01 missing), and the genetic value
    of each sample added to ``g``. Parallel over bytes (4 samples each: no shared writes)."""
    c, nbytes = packed.shape
    N = pops.size
    codes = np.array([3, 2, 0], np.uint8)
    for q in prange(nbytes):
        for j in range(c):
            byte = np.uint8(0)
            for k in range(4):
                i = 4 * q + k
                if i >= N:
                    break
                f = freq[pops[i], j]
                x = _genotype(seed, i, j0 + j, f)
                p = parent[i]
                if p >= 0 and _mix(np.uint64(seed + 7) * np.uint64(1_000_003)
                                   + np.uint64(i) * np.uint64(N) + np.uint64(j0 + j)) < 0.5:
                    x = _genotype(seed, p, j0 + j, freq[pops[p], j])
                g[i] += (x - mean[j]) * beta[j]
                key = np.uint64(seed + 13) * np.uint64(0x2545F4914F6CDD1D) \
                    + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(j0 + j)
                code = np.uint8(1) if _mix(key) < missing else codes[x]
                byte |= code << np.uint8(2 * k)
            packed[j, q] = byte


def simulate(prefix: Path, N: int, P: int, *, h2: float = 0.4, fst: float = 0.05,
             n_pops: int = 3, missing: float = 0.01, seed: int = 1, block: int = 2000):
    """Write ``prefix``.bed/.bim/.fam and ``prefix``.y.npy (module docstring); return y."""
    rng = np.random.default_rng(seed)
    pops = rng.integers(0, n_pops, N).astype(np.int64)
    parent = np.full(N, -1, np.int64)
    kids = rng.choice(N, N // 10, replace=False)
    parent[kids] = rng.integers(0, N, kids.size)
    parent[parent == np.arange(N)] = -1
    g = np.zeros(N)
    nbytes = (N + 3) // 4
    per = -(-P // 22)
    with open(f"{prefix}.bed", "wb") as bed:
        bed.write(b"\x6c\x1b\x01")
        for j0 in range(0, P, block):
            c = min(block, P - j0)
            p_anc = rng.uniform(0.05, 0.5, c)
            a, b = p_anc * (1 - fst) / fst, (1 - p_anc) * (1 - fst) / fst
            freq = rng.beta(a, b, size=(n_pops, c))
            mean = 2 * freq.mean(axis=0)
            sd = np.sqrt(np.maximum(mean * (1 - mean / 2), 1e-6))
            beta = rng.normal(0, np.sqrt(h2 / P), c) / sd
            packed = np.empty((c, nbytes), np.uint8)
            _block(seed, j0, freq, pops, parent, missing, beta, mean, packed, g)
            bed.write(packed.tobytes())
    chrom = np.minimum(np.arange(P) // per + 1, 22)
    pos = (np.arange(P) % per + 1) * 1000
    with open(f"{prefix}.bim", "w") as f:
        f.writelines(f"{c}\trs{j}\t0\t{p}\tA\tG\n"
                     for j, (c, p) in enumerate(zip(chrom, pos, strict=True)))
    with open(f"{prefix}.fam", "w") as f:
        f.writelines(f"f{i} i{i} 0 0 0 -9\n" for i in range(N))
    e = rng.normal(0, np.sqrt(g.var() * (1 - h2) / h2), N)
    y = g + e
    np.save(f"{prefix}.y.npy", y)
    with open(f"{prefix}.pheno", "w") as f:
        f.writelines(f"f{i} i{i} {v:.6f}\n" for i, v in enumerate(y))
    return y


def run(prefix: Path, threads: int, cache: str, memory_mb: int, probes: int, steps: int,
        out: Path, command: str = "assoc") -> dict:
    """``bayeslmm assoc`` (or ``reml``) ``--engine krylov`` as a subprocess (its wall time
    and peak RSS)."""
    import resource

    mem = memory_mb if cache == "packed" else 10**6  # int8: a budget it fits in
    test = ["--test", "grammar-gamma"] if command == "assoc" else []
    argv = [sys.executable, "-m", "bayeslmm.cli", command, "--bfile", str(prefix),
            "--pheno", f"{prefix}.pheno", "--engine", "krylov", *test,
            "--probes", str(probes), "--lanczos-steps", str(steps), "--threads", str(threads),
            "--memory", str(mem), "--no-resume", "--out", str(out)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    log = Path(f"{out}.log").read_text()
    h2 = se = mc = float("nan")
    for line in log.splitlines():
        if line.startswith("V(G)/Vp\t"):
            h2, se = map(float, line.split("\t")[1:3])
        elif line.startswith("V(G)/Vp MC error"):
            mc = float(line.split("\t")[1])
    info = next((ln for ln in log.splitlines() if ln.startswith("Krylov engine:")), "")
    return {"command": command, "cache": cache, "wall s": f"{wall:.0f}",
            "peak RSS GB (children, max)": f"{peak:.2f}",
            "h2 (SE, MC)": f"{h2:.4f} ({se:.4f}, {mc:.4f})",
            "|h2 - 0.4| / SE": f"{abs(h2 - 0.4) / se:.2f}", "engine": info[15:200]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simulate", type=int, nargs=2, metavar=("N", "P"))
    ap.add_argument("--run", type=int, nargs=2, metavar=("N", "P"))
    ap.add_argument("--cache", nargs="+", default=["packed"], choices=("packed", "int8"))
    ap.add_argument("--command", choices=("assoc", "reml"), default="assoc",
                    help="reml: REML and its passes only (the last round's 5.7 min run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", type=int, default=8192, help="MiB (the packed runs)")
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_biobank"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for NP in (args.simulate, args.run):
        if NP is None:
            continue
        prefix = args.workdir / f"bb_{NP[0]}_{NP[1]}"
        if not Path(f"{prefix}.pheno").exists():
            t0 = time.perf_counter()
            simulate(prefix, *NP)
            print(f"simulated {NP[0]} x {NP[1]} in {time.perf_counter() - t0:.0f} s")
    if args.run:
        prefix = args.workdir / f"bb_{args.run[0]}_{args.run[1]}"
        rows = [run(prefix, args.threads, c, args.memory, args.probes, args.steps,
                    args.workdir / f"out_{c}", args.command) for c in args.cache]
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
        for r in rows:
            print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
