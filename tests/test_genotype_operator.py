"""The genotype operator K V = Z (Z'V) / P vs the dense GRM (evidence kind: brute force,
on the demo fileset and GEMMA's mouse_hs1940 genotypes)."""

from __future__ import annotations

import numpy as np
import pytest
from test_genotypes import make_dataset

from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.genotype_operator import GenotypeOperator, genotype_array, standardize_inplace
from bayeslmm.genotypes import grm, standardize_block, standardized_genotype_matrix
from bayeslmm.io import read_plink


def _V(n, k=4, seed=3):
    return np.random.default_rng(seed).standard_normal((n, k))


def test_mouse_equals_gcta_grm(mouse_dir):
    # every other SNP (6,113 of 12,226: position -9 SNPs are kept, as GEMMA) keeps the test
    # quick; all 1,940 mice
    ds = read_plink(mouse_dir / "mouse_hs1940").isel(variant=slice(0, None, 2))
    K = np.asarray(grm(ds).K)
    op = GenotypeOperator(ds, chunk_size=750, progress=False)
    assert not op.has_missing and op.P == ds.sizes["variant"] == 6113
    V = _V(op.N)
    np.testing.assert_allclose(op.matmat(V), K @ V, rtol=0, atol=1e-10)
    assert op.stats.passes == 1 and op.n_chunks == 9


def test_demo_equals_grm_on_complete_snps():
    """The demo has missing calls: on the SNPs called in every sample (geno=0) the operator is
    GCTA's GRM exactly; on all SNPs it is Z Z'/P with missing calls at the mean, which is not
    GCTA's per-pair N_jk normalisation (both directions checked)."""
    ds = read_plink(load_demo().bfile)
    V = _V(ds.sizes["sample"])
    op0 = GenotypeOperator(ds, geno=0.0, chunk_size=500, progress=False)
    K0 = np.asarray(grm(ds, geno=0.0).K)
    assert 0 < op0.P < ds.sizes["variant"] and not op0.has_missing
    np.testing.assert_allclose(op0.matmat(V), K0 @ V, rtol=0, atol=1e-10)

    op = GenotypeOperator(ds, chunk_size=500, progress=False)
    assert op.has_missing
    Z = standardized_genotype_matrix(ds).to_numpy()
    np.testing.assert_allclose(op.matmat(V), Z @ (Z.T @ V) / Z.shape[1], rtol=0, atol=1e-10)
    assert np.abs(op.matmat(V) - np.asarray(grm(ds).K) @ V).max() > 1e-3


def test_qc_monomorphic_and_uncalled_snps():
    """maf/geno as PLINK; a monomorphic SNP counts in P, a never-called one does not; the
    half-missing SNP 8 enters as Z Z'/P (missing at the mean) unless geno removes it."""
    ds = make_dataset(N=30, P=80, missing=0.0)
    for maf, geno in [(0.0, 0.0), (0.05, 0.1)]:
        op = GenotypeOperator(ds, maf=maf, geno=geno, chunk_size=7, progress=False)
        G = grm(ds, maf=maf, geno=geno)
        assert op.P == G.M and not op.has_missing
        V = _V(op.N)
        np.testing.assert_allclose(op.matmat(V), np.asarray(G.K) @ V, rtol=0, atol=1e-12)
    op = GenotypeOperator(ds, chunk_size=7, progress=False)
    Z = standardized_genotype_matrix(ds).to_numpy()
    assert op.P == Z.shape[1] == 79 and op.has_missing
    V = _V(op.N)
    np.testing.assert_allclose(op.matmat(V), Z @ (Z.T @ V) / 79, rtol=0, atol=1e-12)


def test_covariates_projected_and_subset():
    ds = read_plink(load_demo().bfile)
    rows = np.arange(0, ds.sizes["sample"], 3)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(rows.size), rng.standard_normal(rows.size)])
    op = GenotypeOperator(ds, samples=rows, X=X, geno=0.0, progress=False)
    K = np.asarray(grm(ds, geno=0.0).K)[np.ix_(rows, rows)]
    Q = np.linalg.qr(X)[0]
    Pm = np.eye(rows.size) - Q @ Q.T
    V = _V(rows.size)
    np.testing.assert_allclose(op.matmat(V), Pm @ K @ Pm @ V, rtol=0, atol=1e-10)
    np.testing.assert_allclose(op.trace(), np.trace(Pm @ K @ Pm), rtol=1e-12)
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
        GenotypeOperator(make_dataset().isel(variant=[5, 7]), maf=0.01, progress=False)
    op = GenotypeOperator(ds, progress=False)
    with pytest.raises(InputError, match="rows"):
        op.matmat(np.ones((3, 2)))
    with pytest.raises(InputError, match="samples must be positions"):
        GenotypeOperator(ds, samples=np.array([10_000]), progress=False)
    with pytest.raises(InputError, match="PLINK prefix"):
        GenotypeOperator(42)


@pytest.mark.parametrize("order", ["C", "F"])
def test_standardize_inplace_equals_standardize_block(order):
    G = make_dataset(N=200, P=60, missing=0.1)["genotype"].to_numpy().copy(order=order)
    ref = standardize_block(G)[0]
    out = standardize_inplace(G.copy(order=order))
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-15)
    assert np.all(out[:, 7] == 0) and np.all(out[:, 5] == 0)  # never called; monomorphic
