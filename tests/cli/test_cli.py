"""The ``bayeslmm`` command: files equal to the library's results and to GCTA's layouts,
bad inputs ending in one line on stderr with exit status 1 and no output file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.blup import blup
from bayeslmm.cli.app import main
from bayeslmm.data import align_samples
from bayeslmm.datasets import load_demo
from bayeslmm.genotypes.kinship import grm
from bayeslmm.io import GRM, read_grm, read_phenotype, read_plink, write_grm
from bayeslmm.reports.hsq import hsq_text

from helpers import run_cli

DEMO = load_demo()
GCTA_HSQ_ROWS = ["V(G)", "V(e)", "Vp", "V(G)/Vp", "logL", "logL0", "LRT", "df", "Pval", "n"]


run = run_cli  # the CLI in-process (tests/helpers.py)


def test_grm_files_equal_library_write_grm(demo_grm, tmp_path):
    write_grm(grm(str(DEMO.bfile)), tmp_path / "lib")
    for sfx in (".grm.bin", ".grm.N.bin", ".grm.id"):
        assert Path(f"{demo_grm}{sfx}").read_bytes() == (tmp_path / f"lib{sfx}").read_bytes()
    log = Path(f"{demo_grm}.log").read_text()
    assert "400 samples and 3000 variants" in log


@pytest.mark.peer
def test_grm_equals_plink19_nonfounders(demo_grm, tmp_path):
    plink = shutil.which("plink1.9")
    if plink is None:
        pytest.skip("plink1.9 not installed")
    # --nonfounders: plink otherwise takes allele frequencies from founders only.
    subprocess.run([plink, "--bfile", str(DEMO.bfile), "--make-grm-bin", "--nonfounders",
                    "--out", str(tmp_path / "plink")], check=True, capture_output=True)
    ours, theirs = read_grm(demo_grm), read_grm(tmp_path / "plink")
    assert ours.ids.equals(theirs.ids)
    np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.n_snps, theirs.n_snps)


def test_loco_grm_files(tmp_path):
    out = tmp_path / "g"
    assert run(["grm", "--bfile", str(DEMO.bfile), "--loco", "--out", str(out),
                "--quiet"]) == 0
    for c in ("1", "2", "3"):
        assert read_grm(f"{out}.loco-chr{c}").M == 2000


def _api_fit(grm_prefix):
    g = read_grm(grm_prefix)
    a = align_samples({"GRM": g, "phenotype": read_phenotype(DEMO.pheno)})
    y = a["phenotype"]
    X = pd.DataFrame({"intercept": 1.0}, index=y.index)
    return bayeslmm.reml(y, a["GRM"].K, X)


def test_reml_hsq_equals_api_and_gcta_layout(demo_grm, tmp_path):
    out = tmp_path / "r"
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--out", str(out),
                "--quiet"]) == 0
    text = Path(f"{out}.hsq").read_text()
    lines = text.splitlines()
    # GCTA's layout literally: a tab-separated header, then one row per source.
    assert lines[0] == "Source\tVariance\tSE"
    assert [ln.split("\t")[0] for ln in lines[1:]] == GCTA_HSQ_ROWS
    assert all(len(ln.split("\t")) == 3 for ln in lines[1:5])
    assert all(len(ln.split("\t")) == 2 for ln in lines[5:])
    hsq = pd.read_csv(f"{out}.hsq", sep="\t", index_col="Source")
    fit = _api_fit(demo_grm)
    assert text == hsq_text(fit)
    summ = fit.summary()
    np.testing.assert_allclose(hsq["Variance"], summ["Variance"], rtol=1e-5)
    np.testing.assert_allclose(hsq["SE"].iloc[:4], summ["SE"].iloc[:4], rtol=1e-5)
    assert int(hsq.loc["n", "Variance"]) == 395


def test_reml_from_bfile_equals_grm_route(demo_grm, tmp_path):
    assert run(["reml", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--out",
                str(tmp_path / "b"), "--quiet"]) == 0
    assert run(["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--out",
                str(tmp_path / "g"), "--quiet"]) == 0
    b = pd.read_csv(tmp_path / "b.hsq", sep="\t", index_col=0)
    g = pd.read_csv(tmp_path / "g.hsq", sep="\t", index_col=0)
    # The GRM file is float32; the in-memory one float64.
    np.testing.assert_allclose(b["Variance"], g["Variance"], rtol=1e-4)


def test_mgrm_qcovar_ai(demo_grm, tmp_path):
    (tmp_path / "list.txt").write_text(f"{demo_grm}\n{tmp_path / 'g2'}\n")
    g = read_grm(demo_grm)
    K2 = np.kron(np.eye(80), np.ones((5, 5)))  # family indicator kernel
    write_grm(GRM.from_arrays(K2, g.ids, M=1), tmp_path / "g2")
    q = read_phenotype(DEMO.pheno).reset_index()
    q["age"] = np.random.default_rng(0).normal(40, 10, len(q))
    q[["fid", "iid", "age"]].to_csv(tmp_path / "q.txt", sep=" ", header=False, index=False)
    out = tmp_path / "m"
    assert run(["reml", "--mgrm", str(tmp_path / "list.txt"), "--pheno", str(DEMO.pheno),
                "--qcovar", str(tmp_path / "q.txt"), "--method", "ai", "--out", str(out),
                "--quiet"]) == 0
    rows = [ln.split("\t")[0] for ln in Path(f"{out}.hsq").read_text().splitlines()]
    assert "Sum of V(G)/Vp" in rows and rows.count("V(e)") == 1


def test_blup_files(demo_grm, tmp_path):
    out = tmp_path / "b"
    assert run(["blup", "--grm", str(demo_grm), "--bfile", str(DEMO.bfile), "--pheno",
                str(DEMO.pheno), "--out", str(out), "--quiet"]) == 0
    indi = pd.read_csv(f"{out}.indi.blp", sep="\t", header=None)
    assert indi.shape == (395, 6)  # FID IID, (sigma_g2 Py, g), (sigma_e2 Py, e)
    fit = _api_fit(demo_grm)
    b = blup(fit)
    np.testing.assert_allclose(indi[3], b["g"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(indi[5], b["residual"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(indi[4], indi[5], rtol=1e-5)
    np.testing.assert_allclose(indi[2] / fit.sigma_g2, indi[4] / fit.sigma_e2, rtol=1e-4)
    snp = pd.read_csv(f"{out}.snp.blp", sep="\t", header=None)
    assert snp.shape == (3000, 3)
    # plink --score with these per-A1 effects reproduces the BLUP of g (up to the missing
    # calls and the centring, which the score shifts by a constant).
    ds = read_plink(DEMO.bfile, load=True)
    pos = {s: i for i, s in enumerate(ds["sample"].to_numpy())}
    G = ds["genotype"].to_numpy()[[pos[s] for s in fit.data.samples]]
    G = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    score = G @ snp[2].to_numpy()
    assert np.corrcoef(score, b["g"])[0, 1] > 0.99


def test_assoc_table(demo_grm, tmp_path):
    out = tmp_path / "a"
    assert run(["assoc", "--bfile", str(DEMO.bfile), "--grm", str(demo_grm), "--pheno",
                str(DEMO.pheno), "--test", "grammar-gamma", "--out", str(out), "--quiet"]) == 0
    t = pd.read_csv(f"{out}.assoc.tsv", sep="\t")
    assert list(t.columns) == ["chrom", "snp", "pos", "a1", "a2", "af", "n", "beta", "se",
                               "chi2", "p"]
    assert len(t) == 3000 and t["p"].between(0, 1).all()
    assert "genomic-control lambda" in Path(f"{out}.log").read_text()


def test_assoc_several_tests_one_file_each(demo_grm, tmp_path):
    """--test exact grammar-gamma: one pass, PREFIX.<test>.assoc.tsv per test, each equal
    to the file of a single-test run; --maf leaves rare SNPs untested (NaN)."""
    common = ["assoc", "--bfile", str(DEMO.bfile), "--grm", str(demo_grm), "--pheno",
              str(DEMO.pheno), "--quiet"]
    both = tmp_path / "b"
    assert run(common + ["--test", "exact", "grammar-gamma", "--out", str(both)]) == 0
    assert not Path(f"{both}.assoc.tsv").exists()
    for t in ("exact", "grammar-gamma"):
        one = tmp_path / t
        assert run(common + ["--test", t, "--out", str(one)]) == 0
        a = pd.read_csv(f"{both}.{t}.assoc.tsv", sep="\t")
        b = pd.read_csv(f"{one}.assoc.tsv", sep="\t")
        pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    qc = tmp_path / "qc"
    assert run(common + ["--maf", "0.2", "--out", str(qc)]) == 0
    t = pd.read_csv(f"{qc}.assoc.tsv", sep="\t")
    rare = np.minimum(t["af"], 1 - t["af"]) < 0.2
    assert rare.any() and t.loc[rare, "p"].isna().all() and t.loc[~rare, "p"].notna().all()
    # The log says how many were tested and why the others were not: --maf first drops SNPs
    # at reading (PLINK's rule, frequencies over the fileset's samples), then assoc leaves
    # untested those rare among the phenotyped samples.
    text = Path(f"{qc}.log").read_text()
    assert f"--maf 0.2: removed {3000 - len(t)} of 3000 SNPs, {len(t)} left" in text
    assert (f"{len(t)} variants, {int((~rare).sum())} tested, {int(rare.sum())} skipped "
            f"({int(rare.sum())} filtered by --maf/--geno, 0 monomorphic)") in text


def test_assoc_defaults_to_gemmas_wald_and_writes_gemmas_layout(demo_grm, tmp_path):
    """No --test: GEMMA's Wald test (lambda re-fitted per SNP), equal to the library's; with
    --format gemma, GEMMA's -lmm 1 columns and number formats, GEMMA's -maf/-miss and the
    untested SNPs left out; --format mlma defaults to the fixed-variance test."""
    common = ["assoc", "--bfile", str(DEMO.bfile), "--grm", str(demo_grm), "--pheno",
              str(DEMO.pheno), "--quiet"]
    g = tmp_path / "g"
    assert run(common + ["--format", "gemma", "--out", str(g)]) == 0
    lines = Path(f"{g}.assoc.txt").read_text().splitlines()
    assert lines[0].split("\t") == ["chr", "rs", "ps", "n_miss", "allele1", "allele0", "af",
                                    "beta", "se", "logl_H1", "l_remle", "p_wald"]
    first = lines[1].split("\t")
    assert len(first[6]) == 5 and "e" in first[7] and len(first[11].split("e")[0]) == 8
    t = pd.read_csv(f"{g}.assoc.txt", sep="\t")
    # the library's Wald test on the same inputs, with GEMMA's QC
    inp = bayeslmm.load_inputs(DEMO.pheno, grm=demo_grm, bfile=DEMO.bfile)
    fit = bayeslmm.reml(inp.y, inp.K, inp.X)
    res = bayeslmm.assoc(fit, inp.ds, "wald", min_maf=0.01, max_missing=0.05)
    kept = ~res["filtered"].values & ~res["monomorphic"].values
    assert len(t) == int(kept.sum())
    np.testing.assert_allclose(t["p_wald"], res["p"].values[kept], rtol=1e-6)
    np.testing.assert_allclose(t["l_remle"], res["lambda"].values[kept], rtol=1e-6)
    m = tmp_path / "m"
    assert run(common + ["--format", "mlma", "--out", str(m)]) == 0
    exact = bayeslmm.assoc(fit, inp.ds, "exact")
    np.testing.assert_allclose(pd.read_csv(f"{m}.mlma", sep="\t")["p"], exact["p"],
                               rtol=1e-5)


def test_assoc_loco(tmp_path):
    out = tmp_path / "l"
    assert run(["assoc", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--loco",
                "--out", str(out), "--quiet"]) == 0
    assert len(pd.read_csv(f"{out}.assoc.tsv", sep="\t")) == 3000
    # The fileset is opened once, not once per chromosome (the demo has 3).
    assert Path(f"{out}.log").read_text().count("Read 400 samples and 3000 variants") == 1


# ----------------------------------------------------------------------------- bad input
def _bad_inputs(tmp: Path, demo_grm: Path) -> dict[str, tuple[list[str], str]]:
    phen = pd.read_csv(DEMO.pheno, sep=" ")
    p = phen.copy()
    p["FID"] = "X" + p["FID"]
    p.to_csv(tmp / "noids.phen", sep=" ", index=False, na_rep="NA")
    p = phen.copy().astype({"y": object})
    p.loc[2, "y"] = "abc"
    p.to_csv(tmp / "text.phen", sep=" ", index=False, na_rep="NA")
    p = phen.copy()
    p["y"] = 1.0
    p.to_csv(tmp / "const.phen", sep=" ", index=False, na_rep="NA")
    g = read_grm(demo_grm)
    K = g.values.copy()
    K[0, 1] = K[1, 0] = 5.0  # an impossible relationship: a negative eigenvalue
    write_grm(GRM.from_arrays(K, g.ids, M=g.M), tmp / "npsd")
    base = ["reml", "--grm", str(demo_grm), "--pheno"]
    return {
        "missing file": (base + [str(tmp / "nope.phen")], "does not exist"),
        "no overlapping IDs": (base + [str(tmp / "noids.phen")], "share 0 of 400"),
        "non-numeric phenotype": (base + [str(tmp / "text.phen")], "'abc' is not a number"),
        "constant phenotype": (base + [str(tmp / "const.phen")], "constant"),
        "non-PSD GRM": (["reml", "--grm", str(tmp / "npsd"), "--pheno", str(DEMO.pheno)],
                        "eigenvalue"),
        "missing GRM": (["reml", "--grm", str(tmp / "none"), "--pheno", str(DEMO.pheno)],
                        "does not exist"),
        "missing bfile": (["grm", "--bfile", str(tmp / "none")], "does not exist"),
    }


CASES = ["missing file", "no overlapping IDs", "non-numeric phenotype", "constant phenotype",
         "missing GRM", "missing bfile"]


def test_indefinite_grm_is_fitted_where_v_is_pd(demo_grm, tmp_path):
    # An indefinite GRM is fitted as GCTA does (V = sigma_g2 K + sigma_e2 I must be PD, not
    # K), with K's smallest eigenvalue and the h2 range it allows in the log.
    argv, _ = _bad_inputs(tmp_path, demo_grm)["non-PSD GRM"]
    assert run(argv + ["--out", str(tmp_path / "res"), "--quiet"]) == 0
    log = (tmp_path / "res.log").read_text()
    assert "K is indefinite" in log and "positive definite for h2 <" in log
    hsq = pd.read_csv(tmp_path / "res.hsq", sep="\t", index_col=0)
    s_min = np.linalg.eigvalsh(read_grm(tmp_path / "npsd").values).min()
    assert hsq.loc["V(G)/Vp", "Variance"] < 1 / (1 - s_min)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_1_no_output(case, demo_grm, tmp_path, capsys):
    argv, expected = _bad_inputs(tmp_path, demo_grm)[case]
    out = tmp_path / "out"
    out.mkdir()
    before = set(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", str(out / "res"), "--quiet"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bayeslmm: error: ")
    assert expected.lower() in err.lower(), err
    assert "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before  # not even a temporary or a log file
    assert not any(out.iterdir())


def test_console_script_subprocess(tmp_path):
    exe = Path(sys.executable).with_name("bayeslmm")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bayeslmm.cli"]
    r = subprocess.run(cmd + ["reml", "--grm", str(tmp_path / "nope"), "--pheno",
                              str(DEMO.pheno), "--out", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("bayeslmm: error: ")
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reml", "--method", "nope"])
    assert exc.value.code == 2


def test_bad_prior_is_a_one_line_error(demo_grm, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--prior",
              "h2=Beta(1", "--out", str(tmp_path / "s"), "--quiet"])
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("bayeslmm: error: ")
    assert list(tmp_path.iterdir()) == []


def _check_png(path: Path, panels: int = 1, size: tuple[int, int] | None = None) -> None:
    """A figure of ``size`` pixels, by default ``panels`` panels of the paper geometry
    (reports/formats.py), and not blank."""
    import matplotlib.image as mpimg

    from bayeslmm.reports.formats import FIGURE_DPI, FIGURE_SIZE

    if size is None:
        size = (round(panels * FIGURE_SIZE[0] * FIGURE_DPI), round(FIGURE_SIZE[1] * FIGURE_DPI))

    img = mpimg.imread(path)
    assert img.shape[:2] == (size[1], size[0])
    assert img[..., :3].std() > 0.01  # not blank


@pytest.mark.slow
def test_sample_writes_posterior_files(demo_grm, tmp_path):
    import xarray as xr

    out = tmp_path / "s"
    assert run(["sample", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--prior",
                "h2=Beta(2, 2)", "--draws", "200", "--tune", "200", "--chains", "2",
                "--seed", "3", "--threads", "2", "--out", str(out), "--quiet"]) == 0
    tree = xr.open_datatree(f"{out}.posterior.nc", engine="h5netcdf")
    assert tree["posterior"]["h2"].shape == (2, 200)
    summ = pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0)
    assert {"h2", "Vp", "sigma_g2"} <= set(summ.index)
    _check_png(Path(f"{out}.h2.png"))
    assert "Beta(alpha=2, beta=2)" in Path(f"{out}.log").read_text()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo-out"
    assert run(["demo", "--out", str(out), "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "true h2   0.500" in report and "REML" in report and "HDI" in report
    for f in ("demo.grm.bin", "demo.hsq", "demo.indi.blp", "demo.snp.blp",
              "demo.posterior.nc", "demo.posterior.tsv", "demo.h2.png", "demo.log",
              "demo.report.txt"):
        assert (out / f).stat().st_size > 0, f
    _check_png(out / "demo.h2.png")
    hsq = pd.read_csv(out / "demo.hsq", sep="\t", index_col=0)
    assert abs(hsq.loc["V(G)/Vp", "Variance"] - DEMO.true_h2) < 3 * hsq.loc["V(G)/Vp", "SE"]


@pytest.mark.slow
def test_compare_writes_table_and_figure(demo_grm, tmp_path):
    out = tmp_path / "c"
    assert run(["compare", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--draws",
                "200", "--tune", "200", "--chains", "2", "--seed", "1", "--out", str(out),
                "--quiet"]) == 0
    table = pd.read_csv(f"{out}.compare.tsv", sep="\t", index_col=0)
    assert {"h2", "sigma_g2", "sigma_e2", "Vp"} <= set(table.index)
    assert {"reml", "reml_se", "post_mean", "post_sd", "hdi_lower", "hdi_upper"} <= \
        set(table.columns)
    _check_png(Path(f"{out}.compare.png"))
    # --figure-format reaches the comparison's figure too (not only .h2)
    assert run(["compare", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--draws",
                "100", "--tune", "100", "--chains", "2", "--seed", "1", "--out", str(out) + "v",
                "--figure-format", "svg", "--quiet"]) == 0
    assert Path(f"{out}v.compare.svg").read_text().lstrip().startswith("<?xml")
    assert not Path(f"{out}v.compare.png").exists()


def test_sensitivity_command(demo_grm, tmp_path, capsys):
    out = tmp_path / "s"
    assert run(["sensitivity", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno),
                "--priors", "flat: h2=Beta(1, 1)", "--priors", "low: h2=Beta(2, 8)",
                "--quadrature", "--out", str(out), "--quiet"]) == 0
    assert "h2 is" in capsys.readouterr().out
    table = pd.read_csv(f"{out}.sensitivity.tsv", sep="\t", index_col=0)
    assert list(table.index) == ["flat", "low"]
    _check_png(Path(f"{out}.sensitivity.png"))
    # --figure-format and --dpi reach the sensitivity figure (it was always png)
    assert run(["sensitivity", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno),
                "--priors", "flat: h2=Beta(1, 1)", "--quadrature", "--out", f"{out}v",
                "--figure-format", "svg", "--quiet"]) == 0
    assert Path(f"{out}v.sensitivity.svg").read_text().lstrip().startswith("<?xml")
    assert not Path(f"{out}v.sensitivity.png").exists()


def test_sensitivity_verdict_printed_once(demo_grm, tmp_path, capsys):
    out = tmp_path / "s1"
    assert run(["sensitivity", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno),
                "--priors", "flat: h2=Beta(1, 1)", "--quadrature", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert (cap.out + cap.err).count("triggered by:") == 1
    assert Path(f"{out}.log").read_text().count("triggered by:") == 1


def test_sensitivity_bad_prior_set_is_one_line_error(demo_grm, tmp_path, capsys):
    out = tmp_path / "bad"
    assert run(["sensitivity", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno),
                "--priors", "no colon here", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bayeslmm: error:") and "LABEL" in err[-1]
    assert not list(tmp_path.iterdir())
