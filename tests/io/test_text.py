"""Text inputs: UTF-8 with or without a byte-order mark, any newline; other encodings one
clear error naming the file, line and byte (bayeslmm.io.text and its readers)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bayeslmm.datasets import load_demo
from bayeslmm.errors import FileFormatError
from bayeslmm.io import read_grm_ids, read_phenotype, read_plink
from bayeslmm.io.text import read_lines

DEMO = load_demo()


def test_bom_and_newlines(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"\xef\xbb\xbfA B\r\nC D\rE F\n")
    assert read_lines(f, "x") == ["A B", "C D", "E F", ""]


def test_non_utf8_names_file_line_and_byte(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"A B 1\nC D 2\nF\xe9 G 3\n")
    with pytest.raises(FileFormatError, match=r"'.*a.txt' is not UTF-8 text: byte 0xe9 on "
                                              r"line 3"):
        read_lines(f, "phenotype")


def test_phenotype_with_bom_matches_the_first_sample(tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes(b"\xef\xbb\xbf" + DEMO.pheno.read_bytes())
    y, ref = read_phenotype(f), read_phenotype(DEMO.pheno)
    assert y.index.equals(ref.index) and np.array_equal(y.values, ref.values, equal_nan=True)
    f.write_bytes(b"\xef\xbb\xbf" + b"".join(DEMO.pheno.read_bytes().splitlines(True)[1:]))
    assert read_phenotype(f).index[0] == ("FAM001", "FAM001_P1")  # no header: still matched


def test_fam_and_grm_id_with_bom(tmp_path):
    for s in (".bed", ".bim"):
        (tmp_path / f"d{s}").write_bytes(DEMO.bfile.with_suffix(s).read_bytes())
    (tmp_path / "d.fam").write_bytes(b"\xef\xbb\xbf" + DEMO.bfile.with_suffix(".fam")
                                     .read_bytes())
    assert read_plink(tmp_path / "d")["sample"].values[0] == "FAM001 FAM001_P1"
    (tmp_path / "g.grm.id").write_bytes(b"\xef\xbb\xbfF1\tI1\nF2\tI2\n")
    assert read_grm_ids(tmp_path / "g.grm.id")["fid"].tolist() == ["F1", "F2"]


def test_header_from_values_is_said_fam_id_header_is_not(tmp_path, caplog):
    f = tmp_path / "p.txt"
    f.write_text("F1 I1 abc\nF2 I2 1.5\nF3 I3 2.5\n")
    with caplog.at_level(logging.WARNING, logger="bayeslmm"):
        y = read_phenotype(f)
    assert y.name == "abc" and len(y) == 2
    assert "line 1 ('F1 I1 abc') is read as a header" in caplog.text
    caplog.clear()
    f.write_text("FID IID h\nF2 I2 1.5\nF3 I3 2.5\n")
    with caplog.at_level(logging.WARNING, logger="bayeslmm"):
        read_phenotype(f)
    assert "read as a header" not in caplog.text
    f.write_text("F1\nF2\n")  # one field: an error, not an IndexError
    with pytest.raises(FileFormatError, match="expected FID, IID"):
        read_phenotype(f)


def test_minus_nine_is_missing_and_said(tmp_path, caplog):
    f = tmp_path / "p.txt"
    f.write_text("F1 I1 -9\nF2 I2 -9.0\nF3 I3 2.5\nF4 I4 -9.5\n")
    with caplog.at_level(logging.INFO, logger="bayeslmm"):
        y = read_phenotype(f)
    assert np.isnan(y.values[:2]).all() and y.values[3] == -9.5
    assert "2 value(s) -9 read as missing" in caplog.text
    caplog.clear()
    f.write_text("F1 I1 1\nF2 I2 2\nF3 I3 2.5\n")
    with caplog.at_level(logging.INFO, logger="bayeslmm"):
        read_phenotype(f)
    assert "-9" not in caplog.text
