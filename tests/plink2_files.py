"""Genotype files in other formats, written by plink2 (the peer) from a PLINK 1 fileset, and a
hand-written VCF with DS dosages; for the readers' tests (tests/io) and the command line's.

plink2 (Debian's ``plink2``) is the reference: ``--make-pgen``, ``--export bgen-1.2 bits=8``
(ALT first, so read back with ``ref-last``) and ``--export vcf bgz id-delim=-`` (sample IDs
FID-IID, read back with ``--id-delim -``). Missing: skip, or fail with BAYESLMM_REQUIRE_PEERS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from peers import require_tool


def plink2(args: list[str], cwd: Path) -> None:
    exe = require_tool("plink2")
    res = subprocess.run([exe, *args, "--threads", "1"], cwd=cwd, capture_output=True,
                         text=True, timeout=120)
    if res.returncode != 0:
        raise AssertionError(f"plink2 {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")


def convert(bfile: Path, out: Path) -> dict[str, Path]:
    """``out/g.pgen/.pvar/.psam``, ``out/g.bgen/.sample`` (8 bits) and ``out/g.vcf.gz`` from
    ``bfile``; returns their paths by format."""
    out.mkdir(parents=True, exist_ok=True)
    src = ["--bfile", str(bfile.resolve()), "--out", "g"]
    plink2([*src, "--make-pgen"], out)
    plink2([*src, "--export", "bgen-1.2", "bits=8"], out)
    plink2([*src, "--export", "vcf", "bgz", "id-delim=-"], out)
    return {"pfile": out / "g", "bgen": out / "g.bgen", "sample": out / "g.sample",
            "vcf": out / "g.vcf.gz"}


def small_bfile(path: Path, N: int = 40, P: int = 120, seed: int = 3) -> np.ndarray:
    """A fileset with 3% missing calls and two chromosomes; returns its counts (NaN missing)."""
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(N, P)).astype(np.float32)
    G[rng.random((N, P)) < 0.03] = np.nan
    to_bed(str(path.with_suffix(".bed")), G, properties={
        "fid": [f"F{i}" for i in range(N)], "iid": [f"I{i}" for i in range(N)],
        "chromosome": np.repeat(["1", "2"], [P // 2, P - P // 2]),
        "bp_position": np.arange(1, P + 1) * 100})
    return G.astype(float)


def dosage_vcf(path: Path, N: int = 30, P: int = 50, seed: int = 5, multi: bool = True,
               grid: int = 255) -> np.ndarray:
    """A VCF with GT and DS (ALT dosages on the 1/``grid`` grid: 255, which 8-bit BGEN stores
    exactly, or 16384, a .pgen's dosage unit; 2% missing) and, with ``multi``, one
    tri-allelic GT record (plink2 cannot import it with dosages); returns the (N, P) dosages
    (NaN missing)."""
    rng = np.random.default_rng(seed)
    D = rng.integers(0, 2 * grid + 1, size=(N, P)) / grid  # 0 .. 2 by 1/grid
    D[rng.random((N, P)) < 0.02] = np.nan
    head = ["##fileformat=VCFv4.2", "##contig=<ID=1>",
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">',
            "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                       *[f"S{i}" for i in range(N)]])]
    lines = []
    for j in range(P):
        calls = []
        for d in D[:, j]:
            gt = "./." if np.isnan(d) else ("0/0", "0/1", "1/1")[int(np.rint(d))]
            calls.append(f"{gt}:{'.' if np.isnan(d) else f'{d:.6f}'}")
        lines.append("\t".join(["1", str(100 * (j + 1)), f"v{j}", "A", "G", ".", ".", ".",
                                "GT:DS", *calls]))
        if multi and j == 10:  # a tri-allelic record, which the readers skip
            lines.append("\t".join(["1", "1050", "multi", "A", "G,T", ".", ".", ".", "GT",
                                    *["0/2"] * N]))
    path.write_text("\n".join(head + lines) + "\n")
    return D


def dense_gcta_grm(G: np.ndarray) -> np.ndarray:
    """GCTA's GRM (notes eq. 44-47) written out densely: p from the called values, missing
    calls 0 after standardizing, each pair divided by the SNPs called in both."""
    called = ~np.isnan(G)
    p = np.nansum(G, axis=0) / (2 * called.sum(axis=0))
    sd = np.sqrt(2 * p * (1 - p))  # a monomorphic SNP: a zero column that still counts
    Z = np.where(called & (sd > 0), (G - 2 * p) / np.where(sd > 0, sd, 1.0), 0.0)
    W = called.astype(float)
    return (Z @ Z.T) / (W @ W.T)
