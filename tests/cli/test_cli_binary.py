"""``bayeslmm reml/sample --prevalence`` and ``sample --model threshold`` on a case-control
version of the demo trait (PLINK 1/2 coding with 0 and -9 missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.data import align_samples
from bayeslmm.datasets import load_demo
from bayeslmm.io import read_grm, read_phenotype
from bayeslmm.reports.hsq import hsq_text

from helpers import run_cli

DEMO = load_demo()


run = run_cli  # the CLI in-process (tests/helpers.py)


@pytest.fixture(scope="module")
def cc_pheno(tmp_path_factory) -> Path:
    """Top 30% of the demo trait are cases (2), the rest controls (1); 3 samples coded 0 and
    2 coded -9 (missing in PLINK)."""
    y = pd.read_csv(DEMO.pheno, sep=r"\s+")
    cc = np.where(y["y"] > y["y"].quantile(0.7), 2, 1)
    cc[[0, 5, 9]] = 0
    cc[[3, 7]] = -9
    y["y"] = cc
    path = tmp_path_factory.mktemp("cc") / "cc.phen"
    y.to_csv(path, sep=" ", index=False)
    return path


def _api_fit(grm_prefix, pheno):
    y = read_phenotype(pheno)  # -9 is missing here; PLINK's 0 (missing in 1/2) is not
    a = align_samples({"GRM": read_grm(grm_prefix), "phenotype": y.where(y != 0)})
    y = a["phenotype"] - 1.0
    return bayeslmm.reml(y, a["GRM"].K, pd.DataFrame({"intercept": 1.0}, index=y.index))


def test_reml_prevalence_writes_liability_row(demo_grm, cc_pheno, tmp_path):
    out = tmp_path / "r"
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--prevalence",
                "0.05", "--out", str(out), "--quiet"]) == 0
    text = Path(f"{out}.hsq").read_text()
    log = Path(f"{out}.log").read_text()
    assert "coded 1/2" in log and "; missing: -9/NA and 0" in log
    # the 0-coded samples are missing, not controls: 400 - 5 without a phenotype
    assert "5 missing" in log
    ph = pd.read_csv(cc_pheno, sep=r"\s+")
    y = ph["y"][(ph["y"] == 1) | (ph["y"] == 2)]
    rows = dict(ln.split("\t", 1) for ln in text.splitlines()[1:] if "\t" in ln)
    hsq = pd.DataFrame([v.split("\t") + [""] * (1 - v.count("\t")) for v in rows.values()],
                       index=list(rows), columns=["Variance", "SE"])
    fit = _api_fit(demo_grm, cc_pheno)
    assert int(hsq.loc["n", "Variance"]) == fit.N == len(y)
    lia = fit.liability_h2(0.05)
    assert lia.case_proportion == pytest.approx(float((y == 2).mean()))
    assert float(hsq.loc["V(G)/Vp_L", "Variance"]) == pytest.approx(lia.h2, abs=1e-6)
    assert float(hsq.loc["V(G)/Vp_L", "SE"]) == pytest.approx(lia.h2_se, abs=1e-6)
    assert text == hsq_text(fit, 0.05)
    assert "User-specified disease prevalence = 0.050000" in text


def test_binary_trait_without_prevalence_is_stated(demo_grm, cc_pheno, tmp_path):
    out = tmp_path / "r"
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--out", str(out),
                "--quiet"]) == 0
    log = Path(f"{out}.log").read_text()
    assert "analysed as a quantitative trait" in log  # values 0, 1, 2
    assert "_L" not in Path(f"{out}.hsq").read_text()


def test_quantitative_trait_with_prevalence_is_an_error(demo_grm, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--prevalence",
                "0.1", "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a case-control trait" in err[0]
    assert not Path(f"{out}.hsq").exists()
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--prevalence",
                "1.5", "--out", str(out), "--quiet"]) != 0
    assert "prevalence K must lie strictly between 0 and 1" in capsys.readouterr().err


def test_sample_prevalence_adds_h2_liability(demo_grm, cc_pheno, tmp_path):
    import xarray as xr

    from bayeslmm.estimation.liability import liability_factor

    out = tmp_path / "s"
    assert run(["sample", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--prevalence",
                "0.05", "--draws", "100", "--tune", "200", "--chains", "2", "--seed", "1",
                "--out", str(out), "--quiet"]) == 0
    tree = xr.open_datatree(f"{out}.posterior.nc", engine="h5netcdf")
    post = tree["posterior"]
    ph = pd.read_csv(cc_pheno, sep=r"\s+")["y"]
    P = float((ph == 2).sum() / ((ph == 1) | (ph == 2)).sum())
    np.testing.assert_allclose(post["h2_liability"].values,
                               post["h2"].values * liability_factor(0.05, P), rtol=1e-12)
    assert "h2_liability" in pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0).index
    assert "V(G)/Vp_L" in Path(f"{out}.hsq").read_text()


def test_sample_threshold_model_from_genotypes_by_engine(cc_pheno, tmp_path):
    """--engine lowrank / eigen: the threshold posterior on the decomposition the engine made
    (no GRM file; lowrank forms no N x N matrix), the .hsq with the liability row; the Krylov
    engine, which has no decomposition, refused in one line."""
    import xarray as xr

    base = ["sample", "--bfile", str(DEMO.bfile), "--pheno", str(cc_pheno), "--model",
            "threshold", "--prevalence", "0.3", "--draws", "100", "--tune", "100", "--chains",
            "2", "--seed", "1", "--quiet"]
    out = tmp_path / "lr"
    # 300 SNPs: fewer than the samples, the exact low-rank route
    snps = pd.read_csv(f"{DEMO.bfile}.bim", sep=r"\s+", header=None)[1][:300]
    (tmp_path / "snps.txt").write_text("\n".join(snps) + "\n")
    assert run([*base, "--engine", "lowrank", "--extract", str(tmp_path / "snps.txt"),
                "--out", str(out)]) == 0
    tree = xr.open_datatree(f"{out}.posterior.nc", engine="h5netcdf")
    assert tree["posterior"].attrs["sampler"] == "augmented"
    assert tree["posterior"]["h2"].shape == (2, 100)
    assert "V(G)/Vp_L" in Path(f"{out}.hsq").read_text()
    assert run([*base, "--engine", "eigen", "--out", str(tmp_path / "e")]) == 0
    assert run([*base, "--engine", "krylov", "--out", str(tmp_path / "k")]) != 0
    assert not Path(f"{tmp_path / 'k'}.posterior.nc").exists()


@pytest.mark.slow
def test_sample_threshold_model(demo_grm, cc_pheno, tmp_path):
    import xarray as xr

    out = tmp_path / "t"
    assert run(["sample", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--model",
                "threshold", "--prevalence", "0.3", "--draws", "200", "--tune", "300",
                "--chains", "2", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    tree = xr.open_datatree(f"{out}.posterior.nc", engine="h5netcdf")
    h2 = tree["posterior"]["h2"].values
    assert h2.shape == (2, 200) and 0 < h2.mean() < 1
    log = Path(f"{out}.log").read_text()
    assert "Threshold (probit) model" in log and "Posterior predictive check" in log
    # a prior the threshold model lacks is refused before any work
    assert run(["sample", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--model",
                "threshold", "--prior", "Vp=HalfNormal(1)", "--out", str(out),
                "--quiet"]) != 0


@pytest.mark.slow
def test_compare_threshold_model_on_the_liability_scale(demo_grm, cc_pheno, tmp_path):
    """compare --model threshold: the posterior of liability h2 next to REML transformed with
    the same K (Lee et al.), the row and the interval named; without K, refused before any
    work."""
    from bayeslmm.estimation.liability import liability_factor

    out = tmp_path / "c"
    assert run(["compare", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--model",
                "threshold", "--prevalence", "0.3", "--draws", "200", "--tune", "300",
                "--chains", "2", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    tab = pd.read_csv(f"{out}.compare.tsv", sep="\t", index_col=0)
    assert list(tab.index) == ["h2"]
    row = tab.loc["h2"]
    assert row.reml_interval == "Wald (Lee transform)"
    # the REML side is GCTA's V(G)/Vp_L line of `reml --prevalence` on the same file, which
    # is the observed-scale h2 times Lee's factor
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--prevalence",
                "0.3", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    hsq = pd.read_csv(tmp_path / "r.hsq", sep="\t", index_col=0)
    ph = pd.read_csv(cc_pheno, sep=r"\s+")["y"]
    P = float((ph == 2).sum() / ((ph == 1) | (ph == 2)).sum())
    assert row.reml == pytest.approx(float(hsq.loc["V(G)/Vp_L", "Variance"]), abs=2e-6)
    c = liability_factor(0.3, P)
    assert row.reml == pytest.approx(float(hsq.loc["V(G)/Vp", "Variance"]) * c, abs=2e-6 * c)
    assert 0 < row.post_mean < 1 and row.hdi_lower < row.post_mean < row.hdi_upper
    assert Path(f"{out}.compare.png").stat().st_size > 0
    # without --prevalence: one line, non-zero, no outputs
    bad = tmp_path / "bad"
    assert run(["compare", "--grm", str(demo_grm), "--pheno", str(cc_pheno), "--model",
                "threshold", "--out", str(bad), "--quiet"]) != 0
    assert not Path(f"{bad}.compare.tsv").exists()
