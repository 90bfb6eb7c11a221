"""``bayeslmm reml --bfile --engine``: the same .hsq as the GRM route (eigen, low-rank), the
Krylov .hsq with its Monte Carlo error, and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslmm.datasets import load_demo

from helpers import run_cli

DEMO = load_demo()


run = run_cli  # the CLI in-process (tests/helpers.py)


def _hsq(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", index_col=0)


def test_engines_equal_the_grm_route(tmp_path):
    base = ["reml", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet"]
    assert run([*base, "--out", str(tmp_path / "grm")]) == 0
    assert run([*base, "--engine", "eigen", "--out", str(tmp_path / "eig")]) == 0
    ref, eig = _hsq(tmp_path / "grm.hsq"), _hsq(tmp_path / "eig.hsq")
    np.testing.assert_allclose(eig["Variance"], ref["Variance"], rtol=1e-8)
    assert run([*base, "--engine", "krylov", "--probes", "20", "--lanczos-steps", "15",
                "--threads", "1", "--out", str(tmp_path / "kry")]) == 0
    kry = _hsq(tmp_path / "kry.hsq")
    mc = kry.loc["V(G)/Vp MC error", "Variance"]
    assert 0 < mc < 0.01
    assert abs(kry.loc["V(G)/Vp", "Variance"] - ref.loc["V(G)/Vp", "Variance"]) < 0.003 + 3 * mc
    log = (tmp_path / "kry.log").read_text()
    assert "passes=16" in log and "bed_bytes_per_pass" in log and "precision=float32" in log
    # --precision float64: the same probes, products in float64; h2 to float32 rounding
    assert run([*base, "--engine", "krylov", "--probes", "20", "--lanczos-steps", "15",
                "--threads", "1", "--precision", "float64", "--out", str(tmp_path / "k64")]) == 0
    assert "precision=float64" in (tmp_path / "k64.log").read_text()
    k64 = _hsq(tmp_path / "k64.hsq")
    assert abs(k64.loc["V(G)/Vp", "Variance"] - kry.loc["V(G)/Vp", "Variance"]) < 1e-4


def test_lowrank_engine_on_few_snps(tmp_path):
    """--geno 0 --maf 0.45 leaves 164 complete SNPs (< 395 samples): the low-rank tier
    gives the GRM route's .hsq (on complete SNPs the GCTA GRM is Z Z'/P exactly)."""
    base = ["reml", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet",
            "--maf", "0.45", "--geno", "0"]
    assert run([*base, "--out", str(tmp_path / "grm")]) == 0
    assert run([*base, "--engine", "lowrank", "--out", str(tmp_path / "low")]) == 0
    assert "from 164 SNPs passing QC" in (tmp_path / "grm.log").read_text()
    np.testing.assert_allclose(_hsq(tmp_path / "low.hsq")["Variance"],
                               _hsq(tmp_path / "grm.hsq")["Variance"], rtol=1e-6)


@pytest.mark.parametrize(("extra", "message"), [
    (["--engine", "krylov", "--ml"], "REML"),
    (["--engine", "lowrank"], "fewer SNPs than samples"),
])
def test_errors_are_one_line(tmp_path, capsys, extra, message):
    code = run(["reml", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet",
                "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.hsq").exists()
