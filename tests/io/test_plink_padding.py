"""A .fam with a line missing or added is caught by the .bed's padding bits, both ways:
a correct fileset whose sample count is not a multiple of 4 still reads."""

from __future__ import annotations

import numpy as np
import pytest
from bed_reader import to_bed

from bayeslmm.datasets import load_demo
from bayeslmm.errors import FileFormatError
from bayeslmm.io import read_plink

DEMO = load_demo()


@pytest.fixture(scope="module")
def fileset(tmp_path_factory):
    """The demo's first 399 samples (399 % 4 = 3: one padding slot per variant)."""
    ds = read_plink(DEMO.bfile, load=True)
    d = tmp_path_factory.mktemp("pad")
    G = ds["genotype"].to_numpy()[:399]
    to_bed(d / "x.bed", G, count_A1=True, properties={
        "fid": ds["fid"].values[:399], "iid": ds["iid"].values[:399], "sid": ds["snp"].values,
        "chromosome": ds["chrom"].values, "bp_position": ds["pos"].values,
        "allele_1": ds["a1"].values, "allele_2": ds["a2"].values})
    return d / "x", G


def _copy(src, dst, fam_lines):
    for s in (".bed", ".bim"):
        dst.with_suffix(s).write_bytes(src.with_suffix(s).read_bytes())
    dst.with_suffix(".fam").write_text("".join(fam_lines))


def test_correct_fileset_reads(fileset):
    pre, G = fileset
    ds = read_plink(pre, load=True)
    np.testing.assert_array_equal(ds["genotype"].to_numpy(), G)


@pytest.mark.parametrize("k", [0, 150, 398])
def test_missing_line_is_caught(fileset, tmp_path, k):
    pre, _ = fileset
    lines = pre.with_suffix(".fam").read_text().splitlines(True)
    _copy(pre, tmp_path / "y", lines[:k] + lines[k + 1:])
    with pytest.raises(FileFormatError, match="fewer lines than the .bed"):
        read_plink(tmp_path / "y")


@pytest.mark.parametrize("k", [0, 200, 399])
def test_added_line_is_caught(fileset, tmp_path, k):
    pre, _ = fileset
    lines = pre.with_suffix(".fam").read_text().splitlines(True)
    _copy(pre, tmp_path / "y", lines[:k] + ["NEW NEW 0 0 1 -9\n"] + lines[k:])
    with pytest.raises(FileFormatError, match="more lines than the .bed"):
        read_plink(tmp_path / "y")


def test_too_few_variants_to_judge_an_added_line(fileset, tmp_path):
    """With fewer than 100 variants homozygous-A1-everywhere may be real: no error."""
    pre, G = fileset
    ds = read_plink(pre, load=True)
    to_bed(tmp_path / "s.bed", np.ascontiguousarray(G[:, :50]), count_A1=True, properties={
        "fid": ds["fid"].values, "iid": ds["iid"].values})
    lines = (tmp_path / "s.fam").read_text().splitlines(True)
    (tmp_path / "s.fam").write_text("".join(lines + ["NEW NEW 0 0 1 -9\n"]))
    assert read_plink(tmp_path / "s").sizes["sample"] == 400
