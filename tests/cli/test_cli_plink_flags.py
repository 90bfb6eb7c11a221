"""PLINK conventions as flags: --exclude-negative-pos (PLINK drops variants with a negative bp
position; GEMMA and bayeslmm keep them by default)."""

from __future__ import annotations

import shutil

import pytest

from bayeslmm.datasets import load_demo
from bayeslmm.io import read_grm

from helpers import run_cli

DEMO = load_demo()


@pytest.fixture(scope="module")
def negative(tmp_path_factory):
    d = tmp_path_factory.mktemp("negpos")
    for sfx in (".bed", ".fam"):
        shutil.copy(f"{DEMO.bfile}{sfx}", d / f"neg{sfx}")
    lines = open(f"{DEMO.bfile}.bim").read().splitlines()
    for i in range(0, 30):  # 30 variants at a negative position
        f = lines[i].split()
        f[3] = str(-int(f[3]) - 1)
        lines[i] = "\t".join(f)
    (d / "neg.bim").write_text("\n".join(lines) + "\n")
    return d / "neg"


@pytest.mark.parametrize("flag, n_snps", [([], 3000), (["--exclude-negative-pos"], 2970)])
def test_exclude_negative_pos(negative, tmp_path, flag, n_snps):
    assert run_cli(["grm", "--bfile", str(negative), *flag, "--out", str(tmp_path / "g"),
                    "--quiet"]) == 0
    assert int(read_grm(tmp_path / "g").n_snps.max()) == n_snps
    log = (tmp_path / "g.log").read_text()
    said = "excluded (as PLINK does)" if flag else "kept (as GEMMA"
    assert "30 of 3000 variants have a negative bp position" in log and said in log


def test_exclude_negative_pos_needs_bfile(tmp_path, capsys):
    code = run_cli(["reml", "--grm", str(tmp_path / "x"), "--pheno", str(DEMO.pheno),
                    "--exclude-negative-pos", "--out", str(tmp_path / "r")])
    assert code != 0 and "--exclude-negative-pos applies with --bfile" in capsys.readouterr().err
