"""The packed path: products decoded from the .bed's 2-bit bytes inside the kernel
(bayeslmm.genotypes.packed) equal the int8 cache's and bed-reader's dense matrix."""

from __future__ import annotations

import numpy as np
import pytest
from test_genotype_operator import _V, _written
from test_genotypes import make_dataset

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import grm, standardized_genotype_matrix
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.genotypes.packed import count_codes, packed_columns, row_stats
from bayeslmm.io import read_plink

F64 = {"progress": False, "precision": "float64"}


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    """61 samples (the last byte of each SNP half padding), missing calls, a monomorphic
    and a never-called SNP; and the genotypes as bed-reader reads them back (A1 counted)."""
    mem = make_dataset(N=61, P=80, missing=0.1)
    ds = _written(tmp_path_factory.mktemp("packed"), mem)
    return ds, mem["genotype"].to_numpy()


def test_code_counts_are_the_bed(bed):
    ds, G = bed
    packed = packed_columns(ds.attrs["bed_path"], 61, 80, np.arange(80))
    assert packed.shape == (16, 80)
    rows = np.array([60, 3, 0, 17, 17])
    for r, ref in ((np.empty(0, np.int64), G), (rows, G[rows])):
        st = row_stats(count_codes(packed, r, 61))
        np.testing.assert_array_equal(st[0], (~np.isnan(G)).sum(axis=0))
        np.testing.assert_array_equal(st[1], np.nansum(G, axis=0))
        np.testing.assert_array_equal(st[2], (~np.isnan(ref)).sum(axis=0))
        np.testing.assert_array_equal(st[3], np.nansum(ref, axis=0))
        np.testing.assert_array_equal(st[4], np.nansum(ref**2, axis=0))


@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_packed_equals_int8_path_and_dense(bed, chunk_size):
    """Products, Z, diag(Z'Z) and tr(K) from the packed bytes equal the int8 cache's to
    1e-10 (float64), and the dense standardized matrix; on all samples, on an unordered
    subset (a gather from the bytes), and with PLINK's filters."""
    ds, _ = bed
    Zall = standardized_genotype_matrix(ds).to_numpy()
    for rows in (None, np.array([5, 3, 60, 0, 17, 40, 41, 42, 12])):
        for maf, geno in ((0.0, 1.0), (0.05, 0.15)):
            kw = dict(samples=rows, maf=maf, geno=geno, chunk_size=chunk_size, **F64)
            a = GenotypeOperator(ds, cache="int8", **kw)
            b = GenotypeOperator(ds, cache="packed", **kw)
            assert b.storage == "packed" and not b.cached and a.P == b.P
            V = _V(b.N, 5) + 3.0  # a mean the centring must carry
            np.testing.assert_allclose(b.matmat(V), a.matmat(V), rtol=0, atol=1e-10)
            np.testing.assert_allclose(b.rmatmat(V), a.rmatmat(V), rtol=0, atol=1e-10)
            np.testing.assert_allclose(b.column_sumsq(), a.column_sumsq(), rtol=1e-13)
            Zb = b.Z.compute()
            np.testing.assert_allclose(Zb, a.Z.compute(), rtol=0, atol=1e-14)
            if maf == 0.0:
                Z = Zall if rows is None else Zall[rows]  # 79: SNP 7 is never called
                np.testing.assert_allclose(Zb, Z, rtol=0, atol=1e-14)
            # filters and the uncalled SNP cost no second pass over the file
            assert b.stats.decode_passes == 1


def test_packed_float32_and_mouse(mouse_dir):
    """On GEMMA's mouse fileset (no missing calls) the packed operator is GCTA's GRM to
    1e-10 in float64 and within float32 rounding in float32."""
    ds = read_plink(mouse_dir / "mouse_hs1940").isel(variant=slice(0, None, 4))
    K = np.asarray(grm(ds).K)
    V = _V(ds.sizes["sample"])
    KV = K @ V
    op = GenotypeOperator(ds, cache="packed", chunk_size=700, **F64)
    np.testing.assert_allclose(op.matmat(V), KV, rtol=0, atol=1e-10)
    op32 = GenotypeOperator(ds, cache="packed", chunk_size=700, progress=False)
    err = np.abs(op32.matmat(V) - KV).max() / np.abs(KV).max()
    assert 1e-10 < err < 1e-5


def test_cache_chosen_by_memory_budget(bed):
    """int8 while it fits half the budget; past that the .bed's packed bytes; another
    format (here: genotypes in memory) has no packing and re-decodes; a packed cache asked
    of it is refused in one line."""
    ds, _ = bed
    n_bytes = 61 * 80
    assert GenotypeOperator(ds, memory=2 * n_bytes, **F64).storage == "int8"
    assert GenotypeOperator(ds, memory=2 * n_bytes - 2, **F64).storage == "packed"
    assert GenotypeOperator(ds, cache=False, **F64).storage == "packed"
    mem = make_dataset(N=20, P=30)
    assert GenotypeOperator(mem, memory=10, **F64).storage == "none"
    assert GenotypeOperator(mem, cache=False, **F64).storage == "none"
    with pytest.raises(InputError, match="packed cache reads the 2-bit bytes"):
        GenotypeOperator(mem, cache="packed", **F64)
    with pytest.raises(InputError, match="cache must be one of"):
        GenotypeOperator(ds, cache="bytes", **F64)
