"""Simulated PLINK filesets with population structure and relatives (for the large-N engines).

Three populations drift from a common ancestor (Balding-Nichols, F_ST = 0.05); a tenth of the
samples copy half of their genotypes from another sample (close relatives). The phenotype is
infinitesimal with heritability ``h2`` plus population mean shifts, so the top of the GRM's
spectrum (structure) is what deflation must handle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def simulate_plink(path: Path, N: int = 2000, P: int = 4000, h2: float = 0.4,
                   fst: float = 0.05, n_pops: int = 3, seed: int = 1):
    """Write ``path`` (.bed/.bim/.fam) with bed-reader's ``to_bed``; return (y, pops)."""
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    p_anc = rng.uniform(0.05, 0.5, P)
    a, b = p_anc * (1 - fst) / fst, (1 - p_anc) * (1 - fst) / fst
    pops = rng.integers(0, n_pops, N)
    freq = rng.beta(a, b, size=(n_pops, P))
    G = rng.binomial(2, freq[pops]).astype(np.float32)
    n_rel = N // 10
    kid, par = rng.choice(N, n_rel, replace=False), rng.choice(N, n_rel)
    G[kid] = np.where(rng.random((n_rel, P)) < 0.5, G[par], G[kid])
    p = G.mean(0) / 2
    Z = (G - 2 * p) / np.sqrt(2 * p * (1 - p) + 1e-12)
    y = (Z @ rng.normal(0, np.sqrt(h2 / P), P) + rng.normal(0, np.sqrt(1 - h2), N)
         + 0.5 * pops)
    chrom = np.repeat(["1", "2"], [P // 2, P - P // 2])
    to_bed(str(path), G, properties={"chromosome": chrom})
    return y, pops
