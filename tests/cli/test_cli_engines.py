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
    assert "observed information matrix" in log  # the Krylov engine's only SE convention
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


def test_sample_engine_krylov_posterior_equals_the_exact_quadrature(tmp_path):
    """`sample --engine krylov`: the .hsq, and the posterior of h2 by quadrature on the
    Krylov likelihood, whose mean and SD equal the exact quadrature posterior on the GRM
    (the same priors) within the reported Monte Carlo error; interval named."""
    import bayeslmm
    from bayeslmm.bayes import posterior_h2_quadrature
    from bayeslmm.bayes.summaries import interval_columns

    out = tmp_path / "s"
    assert run(["sample", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet",
                "--engine", "krylov", "--probes", "20", "--lanczos-steps", "15",
                "--threads", "1", "--seed", "3", "--out", str(out)]) == 0
    for sfx in (".hsq", ".posterior.tsv", ".posterior.nc", ".h2.png"):
        assert (tmp_path / f"s{sfx}").stat().st_size > 0, sfx
    tab = pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0)
    assert set(interval_columns()) <= set(tab.columns)
    y, K = DEMO.phenotype_and_grm()
    exact = posterior_h2_quadrature(bayeslmm.reml(y, K))
    row = tab.loc["h2"]
    assert 0 < row["mcse_mean"] < 0.01  # the SLQ error and the draws' in quadrature
    assert abs(row["mean"] - float(exact["mean"])) < 0.003 + 3 * row["mcse_mean"]
    assert row["sd"] == pytest.approx(float(exact["sd"]), rel=0.05)


def test_sample_and_assoc_engine_eigen_equal_the_grm_route(tmp_path):
    """With the exact engines the posterior and association files are those of the GRM
    route (same seed), and `assoc --engine krylov` gives GRAMMAR-Gamma in the same layout;
    the exact test there is a one-line error."""
    base = ["--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet"]
    assert run(["assoc", *base, "--test", "exact", "grammar", "--out",
                str(tmp_path / "a")]) == 0
    assert run(["assoc", *base, "--test", "exact", "grammar", "--engine", "eigen", "--out",
                str(tmp_path / "ae")]) == 0
    for t in ("exact", "grammar"):
        a = pd.read_csv(tmp_path / f"a.{t}.assoc.tsv", sep="\t")
        b = pd.read_csv(tmp_path / f"ae.{t}.assoc.tsv", sep="\t")
        np.testing.assert_allclose(b["chi2"], a["chi2"], rtol=1e-6, err_msg=t)
        assert a["snp"].equals(b["snp"])
    assert run(["assoc", *base, "--test", "grammar-gamma", "--engine", "krylov", "--probes",
                "20", "--lanczos-steps", "15", "--threads", "1", "--format", "mlma",
                "--out", str(tmp_path / "ak")]) == 0
    ak = pd.read_csv(tmp_path / "ak.mlma", sep="\t")
    assert list(ak.columns) == ["Chr", "SNP", "bp", "A1", "A2", "Freq", "b", "se", "p"]
    assert len(ak) > 0 and ak["p"].between(0, 1).all()
    code = run(["assoc", *base, "--engine", "krylov", "--test", "exact", "--out",
                str(tmp_path / "bad")])
    assert code == 1 and not (tmp_path / "bad.assoc.tsv").exists()
    assert run(["sample", *base, "--draws", "200", "--tune", "200", "--chains", "2",
                "--seed", "5", "--out", str(tmp_path / "s")]) == 0
    assert run(["sample", *base, "--draws", "200", "--tune", "200", "--chains", "2",
                "--seed", "5", "--engine", "eigen", "--out", str(tmp_path / "se")]) == 0
    s = pd.read_csv(tmp_path / "s.posterior.tsv", sep="\t", index_col=0)
    se = pd.read_csv(tmp_path / "se.posterior.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(se.loc["h2", "mean"], s.loc["h2", "mean"], rtol=1e-6)


@pytest.mark.parametrize("se_method, engine, ok", [("ai", "krylov", False),
                                                   ("expected", "krylov", False),
                                                   ("observed", "krylov", True),
                                                   ("observed", "eigen", True)])
def test_se_method_with_engines(tmp_path, capsys, se_method, engine, ok):
    """The Krylov engine has the observed information only: other --se-method values are
    refused in one line before any pass; the eigen engine takes any and says which."""
    code = run(["reml", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--quiet",
                "--engine", engine, "--se-method", se_method, "--out", str(tmp_path / "r")]
               + ["--probes", "10", "--lanczos-steps", "8"] * (engine == "krylov"))
    err = capsys.readouterr().err.strip()
    if ok:
        assert code == 0
        assert f"se_method = {se_method}" in (tmp_path / "r.log").read_text()
    else:
        assert code == 1 and len(err.splitlines()) == 1
        assert "Krylov engine's standard errors" in err and not list(tmp_path.iterdir())
