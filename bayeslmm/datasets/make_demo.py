"""Generate the embedded demo data set (``demo.bed/.bim/.fam`` and ``demo.phen``).

Run ``python -m bayeslmm.datasets.make_demo`` to regenerate the files in this folder; the
output is byte-identical for the same ``SEED`` and numpy version (numpy's PCG64 stream is
stable across releases).

Design (documented in ``README.md`` next to this script):

* ``N_FAMILIES`` = 80 nuclear families of 2 unrelated founders and 3 full-sib children,
  i.e. 400 samples, so the GRM has real structure: parent-offspring and sib pairs share
  ~0.5 of their genome, founders ~0.
* ``P`` = 3,000 biallelic SNPs, 1,000 on each of chromosomes 1-3, 10 kb apart. Founder
  haplotypes are drawn independently at each SNP with A1 frequency ~ Uniform(0.05, 0.5)
  (no LD between founder SNPs); each child receives one recombinant haplotype from each
  parent, with Poisson(1) crossovers per chromosome and meiosis (about 1 Morgan each).
* 0.2% of genotype calls are set missing at random, as in real arrays.
* Phenotype ``y = g + e`` with ``TRUE_H2`` = 0.5: ``N_CAUSAL`` = 300 causal SNPs with
  normal effects on the *standardized* genotype scale (GCTA's model, notes section 3), ``g``
  rescaled to sample variance ``TRUE_H2`` and ``e ~ N(0, 1 - TRUE_H2)``, plus a mean of 10.
  Five children have a missing phenotype (``NA``) so the demo shows samples being dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240607
N_FAMILIES = 80
CHILDREN = 3
CHROMOSOMES = (1, 2, 3)
SNPS_PER_CHROM = 1000
SPACING_BP = 10_000
MISSING_RATE = 0.002
N_CAUSAL = 300
TRUE_H2 = 0.5
N_MISSING_PHENO = 5
HERE = Path(__file__).resolve().parent


def _meiosis(h: np.ndarray, rng: np.random.Generator, chrom_of: np.ndarray) -> np.ndarray:
    """One gamete from a parent's two haplotypes ``h`` (2, P): per chromosome, start on a
    random haplotype and switch at Poisson(1) uniformly placed crossovers."""
    out = np.empty(h.shape[1], dtype=h.dtype)
    for c in np.unique(chrom_of):
        idx = np.flatnonzero(chrom_of == c)
        phase = np.full(idx.size, rng.integers(2))
        for cut in np.sort(rng.integers(1, idx.size, rng.poisson(1.0))):
            phase[cut:] = 1 - phase[cut:]
        out[idx] = h[phase, idx]
    return out


def simulate(seed: int = SEED) -> dict:
    """Simulate the demo data in memory; see the module docstring for the design.

    Returns
    -------
    dict
        ``genotypes`` (N, P) A1 counts with NaN for missing, ``fam`` rows
        (fid, iid, father, mother, sex), ``bim`` rows (chrom, snp, cm, pos, a1, a2),
        ``y`` (N,) with NaN for missing, ``g`` the true genetic values, ``h2``.
    """
    rng = np.random.default_rng(seed)
    P = len(CHROMOSOMES) * SNPS_PER_CHROM
    chrom_of = np.repeat(np.array(CHROMOSOMES), SNPS_PER_CHROM)
    freq = rng.uniform(0.05, 0.5, P)
    haps, fam = [], []
    for f in range(1, N_FAMILIES + 1):
        fid = f"FAM{f:03d}"
        parents = [(rng.random((2, P)) < freq).astype(np.int8) for _ in range(2)]
        for k, h in enumerate(parents):
            haps.append(h)
            fam.append((fid, f"{fid}_P{k + 1}", "0", "0", str(k + 1)))
        for c in range(1, CHILDREN + 1):
            h = np.stack([_meiosis(parents[0], rng, chrom_of),
                          _meiosis(parents[1], rng, chrom_of)])
            haps.append(h)
            fam.append((fid, f"{fid}_C{c}", f"{fid}_P1", f"{fid}_P2",
                        str(int(rng.integers(1, 3)))))
    G = np.stack([h.sum(axis=0) for h in haps]).astype(np.float64)
    N = G.shape[0]
    # Causal effects on standardized genotypes (empirical frequencies, as the GRM uses).
    p_hat = G.mean(axis=0) / 2
    causal = np.sort(rng.choice(P, N_CAUSAL, replace=False))
    Zc = (G[:, causal] - 2 * p_hat[causal]) / np.sqrt(2 * p_hat[causal] * (1 - p_hat[causal]))
    g = Zc @ rng.standard_normal(N_CAUSAL)
    g = (g - g.mean()) / g.std() * np.sqrt(TRUE_H2)
    y = 10.0 + g + rng.normal(0.0, np.sqrt(1 - TRUE_H2), N)
    # Missingness after the phenotype, so the truth does not depend on it.
    G[rng.random(G.shape) < MISSING_RATE] = np.nan
    children = [i for i, r in enumerate(fam) if r[2] != "0"]
    y[rng.choice(children, N_MISSING_PHENO, replace=False)] = np.nan
    pos = np.tile(np.arange(1, SNPS_PER_CHROM + 1) * SPACING_BP, len(CHROMOSOMES))
    alleles = np.array([("A", "G"), ("C", "T"), ("G", "A"), ("T", "C")])[rng.integers(0, 4, P)]
    bim = [(str(chrom_of[j]), f"rs{chrom_of[j]}_{pos[j]}", "0", int(pos[j]),
            alleles[j, 0], alleles[j, 1]) for j in range(P)]
    return {"genotypes": G, "fam": fam, "bim": bim, "y": y, "g": g, "h2": TRUE_H2,
            "causal": causal}


def write(out_dir: str | Path = HERE, seed: int = SEED) -> Path:
    """Write ``demo.bed/.bim/.fam`` and ``demo.phen`` into ``out_dir``; return the prefix."""
    from bed_reader import to_bed

    out_dir = Path(out_dir)
    sim = simulate(seed)
    prefix = out_dir / "demo"
    fam, bim = sim["fam"], sim["bim"]
    # bed-reader writes the .bed (SNP-major, A1 counted) and, from these properties, the
    # .fam and .bim in PLINK's column order.
    to_bed(
        f"{prefix}.bed",
        sim["genotypes"].astype(np.float32),
        properties={
            "fid": [r[0] for r in fam], "iid": [r[1] for r in fam],
            "father": [r[2] for r in fam], "mother": [r[3] for r in fam],
            "sex": [int(r[4]) for r in fam], "pheno": ["-9"] * len(fam),
            "chromosome": [r[0] for r in bim], "sid": [r[1] for r in bim],
            "cm_position": [0.0] * len(bim), "bp_position": [r[3] for r in bim],
            "allele_1": [r[4] for r in bim], "allele_2": [r[5] for r in bim],
        },
        count_A1=True,
    )
    lines = ["FID IID y\n"] + [
        f"{r[0]} {r[1]} {'NA' if np.isnan(v) else f'{v:.6f}'}\n"
        for r, v in zip(fam, sim["y"], strict=True)
    ]
    Path(f"{prefix}.phen").write_text("".join(lines), encoding="utf-8")
    return prefix


if __name__ == "__main__":
    print(f"wrote {write()}.bed/.bim/.fam/.phen")
