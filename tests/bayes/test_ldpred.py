"""LDpred from summary statistics: the windowed LD matrix against a dense correlation matrix,
LDpred-inf against dense ridge regression (its closed form with in-sample LD), the Gibbs
sampler with p = 1 against LDpred-inf, and LDpred2-auto's recovery of a sparse architecture
(inclusion both ways)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.genotypes.ldmatrix import ld_matrix
from bayeslmm.io import genotype_dataset, read_plink

from helpers import ld_cohort


def _dense_corr(G):
    """LDSC/LDpred2's standardization written out: mean-impute, centre, divide by the SD."""
    X = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    return Z, Z.T @ Z / Z.shape[0]


@pytest.mark.parametrize(("window", "unit"), [(200, "kb"), (25, "snps"), (0, "kb")])
def test_ld_matrix_is_the_dense_correlation_in_windows(window, unit):
    """The demo panel (missing calls, three chromosomes), blocks of 97 SNPs so windows cross
    block boundaries: every entry within a window equals the dense correlation, every other
    entry is 0 (chromosomes never correlate)."""
    from bed_reader import open_bed

    demo = load_demo()
    ds = read_plink(demo.bfile)
    ld = ld_matrix(ds, window, unit, block_size=97, progress=False)
    keep = np.isin(ds["snp"].to_numpy(), ld.snps["SNP"].to_numpy())
    G = open_bed(f"{demo.bfile}.bed").read(dtype="float64")[:, keep]
    _, R = _dense_corr(G)
    ch = ds["chrom"].to_numpy().astype(str)[keep]
    c = (ds["pos"].to_numpy()[keep] / 1000.0 if unit == "kb"
         else np.arange(keep.sum(), dtype=float))
    inside = (ch[:, None] == ch[None, :]) & (np.abs(c[:, None] - c[None, :]) <= window)
    np.fill_diagonal(R, 1.0)
    np.testing.assert_allclose(ld.R.toarray(), np.where(inside, R, 0.0), rtol=0, atol=1e-12)
    assert ld.R.nnz == inside.sum() and ld.N == 400
    assert [s.stop - s.start for s in ld.chromosome_slices()] == \
        [int((ch == k).sum()) for k in dict.fromkeys(ch)]


@pytest.fixture(scope="module")
def cohort():
    """One chromosome, 600 samples x 120 SNPs in LD (a latent Markov chain of haplotype
    states), a sparse trait (8 effects, h2 = 0.6), and its in-sample summary statistics:
    Z_j = r_j sqrt(N) / sqrt(1 - r_j^2) from the correlation r_j of SNP j with y, so that
    Z / sqrt(N + Z^2) = r_j exactly."""
    G, ys, causal = ld_cohort()
    N, P = G.shape
    Z, _ = _dense_corr(G)
    r = Z.T @ ys / N
    fam = pd.DataFrame({"fid": [f"f{i}" for i in range(N)], "iid": [f"i{i}" for i in range(N)]})
    bim = pd.DataFrame({"chrom": "1", "snp": [f"rs{j}" for j in range(P)],
                        "pos": np.arange(P) * 1000 + 1, "a1": "C", "a2": "A"})
    ds = genotype_dataset(fam, bim, G)
    ss = pd.DataFrame({"SNP": bim.snp, "A1": "C", "A2": "A",
                       "Z": r * np.sqrt(N) / np.sqrt(1 - r**2), "N": float(N)})
    return ds, ss, Z, ys, causal


def test_ldpred_inf_is_snp_blup(cohort):
    """With in-sample LD and a window over the whole chromosome, LDpred-inf in its exact form
    is SNP-BLUP from the individual data at the same h2, (Z'Z + M (1 - h2)/h2 I)^{-1} Z'y,
    solved densely here (to 1e-10; the issue asks 1e-6), and the published M / (N h2)
    shrinkage is the ridge with penalty M / h2; a summary table with half of its alleles
    swapped (Z negated) gives the same effects; per-allele effects are the standardized ones
    over sqrt(2p(1-p))."""
    from bayeslmm.bayes.ldpred import ldpred_inf

    ds, ss, Z, ys, _ = cohort
    ld = ld_matrix(ds, 1e6, "kb", progress=False)
    M, h2 = ss.shape[0], 0.5
    blup = np.linalg.solve(Z.T @ Z + M * (1 - h2) / h2 * np.eye(M), Z.T @ ys)
    fit = ldpred_inf(ss, ld, h2)
    np.testing.assert_allclose(fit.effects["beta_std"], blup, rtol=0, atol=1e-10)
    ridge = np.linalg.solve(Z.T @ Z + (M / h2) * np.eye(M), Z.T @ ys)
    np.testing.assert_allclose(ldpred_inf(ss, ld, h2, "published").effects["beta_std"],
                               ridge, rtol=0, atol=1e-10)
    assert np.abs(blup - ridge).max() > 1e-3  # the two forms differ (both directions)
    swapped = ss.copy()
    swapped.loc[::2, ["A1", "A2"]] = swapped.loc[::2, ["A2", "A1"]].to_numpy()
    swapped.loc[::2, "Z"] *= -1
    np.testing.assert_allclose(ldpred_inf(swapped.iloc[::-1], ld, h2).effects["beta_std"],
                               blup, rtol=0, atol=1e-10)
    p = ld.snps["p"].to_numpy()
    np.testing.assert_allclose(fit.effects["beta"], blup / np.sqrt(2 * p * (1 - p)))
    with pytest.raises(InputError, match="h2 must be in"):
        ldpred_inf(ss, ld, 0.0)
    with pytest.raises(InputError, match="shrinkage must be one of"):
        ldpred_inf(ss, ld, 0.5, "ldpred1")


def test_gibbs_with_p_one_is_ldpred_inf(cohort):
    """p = 1 makes the point-normal prior the infinitesimal one: eight independent chains'
    Rao-Blackwellised means agree with the closed form within their Monte Carlo error (the
    between-chain spread), and p and h2 stay fixed."""
    from bayeslmm.bayes.ldpred import ldpred_gibbs, ldpred_inf

    ds, ss, *_ = cohort
    ld = ld_matrix(ds, 1e6, "kb", progress=False)
    exact = ldpred_inf(ss, ld, 0.5).effects["beta_std"].to_numpy()
    means = np.array([ldpred_gibbs(ss, ld, h2=0.5, p=1.0, burn=100, draws=400, seed=s)
                      .effects["beta_std"].to_numpy() for s in range(8)])
    mcse = means.std(axis=0, ddof=1) / np.sqrt(8)
    z = (means.mean(axis=0) - exact) / mcse
    assert np.mean(z**2) < 2.0 and np.mean(np.abs(z) < 4) > 0.98  # t with 7 df: E z^2 = 1.4
    fit = ldpred_gibbs(ss, ld, h2=0.5, p=1.0, burn=10, draws=20)
    assert np.all(fit.posterior["posterior"]["h2"] == 0.5) and fit.p == 1.0
    assert np.all(fit.effects["pip"] == 1.0)


def test_ldpred_auto_recovers_a_sparse_architecture(cohort):
    """LDpred2-auto on the 8-effect trait: h2 near the simulated 0.6 (the in-sample value),
    p of the order of 8/120, the causal SNPs' inclusion probabilities high and the others'
    low (both directions)."""
    from bayeslmm.bayes.ldpred import ldpred_gibbs

    ds, ss, _, _, causal = cohort
    ld = ld_matrix(ds, 1e6, "kb", progress=False)
    fit = ldpred_gibbs(ss, ld, h2=0.3, p=0.5, auto=True, burn=300, draws=600, chains=2)
    assert 0.45 < fit.h2 < 0.75
    assert 0.02 < fit.p < 0.3
    pip = fit.effects["pip"].to_numpy()
    null = np.setdiff1d(np.arange(pip.size), causal)
    assert np.median(pip[causal]) > 0.5 and np.median(pip[null]) < 0.1
    assert fit.posterior["posterior"]["p"].shape == (2, 600)


def test_ldpred_auto_divergence_is_reported_not_written(cohort):
    """Summary statistics that contradict the LD (every other Z negated, N = 10^6): the auto
    chains' h2 stays above 1 past the burn-in; one clear error, no result."""
    from bayeslmm.bayes.ldpred import ldpred_gibbs

    ds, ss, *_ = cohort
    ld = ld_matrix(ds, 1e6, "kb", progress=False)
    bad = ss.assign(N=1e6, Z=ss["Z"] * 30)
    bad.loc[::2, "Z"] *= -1
    with pytest.raises(InputError, match="diverged.*nothing is written"):
        ldpred_gibbs(bad, ld, h2=0.3, p=0.5, auto=True, burn=50, draws=50, chains=2)


def test_scores_equal_plink2_score(tmp_path):
    """Per-allele effects scored on the demo fileset (missing calls, mean-imputed from all
    samples: plink2's --nonfounders, the demo has families) equal plink2 --score's
    SCORE1_SUM, with a third of the effects given for the other allele and
    two effects whose SNP or alleles the target lacks."""
    import subprocess

    from bayeslmm.genotypes.scores import polygenic_scores

    from peers import require_tool

    plink2 = require_tool("plink2")
    demo = load_demo()
    ds = read_plink(demo.bfile)
    rng = np.random.default_rng(2)
    sel = rng.choice(ds.sizes["variant"], 400, replace=False)
    a1, a2 = ds["a1"].to_numpy()[sel].astype(str), ds["a2"].to_numpy()[sel].astype(str)
    other = np.arange(sel.size) % 3 == 0
    eff = pd.DataFrame({"SNP": ds["snp"].to_numpy()[sel].astype(str),
                        "A1": np.where(other, a2, a1), "A2": np.where(other, a1, a2),
                        "beta": rng.normal(0, 0.1, sel.size)})
    extra = pd.DataFrame({"SNP": ["not_there", eff.SNP[1]], "A1": ["A", "T"],
                          "A2": ["C", "T"], "beta": [1.0, 1.0]})
    ours = polygenic_scores(ds, pd.concat([eff, extra]), block_size=77, progress=False)
    (tmp_path / "eff.txt").write_text(eff[["SNP", "A1", "beta"]].to_csv(sep="\t", index=False,
                                                                       header=False))
    subprocess.run([plink2, "--bfile", str(demo.bfile), "--score", str(tmp_path / "eff.txt"),
                    "1", "2", "3", "cols=+scoresums", "--nonfounders", "--out",
                    str(tmp_path / "p2")],
                   check=True, capture_output=True)
    ref = pd.read_csv(tmp_path / "p2.sscore", sep="\t")
    assert list(ref["IID"].astype(str)) == list(ours["IID"].astype(str))
    np.testing.assert_allclose(ours["SCORE_SUM"], ref["SCORE1_SUM"], rtol=0, atol=1e-5)
    assert (ours["ALLELE_CT"] == 800).all()


def test_auto_h2_from_summary_statistics_equals_individual_level_posterior(cohort):
    """The posterior of h2 from the summary statistics and the LD alone (LDpred2-auto) agrees
    with the individual-level posterior of the same point-normal model on the same cohort
    (BayesC's PVE, from the genotypes and phenotype) within the smaller posterior SD, and
    their p with BayesC's pi to within its posterior SD."""
    from bayeslmm.bayes.ldpred import ldpred_gibbs
    from bayeslmm.bayes.sparse.bayesc import bayesc

    ds, ss, Z, ys, _ = cohort
    ld = ld_matrix(ds, 1e6, "kb", progress=False)
    auto = ldpred_gibbs(ss, ld, h2=0.3, p=0.1, auto=True, burn=300, draws=1000, chains=2)
    h2 = auto.posterior["posterior"]["h2"].to_numpy().ravel()
    # pi mixes slowly (ESS ~100 of 2,000): its MC error is a tenth of the tolerance
    ind = bayesc(ys, Z, draws=1000, tune=300, chains=2, seed=1, check=False)["posterior"]
    pve, pi = ind["pve"].to_numpy().ravel(), ind["pi"].to_numpy().ravel()
    assert abs(h2.mean() - pve.mean()) < min(h2.std(), pve.std())
    assert abs(auto.p - pi.mean()) < pi.std()
