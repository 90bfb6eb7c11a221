"""Every path of ``bayeslmm sample`` writes the same posterior files (issue 23): the one
summary layout, the family's row of the one default-prior table in the tree's attrs, and a
netCDF whose posterior ArviZ's own reader (``arviz.from_netcdf``) opens with draws in it."""

from __future__ import annotations

import json
from pathlib import Path

import arviz
import numpy as np
import pandas as pd
import pytest

from bayeslmm.bayes.priors import DEFAULT_PRIORS, default_prior_table
from bayeslmm.bayes.summaries import summary_columns
from bayeslmm.cli.app import main
from bayeslmm.datasets import load_demo
from bayeslmm.io import GRM, read_grm, write_grm

DEMO = load_demo()
NUTS = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("paths")
    assert main(["grm", "--bfile", str(DEMO.bfile), "--out", str(d / "g"), "--quiet"]) == 0
    g = read_grm(d / "g")
    write_grm(GRM.from_arrays(np.kron(np.eye(80), np.ones((5, 5))), g.ids, M=1), d / "fam")
    (d / "list.txt").write_text(f"{d / 'g'}\n{d / 'fam'}\n")
    ph = pd.read_csv(DEMO.pheno, sep=r"\s+")
    rng = np.random.default_rng(0)
    ph["y2"] = 0.5 * ph["y"] + rng.normal(0, ph["y"].std(), len(ph))
    ph["cc"] = np.where(ph["y"].isna(), np.nan, np.where(ph["y"] > ph["y"].quantile(0.7), 2, 1))
    ph.to_csv(d / "p.phen", sep=" ", index=False, na_rep="NA")
    return {"grm": d / "g", "mgrm": d / "list.txt", "pheno": d / "p.phen"}


PATHS = {
    "nuts": ("linear", lambda f: ["--grm", str(f["grm"]), *NUTS]),
    "eigen": ("linear", lambda f: ["--bfile", str(DEMO.bfile), "--engine", "eigen", *NUTS]),
    "krylov": ("linear", lambda f: ["--bfile", str(DEMO.bfile), "--engine", "krylov",
                                    "--probes", "10", "--lanczos-steps", "10", "--seed", "2",
                                    "--threads", "1"]),
    "mgrm": ("multikernel", lambda f: ["--mgrm", str(f["mgrm"]), *NUTS]),
    "two-traits": ("multitrait", lambda f: ["--grm", str(f["grm"]), "--mpheno", "1", "2",
                                            *NUTS]),
    "threshold": ("threshold", lambda f: ["--grm", str(f["grm"]), "--mpheno", "3",
                                          "--model", "threshold", "--prevalence", "0.3",
                                          *NUTS]),
}


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_writes_one_layout_one_prior_table_and_draws(inputs, tmp_path, path):
    family, flags = PATHS[path]
    out = tmp_path / "s"
    assert main(["sample", "--pheno", str(inputs["pheno"]), *flags(inputs), "--out", str(out),
                 "--quiet"]) == 0
    tab = pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0)
    assert tab.index.name == "parameter" and list(tab.columns) == summary_columns()
    assert tab.index.is_unique and not {"intercept", "beta_z", "r_g_unit"} & set(tab.index)
    tree = arviz.from_netcdf(f"{out}.posterior.nc")
    h2 = tree["posterior"]["h2"]
    assert h2.sizes["chain"] >= 2 and h2.sizes["draw"] >= 100
    assert np.isfinite(h2.to_numpy()).all()
    assert tree.attrs["model_family"] == family
    assert json.loads(tree.attrs["default_priors"]) == default_prior_table(family)
    assert json.loads(tree.attrs["priors"])  # the priors as used, defaults filled in
    if path == "krylov":  # the grid in its own group, the draws from it
        assert "grid" in tree.children and "density" in tree["grid"].data_vars
    if path == "mgrm":  # GCTA's --mgrm rows and the user's names in a legend line
        hsq = Path(f"{out}.hsq").read_text()
        assert "V(G1)/Vp\t" in hsq and "V(G2)\t" in hsq and "Components: G1 = " in hsq
    assert any(out.parent.glob("s.*.png")) or any(out.parent.glob("s.h2.png"))


def test_the_table_has_one_default_per_quantity_and_beta_is_flat_where_integrated():
    """The one table: each family's quantities once; the linear families' beta is flat (the
    quadrature and Krylov paths integrate it in closed form, and then the posterior of the
    variance components is REML's likelihood times their prior); h2's default is Beta(1, 1)
    in every family with h2 (a Dirichlet whose shares sum to Beta(1, 1) with several GRMs)."""
    assert set(DEFAULT_PRIORS) == {"linear", "multikernel", "multitrait", "threshold"}
    for fam in ("linear", "multikernel", "multitrait"):
        assert default_prior_table(fam)["beta"] == "Flat()"
    for fam in ("linear", "multitrait", "threshold"):
        assert default_prior_table(fam)["h2"] == "Beta(1, 1)"
    assert "h2_total ~ Beta(1, 1)" in default_prior_table("multikernel")["pi"]
    assert "beta" in default_prior_table("threshold")  # not flat there: a probit needs it
    assert default_prior_table("threshold")["beta"] != "Flat()"
