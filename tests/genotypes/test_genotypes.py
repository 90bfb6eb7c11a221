"""GRMs and standardized genotypes vs dense brute force (evidence kind: brute force)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import (
    allele_stats,
    grm,
    grm_by_chromosome,
    loco_grms,
    standardized_genotype_matrix,
    standardized_genotypes,
    variant_qc,
)
from bayeslmm.io import genotype_dataset


def make_dataset(N=25, P=60, missing=0.15, n_chrom=3, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, P)
    G = rng.binomial(2, p, size=(N, P)).astype(float)
    G[rng.random((N, P)) < missing] = np.nan
    G[:, 5] = 0.0  # monomorphic
    G[:, 7] = np.nan  # never called
    G[: N // 2, 8] = np.nan  # high missingness
    fam = pd.DataFrame({"fid": [f"F{i}" for i in range(N)], "iid": [f"I{i}" for i in range(N)]})
    chrom = np.sort(rng.integers(1, n_chrom + 1, P)).astype(str)
    bim = pd.DataFrame(
        {
            "chrom": chrom,
            "snp": [f"rs{j}" for j in range(P)],
            "pos": np.arange(P),
            "a1": "A",
            "a2": "G",
        }
    )
    return genotype_dataset(fam, bim, G)


def brute_force_grm(G, maf=0.0, geno=1.0):
    """The GCTA formula written out pair by pair: A_jk = mean over SNPs called in both."""
    N, P = G.shape
    num = np.zeros((N, N))
    cnt = np.zeros((N, N))
    M = 0
    for i in range(P):
        x = G[:, i]
        ok = ~np.isnan(x)
        if ok.sum() == 0 or 1 - ok.mean() > geno:
            continue
        p = x[ok].sum() / (2 * ok.sum())
        if maf > 0 and min(p, 1 - p) < maf:
            continue
        M += 1
        v = 2 * p * (1 - p)
        for j in range(N):
            for k in range(N):
                if ok[j] and ok[k]:
                    cnt[j, k] += 1
                    if v > 0:
                        num[j, k] += (x[j] - 2 * p) * (x[k] - 2 * p) / v
    return num / cnt, cnt, M


@pytest.mark.parametrize(("maf", "geno"), [(0.0, 1.0), (0.1, 0.2)])
def test_grm_equals_brute_force_with_missing(maf, geno):
    ds = make_dataset()
    G = ds["genotype"].values
    K, cnt, M = brute_force_grm(G, maf, geno)
    g = grm(ds, maf=maf, geno=geno, block_size=11)
    np.testing.assert_allclose(g.values, K, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(g.n_snps, cnt)
    assert g.M == M
    assert g.K.dims == ("sample", "sample_") and g.K["sample"].values[0] == "F0 I0"
    assert list(g.ids.columns) == ["fid", "iid"]


def test_block_size_invariance():
    ds = make_dataset(seed=4)
    a = grm(ds, block_size=7)
    b = grm(ds, block_size=10_000)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(a.n_snps, b.n_snps)
    assert a.M == b.M


def test_per_chromosome_and_loco_equal_brute_force():
    ds = make_dataset(n_chrom=4, seed=2)
    G = ds["genotype"].values
    chrom = ds["chrom"].values
    per = grm_by_chromosome(ds, block_size=6)
    loco = loco_grms(ds, block_size=6)
    assert list(per) == list(loco) == ["1", "2", "3", "4"]
    for c in per:
        K, cnt, M = brute_force_grm(G[:, chrom == c])
        np.testing.assert_allclose(per[c].values, K, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(per[c].n_snps, cnt)
        K, cnt, M = brute_force_grm(G[:, chrom != c])
        np.testing.assert_allclose(loco[c].values, K, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(loco[c].n_snps, cnt)
        assert loco[c].M == M
    sub = grm(ds, chromosomes=["2", 3])
    K, _, _ = brute_force_grm(G[:, np.isin(chrom, ["2", "3"])])
    np.testing.assert_allclose(sub.values, K, rtol=1e-12, atol=1e-12)
    with pytest.raises(InputError,
                       match=r"chromosome 9 is not in the genotype data \(it has 1 2 3 4\)"):
        grm(ds, chromosomes=["9"])


def test_standardized_genotypes_give_the_grm_without_missing():
    ds = make_dataset(missing=0.0, seed=5)
    ds["genotype"][:, 7] = 1.0  # make the "never called" column a constant
    ds["genotype"][:, 8] = 2.0
    Z = standardized_genotype_matrix(ds, block_size=9)
    P = Z.sizes["variant"]
    assert P == 60
    np.testing.assert_allclose(Z.values.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.values @ Z.values.T / P, grm(ds).values, rtol=1e-12, atol=1e-12)
    G = ds["genotype"].values
    p = G.mean(0) / 2
    j = 10
    z = (G[:, j] - 2 * p[j]) / np.sqrt(2 * p[j] * (1 - p[j]))
    np.testing.assert_allclose(Z.values[:, j], z)
    E = standardized_genotype_matrix(ds, scale="empirical")
    poly = E.values.std(axis=0) > 0
    np.testing.assert_allclose((E.values[:, poly] ** 2).sum(0), ds.sizes["sample"])


def test_standardized_blocks_set_missing_to_zero_after_centring():
    ds = make_dataset(seed=6)
    G = ds["genotype"].values
    blocks = list(standardized_genotypes(ds, block_size=13, maf=0.05))
    idx = np.concatenate([b.variants for b in blocks])
    Z = np.concatenate([b.Z for b in blocks], axis=1)
    stats = allele_stats(G[:, idx])
    assert np.all(Z[np.isnan(G[:, idx])] == 0)
    ok = ~np.isnan(G[:, idx])
    expected = (G[:, idx] - 2 * stats.p) / np.sqrt(2 * stats.p * (1 - stats.p))
    np.testing.assert_allclose(Z[ok], expected[ok])
    qc = variant_qc(ds, maf=0.05)
    np.testing.assert_array_equal(np.flatnonzero(qc["keep"]), idx)


def test_variant_qc_uses_plink_definitions():
    ds = make_dataset(seed=7)
    qc = variant_qc(ds, maf=0.1, geno=0.3)
    G = ds["genotype"].values
    miss = np.isnan(G).mean(0)
    with np.errstate(invalid="ignore"):
        p = np.nansum(G, 0) / (2 * (~np.isnan(G)).sum(0))
    np.testing.assert_allclose(qc["missing_rate"], miss)
    keep = (miss <= 0.3) & (np.minimum(p, 1 - p) >= 0.1)
    np.testing.assert_array_equal(qc["keep"].to_numpy(), keep)
    assert not qc["keep"][7] and not qc["keep"][8] and not qc["keep"][5]


def test_bad_arguments():
    ds = make_dataset()
    with pytest.raises(InputError, match="maf"):
        grm(ds, maf=0.7)
    with pytest.raises(InputError, match="no SNP passed QC"):
        grm(ds.isel(variant=[7, 8]), geno=0.1)
    with pytest.raises(InputError, match="allele_freq has shape"):
        grm(ds, allele_freq=np.full(3, 0.5))
    with pytest.raises(InputError, match="at least 2 chromosomes"):
        loco_grms(ds, chromosomes=["1"])


@settings(max_examples=25, deadline=None)
@given(block_size=st.integers(1, 70), seed=st.integers(0, 3))
def test_any_block_size_gives_the_same_grm(block_size, seed):
    ds = make_dataset(N=12, P=30, seed=seed)
    a = grm(ds, block_size=block_size)
    b = grm(ds, block_size=30)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.n_snps, b.n_snps)


def test_progress_bar(capsys):
    ds = make_dataset()
    grm(ds, block_size=5, progress=True)
    assert "GRM" in capsys.readouterr().err
    grm(ds, block_size=5, progress=False)
    assert capsys.readouterr().err == ""
