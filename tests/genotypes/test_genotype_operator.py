"""The genotype operator K V = Z (Z'V) / P vs the dense GRM (evidence kind: brute force,
on the demo fileset, GEMMA's mouse_hs1940 genotypes and a small fileset with monomorphic,
never-called and half-missing SNPs). Exactness is checked in float64; the float32
products against float64 and against the dense standardized matrix."""

from __future__ import annotations

import numpy as np
import pytest
from test_genotypes import make_dataset

from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import (
    allele_stats,
    grm,
    standardize_block,
    standardized_genotype_matrix,
)
from bayeslmm.genotypes.operator import (
    GenotypeOperator,
    decode_chunk,
    genotype_array,
    standardize_inplace,
)
from bayeslmm.io import read_plink

F64 = {"progress": False, "precision": "float64"}


def _V(n, k=4, seed=3):
    return np.random.default_rng(seed).standard_normal((n, k))


def _written(tmp_path, ds):
    """The in-memory dataset ``ds`` written as a .bed fileset and read back lazily."""
    from bed_reader import to_bed

    path = tmp_path / "g.bed"
    to_bed(path, ds["genotype"].to_numpy(), properties={
        "fid": ds["fid"].to_numpy(), "iid": ds["iid"].to_numpy(),
        "sid": ds["snp"].to_numpy(), "chromosome": ds["chrom"].to_numpy(),
        "bp_position": ds["pos"].to_numpy(), "allele_1": ds["a1"].to_numpy(),
        "allele_2": ds["a2"].to_numpy()})
    return read_plink(path)


def test_mouse_equals_gcta_grm(mouse_dir):
    # every other SNP (6,113 of 12,226: position -9 SNPs are kept, as GEMMA) keeps the test
    # quick; all 1,940 mice
    ds = read_plink(mouse_dir / "mouse_hs1940").isel(variant=slice(0, None, 2))
    K = np.asarray(grm(ds).K)
    op = GenotypeOperator(ds, chunk_size=750, **F64)
    assert not op.has_missing and op.P == ds.sizes["variant"] == 6113
    V = _V(op.N)
    np.testing.assert_allclose(op.matmat(V), K @ V, rtol=0, atol=1e-10)
    assert op.stats.passes == 1 and op.n_chunks == 9 and op.stats.decode_passes == 1
    np.testing.assert_allclose(op.trace_raw(), np.trace(K), rtol=1e-12)
    # float32 products, float64 chunk sums: within float32 rounding of the exact product
    op32 = GenotypeOperator(ds, chunk_size=750, progress=False)
    assert op32.precision == "float32"
    KV = K @ V
    err = np.abs(op32.matmat(V) - KV).max() / np.abs(KV).max()
    assert 1e-10 < err < 1e-5


def test_decode_chunk_is_the_bed_exactly(tmp_path):
    """int8 counts, missing positions and per-SNP sums equal the float64 genotypes read
    back, on a .bed with missing calls, a monomorphic and a never-called SNP; with a row
    subset the counts are the subset's, the frequencies' sums all samples'."""
    mem = make_dataset(N=40, P=30, missing=0.1)
    ds = _written(tmp_path, mem)
    G = mem["genotype"].to_numpy()
    for rows in (None, np.array([3, 0, 17, 39, 8])):
        counts, missing, st = decode_chunk(ds, np.arange(5, 25), rows)
        ref = G[:, 5:25] if rows is None else G[rows, 5:25]
        assert counts.dtype == np.int8 and counts.flags.f_contiguous
        np.testing.assert_array_equal(counts, np.nan_to_num(ref, nan=0.0))
        miss = np.zeros(ref.shape, dtype=bool)
        n = ref.shape[0]
        miss[missing % n, missing // n] = True
        np.testing.assert_array_equal(miss, np.isnan(ref))
        full = allele_stats(G[:, 5:25])
        np.testing.assert_array_equal(st[0], full.n_called)
        np.testing.assert_array_equal(st[1], np.nansum(G[:, 5:25], axis=0))
        np.testing.assert_array_equal(st[2], (~np.isnan(ref)).sum(axis=0))
        np.testing.assert_array_equal(st[3], np.nansum(ref, axis=0))
        np.testing.assert_array_equal(st[4], np.nansum(ref**2, axis=0))
    # the in-memory dataset decodes to the same cache
    for a, b in zip(decode_chunk(mem, np.arange(30), None), decode_chunk(ds, np.arange(30), None),
                    strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_folded_standardization_equals_dense_z(tmp_path, chunk_size):
    """Z'V, Z Z'V, diag(Z'Z), tr(K) and Z itself from the int8 cache with the folded
    standardization equal the dense standardized matrix (missing calls at the mean), on a
    .bed with missing calls, for a row subset too (frequencies from all samples)."""
    mem = make_dataset(N=60, P=80, missing=0.1)
    ds = _written(tmp_path, mem)
    Zall = standardized_genotype_matrix(ds).to_numpy()
    for rows in (None, np.arange(0, 60, 2)):
        op = GenotypeOperator(ds, samples=rows, chunk_size=chunk_size, **F64)
        Z = Zall if rows is None else Zall[rows]
        assert op.P == Z.shape[1] == 79 and op.has_missing  # SNP 7 is never called
        V = _V(op.N, 5)
        np.testing.assert_allclose(op.matmat(V), Z @ (Z.T @ V) / 79, rtol=0, atol=1e-12)
        np.testing.assert_allclose(op.rmatmat(V), Z.T @ V, rtol=0, atol=1e-12)
        np.testing.assert_allclose(op.Z.compute(), Z, rtol=0, atol=1e-14)
        np.testing.assert_allclose(op.column_sumsq(), (Z**2).sum(axis=0), rtol=1e-13)
        np.testing.assert_allclose(op.trace_raw(), (Z**2).sum() / 79, rtol=1e-13)
        # float32: the first product runs on V centred (the mean enters through exact
        # counts), so a vector with a large mean loses nothing to the cast. On all samples
        # Z'1 = 0 and K 1 is float64 rounding (uncentred float32 sums would leave ~1e-4 of
        # it); on a subset, float32 rounding of the second product.
        op32 = GenotypeOperator(ds, samples=rows, chunk_size=chunk_size, progress=False)
        one = np.full((op.N, 1), 1e3)
        K1 = Z @ (Z.T @ one) / 79
        tol = (1e-12 * 1e3 * np.linalg.norm(Z, 2) ** 2 / 79 if rows is None
               else 1e-6 * np.abs(K1).max())
        np.testing.assert_allclose(op32.matmat(one), K1, rtol=0, atol=tol)
        np.testing.assert_allclose(op32.matmat(V), Z @ (Z.T @ V) / 79, rtol=0,
                                   atol=1e-6 * np.abs(Z @ (Z.T @ V) / 79).max())


def test_demo_equals_grm_on_complete_snps():
    """The demo has missing calls: on the SNPs called in every sample (geno=0) the operator is
    GCTA's GRM exactly; on all SNPs it is Z Z'/P with missing calls at the mean, which is not
    GCTA's per-pair N_jk normalisation (both directions checked)."""
    ds = read_plink(load_demo().bfile)
    V = _V(ds.sizes["sample"])
    op0 = GenotypeOperator(ds, geno=0.0, chunk_size=500, **F64)
    K0 = np.asarray(grm(ds, geno=0.0).K)
    assert 0 < op0.P < ds.sizes["variant"] and not op0.has_missing
    np.testing.assert_allclose(op0.matmat(V), K0 @ V, rtol=0, atol=1e-10)
    # a filter: statistics pass, then the cache holds the SNPs that pass only
    assert op0.stats.decode_passes == 2 and op0.G.shape == (op0.N, op0.P)

    op = GenotypeOperator(ds, chunk_size=500, **F64)
    assert op.has_missing and op.stats.decode_passes == 1
    Z = standardized_genotype_matrix(ds).to_numpy()
    KV = Z @ (Z.T @ V) / Z.shape[1]
    np.testing.assert_allclose(op.matmat(V), KV, rtol=0, atol=1e-10)
    assert np.abs(op.matmat(V) - np.asarray(grm(ds).K) @ V).max() > 1e-3
    # float32 with missing calls: within float32 rounding
    op32 = GenotypeOperator(ds, chunk_size=500, progress=False)
    assert np.abs(op32.matmat(V) - KV).max() < 1e-5 * np.abs(KV).max()


def test_without_cache_every_pass_decodes_the_bed():
    ds = read_plink(load_demo().bfile)
    V = _V(ds.sizes["sample"])
    cached = GenotypeOperator(ds, chunk_size=700, cache=True, **F64)
    bare = GenotypeOperator(ds, chunk_size=700, cache="none", **F64)
    assert cached.cached and not bare.cached and bare.storage == "none"
    np.testing.assert_array_equal(bare.matmat(V), cached.matmat(V))
    assert bare.stats.genotype_bytes_per_pass == bare.stats.bed_bytes_per_pass == 100 * 3000
    assert cached.stats.genotype_bytes_per_pass == 400 * 3000
    # default: cache when N x P bytes take at most half the free memory
    assert GenotypeOperator(ds, progress=False).cached


def test_qc_monomorphic_and_uncalled_snps():
    """maf/geno as PLINK; a monomorphic SNP counts in P, a never-called one does not; the
    half-missing SNP 8 enters as Z Z'/P (missing at the mean) unless geno removes it."""
    ds = make_dataset(N=30, P=80, missing=0.0)
    for maf, geno in [(0.0, 0.0), (0.05, 0.1)]:
        op = GenotypeOperator(ds, maf=maf, geno=geno, chunk_size=7, **F64)
        G = grm(ds, maf=maf, geno=geno)
        assert op.P == G.M and not op.has_missing
        V = _V(op.N)
        np.testing.assert_allclose(op.matmat(V), np.asarray(G.K) @ V, rtol=0, atol=1e-12)
    op = GenotypeOperator(ds, chunk_size=7, **F64)
    Z = standardized_genotype_matrix(ds).to_numpy()
    assert op.P == Z.shape[1] == 79 and op.has_missing
    # no filter asked for, but SNP 7 was never called: decoded again without it
    assert op.stats.decode_passes == 2 and op.G.shape[1] == 79
    V = _V(op.N)
    np.testing.assert_allclose(op.matmat(V), Z @ (Z.T @ V) / 79, rtol=0, atol=1e-12)


def test_covariates_projected_and_subset():
    ds = read_plink(load_demo().bfile)
    rows = np.arange(0, ds.sizes["sample"], 3)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(rows.size), rng.standard_normal(rows.size)])
    op = GenotypeOperator(ds, samples=rows, X=X, geno=0.0, **F64)
    K = np.asarray(grm(ds, geno=0.0).K)[np.ix_(rows, rows)]
    Q = np.linalg.qr(X)[0]
    Pm = np.eye(rows.size) - Q @ Q.T
    V = _V(rows.size)
    np.testing.assert_allclose(op.matmat(V), Pm @ K @ Pm @ V, rtol=0, atol=1e-10)
    np.testing.assert_allclose(op.trace(), np.trace(Pm @ K @ Pm), rtol=1e-12)
    KcV, KQ = op.matmat_with_raw(V, Q)
    np.testing.assert_allclose(KcV, Pm @ K @ Pm @ V, rtol=0, atol=1e-10)
    np.testing.assert_allclose(KQ, K @ Q, rtol=0, atol=1e-10)
    assert op.samples[1] == ds["sample"].values[3]


def test_dask_array_is_lazy_and_chunked():
    ds = read_plink(load_demo().bfile)
    Z = genotype_array(ds, chunk_size=1000)
    assert Z.chunks[1] == (1000, 1000, 1000)
    np.testing.assert_allclose(Z[:, :50].compute(),
                               standardized_genotype_matrix(ds).to_numpy()[:, :50], atol=1e-14)


def test_bad_input():
    ds = read_plink(load_demo().bfile)
    with pytest.raises(InputError, match="no SNP passed QC"):
        GenotypeOperator(make_dataset().isel(variant=[5, 7]), maf=0.01, **F64)
    op = GenotypeOperator(ds, **F64)
    with pytest.raises(InputError, match="rows"):
        op.matmat(np.ones((3, 2)))
    with pytest.raises(InputError, match="precision must be one of"):
        op.rmatmat(np.ones((op.N, 1)), precision="float16")
    with pytest.raises(InputError, match="samples must be positions"):
        GenotypeOperator(ds, samples=np.array([10_000]), **F64)
    with pytest.raises(InputError, match="PLINK prefix"):
        GenotypeOperator(42)
    with pytest.raises(InputError, match="precision must be one of"):
        GenotypeOperator(ds, precision="half")
    with pytest.raises(InputError, match="maf must be"):
        GenotypeOperator(ds, maf=0.7)
    with pytest.raises(InputError, match="chunk_size"):
        GenotypeOperator(ds, chunk_size=0)


@pytest.mark.parametrize("order", ["C", "F"])
def test_standardize_inplace_equals_standardize_block(order):
    G = make_dataset(N=200, P=60, missing=0.1)["genotype"].to_numpy().copy(order=order)
    ref = standardize_block(G)[0]
    out = standardize_inplace(G.copy(order=order))
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-15)
    assert np.all(out[:, 7] == 0) and np.all(out[:, 5] == 0)  # never called; monomorphic
