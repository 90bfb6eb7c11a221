"""--pfile, --bgen/--sample and --vcf on the command line: the demo fileset converted by
plink2 (the peer) gives the .bed's GRM (to 1e-5; here the 8-bit BGEN holds hard calls, exact
at 8 bits) and the .bed's REML fit; a bad file ends in one line, status 1, no output."""

from __future__ import annotations

import numpy as np
import pytest
from plink2_files import convert

from bayeslmm.datasets import load_demo
from bayeslmm.io import read_grm

from helpers import run_cli

DEMO = load_demo()


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    return convert(DEMO.bfile, tmp_path_factory.mktemp("formats"))


def _flags(conv) -> dict[str, list[str]]:
    return {"bfile": ["--bfile", str(DEMO.bfile)], "pfile": ["--pfile", str(conv["pfile"])],
            "bgen": ["--bgen", str(conv["bgen"]), "ref-last", "--sample", str(conv["sample"])],
            "vcf": ["--vcf", str(conv["vcf"]), "--id-delim", "-"]}


def test_grm_equals_the_bed(conv, tmp_path):
    for name, f in _flags(conv).items():
        assert run_cli(["grm", *f, "--out", str(tmp_path / name), "--quiet"]) == 0
    assert "counted allele: ALT = the first allele" in (tmp_path / "bgen.log").read_text()
    ref = read_grm(tmp_path / "bfile")
    for name in ("pfile", "bgen", "vcf"):
        g = read_grm(tmp_path / name)
        np.testing.assert_array_equal(g.ids, ref.ids)
        np.testing.assert_allclose(g.values, ref.values, atol=1e-5)


@pytest.mark.slow
def test_reml_equals_the_bed(conv, tmp_path):
    h2 = {}
    for name, f in _flags(conv).items():
        assert run_cli(["reml", *f, "--pheno", str(DEMO.pheno), "--out",
                        str(tmp_path / name), "--quiet"]) == 0
        rows = (tmp_path / f"{name}.hsq").read_text().splitlines()[1:]
        h2[name] = dict(ln.split("\t")[:2] for ln in rows if "\t" in ln)
    assert h2["pfile"] == h2["bgen"] == h2["vcf"] == h2["bfile"]  # every row, as printed


@pytest.mark.parametrize("case", ["pgen-truncated", "bgen-no-mode", "sample-without-bgen",
                                  "vcf-junk"])
def test_bad_files_end_in_one_line_and_no_output(conv, tmp_path, capsys, case):
    flags = _flags(conv)
    if case == "pgen-truncated":
        for s in (".pvar", ".psam"):
            (tmp_path / f"p{s}").write_bytes(conv["pfile"].with_suffix(s).read_bytes())
        raw = conv["pfile"].with_suffix(".pgen").read_bytes()
        (tmp_path / "p.pgen").write_bytes(raw[: len(raw) // 3])
        f = ["--pfile", str(tmp_path / "p")]
    elif case == "bgen-no-mode":
        f = ["--bgen", str(conv["bgen"]), "--sample", str(conv["sample"])]
    elif case == "sample-without-bgen":
        f = [*flags["bfile"], "--sample", str(conv["sample"])]
    else:
        (tmp_path / "j.vcf").write_text("##fileformat=VCFv4.2\nnot a header\n")
        f = ["--vcf", str(tmp_path / "j.vcf")]
    out = tmp_path / "out"
    out.mkdir()
    before = set(tmp_path.rglob("*"))
    capsys.readouterr()
    assert run_cli(["grm", *f, "--out", str(out / "g"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], err
    assert set(tmp_path.rglob("*")) == before  # no output, no staged file left
