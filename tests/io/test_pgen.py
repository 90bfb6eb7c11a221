"""PLINK 2 .pgen/.pvar/.psam (bayeslmm.io.pgen) against the .bed it was made from by plink2
(the peer): the same counts, missing calls and GRM; a .pgen of dosages written by plink2 from a
VCF's DS gives those dosages and the dense GRM of them; bad filesets refused in one line."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from plink2_files import convert, dense_gcta_grm, dosage_vcf, plink2, small_bfile

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.genotypes.kinship import grm
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import iter_variant_blocks, read_pgen, read_plink

from helpers import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pgen")
    G = small_bfile(d / "s.bed")
    return G, d / "s", convert(d / "s", d / "c")


def _values(ds, dtype="float64"):
    return next(iter_variant_blocks(ds, block_size=10**6, dtype=dtype)).genotypes


def test_counts_and_grm_equal_the_bed(files):
    G, bfile, conv = files
    ds = read_pgen(conv["pfile"])
    bed = read_plink(bfile)
    np.testing.assert_array_equal(ds["sample"].values, bed["sample"].values)
    np.testing.assert_array_equal(ds["a1"].values, bed["a1"].values)  # ALT = A1
    np.testing.assert_array_equal(_values(ds), G)  # NaN where the .bed is missing
    np.testing.assert_array_equal(_values(ds, "int8"), _values(bed, "int8"))
    np.testing.assert_allclose(grm(ds).values, dense_gcta_grm(G), atol=1e-12)
    # a subset of samples and an unsorted selection of variants read what the .bed reads
    sub = ds.isel(sample=[5, 1, 30]), bed.isel(sample=[5, 1, 30])
    v = np.array([7, 3, 3, 90])
    a, b = (next(iter_variant_blocks(x, variants=v)).genotypes for x in sub)
    np.testing.assert_array_equal(a, b)


def test_multiallelic_records_are_skipped_and_logged(tmp_path, caplog):
    D = dosage_vcf(tmp_path / "m.vcf")
    plink2(["--vcf", "m.vcf", "--make-pgen", "--out", "m"], tmp_path)
    with caplog.at_level(logging.INFO):
        ds = read_pgen(tmp_path / "m")
    assert ds.sizes["variant"] == D.shape[1] and "multi" not in ds["snp"].values
    assert "1 multi-allelic variant(s) skipped" in caplog.text
    hard = np.where(np.isnan(D), np.nan, np.rint(D))  # plink2's hard calls of the GT field
    np.testing.assert_array_equal(_values(ds), hard)


def test_bad_filesets_fail_in_one_line(files, tmp_path):
    _, _, conv = files
    pre = tmp_path / "x"
    for s in (".pgen", ".pvar", ".psam"):
        shutil.copy(f"{conv['pfile']}{s}", f"{pre}{s}")
    read_pgen(pre)  # the intact copy opens
    psam = (tmp_path / "x.psam").read_text().splitlines()
    (tmp_path / "x.psam").write_text("\n".join(psam[:-1]) + "\n")  # a sample line missing
    with pytest.raises(FileFormatError, match="cannot be read with its .psam"):
        read_pgen(pre)
    (tmp_path / "x.psam").write_text("\n".join(psam) + "\n")
    raw = (tmp_path / "x.pgen").read_bytes()
    (tmp_path / "x.pgen").write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(FileFormatError) as exc:
        _values(read_pgen(pre))
    assert "\n" not in str(exc.value)
    (tmp_path / "x.pgen").write_bytes(b"not a pgen file")
    with pytest.raises(FileFormatError, match="is not a PLINK 2 .pgen file"):
        read_pgen(pre)


@pytest.fixture(scope="module")
def dosage_pfile(tmp_path_factory):
    """A .pgen with dosages written by plink2 from a VCF's DS (on the 1/16384 grid, the
    .pgen's dosage unit, so plink2 stores them exactly)."""
    d = tmp_path_factory.mktemp("pgen_dosage")
    D = dosage_vcf(d / "d.vcf", multi=False, grid=16384)
    plink2(["--vcf", "d.vcf", "dosage=DS", "--make-pgen", "--out", "d"], d)
    return D, d / "d"


def test_dosages_give_the_dense_grm(files, dosage_pfile):
    D, pre = dosage_pfile
    ds = read_pgen(pre)
    assert ds.attrs["dosage"] and not read_pgen(files[2]["pfile"]).attrs["dosage"]
    np.testing.assert_array_equal(_values(ds), D)  # ALT dosages, NaN where DS is '.'
    np.testing.assert_array_equal(_values(ds, "float32"), D.astype(np.float32))
    np.testing.assert_allclose(grm(ds).values, dense_gcta_grm(D), atol=1e-5)
    op = GenotypeOperator(ds, precision="float64")
    assert op.G.dtype == np.float32  # the operator's dosage path
    v = np.array([40, 2, 2, 17])
    np.testing.assert_array_equal(next(iter_variant_blocks(ds, variants=v)).genotypes, D[:, v])
    with pytest.raises(InputError, match="dosages cannot be read as int8"):
        _values(ds, "int8")


def test_a_bad_dosage_pgen_ends_in_one_line(dosage_pfile, tmp_path, capsys):
    _, pre = dosage_pfile
    for s in (".pvar", ".psam"):
        shutil.copy(f"{pre}{s}", tmp_path / f"x{s}")
    raw = pre.with_suffix(".pgen").read_bytes()
    for cut in (14, 200, len(raw) // 2, len(raw) - 5):  # in the header, then in the records
        (tmp_path / "x.pgen").write_bytes(raw[:cut])
        with pytest.raises(FileFormatError) as exc:
            _values(read_pgen(tmp_path / "x"))
        assert "\n" not in str(exc.value)
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    assert run_cli(["grm", "--pfile", str(tmp_path / "x"), "--out", str(out / "g"),
                    "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], err
    assert not any(out.iterdir())
