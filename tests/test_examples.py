"""The runnable examples (one per user workflow) and the documentation build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def assert_png(path: Path) -> None:
    img = mpimg.imread(path)
    assert img.shape[0] >= 300 and img.shape[1] >= 500
    assert np.ptp(img[..., :3]) > 0


def test_simulate_and_fit():
    out = run_example("simulate_and_fit", "--n", "400", "--snps", "800")
    assert "V(G)/Vp" in out and "true h2 = 0.4" in out


@pytest.mark.slow
def test_heritability_from_plink(tmp_path):
    out = run_example("heritability_from_plink", "--out", str(tmp_path), "--draws", "300")
    assert "h2" in out
    assert (tmp_path / "posterior_summary.tsv").stat().st_size > 0
    assert_png(tmp_path / "h2_posterior.png")


@pytest.mark.slow
def test_eb_vs_full_posterior(tmp_path):
    out = run_example("eb_vs_full_posterior", "--out", str(tmp_path), "--draws", "300")
    assert "EB posterior of g equals BLUP" in out and "correlation" in out
    assert_png(tmp_path / "eb_vs_full.png")


@pytest.mark.slow
def test_prior_sensitivity_example(tmp_path):
    out = run_example("prior_sensitivity", "--out", str(tmp_path), "--draws", "300")
    assert any(v in out for v in ("prior-dominated", "prior-influenced", "robust"))
    assert_png(tmp_path / "prior_sensitivity.png")


def test_docs_build_with_one_command(tmp_path):
    pytest.importorskip("pdoc")
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in ("index", "model", "priors", "sensitivity", "cli", "lmm-math-notes"):
        assert "<h1" in (tmp_path / f"{page}.html").read_text()
    # the notes the docstrings cite are in the docs, their equations left intact for MathJax
    notes = (tmp_path / "lmm-math-notes.html").read_text()
    assert "MathJax" in notes and "REML" in notes and "$" in notes
    reml_page = tmp_path / "api" / "bayeslmm" / "estimation" / "reml.html"
    assert "def reml" in reml_page.read_text() or \
        "reml" in (tmp_path / "api" / "bayeslmm" / "estimation" / "reml.html").read_text()


@pytest.mark.slow
def test_partitioned_mouse(tmp_path):
    from peers import GEMMA_EXAMPLE, missing

    if not (GEMMA_EXAMPLE / "mouse_hs1940.bed.gz").exists():
        missing("the GEMMA mouse example (Debian gemma-doc)")
    out = run_example("partitioned_mouse", "--out", str(tmp_path), "--n-samples", "300",
                      "--draws", "250", "--chains", "2")
    assert "reference levels sex = 'female'" in out and "125 with missing values" in out
    table = (tmp_path / "partitioned_h2.tsv").read_text()
    assert "h2[grm]" in table and "h2[group]" in table and "h2_total" in table
    assert_png(tmp_path / "partitioned_h2.png")
