"""Numbers that used to be written as NaN (issue 22), through the command line: a two-trait
reml whose second trait is scaled by 1e300 is the one-trait error, naming the trait, with no
output; --prevalence 1e-300 writes a finite liability row (Mills' ratio), not nan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayeslmm.datasets import load_demo

from helpers import run_cli

DEMO = load_demo()


@pytest.fixture(scope="module")
def grm(demo_grm) -> Path:
    return demo_grm


@pytest.fixture(scope="module")
def phenos(tmp_path_factory) -> Path:
    """y; y2 = a noisy copy scaled by 1e300; cc = y above its 70% quantile (0/1)."""
    ph = pd.read_csv(DEMO.pheno, sep=r"\s+")
    rng = np.random.default_rng(0)
    ph["y2"] = (ph["y"] + rng.standard_normal(len(ph))) * 1e300
    ph["cc"] = (ph["y"] > ph["y"].quantile(0.7)).astype(int)
    ph.loc[ph["y"].isna(), ["y2", "cc"]] = np.nan
    path = tmp_path_factory.mktemp("num") / "p.phen"
    ph.to_csv(path, sep=" ", index=False, na_rep="NA")
    return path


def test_two_traits_one_overflowing_is_the_one_trait_error(grm, phenos, tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(["reml", "--grm", str(grm), "--pheno", str(phenos), "--mpheno", "1", "2",
                    "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trait 'y2' has values as large as" in err[0]
    assert "overflow" in err[0] and not list(tmp_path.iterdir())
    # the same trait alone: the one-trait message
    assert run_cli(["reml", "--grm", str(grm), "--pheno", str(phenos), "--mpheno", "2",
                    "--out", str(out), "--quiet"]) == 1
    assert "has values as large as" in capsys.readouterr().err


@pytest.mark.slow
def test_two_traits_of_ordinary_size_are_fitted(grm, phenos, tmp_path):
    """The accepted direction of the check above (a two-trait fit: seconds)."""
    ok = tmp_path / "ok"
    assert run_cli(["reml", "--grm", str(grm), "--pheno", str(phenos), "--mpheno", "1", "3",
                    "--out", str(ok), "--quiet"]) == 0
    assert "nan" not in Path(f"{ok}.hsq").read_text().lower()


def _rows(hsq: str) -> dict[str, list[str]]:
    return {ln.split("\t")[0]: ln.split("\t")[1:] for ln in hsq.splitlines() if "\t" in ln}


@pytest.mark.parametrize("K", ["1e-300", pytest.param("0.05", marks=pytest.mark.slow)])
def test_tiny_prevalence_writes_a_finite_liability_row(grm, phenos, tmp_path, K):
    out = tmp_path / "r"
    assert run_cli(["reml", "--grm", str(grm), "--pheno", str(phenos), "--mpheno", "3",
                    "--prevalence", K, "--out", str(out), "--quiet"]) == 0
    rows = _rows(Path(f"{out}.hsq").read_text())
    h2_o, h2_l = float(rows["V(G)/Vp"][0]), float(rows["V(G)/Vp_L"][0])
    assert np.isfinite(h2_l) and np.isfinite(float(rows["V(G)/Vp_L"][1]))
    ph = pd.read_csv(phenos, sep=r"\s+").dropna()
    P = float(ph["cc"].mean())
    k = float(K)
    t = stats.norm.isf(k)
    if k < 1e-100:  # K^2 / z^2 from Mills' ratio, K = phi(t)/t (1 - 1/t^2 + 3/t^4 - ...)
        C = ((1 - 1 / t**2 + 3 / t**4 - 15 / t**6) / t) ** 2 / (P * (1 - P))
    else:  # Lee et al. 2011 eq. 23 as written
        C = k**2 * (1 - k) ** 2 / (stats.norm.pdf(t) ** 2 * P * (1 - P))
    assert h2_l == pytest.approx(C * h2_o, rel=1e-4, abs=2e-6)  # the .hsq's 6 digits
