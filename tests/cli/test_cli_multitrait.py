"""``bayeslmm reml/sample --mpheno k1 k2``: GCTA --reml-bivar .hsq, posterior files, errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayeslmm.cli.app import main
from bayeslmm.data import align_samples
from bayeslmm.datasets import load_demo
from bayeslmm.estimation.multitrait import multitrait_reml
from bayeslmm.io import read_grm, read_phenotype

DEMO = load_demo()
BIVAR_ROWS = ["V(G)_tr1", "V(G)_tr2", "C(G)_tr12", "V(e)_tr1", "V(e)_tr2", "C(e)_tr12",
              "Vp_tr1", "Vp_tr2", "V(G)/Vp_tr1", "V(G)/Vp_tr2", "rG", "rE", "logL", "logL0",
              "LRT", "df", "Pval", "n", "rG_CI95"]


def run(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo GRM and a phenotype file with the demo trait and a second one sharing part of
    its genetics: half the first trait plus a genetic value of its own drawn from N(0, K) and
    noise, so that r_g is well inside (-1, 1) (REML: 0.43, SE 0.13; a second trait made of
    the first plus noise has r_g = 1, on the boundary, where the posterior is skewed away
    from the REML point by construction). A few values are missing in each trait, so
    complete cases are exercised."""
    d = tmp_path_factory.mktemp("cli_mt")
    assert run(["grm", "--bfile", str(DEMO.bfile), "--out", str(d / "demo"), "--quiet"]) == 0
    ph = pd.read_csv(DEMO.pheno, sep=r"\s+")
    rng = np.random.default_rng(8)
    y = ph["y"].to_numpy()
    s, U = np.linalg.eigh(np.asarray(read_grm(d / "demo").K))
    g2 = U @ (np.sqrt(np.clip(s, 0, None)) * rng.normal(size=s.size))
    half_var = np.sqrt(0.5 * np.nanvar(y))
    ph["y2"] = (0.5 * (np.nan_to_num(y, nan=np.nanmean(y)) - np.nanmean(y)) + half_var * g2
                + rng.normal(0, half_var, y.size))
    ph.loc[[3, 10], "y"] = np.nan
    ph.loc[[5, 10, 20], "y2"] = np.nan
    ph.to_csv(d / "two.phen", sep=" ", index=False, na_rep="NA")
    return d / "demo", d / "two.phen"


def _hsq(path) -> pd.DataFrame:
    rows = [ln.split("\t") for ln in Path(path).read_text().splitlines()[1:]]
    return pd.DataFrame({"name": [r[0] for r in rows], "v": [float(r[1]) for r in rows],
                         "se": [float(r[2]) if len(r) > 2 else np.nan for r in rows]}
                        ).set_index("name")


def _api_fit(grm_prefix, pheno, se_method="observed"):
    g = read_grm(grm_prefix)
    y1, y2 = read_phenotype(pheno, mpheno=1), read_phenotype(pheno, mpheno=2)
    a = align_samples({"GRM": g, "phenotype": y1})
    Y = pd.DataFrame({"y": a["phenotype"], "y2": y2.reindex(a["phenotype"].index)})
    return multitrait_reml(Y, np.asarray(a["GRM"].K), None, se_method=se_method)


def test_reml_bivar_hsq_layout_and_values(files, tmp_path):
    grm, pheno = files
    out = tmp_path / "rg"
    assert run(["reml", "--grm", str(grm), "--pheno", str(pheno), "--mpheno", "1", "2",
                "--out", str(out), "--quiet"]) == 0
    text = Path(f"{out}.hsq").read_text()
    assert text.splitlines()[0] == "Source\tVariance\tSE"
    hsq = _hsq(f"{out}.hsq")
    assert list(hsq.index) == BIVAR_ROWS
    fit = _api_fit(grm, pheno)
    assert hsq.loc["n", "v"] == fit.nobs and fit.n_dropped == 2
    p, se, d = fit.params, fit.bse, fit.derived()
    for row, key in (("V(G)_tr1", "Vg_1"), ("C(G)_tr12", "Cg_12"), ("V(e)_tr2", "Ve_2")):
        assert hsq.loc[row, "v"] == pytest.approx(p[key], abs=1e-6)
        assert hsq.loc[row, "se"] == pytest.approx(se[key], abs=1e-6)
    assert hsq.loc["rG", "v"] == pytest.approx(d.loc["rg_12", "estimate"], abs=1e-6)
    assert hsq.loc["V(G)/Vp_tr2", "se"] == pytest.approx(d.loc["h2_2", "se"], abs=1e-6)
    assert hsq.loc["logL", "v"] == pytest.approx(fit.loglik, abs=1e-3)
    assert hsq.loc["rG_CI95", "v"] == pytest.approx(fit.rg_ci[0], abs=1e-6)
    log = Path(f"{out}.log").read_text()
    assert f"{fit.nobs} of {fit.nobs + 2} samples kept" in log
    assert "profile-likelihood CI" in log


@pytest.mark.parametrize("argv, expected", [
    (["blup", "--mpheno", "1", "2"], "--mpheno takes one column with 'blup'"),
    (["reml", "--mpheno", "2", "2"], "lists a column twice"),
    (["reml", "--mpheno", "1", "5"], "mpheno=5"),
])
def test_bad_multitrait_input_one_line_exit_1(files, tmp_path, capsys, argv, expected):
    grm, pheno = files
    out = tmp_path / "bad"
    code = run([*argv[:1], "--grm", str(grm), "--pheno", str(pheno), *argv[1:], "--out",
                str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and expected in err
    assert not list(tmp_path.glob("bad*"))


@pytest.mark.slow
def test_sample_two_traits_writes_posterior_and_plot(files, tmp_path):
    """One NUTS run (compiling the model dominates), checked two ways: the files the command
    writes, and the posterior of r_g against the REML fit in the same run's .hsq."""
    import xarray as xr
    from PIL import Image

    grm, pheno = files
    out = tmp_path / "s"
    assert run(["sample", "--grm", str(grm), "--pheno", str(pheno), "--mpheno", "1", "2",
                "--draws", "400", "--tune", "400", "--chains", "2", "--seed", "5",
                "--out", str(out), "--quiet"]) == 0
    tree = xr.open_datatree(f"{out}.posterior.nc", engine="h5netcdf")
    post = tree["posterior"]
    assert post["h2"].shape == (2, 400, 2) and post["Sigma_g"].shape == (2, 400, 2, 2)
    assert list(post["trait"].values) == ["y", "y2"]
    summ = pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0)
    assert {"r_g", "r_e", "h2[y]", "h2[y2]"} <= set(summ.index)
    from bayeslmm.reports.formats import FIGURE_DPI, FIGURE_SIZE

    with Image.open(f"{out}.rg.png") as im:  # three panels: h2 of each trait and r_g
        assert im.size == (round(3 * FIGURE_SIZE[0] * FIGURE_DPI),
                           round(FIGURE_SIZE[1] * FIGURE_DPI))
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    hsq = _hsq(f"{out}.hsq")
    rg = post["r_g"].values.ravel()
    # Flat priors and B integrated out, r_g inside (-1, 1): the posterior is centred on the
    # REML estimate (N = 391), which lies well inside its central 95% interval.
    assert 0.2 < hsq.loc["rG", "v"] < 0.7
    assert abs(np.median(rg) - hsq.loc["rG", "v"]) < 0.5 * hsq.loc["rG", "se"]
    lo, hi = np.quantile(rg, [0.025, 0.975])
    assert lo < hsq.loc["rG", "v"] < hi
    # (the posterior SD of r_g is not compared with the asymptotic REML SE: at this N the
    # two differ by design; tests/bayes/test_multitrait_posterior.py checks NUTS against
    # an independent integral)


@pytest.mark.parametrize("se_method", ["ai", "expected"])
def test_se_method_reaches_the_two_trait_fit(files, tmp_path, se_method):
    """--se-method with two traits: the .hsq SEs are the API's for that information matrix,
    and differ from the default (observed, GEMMA's), which the log names."""
    grm, pheno = files
    base = ["reml", "--grm", str(grm), "--pheno", str(pheno), "--mpheno", "1", "2", "--quiet"]
    assert run([*base, "--se-method", se_method, "--out", str(tmp_path / "a")]) == 0
    assert run([*base, "--out", str(tmp_path / "o")]) == 0
    hsq, default = _hsq(tmp_path / "a.hsq"), _hsq(tmp_path / "o.hsq")
    se = _api_fit(grm, pheno, se_method).bse
    for row, key in (("V(G)_tr1", "Vg_1"), ("C(G)_tr12", "Cg_12"), ("V(e)_tr2", "Ve_2")):
        assert hsq.loc[row, "se"] == pytest.approx(se[key], abs=1e-6)
        assert hsq.loc[row, "se"] != pytest.approx(default.loc[row, "se"], abs=1e-6)
    assert "observed information matrix" in (tmp_path / "o.log").read_text()
    assert f"se_method = {se_method}" in (tmp_path / "a.log").read_text()
