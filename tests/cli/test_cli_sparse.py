"""``bayeslmm sample --model bayesc`` end to end on a small simulated fileset
(docs/sparse-priors.md, "From the command line"): GEMMA -bslmm's .param.txt and .hyp.txt
layouts (GEMMA's ``BSLMM::WriteParam``/``WriteResult``), the posterior files, the PIPs of the
simulated causal SNPs against the null ones both ways, and refusals in one line with nothing
written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers import run_cli

N, P = 200, 40
CAUSAL = [3, 17, 30]  # 0-based columns
MISSING = [(3, 4), (8, 4), (11, 9)]  # (sample, SNP): missing calls


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A .bed with three causal SNPs of large effect (on the standardized scale), three
    missing calls, and its phenotype; returns (prefix, phenotype file, allele counts)."""
    from bed_reader import to_bed

    rng = np.random.default_rng(24)
    G = rng.binomial(2, rng.uniform(0.15, 0.5, P), size=(N, P)).astype(np.float32)
    for i, j in MISSING:
        G[i, j] = np.nan
    p = np.nanmean(G, 0) / 2
    Z = np.nan_to_num((G - 2 * p) / np.sqrt(2 * p * (1 - p)))
    b = np.zeros(P)
    b[CAUSAL] = [0.7, -0.6, 0.6]
    y = 2.0 + Z @ b + rng.standard_normal(N)
    d = tmp_path_factory.mktemp("sparse")
    to_bed(str(d / "sim.bed"), G, properties={
        "chromosome": np.repeat(["1", "2"], P // 2), "bp_position": 1000 * np.arange(1, P + 1),
        "sid": [f"rs{j}" for j in range(P)]})
    fam = pd.read_csv(d / "sim.fam", sep=r"\s+", header=None)
    pd.DataFrame({"fid": fam[0], "iid": fam[1], "y": y}).to_csv(d / "sim.phen", sep=" ",
                                                              header=False, index=False)
    return d / "sim", d / "sim.phen", G


@pytest.fixture(scope="module")
def run(fileset, tmp_path_factory) -> Path:
    prefix, pheno, _ = fileset
    out = tmp_path_factory.mktemp("out") / "bc"
    assert run_cli(["sample", "--model", "bayesc", "--bfile", str(prefix), "--pheno",
                    str(pheno), "--prior", "pi=Beta(1, 9)", "--draws", "300", "--tune", "100",
                    "--chains", "2", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    return out


def test_param_txt_is_gemmas_layout_with_pips_high_for_causal_and_low_for_null(run, fileset):
    lines = Path(f"{run}.param.txt").read_text().splitlines()
    assert lines[0] == "chr\trs\tps\tn_miss\talpha\tbeta\tgamma"
    rows = [ln.split("\t") for ln in lines[1:]]
    assert len(rows) == P and all(len(r) == 7 for r in rows)
    # GEMMA writes the numbers with C++'s scientific << setprecision(6): d.dddddde+XX
    assert all(re.fullmatch(r"-?\d\.\d{6}e[+-]\d{2}", v) for r in rows for v in r[4:])
    tab = pd.DataFrame(rows, columns=lines[0].split("\t"))
    assert list(tab["rs"]) == [f"rs{j}" for j in range(P)]
    assert list(tab["ps"].astype(int)) == list(1000 * np.arange(1, P + 1))
    assert list(tab["chr"]) == ["1"] * (P // 2) + ["2"] * (P // 2)
    G = fileset[2]
    assert np.array_equal(tab["n_miss"].astype(int), np.isnan(G).sum(0))
    assert np.all(tab["alpha"].astype(float) == 0)  # no polygenic (GRM) term
    gamma = tab["gamma"].astype(float).to_numpy()
    null = np.setdiff1d(np.arange(P), CAUSAL)
    assert gamma[CAUSAL].min() > 0.95  # the simulated causal SNPs are found
    assert gamma[null].max() < 0.5 and gamma[null].mean() < 0.1  # and the nulls are not
    # beta is per copy of A1 given inclusion: x gamma x sd is the netCDF's standardized mean
    tree = xr.open_datatree(f"{run}.posterior.nc")
    p = np.nanmean(G, 0) / 2
    std = tab["beta"].astype(float) * gamma * np.sqrt(2 * p * (1 - p))
    eff = tree["snp_summary"]["effect_mean"].to_numpy()
    assert np.allclose(std, eff, rtol=1e-5, atol=1e-12)
    assert np.sign(eff[CAUSAL]).tolist() == [1, -1, 1]


def test_hyp_txt_holds_every_draw_of_gemmas_hyperparameters(run):
    lines = Path(f"{run}.hyp.txt").read_text().splitlines()
    assert lines[0] == "h \t pve \t pi \t n_gamma"
    rows = [ln.split("\t") for ln in lines[1:]]
    assert len(rows) == 2 * 300 and all(r[-1] == "" for r in rows)  # GEMMA's trailing tab
    h, pve, pi = (np.array([float(r[k]) for r in rows]) for k in range(3))
    n_gamma = np.array([int(r[3]) for r in rows])
    assert np.all((0 < h) & (h < 1) & (0 < pve) & (pve < 1) & (0 < pi) & (pi < 1))
    tree = xr.open_datatree(f"{run}.posterior.nc")
    post = tree["posterior"]
    assert np.array_equal(n_gamma, post["n_included"].to_numpy().reshape(-1))
    assert np.allclose(pve, post["pve"].to_numpy().reshape(-1), rtol=1e-6)
    assert np.all(n_gamma >= len(CAUSAL) - 1)
    summary = pd.read_csv(f"{run}.posterior.tsv", sep="\t", index_col=0)
    assert {"pi", "sigma_b2", "sigma_e2", "pve", "n_included"} <= set(summary.index)
    assert "Beta(1, 9)" in tree.attrs["priors"]


@pytest.mark.parametrize("extra,message", [
    (["--grm", "GRM"], "--grm is for the GRM route"),
    (["--prior", "h2=Beta(1, 1)"], "the bayesc model has priors on pi, sigma_b2, sigma_e2"),
    (["--prior", "pi=HalfNormal(1)"], "pi takes Beta(a, b)"),
    (["--prevalence", "0.1"], "--prevalence does not apply"),
    (["--prior", "pi=1.5"], "strictly between 0 and 1"),
])
def test_bad_input_is_one_line_and_leaves_nothing(fileset, tmp_path, capsys, extra, message):
    prefix, pheno, _ = fileset
    if "--grm" in extra:
        extra = ["--grm", str(prefix)]
        args = ["--pheno", str(pheno)]
    else:
        args = ["--bfile", str(prefix), "--pheno", str(pheno)]
    code = run_cli(["sample", "--model", "bayesc", *args, *extra, "--draws", "20", "--tune",
                    "0", "--chains", "1", "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_without_genotypes_it_says_to_give_them(fileset, tmp_path, capsys):
    _, pheno, _ = fileset
    assert run_cli(["sample", "--model", "bayesc", "--pheno", str(pheno), "--out",
                    str(tmp_path / "x"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give the genotypes" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_compare_refuses_the_sparse_model_in_one_line(fileset, tmp_path, capsys):
    prefix, pheno, _ = fileset
    assert run_cli(["compare", "--model", "bayesc", "--bfile", str(prefix), "--pheno",
                    str(pheno), "--out", str(tmp_path / "c"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "run 'bayeslmm sample --model bayesc'" in err[-1] and err[-1].count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_bayesr_from_the_command_line(fileset, tmp_path):
    """The four-component mixture through the same route: GEMMA's layouts (no h: BayesR has
    no single effect variance), the causal SNPs' PIPs above every null one's."""
    prefix, pheno, _ = fileset
    out = tmp_path / "br"
    assert run_cli(["sample", "--model", "bayesr", "--bfile", str(prefix), "--pheno",
                    str(pheno), "--prior", "sigma_e2=Jeffreys", "--draws", "200", "--tune",
                    "100", "--chains", "2", "--seed", "4", "--out", str(out), "--quiet"]) == 0
    assert Path(f"{out}.hyp.txt").read_text().splitlines()[0] == "pve \t pi \t n_gamma"
    tab = pd.read_csv(f"{out}.param.txt", sep="\t")
    assert list(tab.columns) == ["chr", "rs", "ps", "n_miss", "alpha", "beta", "gamma"]
    null = np.setdiff1d(np.arange(P), CAUSAL)
    assert tab["gamma"][CAUSAL].min() > 0.95
    assert tab["gamma"][CAUSAL].min() > tab["gamma"][null].max()
    tree = xr.open_datatree(f"{out}.posterior.nc")
    assert tree.attrs["model_family"] == "bayesr"
    assert tree["posterior"]["weights"].sizes["component"] == 4


# --------------------------------------------------------------------------- BSLMM
DROPPED = [0, 5]  # samples whose phenotype is missing: NA in GEMMA's .bv.txt


@pytest.fixture(scope="module")
def bslmm_run(fileset, tmp_path_factory) -> tuple[Path, Path]:
    """``sample --model bslmm`` on the fileset with two phenotypes missing; (out, pheno)."""
    prefix, pheno, _ = fileset
    d = tmp_path_factory.mktemp("bslmm")
    phen = pd.read_csv(pheno, sep=" ", header=None).astype({2: object})
    phen.loc[DROPPED, 2] = "NA"
    phen.to_csv(d / "y.phen", sep=" ", header=False, index=False)
    out = d / "bs"
    assert run_cli(["sample", "--model", "bslmm", "--bfile", str(prefix), "--pheno",
                    str(d / "y.phen"), "--draws", "400", "--tune", "200", "--chains", "2",
                    "--seed", "5", "--out", str(out), "--quiet"]) == 0
    return out, d / "y.phen"


def test_bslmm_writes_gemmas_three_layouts(bslmm_run, fileset):
    """.param.txt (alpha the polygenic effect), .hyp.txt (GEMMA's six columns, every draw)
    and .bv.txt (one line per .fam sample, NA where not analysed), as GEMMA -bslmm 1 writes
    them (checked against GEMMA 0.98 on mouse_hs1940); beta and alpha per A1 allele count."""
    out, _ = bslmm_run
    number = r"-?\d\.\d{6}e[+-]\d{2}"
    lines = Path(f"{out}.param.txt").read_text().splitlines()
    assert lines[0] == "chr\trs\tps\tn_miss\talpha\tbeta\tgamma" and len(lines) == P + 1
    rows = [ln.split("\t") for ln in lines[1:]]
    assert all(len(r) == 7 and all(re.fullmatch(number, v) for v in r[4:]) for r in rows)
    tab = pd.read_csv(f"{out}.param.txt", sep="\t")
    assert list(tab["rs"]) == [f"rs{j}" for j in range(P)]
    G = np.delete(fileset[2], DROPPED, axis=0)
    assert np.array_equal(tab["n_miss"], np.isnan(G).sum(0))  # among the analysed samples
    assert tab["alpha"].abs().max() > 0  # the polygenic term has per-SNP effects
    null = np.setdiff1d(np.arange(P), CAUSAL)
    assert tab["gamma"][CAUSAL].min() > 0.9  # the simulated causal SNPs are found
    assert tab["gamma"][null].max() < 0.5 and tab["gamma"][null].mean() < 0.15  # nulls not
    # per copy of A1: the simulated standardized effects over sqrt(2p(1-p))
    p = np.nanmean(G, 0) / 2
    b_allele = np.array([0.7, -0.6, 0.6]) / np.sqrt(2 * p[CAUSAL] * (1 - p[CAUSAL]))
    total = (tab["beta"] * tab["gamma"] + tab["alpha"]).to_numpy()[CAUSAL]
    assert np.all(np.abs(total - b_allele) < 0.35 * np.abs(b_allele)), (total, b_allele)

    hyp = Path(f"{out}.hyp.txt").read_text().splitlines()
    assert hyp[0] == "h \t pve \t rho \t pge \t pi \t n_gamma"
    rows = [ln.split("\t") for ln in hyp[1:]]
    assert len(rows) == 2 * 400 and all(len(r) == 7 and r[-1] == "" for r in rows)
    assert all(re.fullmatch(number, v) for r in rows for v in r[:5])
    tree = xr.open_datatree(f"{out}.posterior.nc")
    post = tree["posterior"]
    for k, name in enumerate(("h", "pve", "rho", "pge", "pi")):
        assert np.allclose([float(r[k]) for r in rows], post[name].to_numpy().reshape(-1),
                           rtol=1e-6)
    assert [int(r[5]) for r in rows] == post["n_gamma"].to_numpy().reshape(-1).tolist()

    bv = Path(f"{out}.bv.txt").read_text().splitlines()
    assert len(bv) == N  # every sample of the .fam, in its order
    assert [bv[i] for i in DROPPED] == ["NA", "NA"]
    kept = np.delete(np.arange(N), DROPPED)
    assert all(re.fullmatch(number, bv[i]) for i in kept)
    assert np.allclose([float(bv[i]) for i in kept],
                       tree["sample_summary"]["bv"].to_numpy(), rtol=1e-6)
    # GEMMA's bv is the polygenic term u = Z_c alpha (centred A1 counts), here as there up to
    # the Monte Carlo error of u's draws (bv averages draws, alpha their conditional means):
    # per sample at most sqrt(P / (N tau draws)) in root mean square
    Gc = np.where(np.isnan(G), np.nanmean(G, 0), G)
    Gc = Gc - Gc.mean(0)
    diff = Gc @ tab["alpha"].to_numpy() - np.array([float(bv[i]) for i in kept])
    tau = float(post["tau"].mean())
    assert np.sqrt(np.mean(diff**2)) < np.sqrt(P / (len(kept) * tau * 2 * 400))
    summary = pd.read_csv(f"{out}.posterior.tsv", sep="\t", index_col=0)
    assert {"h", "pve", "rho", "pge", "pi"} <= set(summary.index)
    assert tree.attrs["model_family"] == "bslmm"


def test_bslmm_pve_agrees_with_reml_h2(bslmm_run, fileset, tmp_path):
    """The same data's REML h2 (the GRM of the same SNPs) lies in the 95% interval of the
    posterior of pve, and the posterior mean is within 0.1 of it."""
    out, pheno = bslmm_run
    assert run_cli(["reml", "--bfile", str(fileset[0]), "--pheno", str(pheno), "--out",
                    str(tmp_path / "r"), "--quiet"]) == 0
    hsq = pd.read_csv(tmp_path / "r.hsq", sep="\t", index_col=0, nrows=4)
    h2 = float(hsq.loc["V(G)/Vp", "Variance"])
    pve = pd.read_csv(f"{out}.hyp.txt", sep=r"\s+")["pve"].to_numpy()
    lo, hi = np.quantile(pve, [0.025, 0.975])
    assert lo < h2 < hi and abs(pve.mean() - h2) < 0.1, (h2, pve.mean(), lo, hi)


@pytest.mark.parametrize("extra,message", [
    (["--prior", "h=Beta(2, 2)"], "BSLMM takes GEMMA's priors"),
    (["--prior", "rho=1.5"], "a fixed rho lies in [0, 1]"),
    (["--prior", "log10_pi=Uniform(-2, 1)"], "BSLMM takes GEMMA's priors"),
    (["--prior", "pi=0.1", "--prior", "log10_pi=Uniform(-2, 0)"], "give one"),
    (["--prior", "sigma_e2=1"], "the bslmm model has priors on h, rho, pi, log10_pi"),
    (["--prevalence", "0.1"], "--prevalence does not apply"),
    (["--grm", "GRM"], "--grm is for the GRM route"),
])
def test_bslmm_bad_input_is_one_line_and_leaves_nothing(fileset, tmp_path, capsys, extra,
                                                        message):
    prefix, pheno, _ = fileset
    geno = ["--grm", str(prefix)] if "--grm" in extra else ["--bfile", str(prefix)]
    extra = [] if "--grm" in extra else extra
    code = run_cli(["sample", "--model", "bslmm", *geno, "--pheno", str(pheno), *extra,
                    "--draws", "20", "--tune", "0", "--chains", "1", "--out",
                    str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_bslmm_without_genotypes_says_to_give_them(fileset, tmp_path, capsys):
    assert run_cli(["sample", "--model", "bslmm", "--pheno", str(fileset[1]), "--out",
                    str(tmp_path / "x"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give the genotypes" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_bslmm_priors_become_gemmas_arguments():
    """--prior for BSLMM (no sampling): Uniform(0, 1) is GEMMA's default (None), a number
    fixes, log10_pi's Uniform(a, b) is GEMMA's -pmin a -pmax b, as log pi's bounds."""
    from bayeslmm.bayes.sparse.spec import sparse_prior_kwargs

    kw = sparse_prior_kwargs({"h": "Uniform(0, 1)", "rho": "0", "log10_pi": "Uniform(-3, -1)"},
                             "bslmm")
    assert kw["h"] is None and kw["rho"] == 0.0 and "log10_pi" not in kw
    assert np.allclose(kw["log_pi_bounds"], np.log([1e-3, 1e-1]))
    assert sparse_prior_kwargs({"pi": "0.01", "rho": "1"}, "bslmm") == {"pi": 0.01, "rho": 1.0}
