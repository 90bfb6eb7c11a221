"""Result-file writers: GCTA layouts, all-or-nothing staging, posterior files."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.blup import blup
from bayeslmm.reports import writers as reports
from bayeslmm.reports.hsq import write_hsq


@pytest.fixture(scope="module")
def fit():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((120, 200))
    K = Z @ Z.T / 200
    y = Z @ rng.normal(0, np.sqrt(0.6 / 200), 200) + rng.normal(0, np.sqrt(0.4), 120)
    labels = [f"F{i} I{i}" for i in range(120)]
    return bayeslmm.reml(pd.Series(y, index=labels), xr.DataArray(
        K, dims=("sample", "sample_"), coords={"sample": labels, "sample_": labels}))


def test_staged_outputs_commit_all(tmp_path):
    with reports.StagedOutputs() as out:
        out.write_text(tmp_path / "a.txt", "a\n")
        out.write_bytes(tmp_path / "b.bin", lambda fh: fh.write(b"\x00\x01"))
        out.write_with(tmp_path / "c.txt", lambda p: p.write_text("c"))
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.bin", "c.txt"]  # no temporaries
    mode = (tmp_path / "a.txt").stat().st_mode & 0o777
    assert mode & 0o044  # group/other readable as an ordinary file (umask permitting)


def test_staged_outputs_abort_leaves_nothing(tmp_path):
    (tmp_path / "old.hsq").write_text("old")
    with pytest.raises(ZeroDivisionError):
        with reports.StagedOutputs() as out:
            out.write_text(tmp_path / "new.txt", "x")
            out.write_text(tmp_path / "old.hsq", "replaced")
            out.write_bytes(tmp_path / "half.bin", lambda fh: (fh.write(b"12"), 1 / 0))
    assert sorted(os.listdir(tmp_path)) == ["old.hsq"]
    assert (tmp_path / "old.hsq").read_text() == "old"  # untouched


def test_staged_prefix_with_write_grm(tmp_path):
    from bayeslmm.io import GRM, read_grm, write_grm

    ids = pd.DataFrame({"fid": ["a", "b"], "iid": ["1", "2"]})
    g = GRM.from_arrays(np.array([[1.0, 0.1], [0.1, 1.0]]), ids, M=7)
    with reports.StagedOutputs() as out:
        out.write_prefix(tmp_path / "k", (".grm.bin", ".grm.N.bin", ".grm.id"),
                         lambda p: write_grm(g, p))
    assert sorted(os.listdir(tmp_path)) == ["k.grm.N.bin", "k.grm.bin", "k.grm.id"]
    np.testing.assert_allclose(read_grm(tmp_path / "k").values, g.values, rtol=1e-7)


def test_hsq_layout(fit, tmp_path):
    write_hsq(fit, tmp_path / "x.hsq")
    lines = (tmp_path / "x.hsq").read_text().splitlines()
    assert lines[0].split("\t") == ["Source", "Variance", "SE"]
    assert lines[4].startswith("V(G)/Vp\t")


def test_indi_blp_is_gcta_columns(fit, tmp_path):
    b = blup(fit)
    reports.write_indi_blp(b, fit.sigma2, tmp_path / "x.indi.blp")
    t = pd.read_csv(tmp_path / "x.indi.blp", sep="\t", header=None)
    assert t.shape == (120, 6)
    assert t[0].iloc[0] == "F0" and t[1].iloc[0] == "I0"
    # GCTA: (sigma_j Py, u_j) per component, u for the residual equal to sigma_e2 Py.
    Py = b["residual"].to_numpy() / fit.sigma_e2
    np.testing.assert_allclose(t[2], fit.sigma_g2 * Py, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t[3], b["g"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t[4], t[5])


def test_snp_blp_and_lengths(tmp_path):
    reports.write_snp_blp(["rs1", "rs2"], ["A", "C"], np.array([0.5, -1e-9]),
                          tmp_path / "x.snp.blp")
    assert (tmp_path / "x.snp.blp").read_text() == "rs1\tA\t0.5\nrs2\tC\t-1e-09\n"
    with pytest.raises(bayeslmm.InputError):
        reports.snp_blp_table(["rs1"], ["A", "C"], np.zeros(1))


def test_assoc_table(tmp_path):
    n = 3
    ds = xr.Dataset({c: ("variant", np.arange(n) + 0.5) for c in
                     ("af", "n", "beta", "se", "chi2", "p")})
    ds = ds.assign_coords(chrom=("variant", ["1"] * n), snp=("variant", ["a", "b", "c"]),
                          pos=("variant", [1, 2, 3]), a1=("variant", ["A"] * n),
                          a2=("variant", ["G"] * n))
    reports.write_assoc(ds, tmp_path / "x.tsv")
    t = pd.read_csv(tmp_path / "x.tsv", sep="\t")
    assert list(t.columns) == list(reports.ASSOC_COLUMNS) and len(t) == n
    with pytest.raises(bayeslmm.InputError, match="lacks"):
        reports.assoc_table(ds.drop_vars("p"))


def test_mlma_and_gemma_layouts(tmp_path):
    """GCTA's .mlma header as GCTA writes it; GEMMA's columns as in GEMMA's own -lmm 1 output
    (the header of a real GEMMA file is checked in tests/test_assoc.py's GEMMA comparison)."""
    n = 3
    ds = xr.Dataset({c: ("variant", np.arange(n) + 0.5) for c in ("beta", "se", "chi2", "p")}
                    | {"af": ("variant", [0.1, 0.2, 0.3]), "n": ("variant", [10, 9, 10]),
                       "monomorphic": ("variant", [False] * n),
                       "filtered": ("variant", [False] * n)},
                    attrs={"n_samples": 10, "test": "exact"})
    ds = ds.assign_coords(chrom=("variant", ["1"] * n), snp=("variant", ["a", "b", "c"]),
                          pos=("variant", [1, 2, 3]), a1=("variant", ["A"] * n),
                          a2=("variant", ["G"] * n))
    reports.write_assoc_as(ds, "mlma", tmp_path / "x.mlma")
    t = pd.read_csv(tmp_path / "x.mlma", sep="\t")
    assert list(t.columns) == ["Chr", "SNP", "bp", "A1", "A2", "Freq", "b", "se", "p"]
    np.testing.assert_allclose(t["b"], ds["beta"])
    reports.write_assoc_as(ds, "gemma", tmp_path / "x.assoc.txt")
    g = pd.read_csv(tmp_path / "x.assoc.txt", sep="\t")
    assert list(g.columns) == ["chr", "rs", "ps", "n_miss", "allele1", "allele0", "af",
                               "beta", "se", "p_wald"]
    assert g["n_miss"].tolist() == [0, 1, 0]
    with pytest.raises(bayeslmm.InputError, match="format must be one of"):
        reports.write_assoc_as(ds, "bolt", tmp_path / "x")


def test_posterior_netcdf_and_summary(tmp_path):
    rng = np.random.default_rng(0)
    post = xr.Dataset({"h2": (("chain", "draw"), rng.uniform(size=(2, 50))),
                       "g": (("chain", "draw", "sample"), rng.normal(size=(2, 50, 4)))},
                      attrs={"sampler": "nutpie", "flag": True, "none": None})
    tree = xr.DataTree.from_dict({"posterior": post})
    reports.write_posterior(tree, tmp_path / "p.nc", tmp_path / "p.tsv")
    back = xr.open_datatree(tmp_path / "p.nc", engine="h5netcdf")
    np.testing.assert_array_equal(back["posterior"]["h2"], post["h2"])
    summ = pd.read_csv(tmp_path / "p.tsv", sep="\t", index_col=0)
    assert list(summ.index) == ["h2"]  # per-sample values left out of the table
    assert {"mean", "sd", "r_hat"} <= set(summ.columns)
