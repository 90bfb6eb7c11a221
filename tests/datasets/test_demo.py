"""The embedded demo data: present, small, PLINK-readable, with family structure, and exactly
reproduced by its seeded generator."""

from __future__ import annotations

import numpy as np

from bayeslmm.datasets import load_demo, make_demo
from bayeslmm.io import read_phenotype, read_plink


def test_files_present_and_small():
    d = load_demo()
    files = [d.bfile.with_suffix(s) for s in (".bed", ".bim", ".fam")] + [d.pheno]
    assert sum(f.stat().st_size for f in files) < 1_000_000
    assert d.true_h2 == 0.5 and d.n_samples == 400 and d.n_snps == 3000


def test_readable_with_family_structure():
    d = load_demo()
    ds = read_plink(d.bfile)
    assert ds.sizes == {"sample": 400, "variant": 3000}
    assert sorted(set(ds["chrom"].to_numpy())) == ["1", "2", "3"]
    y = read_phenotype(d.pheno)
    assert y.isna().sum() == 5 and len(y) == 400
    fam = [ln.split() for ln in d.bfile.with_suffix(".fam").read_text().splitlines()]
    assert sum(r[2] != "0" for r in fam) == 240  # 3 children in each of 80 families


def test_generator_reproduces_the_shipped_files(tmp_path):
    prefix = make_demo.write(tmp_path)
    d = load_demo()
    for s in (".bed", ".bim", ".fam", ".phen"):
        assert prefix.with_suffix(s).read_bytes() == d.bfile.with_suffix(s).read_bytes(), s


def test_simulated_truth():
    sim = make_demo.simulate()
    assert np.isclose(np.var(sim["g"]), make_demo.TRUE_H2)
    # related samples share genotypes: sibs agree more often than founders of other families
    G = np.nan_to_num(sim["genotypes"], nan=1.0)
    sib = np.mean(G[2] == G[3])
    unrel = np.mean(G[0] == G[5])
    assert sib > unrel + 0.05
