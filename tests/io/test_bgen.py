"""BGEN (bayeslmm.io.bgen) against plink2 (the peer): an 8-bit BGEN of hard calls equals the
.bed it was made from (0 and 1 are exact at 8 bits); a dosage BGEN whose dosages lie on the
1/255 grid (which 8 bits store exactly) gives a GRM equal to the dense GCTA GRM of those
dosages; the REF/ALT mode picks the counted allele; bad files are refused in one line."""

from __future__ import annotations

import mmap
import shutil

import numpy as np
import pytest
from plink2_files import convert, dense_gcta_grm, dosage_vcf, plink2, small_bfile

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.genotypes.kinship import grm
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import iter_variant_blocks, read_bgen, read_plink
from bayeslmm.io.bgen_decode import fast_dosages


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bgen")
    G = small_bfile(d / "s.bed")
    D = dosage_vcf(d / "d.vcf", multi=False)
    plink2(["--vcf", "d.vcf", "dosage=DS", "--export", "bgen-1.3", "bits=8", "--out", "d"], d)
    return G, d / "s", convert(d / "s", d / "c"), D, d


def _values(ds, dtype="float64"):
    return next(iter_variant_blocks(ds, block_size=10**6, dtype=dtype)).genotypes


def test_hard_calls_equal_the_bed_and_the_mode_picks_the_allele(files):
    G, bfile, conv, _, _ = files
    ds = read_bgen(conv["bgen"], "ref-last", sample=conv["sample"])  # plink2 writes ALT first
    bed = read_plink(bfile)
    assert ds.attrs["dosage"]
    np.testing.assert_array_equal(ds["sample"].values, bed["sample"].values)
    np.testing.assert_array_equal(ds["a1"].values, bed["a1"].values)
    np.testing.assert_array_equal(_values(ds), G)
    np.testing.assert_array_equal(grm(ds).values, grm(bed).values)
    flipped = read_bgen(conv["bgen"], "ref-first", sample=conv["sample"])
    np.testing.assert_array_equal(flipped["a1"].values, bed["a2"].values)
    np.testing.assert_array_equal(_values(flipped), 2 - G)
    with pytest.raises(InputError, match="REF/ALT mode"):
        read_bgen(conv["bgen"], None, sample=conv["sample"])


def test_dosages_give_the_dense_grm(files):
    _, _, _, D, d = files
    ds = read_bgen(d / "d.bgen", "ref-last", sample=d / "d.sample")
    np.testing.assert_allclose(_values(ds), D, atol=1e-7)  # float32 of k/255
    np.testing.assert_allclose(_values(ds, "float32"), D, atol=1e-7)
    K = dense_gcta_grm(D)
    np.testing.assert_allclose(grm(ds).values, K, atol=1e-5)
    # the operator's dosage path (float32 cache) is the same kernel with missing calls at
    # the mean (Z Z' / P): dense Z Z' / P from the dosages
    called = ~np.isnan(D)
    p = np.nansum(D, axis=0) / (2 * called.sum(axis=0))
    Z = np.where(called, (D - 2 * p) / np.sqrt(2 * p * (1 - p)), 0.0)
    op = GenotypeOperator(ds, precision="float64")
    assert op.G.dtype == np.float32
    np.testing.assert_allclose(op.dense(), Z @ Z.T / D.shape[1], atol=1e-5)
    with pytest.raises(InputError, match="dosages cannot be read as int8"):
        _values(ds, "int8")


def test_sample_ids_stored_in_the_file_read_as_plink2(tmp_path):
    # plink2 cannot export a multi-allelic BGEN (2.00a3.5), so that skip has no peer here
    dosage_vcf(tmp_path / "m.vcf", multi=False)
    plink2(["--vcf", "m.vcf", "--export", "bgen-1.2", "bits=8", "--out", "m"], tmp_path)
    ds = read_bgen(tmp_path / "m.bgen", "ref-last")  # IDs stored in the BGEN
    assert ds["sample"].values[0] == "0 S0"  # plink2's default: FID 0
    assert read_bgen(tmp_path / "m.bgen", "ref-last", double_id=True)["sample"].values[0] \
        == "S0 S0"
    with pytest.raises(FileFormatError, match="sample ID 'S0' has 0 '_'"):
        read_bgen(tmp_path / "m.bgen", "ref-last", id_delim="_")


def test_bad_files_fail_in_one_line(files, tmp_path):
    _, _, conv, _, _ = files
    shutil.copy(conv["bgen"], tmp_path / "x.bgen")
    lines = conv["sample"].read_text().splitlines()
    (tmp_path / "x.sample").write_text("\n".join(lines[:-1]) + "\n")  # a sample too few
    with pytest.raises(FileFormatError, match="lists 39 samples; BGEN file .* holds 40"):
        read_bgen(tmp_path / "x.bgen", "ref-last", sample=tmp_path / "x.sample")
    raw = conv["bgen"].read_bytes()
    (tmp_path / "x.bgen").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="truncated or corrupt") as exc:
        _values(read_bgen(tmp_path / "x.bgen", "ref-last", sample=conv["sample"]))
    assert "\n" not in str(exc.value)
    (tmp_path / "x.bgen").write_bytes(b"\0" * 40)
    with pytest.raises(FileFormatError, match="is not a BGEN file"):
        read_bgen(tmp_path / "x.bgen", "ref-last", sample=conv["sample"])


@pytest.mark.parametrize("bits", [8, 16])
def test_the_vectorised_path_equals_cbgen_bit_for_bit(files, bits, tmp_path):
    """zlib BGEN 1.2 (8 or 16 bits, unphased, biallelic) is decoded by bayeslmm.io.bgen_decode:
    the same float32 dosages as cbgen's own probabilities give (P(het) + 2 P(hom counted) in
    float32), in both REF/ALT modes, for any subset of variants."""
    from cbgen import bgen_file

    _, _, _, D, d = files
    plink2(["--vcf", str(d / "d.vcf"), "dosage=DS", "--export", "bgen-1.2", f"bits={bits}",
            "--out", "z"], tmp_path)
    for mode, c in (("ref-last", 0), ("ref-first", 2)):
        ds = read_bgen(tmp_path / "z.bgen", mode, sample=tmp_path / "z.sample")
        reader = ds.attrs["genotype_reader"]
        cols = np.array([0, 3, 4, 17, 49])
        with bgen_file(tmp_path / "z.bgen") as bf:
            ref = np.stack([(p[:, 1] + 2.0 * p[:, c]) for p in (
                bf.read_probability(int(reader.offsets[j]), precision=32) for j in cols)])
        got = reader.read_columns(cols)
        with open(tmp_path / "z.bgen", "rb") as fh, mmap.mmap(fh.fileno(), 0,
                                                         access=mmap.ACCESS_READ) as m:
            fast = fast_dosages(m, reader.offsets[cols], reader.n_samples, 1, 2,
                                mode == "ref-last", "z.bgen")
        assert fast is not None  # this layout takes the vectorised path
        np.testing.assert_array_equal(fast.view(np.uint32), got.view(np.uint32))
        assert got.dtype == np.float32 and np.isnan(got).sum() == np.isnan(D[:, cols]).sum()
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    raw = bytearray((tmp_path / "z.bgen").read_bytes())
    at = int(reader.offsets[10]) + 12
    raw[at:at + 8] = b"\xff" * 8  # inside variant 11's zlib stream
    (tmp_path / "z.bgen").write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="cannot be decompressed") as exc:
        _values(read_bgen(tmp_path / "z.bgen", "ref-last", sample=tmp_path / "z.sample"))
    assert "\n" not in str(exc.value)
