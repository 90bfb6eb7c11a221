"""Indefinite GRMs on real data: GEMMA's HLC example (Debian gemma-doc), whose GCTA-style GRM
(per-pair SNP counts under missing genotypes) is indefinite."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_kernel_remedies import brute_force_h2

import bayeslmm
from bayeslmm.cli.app import main
from bayeslmm.io import read_grm

from helpers import gemma_log_values, gemma_se_pve
from peers import gunzip_example, require_tool, run

# One worker runs the module and its HLC fixture (GEMMA kinship and REML, 15-20 s) is kept for
# the session: a module-scoped one was torn down and rebuilt when the worker ran other tests
# between these.
pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.xdist_group("hlc")]

HLC = ["HLC.bed", "HLC.bim", "HLC.fam"]


@pytest.fixture(scope="session")
def hlc(tmp_path_factory) -> dict:
    """HLC decompressed, GEMMA's -gk 2 kinship and its null-model REML (-lmm on one SNP, so
    the log carries the null fit without a genome-wide pass); phenotype = .fam column 6."""
    gemma = require_tool("gemma")
    d = gunzip_example(HLC, tmp_path_factory.mktemp("hlc"))
    prefix = str(d / "HLC")
    (d / "one.snp").write_text(pd.read_csv(d / "HLC.bim", sep="\t", header=None,
                                           nrows=1)[1].iloc[0] + "\n")
    run([gemma, "-bfile", prefix, "-gk", "2", "-outdir", str(d), "-o", "kin"], cwd=d)
    run([gemma, "-bfile", prefix, "-k", str(d / "kin.sXX.txt"), "-lmm", "1", "-n", "1",
         "-snps", str(d / "one.snp"), "-outdir", str(d), "-o", "lmm"], cwd=d)
    fam = pd.read_csv(d / "HLC.fam", sep=r"\s+", header=None, dtype=str)
    fam[[0, 1, 5]].to_csv(d / "HLC.phen", sep=" ", header=False, index=False)
    # Our GRM by the command line, on GEMMA's SNP QC (maf >= 0.01, missing rate <= 0.05),
    # X included as GEMMA does.
    out = str(d / "ours")
    assert main(["grm", "--bfile", prefix, "--maf", "0.01", "--geno", "0.05", "--out", out,
                 "--include-nonautosomal", "--quiet"]) == 0
    return {"dir": d, "prefix": prefix, "kin": d / "kin.sXX.txt", "phen": d / "HLC.phen",
            "grm": out, "y": fam[5].astype(float).to_numpy(),
            "gemma": gemma_log_values(d / "lmm.log.txt")}


def test_reml_on_gemma_kinship_equals_gemma(hlc):
    g = hlc["gemma"]
    fit = bayeslmm.reml(hlc["y"], np.loadtxt(hlc["kin"]))
    assert fit.N == g["number of analyzed individuals"] == 427
    assert fit.sigma_g2 == pytest.approx(g["vg estimate in the null model"], rel=1e-3)
    assert fit.sigma_e2 == pytest.approx(g["ve estimate in the null model"], rel=1e-3)
    assert fit.h2 == pytest.approx(g["pve estimate in the null model"], abs=2e-4)
    assert fit.loglik == pytest.approx(g["REMLE log-likelihood in the null model"], abs=0.01)
    # GEMMA's se(pve): the observed information (ours: 0.346 with GCTA's AI, 0.461 observed)
    K = np.loadtxt(hlc["kin"])
    obs = bayeslmm.reml(hlc["y"], K, se_method="observed")
    assert gemma_se_pve(obs, K) == pytest.approx(g["se(pve) in the null model"], rel=1e-3)
    assert abs(fit.h2_se / g["se(pve) in the null model"] - 1) > 0.1  # AI: another convention


def test_indefinite_hlc_grm_fits_at_the_dense_optimum_and_near_gemma(hlc):
    # The GCTA-style GRM of GEMMA's SNP set averages each pair over the SNPs both samples
    # carry, and is indefinite.
    K = read_grm(hlc["grm"]).values
    dec = bayeslmm.decompose(K)
    assert dec.min_eigenvalue < -1e-3  # -0.0167: the case that used to be refused
    fit = bayeslmm.reml(hlc["y"], dec)
    h2_bf, ll_bf = brute_force_h2(hlc["y"], np.ones((427, 1)), K, dec.h2_max, n_grid=201)
    assert fit.h2 == pytest.approx(h2_bf, abs=1e-5)
    assert fit.loglik == pytest.approx(ll_bf, abs=1e-8)
    # GEMMA's kinship mean-imputes missing genotypes instead, so the kernels differ; the two
    # estimates agree within a fifth of GEMMA's standard error (0.304 vs 0.396, se 0.46).
    gem = hlc["gemma"]
    assert abs(fit.h2 - gem["pve estimate in the null model"]) < 0.25 * gem[
        "se(pve) in the null model"]
    # Bending (GCTA's rule) barely moves this estimate: one eigenvalue of -0.0167 -> 0.
    from bayeslmm.genotypes.remedies import bend

    assert bayeslmm.reml(hlc["y"], bend(K).K).h2 == pytest.approx(fit.h2, abs=1e-3)


def test_cli_reml_runs_on_the_indefinite_hlc_grm(hlc, tmp_path):
    grm_prefix, out = hlc["grm"], str(tmp_path / "hlc")
    assert main(["reml", "--grm", grm_prefix, "--pheno", str(hlc["phen"]), "--out", out,
                 "--quiet"]) == 0
    log = Path(f"{out}.log").read_text()
    assert "indefinite" in log and "smallest -0.0" in log
    hsq = pd.read_csv(f"{out}.hsq", sep="\t", index_col=0)
    fit = bayeslmm.reml(hlc["y"], read_grm(grm_prefix).values)
    assert hsq.loc["V(G)/Vp", "Variance"] == pytest.approx(fit.h2, abs=1e-6)
    # --grm-cutoff removes relatives and says how many.
    assert main(["reml", "--grm", grm_prefix, "--pheno", str(hlc["phen"]), "--out", out + "c",
                 "--grm-cutoff", "0.05", "--quiet"]) == 0
    assert "samples removed (GCTA's rule)" in Path(f"{out}c.log").read_text()


def test_default_grm_equals_plink19_autosomes(hlc, tmp_path, caplog):
    # plink1.9 --make-grm-bin leaves chromosome 23 (X) out; so do we by default. On
    # chromosomes 22 and 23 only, to keep it quick; missing genotypes make this a test of the
    # per-pair counts too.
    from bayeslmm.genotypes.kinship import grm
    from bayeslmm.io import read_plink

    plink = require_tool("plink1.9")
    run([plink, "--bfile", hlc["prefix"], "--chr", "22-23", "--make-grm-bin", "--nonfounders",
         "--threads", "1", "--out", str(tmp_path / "plink")], cwd=tmp_path)
    ds = read_plink(hlc["prefix"])
    chrom = ds["chrom"].to_numpy().astype(str)
    sub = ds.isel(variant=np.flatnonzero(np.isin(chrom, ["22", "23"])))
    with caplog.at_level("INFO", logger="bayeslmm.genotypes.kinship"):
        ours = grm(sub, progress=False)
    ref = read_grm(tmp_path / "plink")
    assert ours.ids.equals(ref.ids)
    np.testing.assert_allclose(ours.values, ref.values, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.n_snps, ref.n_snps)
    n_x = int((chrom == "23").sum())
    assert n_x == 6419 and f"{n_x} SNP(s) on non-autosomal chromosomes (23) left out" in \
        caplog.text
    assert ours.M == int((chrom == "22").sum())  # all chromosome-22 SNPs are polymorphic


def test_the_numbers_docs_real_data_gives(hlc, tmp_path):
    """docs/real-data.md's HLC numbers, recomputed: K's smallest eigenvalue with all SNPs
    (-0.0359) and with GEMMA's SNP QC (-0.0167); --grm-cutoff 0.05 (131 pairs, 22 of 427
    samples removed, K then PSD); bending (largest change of an entry 5.8e-5, h2 moves by
    less than 1e-4)."""
    from bayeslmm.genotypes.remedies import bend, relatedness_cutoff

    out = str(tmp_path / "all")
    assert main(["grm", "--bfile", hlc["prefix"], "--out", out, "--include-nonautosomal",
                 "--quiet"]) == 0
    s_all = np.linalg.eigvalsh(read_grm(out).values)[0]
    K = read_grm(hlc["grm"]).values
    s_qc = np.linalg.eigvalsh(K)[0]
    assert round(float(s_all), 4) == -0.0359 and round(float(s_qc), 4) == -0.0167
    keep = relatedness_cutoff(K, 0.05)
    low = np.tril(K, -1)
    assert int((low > 0.05).sum()) == 131 and int((~keep).sum()) == 22
    assert np.linalg.eigvalsh(K[np.ix_(keep, keep)])[0] >= 0
    bent = bend(K)
    assert f"{bent.max_abs_change:.1e}" == "5.8e-05"
    assert abs(bayeslmm.reml(hlc["y"], bent.K).h2 - bayeslmm.reml(hlc["y"], K).h2) < 1e-4
