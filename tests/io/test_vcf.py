"""VCF (bayeslmm.io.vcf) against plink2 (the peer) and hand-written dosages: GT from plink2's
export equals the .bed it came from; DS dosages give the dense GCTA GRM (float32 storage:
1e-5); plink2's sample-ID rules; multi-allelic records skipped; bad files in one line."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
from plink2_files import convert, dense_gcta_grm, dosage_vcf, small_bfile

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.genotypes.kinship import grm
from bayeslmm.io import iter_variant_blocks, read_plink, read_vcf
from bayeslmm.io.formats import plink2_sample_ids


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vcf")
    G = small_bfile(d / "s.bed")
    return G, d / "s", convert(d / "s", d / "c"), dosage_vcf(d / "d.vcf"), d / "d.vcf"


def _values(ds, dtype="float64"):
    return next(iter_variant_blocks(ds, block_size=10**6, dtype=dtype)).genotypes


def test_gt_equals_the_bed(files):
    G, bfile, conv, _, _ = files
    ds = read_vcf(conv["vcf"], id_delim="-")  # plink2 wrote FID-IID
    bed = read_plink(bfile)
    np.testing.assert_array_equal(ds["sample"].values, bed["sample"].values)
    np.testing.assert_array_equal(ds["a1"].values, bed["a1"].values)  # ALT = A1
    np.testing.assert_array_equal(_values(ds), G)
    np.testing.assert_array_equal(_values(ds, "int8"), _values(bed, "int8"))
    np.testing.assert_allclose(grm(ds).values, dense_gcta_grm(G), atol=1e-12)


def test_dosages_give_the_dense_grm_and_multiallelic_is_skipped(files, caplog):
    _, _, _, D, path = files
    with caplog.at_level(logging.INFO):
        ds = read_vcf(path, "DS")
    assert "1 multi-allelic record(s) skipped" in caplog.text
    assert ds.attrs["dosage"] and ds.sizes["variant"] == D.shape[1]
    np.testing.assert_allclose(_values(ds), D, atol=1e-6)  # DS written with 6 decimals
    np.testing.assert_allclose(grm(ds).values, dense_gcta_grm(D), atol=1e-5)
    gt = read_vcf(path)  # the same file's GT: hard calls
    assert not gt.attrs["dosage"]
    np.testing.assert_array_equal(_values(gt), np.where(np.isnan(D), np.nan, np.rint(D)))
    with pytest.raises(InputError, match="declares no FORMAT field 'XX'"):
        read_vcf(path, "XX")


def test_sample_ids_as_plink2():
    names = ["a_b", "c_d"]
    assert plink2_sample_ids(names)[0].tolist() == ["0", "0"]  # plink2's default
    assert plink2_sample_ids(names, double_id=True)[0].tolist() == names
    fid, iid = plink2_sample_ids(names, id_delim="_")
    assert (fid.tolist(), iid.tolist()) == (["a", "c"], ["b", "d"])
    with pytest.raises(FileFormatError, match="sample ID 'x_y_z' has 2 '_'"):
        plink2_sample_ids(["x_y_z"], id_delim="_")
    with pytest.raises(InputError, match="cannot be used with --double-id"):
        plink2_sample_ids(names, double_id=True, id_delim="_")


def test_bad_files_fail_in_one_line(files, tmp_path):
    _, _, conv, _, path = files
    raw = gzip.decompress(conv["vcf"].read_bytes())
    trunc = tmp_path / "t.vcf.gz"
    trunc.write_bytes(conv["vcf"].read_bytes()[:-200])  # a bgzip stream cut short
    bad = tmp_path / "b.vcf"
    bad.write_bytes(raw.replace(b"\t0/1", b"\tnot-a-call", 1)[: len(raw) // 2]
                    .replace(b"\n1\t", b"\n1\tx\t", 1))  # a record with a shifted column
    for f, match in ((trunc, "truncated or malformed|not a readable"),
                     (bad, "truncated or malformed"),
                     (tmp_path / "none.vcf", "does not exist")):
        with pytest.raises(FileFormatError, match=match) as exc:
            read_vcf(f, id_delim="-")
        assert "\n" not in str(exc.value)
    (tmp_path / "junk.vcf").write_text("hello\n")
    with pytest.raises(FileFormatError, match="not a readable VCF"):
        read_vcf(tmp_path / "junk.vcf")


def test_half_missing_calls_are_missing_and_logged(tmp_path, caplog):
    """'./1' and '1/.' are missing (plink2 --vcf-half-call missing), not heterozygous as
    htslib types them; '0/1', '1/1', '1' (haploid: homozygous) and './.' keep their
    meaning."""
    head = ("##fileformat=VCFv4.2\n##contig=<ID=1>\n"
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD\tE\tF\n")
    rows = ["1\t100\tv1\tA\tG\t.\t.\t.\tGT\t0/0\t./1\t1/.\t./.\t1\t0/1\n",
            "1\t200\tv2\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0|1\t0/0\t0\t./.\n"]
    (tmp_path / "h.vcf").write_text(head + "".join(rows))
    with caplog.at_level(logging.WARNING):
        G = _values(read_vcf(tmp_path / "h.vcf"))
    np.testing.assert_array_equal(G[:, 0], [0, np.nan, np.nan, np.nan, 2, 1])
    np.testing.assert_array_equal(G[:, 1], [1, 2, 1, 0, 0, np.nan])
    assert "2 half-missing genotype call(s)" in caplog.text
