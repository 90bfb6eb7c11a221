"""``bayeslmm ldpred`` end to end on a simulated cohort: LDSC-layout statistics in, the
effects table, the chains' file (h2 near the simulated value) and the target's scores out
(equal to plink2 --score on the written effects); refusals in one line with nothing written."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayeslmm.datasets import load_demo

from helpers import ld_cohort, run_cli
from peers import require_tool

DEMO = load_demo()


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    """Our own marginal test on the demo, in plink2's layout (for the refusals)."""
    d = tmp_path_factory.mktemp("ldpred")
    assert run_cli(["assoc", "--test", "linear", "--bfile", str(DEMO.bfile), "--pheno",
                    str(DEMO.pheno), "--out", str(d / "gwas"), "--quiet"]) == 0
    return d / "gwas.glm.linear"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """1,000 samples x 150 SNPs in LD with a sparse trait (tests/helpers.ld_cohort) as a .bed
    and its in-sample marginal statistics as an LDSC .sumstats file."""
    from bed_reader import to_bed

    G, ys, _ = ld_cohort(N=1000, P=150, seed=9)
    N, P = G.shape
    Z = (G - G.mean(0)) / G.std(0)
    r = Z.T @ ys / N
    d = tmp_path_factory.mktemp("ldpred_cohort")
    sid = [f"rs{j}" for j in range(P)]
    to_bed(d / "c.bed", G, properties={"sid": sid, "chromosome": ["1"] * P,
                                        "bp_position": np.arange(P) * 1000 + 1,
                                        "allele_1": ["C"] * P, "allele_2": ["A"] * P})
    pd.DataFrame({"SNP": sid, "A1": "C", "A2": "A", "Z": r * np.sqrt(N) / np.sqrt(1 - r**2),
                  "N": N}).to_csv(d / "c.sumstats", sep="\t", index=False)
    return d / "c", d / "c.sumstats"


def test_ldpred_auto_and_scores(cohort, tmp_path, capsys):
    bfile, sumstats = cohort
    out = tmp_path / "lp"
    rc = run_cli(["ldpred", "--sumstats", str(sumstats), "--ref", str(bfile), "--target",
                  str(bfile), "--h2", "0.3", "--p", "0.1", "--ld-wind-kb", "1000", "--burn",
                  "100", "--draws", "200", "--chains", "2", "--seed", "3", "--out", str(out)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "LDpred-auto" in stdout and "h2: posterior mean" in stdout and "95% equal-tailed" \
        in stdout
    eff = pd.read_csv(f"{out}.ldpred.tsv", sep="\t")
    assert list(eff.columns) == ["CHR", "SNP", "BP", "A1", "A2", "beta_std", "beta", "pip"]
    assert len(eff) == 150 and eff["pip"].between(0, 1).all()
    tree = xr.open_datatree(f"{out}.ldpred.nc")
    assert tree["posterior"]["h2"].shape == (2, 200)
    assert 0.4 < float(tree["posterior"]["h2"].mean()) < 0.8  # simulated 0.6
    sc = pd.read_csv(f"{out}.sscore", sep="\t")
    assert list(sc.columns) == ["#FID", "IID", "ALLELE_CT", "SCORE_SUM"] and len(sc) == 1000
    plink2 = require_tool("plink2")
    eff[["SNP", "A1", "beta"]].to_csv(tmp_path / "w.txt", sep="\t", index=False, header=False)
    subprocess.run([plink2, "--bfile", str(bfile), "--score", str(tmp_path / "w.txt"),
                    "1", "2", "3", "cols=+scoresums", "--nonfounders", "--out",
                    str(tmp_path / "p2")], check=True, capture_output=True)
    ref = pd.read_csv(tmp_path / "p2.sscore", sep="\t")
    np.testing.assert_allclose(sc["SCORE_SUM"], ref["SCORE1_SUM"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("extra", "message"), [
    ([], "ldpred needs --h2"),
    (["--h2", "0.3", "--method", "grid"], "--method grid needs --p"),
    (["--h2", "1.5", "--method", "inf"], "h2 must be in (0, 1)"),
    (["--h2", "0.3", "--method", "inf", "--p", "0.1"], "--p applies to --method grid"),
])
def test_ldpred_refusals(glm, tmp_path, capsys, extra, message):
    rc = run_cli(["ldpred", "--sumstats", str(glm), "--ref", str(DEMO.bfile),
                  "--ld-wind-kb", "100", "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and message in err[-1] and err[-1].startswith("bayeslmm: error:")
    assert list(tmp_path.iterdir()) == []
