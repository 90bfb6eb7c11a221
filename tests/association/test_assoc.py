"""Association tests (notes 5.1, 5.2.3): dense brute force, GEMMA, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import bayeslmm
from bayeslmm.association.fixed_variance import assoc, one_test
from bayeslmm.errors import InputError

from helpers import simulate


def make_genotypes(N, P, seed, missing=0.02):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(N, P)).astype(float)
    G[rng.random((N, P)) < missing] = np.nan
    G[:, 3] = 1.0          # monomorphic
    G[:, 4] = np.nan       # never called
    G[: N // 2, 5] = np.nan
    G[N // 2:, 5] = 2.0    # monomorphic among the called samples
    return G


def dense_tests(fit, Ks, G):
    """Exact (55 with covariates) and GRAMMAR statistics with V^-1 formed explicitly."""
    y, X = fit.data.y, fit.data.X
    N = len(y)
    sig = np.atleast_1d(fit.sigma2[:-1])
    V = fit.sigma_e2 * np.eye(N) + sum(s * K for s, K in zip(sig, Ks, strict=True))
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.inv(X.T @ Vi @ X) @ X.T @ Vi
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)  # the all-NaN column
        Gi = np.where(np.isnan(G), np.nanmean(G, axis=0), G)  # mean imputation
    xPy = Gi.T @ P @ y
    xPx = np.einsum("ij,ij->j", Gi, P @ Gi)
    yt = fit.sigma_e2 * P @ y
    H = X @ np.linalg.inv(X.T @ X) @ X.T
    Gp = Gi - H @ Gi
    raw = N * (Gi.T @ yt) ** 2 / (np.einsum("ij,ij->j", Gp, Gp) * (yt @ yt))
    with np.errstate(invalid="ignore"):  # xPx ~ 0 (possibly < 0 by rounding) if monomorphic
        return {"beta": xPy / xPx, "se": 1 / np.sqrt(xPx), "chi2": xPy**2 / xPx, "raw": raw,
                "xPy": xPy}


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.nanmax(np.abs(a - b) / np.abs(b)))


@pytest.fixture(scope="module")
def data():
    y, K, X, Z, g = simulate(N=240, P=500, h2=0.5, M=3, seed=21)
    G = make_genotypes(240, 400, seed=22)
    return bayeslmm.reml(y, K, X), K, G


# ----------------------------------------------------------------------------- dense
def test_exact_equals_dense(data):
    fit, K, G = data
    res = assoc(fit, G, "exact", block_size=64)
    ref = dense_tests(fit, [K], G)
    ok = ~res.monomorphic.values
    assert rel(res.beta[ok], ref["beta"][ok]) < 1e-8
    assert rel(res.se[ok], ref["se"][ok]) < 1e-8
    assert rel(res.chi2[ok], ref["chi2"][ok]) < 1e-8
    assert np.allclose(res.p[ok], stats.chi2.sf(ref["chi2"][ok], 1), rtol=1e-7)


def test_exact_at_the_h2_boundary_keeps_its_digits():
    """At h2 -> 1 (sigma_e2 ~ 1e-6 sigma_g2, cond(V) ~ 1e6) V^-1 weighs the intercept by
    1 / sigma_e2: allele counts whose mean is not projected out first lose ~6 digits to
    cancellation. The exact statistic still equals the dense V^-1 computation to 1e-8.
    (P < N: the noise has a part outside K's range, so REML's sigma_e2 stays above 0; with
    P > N, K spans the noise and the maximum is sigma_e2 = 0, V singular.)"""
    rng = np.random.default_rng(3)
    N, P = 300, 200
    G0 = rng.binomial(2, 0.3, (N, P)).astype(float)
    Z = (G0 - G0.mean(0)) / G0.std(0)
    K = Z @ Z.T / P
    y = 1 + Z @ rng.normal(0, np.sqrt(1 / P), P) + 1e-3 * rng.standard_normal(N)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # the boundary warning
        fit = bayeslmm.reml(y, K)
    assert fit.h2 > 0.9999
    G = rng.binomial(2, 0.3, (N, 50)).astype(float)
    d = dense_tests(fit, [K], G)
    res = assoc(fit, G, "exact")
    assert rel(res["se"], d["se"]) < 1e-10  # x'Px: off by ~3e-6 without the projection
    # chi2 near 0 has a tiny x'Py whose rounding is relative to |G||Py|: scale by max(chi2, 1)
    c = res["chi2"].values
    assert np.max(np.abs(c - d["chi2"]) / np.maximum(d["chi2"], 1.0)) < 1e-8


def test_monomorphic_flagged_not_crashing(data):
    fit, K, G = data
    for test in ("exact", "grammar", "grammar-gamma"):
        res = assoc(fit, G, test)
        assert list(np.flatnonzero(res.monomorphic.values)) == [3, 4, 5]
        assert np.all(np.isnan(res.chi2.values[[3, 4, 5]]))
        assert np.all(np.isfinite(res.chi2.values[6:]))
        assert res.n.values[4] == 0 and res.n.values[5] == 120
        assert res.attrs["n_monomorphic"] == 3


def test_grammar_equals_dense(data):
    fit, K, G = data
    ref = dense_tests(fit, [K], G)
    res = assoc(fit, G, "grammar")
    ok = ~res.monomorphic.values
    assert rel(res.chi2[ok], ref["raw"][ok]) < 1e-8
    assert np.allclose((res.beta / res.se) ** 2, res.chi2, rtol=1e-10, equal_nan=True)
    assert res.attrs["c_inf"] == 1.0


def test_grammar_gamma_c_inf_matches_mean_ratio(data):
    """c_inf from 30 random SNPs estimates the mean over all SNPs of uncalibrated / exact."""
    fit, K, G = data
    ref = dense_tests(fit, [K], G)
    ok = np.isfinite(ref["raw"]) & (ref["chi2"] > 0)
    ok[[3, 4, 5]] = False
    ratio = ref["raw"][ok] / ref["chi2"][ok]  # the denominator ratio; numerators cancel
    res = assoc(fit, G, "grammar-gamma", n_calibration=30, seed=1)
    c = res.attrs["c_inf"]
    assert abs(c - ratio.mean()) < 4 * ratio.std() / np.sqrt(30)
    # Calibrated statistic = raw / c_inf; and with many calibration SNPs c_inf -> the mean.
    assert rel(res.chi2[ok], ref["raw"][ok] / c) < 1e-8
    res_all = assoc(fit, G, "grammar-gamma", n_calibration=10_000)
    assert res_all.attrs["c_inf"] == pytest.approx(ratio.mean(), rel=1e-8)
    # Seeded: same seed, same c_inf.
    assert assoc(fit, G, "grammar-gamma", seed=1).attrs["c_inf"] == c


def test_several_tests_in_one_pass_equal_separate_calls(data):
    """assoc(fit, G, [tests]) reads and imputes once and calibrates GRAMMAR-Gamma on the
    exact test's denominators: every Dataset equals the one of a separate call."""
    fit, K, G = data
    both = assoc(fit, G, ["exact", "grammar", "grammar-gamma"], n_calibration=12, seed=5,
                 block_size=64)
    assert list(both["test"].values) == ["exact", "grammar", "grammar-gamma"]
    assert both["chi2"].dims == ("test", "variant")
    for t in both["test"].values:
        ds = one_test(both, t)
        alone = assoc(fit, G, t, n_calibration=12, seed=5, block_size=64)
        assert ds.attrs["test"] == t
        np.testing.assert_allclose(ds["chi2"], alone["chi2"], rtol=1e-12, equal_nan=True)
        for name in ("beta", "se", "p", "af", "n", "monomorphic", "filtered"):
            np.testing.assert_array_equal(ds[name].isnull(), alone[name].isnull())
        assert ds.attrs["c_inf"] == pytest.approx(alone.attrs["c_inf"], rel=1e-12,
                                                  nan_ok=True)
    with pytest.raises(bayeslmm.InputError, match="no 'wald' test"):
        one_test(both, "wald")
    with pytest.raises(bayeslmm.InputError, match="test must be one of"):
        assoc(fit, G, ["exact", "fisher"])
    with pytest.raises(bayeslmm.InputError, match="at least one"):
        assoc(fit, G, [])


def test_maf_and_missingness_filters(data):
    """min_maf / max_missing (GEMMA's -maf / -miss) leave SNPs untested with a flag."""
    fit, K, G = data
    G = G.copy()
    G[:, 10] = 0.0
    G[:2, 10] = 1.0  # MAF 2 / 480 < 0.01
    G[: int(0.2 * len(G)), 11] = np.nan  # 20 % missing
    res = assoc(fit, G, "exact", min_maf=0.01, max_missing=0.1)
    flt = res["filtered"].values
    assert flt[10] and flt[11] and not flt[3]  # column 3 is monomorphic, not filtered
    maf = np.minimum(res["af"], 1 - res["af"]).values
    miss = 1 - res["n"].values / len(G)
    poly = ~res["monomorphic"].values
    np.testing.assert_array_equal(flt, poly & ((maf < 0.01) | (miss > 0.1)))
    assert np.all(np.isnan(res["chi2"].values[flt]))
    base = assoc(fit, G, "exact")
    # Same statistics for the rest (a filtered block is a copy: BLAS rounding may differ).
    np.testing.assert_allclose(res["chi2"].values[~flt], base["chi2"].values[~flt],
                               rtol=1e-12)
    assert res.attrs["n_filtered"] == flt.sum() and not base["filtered"].any()
    with pytest.raises(bayeslmm.InputError, match="min_maf"):
        assoc(fit, G, "exact", min_maf=0.7)


def test_low_rank_and_several_kernels_equal_dense():
    y, K, X, Z, g = simulate(N=200, P=50, h2=0.5, M=2, seed=31)
    G = make_genotypes(200, 120, seed=32)
    fit = bayeslmm.reml(y, bayeslmm.decompose_genotypes(Z), X)
    assert not fit.decomposition.full_rank
    res = assoc(fit, G, "exact")
    ref = dense_tests(fit, [K], G)
    ok = ~res.monomorphic.values
    assert rel(res.chi2[ok], ref["chi2"][ok]) < 1e-7
    rng = np.random.default_rng(3)
    grp = rng.integers(0, 15, 200)
    K2 = (grp[:, None] == grp[None, :]).astype(float)
    fit2 = bayeslmm.reml(y + rng.normal(0, 0.7, 15)[grp], [K, K2], X)
    res2 = assoc(fit2, G, "exact")
    ref2 = dense_tests(fit2, [K, K2], G)
    assert rel(res2.chi2[ok], ref2["chi2"][ok]) < 1e-8


def test_blocks_labels_and_metadata(data):
    fit, K, G = data
    N, P = G.shape
    a = assoc(fit, G, "exact", block_size=5000)
    b = assoc(fit, G, "exact", block_size=7, progress=False)
    assert np.allclose(a.chi2, b.chi2, rtol=1e-12, equal_nan=True)
    # Labelled, shuffled genotypes are aligned to the fit by sample label.
    y_lab = pd.Series(fit.data.y, index=[f"s{i}" for i in range(N)])
    X_lab = pd.DataFrame(fit.data.X, index=y_lab.index)
    fit_lab = bayeslmm.reml(y_lab, pd.DataFrame(K, y_lab.index, y_lab.index), X_lab)
    perm = np.random.default_rng(0).permutation(N)
    da = xr.DataArray(G[perm], dims=("sample", "variant"),
                      coords={"sample": y_lab.index.values[perm],
                              "snp": ("variant", [f"rs{j}" for j in range(P)]),
                              "chrom": ("variant", np.repeat(["1", "2"], P // 2)),
                              "pos": ("variant", np.arange(P) * 100)})
    c = assoc(fit_lab, da, "exact")
    # A second REML run on the relabelled inputs agrees to its own tolerance (~1e-7).
    assert np.allclose(a.chi2, c.chi2, rtol=1e-5, equal_nan=True)
    assert c.snp.values[1] == "rs1" and c.chrom.values[-1] == "2" and c.pos.values[2] == 200
    df = c.to_dataframe()
    assert {"chrom", "snp", "pos", "a1", "a2", "af", "n", "beta", "se", "chi2", "p",
            "monomorphic"} <= set(df.columns)
    assert c.attrs["lambda_gc"] == pytest.approx(
        np.nanmedian(c.chi2) / stats.chi2.ppf(0.5, 1))
    with pytest.raises(bayeslmm.AlignmentError):
        assoc(fit_lab, da.assign_coords(sample=[f"t{i}" for i in range(N)]))


def test_loco(data):
    fit, K, G = data
    P = G.shape[1]
    chrom = np.repeat(["1", "2"], P // 2)
    y, X = fit.data.y, fit.data.X
    fits = {}
    rng = np.random.default_rng(5)
    for c in ("1", "2"):
        # Any kernel will do for the bookkeeping check; perturb K per chromosome.
        Kc = K + 0.1 * (1 if c == "1" else 2) * np.eye(len(y))
        fits[c] = bayeslmm.reml(y, Kc, X)
    res = assoc(None, G, "grammar-gamma", loco=fits, chrom=chrom, seed=rng.integers(1e6))
    for c in ("1", "2"):
        sel = chrom == c
        one = assoc(fits[c], G[:, sel], "grammar")
        c_inf = res.attrs["c_inf_per_fit"][int(c) - 1]
        assert np.allclose(res.chi2.values[sel], one.chi2.values / c_inf, equal_nan=True)
    ex = assoc(None, G, "exact", loco=fits, chrom=chrom)
    assert np.allclose(ex.chi2.values[chrom == "2"],
                       assoc(fits["2"], G[:, chrom == "2"], "exact").chi2.values,
                       equal_nan=True)
    with pytest.raises(bayeslmm.InputError, match="no LOCO fit"):
        assoc(None, G, loco={"1": fits["1"]}, chrom=chrom)


# ----------------------------------------------------------------------------- GEMMA
def _read_bed(prefix):
    from bed_reader import open_bed

    # count_A1=True: allele counts of the .bim's 5th-column allele, as GEMMA's "allele1".
    with open_bed(f"{prefix}.bed", count_A1=True) as bed:
        return bed.read(dtype="float64"), bed.sid, bed.iid


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.xdist_group("gemma_mouse")
def test_exact_against_gemma_lmm1(mouse_dir, gemma_mouse):
    """Our exact test vs GEMMA ``-lmm 1`` Wald p-values on the gemma-doc mouse data.

    Same kinship (GEMMA's ``-gk 2``, standardized), phenotype column 1, intercept only.
    They differ because GEMMA re-estimates lambda = sigma_g2 / sigma_e2 by REML for every
    SNP and uses an F(1, N - 2) Wald test, while the exact test fixes V at the null REML
    (EMMAX/GCTA --mlma) and uses chi2_1; with SNPs of small effect the two rank SNPs the
    same way, and p-values differ most for the strongest SNPs.
    """
    # GEMMA -gk 2 then -lmm 1 -n 1 on the whole fileset, run once (conftest's gemma_mouse)
    prefix = mouse_dir / "mouse_hs1940"
    gem = pd.read_csv(gemma_mouse["assoc"], sep="\t")
    log = gemma_mouse["log"].read_text()
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, na_values=["NA", "-9"])
    pheno = fam[5].to_numpy(float)
    keep = np.isfinite(pheno)
    K = np.loadtxt(gemma_mouse["kinship"])[np.ix_(keep, keep)]
    G, sid, _ = _read_bed(prefix)
    fit = bayeslmm.reml(pheno[keep], K)
    # GEMMA prints pve = lambda tr(K)/n / (lambda tr(K)/n + 1) of its null REML.
    pve_gemma = float(next(ln for ln in log.splitlines() if "pve estimate" in ln)
                      .split("=")[-1])
    lam = fit.sigma_g2 / fit.sigma_e2 * np.trace(K) / keep.sum()
    # GEMMA stops its Brent/Newton search over log(lambda) early (and prints 6 digits):
    # agreement to ~1e-4 in pve, i.e. ~4e-4 relative in lambda.
    assert lam / (lam + 1) == pytest.approx(pve_gemma, abs=3e-4)
    res = assoc(fit, G[keep], "exact", snp=sid)
    ours = res.to_dataframe().set_index("snp").loc[gem["rs"]]
    # GEMMA's default QC (-maf 0.01, -miss 0.05 on the analysed samples) as ours selects
    # exactly the SNPs GEMMA reports, with the same statistics for them.
    qc = assoc(fit, G[keep], "exact", snp=sid, min_maf=0.01, max_missing=0.05)
    tested = qc["snp"].values[~qc["filtered"].values & ~qc["monomorphic"].values]
    assert set(tested) == set(gem["rs"]) and qc.attrs["n_filtered"] > 0
    np.testing.assert_allclose(qc.to_dataframe().set_index("snp").loc[gem["rs"], "chi2"],
                               ours["chi2"], rtol=1e-12)
    assert len(gem) > 10_000 and np.all(np.isfinite(ours["p"]))
    rho = stats.spearmanr(ours["p"], gem["p_wald"]).statistic
    assert rho > 0.999
    # Effect sizes agree in sign (same A1 coding) and closely in value.
    assert np.corrcoef(ours["beta"], gem["beta"])[0, 1] > 0.999
    # Our GEMMA-layout writer: GEMMA's own column names, in GEMMA's order, and the same
    # counted allele (allele1) and allele frequency for every SNP.
    from bayeslmm.reports.writers import gemma_assoc_table

    bim = pd.read_csv(f"{prefix}.bim", sep=r"\s+", header=None, dtype=str)
    mine = gemma_assoc_table(qc.assign(a1=("variant", bim[4].to_numpy()),
                                       a2=("variant", bim[5].to_numpy())))
    assert all(c in gem.columns for c in mine.columns)
    assert [c for c in gem.columns if c in mine.columns] == list(mine.columns)
    mine = mine.set_index("rs").loc[gem["rs"]]
    assert (mine["allele1"].to_numpy() == gem["allele1"].to_numpy()).all()
    np.testing.assert_allclose(mine["af"], gem["af"], atol=5e-4)
    ratio = np.abs(np.log10(ours["p"].to_numpy() / gem["p_wald"].to_numpy()))
    print(f"GEMMA vs exact: Spearman(p) = {rho:.6f}; |log10 p ratio| max "
          f"{np.nanmax(ratio):.3f}, median {np.nanmedian(ratio):.4f}; "
          f"min p ours {ours['p'].min():.3g}, GEMMA {gem['p_wald'].min():.3g}")


# ----------------------------------------------------------------------------- calibration
def family_genotypes(n_fam, n_sib, P, rng):
    """Siblings sharing parental haplotypes: each child draws one of the two alleles of each
    parent at every (unlinked) locus."""
    f = rng.uniform(0.05, 0.5, P)
    par = rng.random((n_fam, 2, 2, P)) < f  # family, parent, haplotype, locus
    pick = rng.integers(0, 2, (n_fam, n_sib, 2, P))
    child = (np.take_along_axis(par[:, 0][:, None], pick[:, :, 0][:, :, None], 2)[:, :, 0]
             .astype(np.int8)
             + np.take_along_axis(par[:, 1][:, None], pick[:, :, 1][:, :, None], 2)[:, :, 0])
    return child.reshape(n_fam * n_sib, P).astype(float)


@pytest.mark.slow
def test_calibration_and_prediction_accuracy():
    """Null SNPs under family structure: LMM lambda_GC ~ 1, linear regression inflated; and
    out-of-sample BLUP accuracy matches its expectation under the simulated model.

    K is the GRM of the causal SNPs, so conditional on the genotypes Var(y) = sigma_g2 K +
    sigma_e2 I exactly (b random); the test SNPs are unlinked and not causal, hence
    independent of y given the pedigree, and the exact test is chi2_1 with V at the truth.
    """
    rng = np.random.default_rng(2024)
    n_fam, n_sib, Pc, Pt, h2 = 200, 4, 1500, 12_000, 0.7
    Gc = family_genotypes(n_fam, n_sib, Pc, rng)
    Gt = family_genotypes(n_fam, n_sib, Pt, rng)
    N = Gc.shape[0]
    sd = Gc.std(0)
    Zc = (Gc - Gc.mean(0))[:, sd > 0] / sd[sd > 0]
    K = Zc @ Zc.T / Zc.shape[1]
    g = Zc @ rng.normal(0, np.sqrt(h2 / Zc.shape[1]), Zc.shape[1])
    y = g + rng.normal(0, np.sqrt(1 - h2), N)
    dec = bayeslmm.decompose(K)  # shared by the phenotype replicates
    Gi = Gt - Gt.mean(0)
    lams = {"exact": [], "grammar-gamma": [], "linear regression": []}
    # The SNP statistics share one phenotype, so lambda_GC of one replicate varies by ~0.03
    # (more than for independent SNPs); the mean over 4 replicates has sd ~0.015.
    for rep in range(4):
        if rep:
            g = Zc @ rng.normal(0, np.sqrt(h2 / Zc.shape[1]), Zc.shape[1])
            y = g + rng.normal(0, np.sqrt(1 - h2), N)
        fit = bayeslmm.reml(y, dec)
        for t in ("exact", "grammar-gamma"):
            lams[t].append(assoc(fit, Gt, t).attrs["lambda_gc"])
        # Plain linear regression (the LMM with sigma_g2 = 0).
        yc = y - y.mean()
        r = (Gi.T @ yc) / np.sqrt((Gi * Gi).sum(0) * (yc @ yc))
        chi2_lr = (N - 2) * r**2 / (1 - r**2)
        lams["linear regression"].append(np.nanmedian(chi2_lr) / stats.chi2.ppf(0.5, 1))
    lam = {t: float(np.mean(v)) for t, v in lams.items()}
    print("lambda_GC (mean of 4 replicates): "
          + ", ".join(f"{t} {v:.3f} {np.round(lams[t], 3).tolist()}" for t, v in lam.items()))
    assert 0.95 <= lam["exact"] <= 1.05
    assert 0.95 <= lam["grammar-gamma"] <= 1.05
    assert lam["linear regression"] > 1.2

    # Prediction: hold out one sibling per family for the first 150 families; their
    # relatives stay in the training set. Under the model (K known, true variances) the
    # BLUP's expected squared accuracy over the test samples is
    #   sum_i Var(g-hat_i) / sum_i Var(g_i) = tr(s_g^2 K21 V11^-1 K12) / tr(K22)/s_g
    # (Cov(g-hat, g) = Var(g-hat) for a BLUP). Averaged over phenotype replicates the
    # realised correlation must be close to its square root.
    test = np.arange(150) * n_sib
    train = np.setdiff1d(np.arange(N), test)
    K11, K21 = K[np.ix_(train, train)], K[np.ix_(test, train)]
    dec = bayeslmm.decompose(K11)
    sg, se = h2, 1 - h2
    V11i = np.linalg.inv(sg * K11 + se * np.eye(train.size))
    expected = np.sqrt(sg * np.trace(K21 @ V11i @ K21.T) / np.trace(K[np.ix_(test, test)]))
    cors = []
    for _rep in range(8):
        g = Zc @ rng.normal(0, np.sqrt(h2 / Zc.shape[1]), Zc.shape[1])
        y = g + rng.normal(0, np.sqrt(1 - h2), N)
        f = bayeslmm.reml(y[train], dec)
        pred = bayeslmm.predict(f, K21)
        cors.append(np.corrcoef(pred.g, g[test])[0, 1])
    daetwyler = np.sqrt(h2 / (h2 + 1.0 * Zc.shape[1] / train.size))
    print(f"BLUP accuracy: realised {np.mean(cors):.3f} (sd {np.std(cors):.3f}), expected "
          f"{expected:.3f}; Daetwyler (unrelated, M_e = M) {daetwyler:.3f}")
    assert abs(np.mean(cors) - expected) < 0.05


def test_xPx_any_layout_columns_and_chunking(data):
    """diag(G'PG) from the Cholesky path equals the dense one for Fortran, C and strided
    blocks, a subset of columns, and a work buffer narrower than the block (chunks)."""
    from bayeslmm.association.fixed_variance import _Null

    fit, K, G = data
    null = _Null.from_fit(fit)
    assert null.Uinv is not None
    Gi = np.nan_to_num(G[:, 6:60])  # polymorphic, no missing
    ref = dense_tests(fit, [K], Gi)
    cols = np.array([0, 3, 4, 10, 11, 12, 40, 53])
    want = ref["xPy"][cols] ** 2 / ref["chi2"][cols]  # x'Px
    work = np.empty((len(Gi), 3), order="F")
    for block in (np.asfortranarray(Gi), np.ascontiguousarray(Gi),
                  np.ascontiguousarray(np.repeat(Gi, 2, axis=1))[:, ::2]):
        np.testing.assert_allclose(null.xPx(block, cols, work), want, rtol=1e-10)
        np.testing.assert_allclose(null.xPx(block, cols), want, rtol=1e-10)


def test_loco_true_builds_the_per_chromosome_fits(data):
    """loco=True with a PLINK dataset equals the mapping built by hand (loco_grms + REML per
    chromosome); with a bare matrix (no chromosomes) it is a clear error."""
    fit, K, G = data
    with pytest.raises(InputError, match="loco=True builds the per-chromosome null fits"):
        assoc(fit, G, loco=True)
    from bayeslmm.datasets import load_demo
    from bayeslmm.genotypes.kinship import loco_grms
    from bayeslmm.io import read_plink

    demo = load_demo()
    y, Kd = demo.phenotype_and_grm()
    ds = read_plink(demo.bfile)
    fit_d = bayeslmm.reml(y, Kd)
    auto = assoc(fit_d, ds, "exact", loco=True, progress=False)
    by_hand = {c: bayeslmm.reml(y, g.K) for c, g in loco_grms(ds, progress=False).items()}
    manual = assoc(None, ds, "exact", loco=by_hand, progress=False)
    np.testing.assert_allclose(auto["chi2"], manual["chi2"], rtol=1e-10, equal_nan=True)
    assert auto.attrs["loco"] == 1
