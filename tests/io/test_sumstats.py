"""Summary-statistics readers and LDSC's munging rules (io/sumstats.py): each rule in both
directions (kept and dropped), checked against values written by hand in the test."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.ldscores import read_annot, read_annot_overlap, read_ldscore_set
from bayeslmm.io.sumstats import align_alleles, read_alleles, read_sumstats, sumstats_format

GLM = """#CHROM\tPOS\tID\tREF\tALT\tA1\tTEST\tOBS_CT\tBETA\tSE\tT_STAT\tP\tERRCODE
1\t10\trs1\tA\tG\tG\tADD\t100\t0.5\t0.25\t2\t0.05\t.
1\t10\trs1\tA\tG\tG\tCOV1\t100\t0.1\t0.1\t1\t0.3\t.
1\t20\trs2\tC\tT\tC\tADD\t98\t-0.3\t0.1\t-3\t0.01\t.
1\t30\trs3\tA\tC\tC\tADD\t97\tNA\tNA\tNA\tNA\tCONST_OMITTED_ALLELE
1\t40\trs4\tA\tT\tT\tADD\t100\t0.1\t0.1\t1\t0.3\t.
"""


def test_glm_linear(tmp_path, caplog):
    f = tmp_path / "a.glm.linear"
    f.write_text(GLM)
    with caplog.at_level(logging.INFO):
        ss = read_sumstats(f)
    # Z = T_STAT for A1; A2 the other of REF/ALT; N = OBS_CT; covariate row, ERRCODE row
    # and the A/T SNP gone, each counted in the log
    assert ss.SNP.tolist() == ["rs1", "rs2"]
    assert ss.A1.tolist() == ["G", "C"] and ss.A2.tolist() == ["A", "T"]
    np.testing.assert_array_equal(ss.Z, [2.0, -3.0])
    np.testing.assert_array_equal(ss.N, [100, 98])
    assert "1 rows of other terms" in caplog.text and "1 SNPs with a plink2 ERRCODE" in caplog.text
    assert "1 SNPs strand-ambiguous" in caplog.text


def test_ldsc_sumstats_gz_and_rules(tmp_path, caplog):
    text = ("SNP\tA1\tA2\tZ\tN\nrs1\ta\tg\t1.5\t1000\nrs2\tA\tG\tNA\t1000\n"
            "rs3\tAT\tG\t1\t1000\nrs4\tC\tG\t1\t1000\nrs1\tA\tG\t9\t1000\nrs5\tT\tC\t-2\t900\n")
    f = tmp_path / "t.sumstats.gz"
    f.write_bytes(gzip.compress(text.encode()))
    with caplog.at_level(logging.INFO):
        ss = read_sumstats(f)
    assert ss.SNP.tolist() == ["rs1", "rs5"]  # lower-case alleles read as upper case
    np.testing.assert_array_equal(ss.Z, [1.5, -2.0])
    for msg in ("1 SNPs with a missing Z", "1 SNPs with alleles other", "1 SNPs strand",
                "1 SNPs with a duplicated"):
        assert msg in caplog.text
    # --N replaces the file's N
    np.testing.assert_array_equal(read_sumstats(f, N=50).N, [50, 50])


def test_gemma_needs_n(tmp_path):
    f = tmp_path / "g.assoc.txt"
    f.write_text("chr\trs\tps\tn_miss\tallele1\tallele0\taf\tbeta\tse\tp_wald\n"
                 "1\trs1\t1\t0\tA\tG\t0.3\t0.2\t0.1\t0.05\n"
                 "1\trs2\t2\t0\tC\tT\t0.3\t0.2\t0\t1\n")
    with pytest.raises(InputError, match="--N"):
        read_sumstats(f)
    ss = read_sumstats(f, N=500)
    assert ss.SNP.tolist() == ["rs1"]  # se = 0: no test, dropped as missing
    np.testing.assert_allclose(ss.Z, [2.0])
    np.testing.assert_array_equal(ss.N, [500])


@pytest.mark.parametrize("text, match", [
    ("SNP\tA1\tA2\tZ\tN\nrs1\tA\tG\tabc\t10\n", "line 2, column Z: 'abc' is not a number"),
    ("SNP\tA1\tA2\tZ\tN\nrs1\tA\tG\t1\t-5\n", "N must be > 0"),
    ("SNP\tA1\tZ\tN\nrs1\tA\t1\t10\n", "no column A2"),
    ("SNP\tA1\tA2\tZ\tN\nrs1\tA\tT\t1\t10\n", "no SNP is left"),
])
def test_bad_rows_are_one_line_errors(tmp_path, text, match):
    f = tmp_path / "x.sumstats"
    f.write_text(text)
    with pytest.raises((InputError, FileFormatError), match=match):
        read_sumstats(f)


def test_format_from_name(tmp_path):
    assert [sumstats_format(n) for n in ("a.sumstats", "a.sumstats.gz", "b.glm.linear",
                                         "c.assoc.txt")] == ["ldsc", "ldsc", "glm", "gemma"]
    with pytest.raises(InputError, match="ending"):
        sumstats_format("a.txt")


def test_align_alleles(tmp_path, caplog):
    ss = pd.DataFrame({"SNP": ["s1", "s2", "s3", "s4", "s5", "s6"],
                       "A1": ["A", "G", "T", "C", "A", "A"],
                       "A2": ["G", "A", "C", "T", "C", "G"],
                       "Z": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "N": 10.0})
    bim = tmp_path / "r.bim"
    # s1 same; s2 swapped; s3 other strand (T/C = A/G complement), same order; s4 other
    # strand swapped (C/T -> G/A vs ref A/G); s5 mismatch (A/C vs A/G); s6 absent
    bim.write_text("1 s1 0 1 A G\n1 s2 0 2 A G\n1 s3 0 3 A G\n1 s4 0 4 A G\n1 s5 0 5 A G\n")
    with caplog.at_level(logging.INFO):
        out = align_alleles(ss, read_alleles(bim))
    assert out.SNP.tolist() == ["s1", "s2", "s3", "s4"]
    np.testing.assert_array_equal(out.Z, [1.0, -2.0, 3.0, -4.0])
    assert (out.A1 == "A").all() and (out.A2 == "G").all()
    assert "1 SNPs not in the reference" in caplog.text
    assert "2 SNPs match" in caplog.text and "2 swapped" in caplog.text
    assert "1 mismatched dropped" in caplog.text
    lst = tmp_path / "w.snplist"
    lst.write_text("SNP A1 A2\ns5 A C\n")
    assert align_alleles(ss, read_alleles(lst)).SNP.tolist() == ["s5"]
    lst.write_text("SNP A1 A2\ns5 C G\n")
    with pytest.raises(InputError, match="matches the reference"):
        align_alleles(ss, read_alleles(lst))


def test_read_ldscores(tmp_path):
    """One fileset; sorted by CHR then BP (numerically) as ldsc; .l2.M_5_50 or .l2.M; two
    prefixes side by side (<column>_<i>); per chromosome (@ or appended), M summed."""
    (tmp_path / "r.l2.ldscore.gz").write_bytes(gzip.compress(
        b"CHR\tSNP\tBP\tL2\n10\ts3\t1\t4\n1\ts2\t20\t2.25\n1\ts1\t3\t1.5\n"))
    (tmp_path / "r.l2.M_5_50").write_text("2\n")
    (tmp_path / "r.l2.M").write_text("3\n")
    ld = read_ldscore_set(str(tmp_path / "r"))
    assert ld.table.SNP.tolist() == ["s1", "s2", "s3"] and ld.M.tolist() == [2.0]
    assert ld.names == ["L2_0"]
    np.testing.assert_array_equal(ld.table.L2_0, [1.5, 2.25, 4])
    assert read_ldscore_set(str(tmp_path / "r"), m_5_50=False).M.tolist() == [3.0]
    (tmp_path / "q.l2.ldscore").write_text("CHR SNP BP AL2 BL2\n1 s1 3 1 2\n1 s2 20 3 4\n"
                                           "10 s3 1 5 6\n")
    (tmp_path / "q.l2.M_5_50").write_text("7\t8\n")
    two = read_ldscore_set(f"{tmp_path / 'r'},{tmp_path / 'q'}")
    assert two.names == ["L2_0", "AL2_1", "BL2_1"] and two.M.tolist() == [2, 7, 8]
    np.testing.assert_array_equal(two.table.BL2_1, [2, 4, 6])
    for c, rows in ((1, "1 s1 3 1\n"), (2, "2 s2 5 2\n2 s3 4 3\n")):
        (tmp_path / f"c{c}x.l2.ldscore").write_text("CHR SNP BP L2\n" + rows)
        (tmp_path / f"c{c}x.l2.M_5_50").write_text(f"{10 * c}\n")
    per = read_ldscore_set(str(tmp_path / "c@x"), chromosomes=True)
    assert per.table.SNP.tolist() == ["s1", "s3", "s2"] and per.M.tolist() == [30.0]
    (tmp_path / "r.l2.M_5_50").write_text("x\n")
    with pytest.raises(FileFormatError, match="one number per LD score column"):
        read_ldscore_set(str(tmp_path / "r"))
    with pytest.raises(FileFormatError, match="does not exist"):
        read_ldscore_set(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no per-chromosome file"):
        read_ldscore_set(str(tmp_path / "nope@"), chromosomes=True)


def test_read_annot_overlap(tmp_path):
    """A'A over the SNPs with 0.05 < FRQ < 0.95 of the .frq (ldsc's parse.annot), M_tot
    their number; an .annot read for ``ldscore --annot`` indexed by SNP."""
    (tmp_path / "a.annot").write_text("CHR BP SNP CM base X\n1 1 s1 0 1 1\n1 2 s2 0 1 0\n"
                                      "1 3 s3 0 1 1\n1 4 s4 0 1 1\n")
    (tmp_path / "f.frq").write_text("CHR SNP A1 A2 MAF NCHROBS\n1 s1 A G 0.2 10\n"
                                    "1 s2 A G 0.3 10\n1 s3 A G 0.01 10\n1 s4 A G 0.5 10\n")
    O, M = read_annot_overlap(str(tmp_path / "a"))
    np.testing.assert_array_equal(O, [[4, 3], [3, 3]])
    assert M == 4
    O, M = read_annot_overlap(str(tmp_path / "a"), frqfile=str(tmp_path / "f"))
    np.testing.assert_array_equal(O, [[3, 2], [2, 2]])
    assert M == 3
    a = read_annot(str(tmp_path / "a.annot"))
    assert a.index.tolist() == ["s1", "s2", "s3", "s4"] and list(a.columns) == ["base", "X"]


def test_cojo_ma_and_the_maf_info_filters(tmp_path, caplog):
    """GCTA-COJO's .ma: Z = b / se for A1, its N; SNPs with MAF below 0.01 (either allele)
    or INFO below 0.9 dropped, at and above the thresholds kept (both directions), logged;
    the filters' columns do not leave the reader; other thresholds on request."""
    f = tmp_path / "t.ma"
    f.write_text("SNP A1 A2 freq b se p N INFO\n"
                 "rs1 A G 0.30 0.2 0.1 0.05 1000 0.95\n"
                 "rs2 C T 0.005 0.5 0.1 1e-6 1000 0.99\n"
                 "rs3 A C 0.995 0.5 0.1 1e-6 1000 0.99\n"
                 "rs4 A C 0.01 -0.3 0.1 0.003 900 0.90\n"
                 "rs5 G T 0.40 0.1 0.1 0.3 1000 0.89\n")
    with caplog.at_level(logging.INFO):
        ss = read_sumstats(f)
    assert ss.SNP.tolist() == ["rs1", "rs4"] and list(ss.columns) == ["SNP", "A1", "A2", "Z", "N"]
    np.testing.assert_allclose(ss.Z, [2.0, -3.0])
    np.testing.assert_array_equal(ss.N, [1000, 900])
    assert "2 SNPs with a minor allele frequency below 0.01" in caplog.text
    assert "1 SNPs with INFO below 0.9" in caplog.text
    assert read_sumstats(f, maf_min=0.0, info_min=0.0).SNP.tolist() == [
        "rs1", "rs2", "rs3", "rs4", "rs5"]
    assert sumstats_format(tmp_path / "x.ma") == "cojo"
    bad = tmp_path / "b.ma"
    bad.write_text("SNP A1 A2 b se p N\nrs1 A G 0.2 0.1 0.05 1000\n")
    with pytest.raises(FileFormatError, match="no column freq"):
        read_sumstats(bad)
