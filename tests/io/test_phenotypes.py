"""Phenotype/covariate files (GCTA/PLINK conventions) and sample alignment."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from bayeslmm.data import align_samples
from bayeslmm.errors import AlignmentError, FileFormatError, InputError
from bayeslmm.io import (
    GRM,
    read_covar,
    read_phenotype,
    read_phenotypes,
    read_qcovar,
)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_no_header_mpheno_and_missing_tokens(tmp_path):
    f = _write(tmp_path, "y.txt", "f1 i1 1.5 10\nf2 i2 NA 20\nf3 i3 -9 nan\nf4 i4 2 .\n")
    y = read_phenotype(f)
    assert y.name == "pheno1"
    assert list(y.index) == [("f1", "i1"), ("f2", "i2"), ("f3", "i3"), ("f4", "i4")]
    np.testing.assert_array_equal(y.to_numpy(), [1.5, np.nan, np.nan, 2.0])
    y2 = read_phenotype(f, mpheno=2)
    np.testing.assert_array_equal(y2.to_numpy(), [10.0, 20.0, np.nan, np.nan])
    assert read_phenotypes(f).shape == (4, 2)
    with pytest.raises(InputError, match="mpheno=3.*2 phenotype column"):
        read_phenotype(f, mpheno=3)


def test_header_detected(tmp_path):
    f = _write(tmp_path, "y.txt", "FID IID height bmi\nf1 i1 1 2\nf2 i2 3 NA\n")
    df = read_phenotypes(f)
    assert list(df.columns) == ["height", "bmi"] and len(df) == 2
    g = _write(tmp_path, "z.txt", "fam ind height\nf1 i1 1\n")  # header without FID/IID
    assert list(read_phenotypes(g).columns) == ["height"]
    h = _write(tmp_path, "w.txt", "f0 i0 NA\nf1 i1 1\n")  # first line NA: not a header
    assert len(read_phenotype(h)) == 2


def test_non_numeric_value_names_file_line_and_value(tmp_path):
    f = _write(tmp_path, "y.txt", "f1 i1 1.5\nf2 i2 2.5\nf3 i3 abc\n")
    with pytest.raises(InputError, match=r"y\.txt', line 3 .*'abc' is not a number"):
        read_phenotype(f)


def test_ragged_and_duplicated_lines(tmp_path):
    f = _write(tmp_path, "y.txt", "f1 i1 1\nf2 i2 2 3\n")
    with pytest.raises(FileFormatError, match="line 2: 4 fields, expected 3"):
        read_phenotype(f)
    g = _write(tmp_path, "d.txt", "f1 i1 1\nf2 i2 2\nf1 i1 3\n")
    with pytest.raises(AlignmentError, match="'f1 i1' appears on lines 1 and 3"):
        read_phenotype(g)


def test_discrete_covariates_dummy_coded(tmp_path):
    f = _write(
        tmp_path,
        "c.txt",
        "f1 i1 levelA 1\nf2 i2 levelB 2\nf3 i3 levelC 1\nf4 i4 NA 3\nf5 i5 levelB -9\n",
    )
    X = read_covar(f)
    assert list(X.columns) == ["C1_levelB", "C1_levelC", "C2_2", "C2_3"]
    np.testing.assert_array_equal(X["C1_levelB"].to_numpy(), [0, 1, 0, np.nan, 1])
    np.testing.assert_array_equal(X["C1_levelC"].to_numpy(), [0, 0, 1, np.nan, 0])
    np.testing.assert_array_equal(X["C2_3"].to_numpy(), [0, 0, 0, 1, np.nan])
    h = _write(tmp_path, "h.txt", "FID IID sex\nf1 i1 M\nf2 i2 F\n")
    assert list(read_covar(h).columns) == ["sex_M"]


def test_quantitative_covariates(tmp_path):
    f = _write(tmp_path, "q.txt", "f1 i1 0.5 3\nf2 i2 NA 4\n")
    Q = read_qcovar(f)
    assert list(Q.columns) == ["Q1", "Q2"]
    assert np.isnan(Q.iloc[1, 0]) and Q.iloc[1, 1] == 4.0


def _ids(labels):
    return pd.DataFrame([s.split() for s in labels], columns=["fid", "iid"])


def test_alignment_order_and_drop_counts(tmp_path, caplog):
    grm_ids = ["a 1", "b 2", "c 3", "d 4", "e 5"]
    K = GRM.from_arrays(np.eye(5), _ids(grm_ids), M=10)
    y = read_phenotype(_write(tmp_path, "y.txt", "e 5 1\nc 3 2\nb 2 NA\nz 9 4\na 1 5\n"))
    q = read_qcovar(_write(tmp_path, "q.txt", "a 1 1\nb 2 2\nc 3 3\ne 5 NA\n"))
    with caplog.at_level(logging.INFO, logger="bayeslmm.data"):
        al = align_samples({"GRM": K, "phenotype": y, "qcovar": q})
    assert list(al.ids.itertuples(index=False, name=None)) == [("a", "1"), ("c", "3")]
    assert al["GRM"].sample_labels.tolist() == ["a 1", "c 3"]
    assert al["phenotype"].tolist() == [5.0, 2.0]
    assert al["qcovar"]["Q1"].tolist() == [1.0, 3.0]
    r = al.report
    assert r.loc["GRM"].tolist() == [5, 0, 3, 2]
    assert r.loc["phenotype"].tolist() == [5, 1, 2, 2]
    assert r.loc["qcovar"].tolist() == [4, 1, 1, 2]
    assert "phenotype: 5 samples, 1 dropped for missing values" in caplog.text


def test_zero_overlap_message():
    grm_ids = ["1_3 A048005080", "1_5 A048006063"]
    K = GRM.from_arrays(np.eye(2), _ids(grm_ids), M=1)
    idx = pd.MultiIndex.from_tuples(
        [("A048005080", "A048005080"), ("A048006063", "A048006063")], names=["fid", "iid"]
    )
    y = pd.Series([1.0, 2.0], index=idx)
    with pytest.raises(
        AlignmentError,
        match="GRM and phenotype share 0 of 2 sample IDs; first GRM ID is '1_3 A048005080', "
        "first phenotype ID is 'A048005080 A048005080'",
    ):
        align_samples({"GRM": K, "phenotype": y})


def test_constant_phenotype_after_alignment():
    K = GRM.from_arrays(np.eye(3), _ids(["a 1", "b 2", "c 3"]), M=1)
    idx = pd.MultiIndex.from_tuples([("a", "1"), ("b", "2"), ("x", "9")])
    y = pd.Series([1.0, 1.0, 2.0], index=idx, name="height")
    with pytest.raises(InputError, match="phenotype 'height'.*constant"):
        align_samples({"GRM": K, "phenotype": y})


def test_alignment_with_fam_table_and_all_missing():
    fam = _ids(["a 1", "b 2"])
    idx = pd.MultiIndex.from_tuples([("a", "1"), ("b", "2")])
    y = pd.Series([np.nan, np.nan], index=idx)
    with pytest.raises(AlignmentError, match="no sample has complete data"):
        align_samples({"fam": fam, "phenotype": y})


def test_gemma_idless_phenotype_file_is_named_as_such(tmp_path):
    # GEMMA's layout: values only (mouse_hs1940.pheno.txt starts like this).
    p = tmp_path / "gemma.txt"
    p.write_text("0.2249\t0.2249\tNA\t1\n-0.9745\t-0.9745\tNA\t0\nNA\tNA\t0.3\t1\n")
    with pytest.raises(FileFormatError, match="no FID and IID columns.*GEMMA's ID-less"):
        read_phenotype(p)
    # Numeric IDs (HLC.fam uses FID 0, IID 1110005) are IDs, not values.
    q = tmp_path / "ids.txt"
    q.write_text("0 1110005 0.182\n0 1110006 0.174\n0 1110008 -0.040\n")
    assert read_phenotype(q).tolist() == [0.182, 0.174, -0.040]


def test_gemma_mouse_phenotype_file_message(tmp_path):
    from bayeslmm.errors import FileFormatError

    from peers import gunzip_example

    d = gunzip_example(["mouse_hs1940.pheno.txt"], tmp_path)
    with pytest.raises(FileFormatError, match="GEMMA's ID-less format"):
        read_phenotype(d / "mouse_hs1940.pheno.txt")


def test_fam_sixth_column_is_the_phenotype(tmp_path):
    """--pheno data.fam: FID, IID and the sixth column, -9 missing, as PLINK reads a .fam;
    the same six columns in a file not named .fam are four phenotype columns, and a parent's
    ID among them is an error (the other direction)."""
    import numpy as np

    from bayeslmm.errors import FileFormatError, InputError
    from bayeslmm.io import read_phenotype, read_phenotypes

    lines = ["f1 i1 0 0 1 2.5", "f2 i2 0 0 2 -9", "f3 i3 f1 0 1 0.75"]
    (tmp_path / "d.fam").write_text("\n".join(lines) + "\n")
    (tmp_path / "d.txt").write_text("\n".join(lines) + "\n")
    y = read_phenotype(tmp_path / "d.fam")
    assert list(y.index) == [("f1", "i1"), ("f2", "i2"), ("f3", "i3")]
    np.testing.assert_array_equal(y.to_numpy(), [2.5, np.nan, 0.75])
    assert read_phenotypes(tmp_path / "d.fam").shape == (3, 1)
    with pytest.raises(InputError, match="line 3 .*value 'f1' is not a number"):
        read_phenotypes(tmp_path / "d.txt")
    (tmp_path / "bad.fam").write_text("f1 i1 0 0 1\n")
    with pytest.raises(FileFormatError, match="line 1: 5 fields, expected 6"):
        read_phenotype(tmp_path / "bad.fam")
    # GEMMA's .fam with several phenotypes (columns 6, 7, ...): --mpheno k is GEMMA's -n k
    (tmp_path / "multi.fam").write_text("f1 i1 0 0 1 2.5 7\nf2 i2 0 0 2 -9 8\n")
    np.testing.assert_array_equal(read_phenotype(tmp_path / "multi.fam", mpheno=2), [7, 8])
    (tmp_path / "ragged.fam").write_text("f1 i1 0 0 1 2.5 7\nf2 i2 0 0 2 -9\n")
    with pytest.raises(FileFormatError, match="line 2: 6 fields, expected 7"):
        read_phenotype(tmp_path / "ragged.fam")
