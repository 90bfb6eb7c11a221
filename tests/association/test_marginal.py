"""The marginal OLS test (``assoc --test linear``) against statsmodels' OLS fitted SNP by SNP on
each SNP's called samples (brute force), and against plink1.9 ``--linear`` and plink2 ``--glm``
on the demo fileset with a covariate, to the digits they print (evidence kinds: brute force,
peer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayeslmm.association.marginal import linear_assoc, ols_block
from bayeslmm.cli import main
from bayeslmm.datasets import load_demo
from bayeslmm.errors import CollinearityError, InputError
from bayeslmm.inputs import load_inputs

from peers import require_module, require_tool, run

DEMO = load_demo()


@pytest.fixture(scope="module")
def covar(tmp_path_factory):
    """A quantitative covariate for the demo samples (seeded), in PLINK's --covar layout."""
    d = tmp_path_factory.mktemp("linear")
    fam = pd.read_csv(f"{DEMO.bfile}.fam", sep=r"\s+", header=None)
    age = np.random.default_rng(7).normal(50, 10, len(fam)).round(3)
    path = d / "cov.txt"
    pd.DataFrame({"FID": fam[0], "IID": fam[1], "age": age}).to_csv(path, sep=" ",
                                                                     index=False)
    return path


@pytest.fixture(scope="module")
def ours(covar):
    inp = load_inputs(DEMO.pheno, bfile=DEMO.bfile, qcovar=covar, kernel=False)
    return inp, linear_assoc(inp.ds, inp.y, inp.X)


def test_statsmodels_per_snp(ours):
    """Every statistic equals statsmodels OLS of y on [1, age, x] over the SNP's called
    samples, for SNPs with and without missing calls."""
    sm = require_module("statsmodels.api")
    inp, res = ours
    from bed_reader import open_bed

    ds = inp.ds
    rows = {s: i for i, s in enumerate(ds["sample"].to_numpy())}
    want = [f"{f} {i}" for f, i in inp.y.index]
    idx = np.array([rows[s] for s in want])
    with open_bed(f"{DEMO.bfile}.bed", count_A1=True) as bed:
        G = bed.read(dtype="float64")[idx]
    miss = np.isnan(G).any(axis=0)
    cols = np.r_[np.flatnonzero(miss)[:40], np.flatnonzero(~miss)[:40]]
    assert miss[cols].sum() == 40 and (~miss[cols]).sum() == 40
    y, X = inp.y.to_numpy(), inp.X.to_numpy()
    for j in cols:
        ok = ~np.isnan(G[:, j])
        f = sm.OLS(y[ok], np.column_stack([X[ok], G[ok, j]])).fit()
        got = res.isel(variant=j)
        np.testing.assert_allclose(
            [got.beta, got.se, got.t, got.p],
            [f.params[-1], f.bse[-1], f.tvalues[-1], f.pvalues[-1]], rtol=1e-8)
        assert int(got.obs_ct) == ok.sum() == f.nobs


def _within_printed(ours: np.ndarray, printed: np.ndarray, digits: int, units: float = 0.5
                    ) -> np.ndarray:
    """|ours - printed| within ``units`` of the printed number's last significant digit (half
    a unit: ours rounds to the printed number)."""
    e = np.floor(np.log10(np.abs(printed)))
    return np.abs(ours - printed) <= units * 10.0 ** (e - digits + 1) * (1 + 1e-9)


@pytest.mark.peer
def test_plink19_linear(ours, covar, tmp_path):
    """plink1.9 --linear hide-covar with the covariate: BETA, STAT, P and NMISS to the
    4 significant digits it prints (its A1 may be the other allele: the sign follows)."""
    plink = require_tool("plink1.9")
    _, res = ours
    run([plink, "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--covar", str(covar),
         "--linear", "hide-covar", "--allow-no-sex", "--out", "p"], tmp_path)
    pl = pd.read_csv(tmp_path / "p.assoc.linear", sep=r"\s+")
    assert list(pl["SNP"]) == list(res["snp"].to_numpy())
    sign = np.where(pl["A1"].to_numpy() == res["a1"].to_numpy(), 1.0, -1.0)
    assert (sign == -1).any() and (sign == 1).any()  # both directions of the allele rule
    np.testing.assert_array_equal(pl["NMISS"], res["obs_ct"])
    assert _within_printed(sign * res["beta"].to_numpy(), pl["BETA"].to_numpy(), 4).all()
    assert _within_printed(sign * res["t"].to_numpy(), pl["STAT"].to_numpy(), 4).all()
    assert _within_printed(res["p"].to_numpy(), pl["P"].to_numpy(), 4).all()
    # the comparison has teeth: a 1e-3 relative change in beta is caught
    assert not _within_printed(1.001 * sign * res["beta"].to_numpy(),
                               pl["BETA"].to_numpy(), 4).all()


@pytest.mark.peer
def test_cli_matches_plink2_glm(covar, tmp_path):
    """``bayeslmm assoc --test linear`` writes plink2's columns, and its numbers equal
    plink2 --glm's to the 6 significant digits printed."""
    plink2 = require_tool("plink2")
    # plink2 flags one SNP CORR_TOO_HIGH with the raw covariate (its predictor check is
    # scale-dependent); standardizing the covariate leaves the SNP's statistics unchanged
    run([plink2, "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--covar", str(covar),
         "--covar-variance-standardize", "--glm", "hide-covar", "--out", "p"], tmp_path)
    pl = pd.read_csv(tmp_path / "p.y.glm.linear", sep="\t")
    assert main(["assoc", "--test", "linear", "--bfile", str(DEMO.bfile), "--pheno",
                 str(DEMO.pheno), "--qcovar", str(covar), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    me = pd.read_csv(tmp_path / "o.glm.linear", sep="\t")
    assert list(me.columns) == ["#CHROM", "POS", "ID", "REF", "ALT", "A1", "TEST", "OBS_CT",
                                "BETA", "SE", "T_STAT", "P", "ERRCODE"]
    assert list(me.columns) == list(pl.columns)
    assert me["ID"].tolist() == pl["ID"].tolist()
    assert (me[["REF", "ALT"]].to_numpy() == pl[["REF", "ALT"]].to_numpy()).all()
    sign = np.where(pl["A1"] == me["A1"], 1.0, -1.0)
    np.testing.assert_array_equal(me["OBS_CT"], pl["OBS_CT"])
    # both files are rounded to 6 digits: they may differ by one unit of the last one
    for c, s in (("BETA", sign), ("SE", 1.0), ("T_STAT", sign), ("P", 1.0)):
        assert _within_printed(s * me[c].to_numpy(), pl[c].to_numpy(), 6, units=1).all(), c
        assert not _within_printed(1.00002 * s * me[c].to_numpy(), pl[c].to_numpy(), 6,
                                   units=1).all(), c


def test_constant_snp_and_collinear_covariates():
    """A SNP without variation among its called samples is untested (NaN), its neighbour is
    tested; collinear covariates are refused, independent ones accepted."""
    rng = np.random.default_rng(0)
    N = 50
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    Q = np.linalg.qr(X)[0]
    G = rng.integers(0, 3, (N, 3)).astype(float)
    G[:, 0] = 1.0
    G[:5, 0] = np.nan  # constant among the called samples
    r = rng.normal(size=N)
    r -= Q @ (Q.T @ r)
    out = ols_block(G, r, Q)
    assert out["const"].tolist() == [True, False, False]
    assert np.isnan(out["beta"][0]) and np.isfinite(out["beta"][1:]).all()
    y = pd.Series(rng.normal(size=N))
    ds = xr.Dataset(
        {"genotype": (("sample", "variant"), G)},
        coords={"sample": [f"f{i} i{i}" for i in range(N)], "chrom": ("variant", ["1"] * 3),
                "pos": ("variant", [1, 2, 3]), "snp": ("variant", ["a", "b", "c"]),
                "a1": ("variant", ["A"] * 3), "a2": ("variant", ["G"] * 3)})
    assert np.isfinite(linear_assoc(ds, y, X)["beta"][1:]).all()
    with pytest.raises(CollinearityError, match="collinear"):
        linear_assoc(ds, y, np.column_stack([X, 2 * X[:, 1]]))
    with pytest.raises(InputError, match="missing or infinite"):
        linear_assoc(ds, pd.Series(np.r_[np.nan, y[1:]]), X)


def test_cli_refuses_linear_with_a_grm(tmp_path, capsys):
    """--test linear needs no GRM: with --grm (or another test) it is one line, no output."""
    with pytest.raises(SystemExit) as e:
        main(["assoc", "--test", "linear", "wald", "--bfile", str(DEMO.bfile), "--pheno",
              str(DEMO.pheno), "--out", str(tmp_path / "o")])
    rc = e.value.code
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bayeslmm: error: --test linear") and "Traceback" not in err
    assert not list(tmp_path.iterdir())
