"""LDAK-alpha GRMs: alpha = -1 is GCTA's GRM, other alphas against a brute-force numpy
computation (mean-imputed standardized genotypes weighted by [2p(1-p)]^(1+alpha)); the
profile likelihood of alpha finds the alpha a phenotype was simulated with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_genotypes import make_dataset

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldak import alpha_profile, grm_alpha, grms_alpha
from bayeslmm.genotypes.kinship import grm
from bayeslmm.io import genotype_dataset


def _complete(ds):
    """make_dataset's columns 7 and 8 are (half) uncalled: drop them for exact GCTA."""
    return ds.isel(variant=[i for i in range(ds.sizes["variant"]) if i not in (7, 8)])


def test_alpha_minus_one_is_the_gcta_grm():
    ds = _complete(make_dataset(N=30, P=80, missing=0.0, seed=2))
    ours = grm_alpha(ds, -1.0, maf=0.01)
    ref = grm(ds, maf=0.01)
    np.testing.assert_allclose(ours.K.values, ref.K.values, rtol=1e-12, atol=1e-14)
    assert ours.M == ref.M
    # Another alpha gives another kernel (the weights do something).
    assert np.abs(grm_alpha(ds, 0.5, maf=0.01).K.values - ref.K.values).max() > 0.01


@pytest.mark.parametrize("alpha", [-1.25, -0.25, 0.5])
def test_alpha_grm_equals_brute_force_with_missing_calls(alpha):
    ds = make_dataset(N=25, P=60, missing=0.15, seed=4)
    G = ds["genotype"].values.astype(float)
    called = ~np.isnan(G)
    with np.errstate(invalid="ignore"):  # column 7 is never called
        p = np.nansum(G, axis=0) / (2 * called.sum(axis=0))
    maf = np.minimum(p, 1 - p)
    keep = np.isfinite(p) & (maf >= 0.05)
    G, p, called = G[:, keep], p[keep], called[:, keep]
    het = 2 * p * (1 - p)
    Z = np.where(called, (G - 2 * p) / np.sqrt(het), 0.0)  # mean imputation
    s = het ** (1 + alpha)
    ref = (Z * s) @ Z.T / s.sum()
    ours = grms_alpha(ds, [alpha, -1.0], maf=0.05, block_size=7)[alpha]
    np.testing.assert_allclose(ours.K.values, ref, rtol=1e-11, atol=1e-13)


def _simulate(alpha_true: float, N: int = 400, P: int = 3000, h2: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.02, 0.5, P)
    G = rng.binomial(2, f, size=(N, P)).astype(float)
    p = G.mean(0) / 2
    het = 2 * p * (1 - p)
    Z = (G - 2 * p) / np.sqrt(het)
    s = het ** (1 + alpha_true)
    g = (Z * np.sqrt(s)) @ rng.standard_normal(P)
    g *= np.sqrt(h2 / g.var())
    y = g + rng.normal(0, np.sqrt(1 - h2), N)
    fam = pd.DataFrame({"fid": [f"F{i}" for i in range(N)], "iid": [f"I{i}" for i in range(N)]})
    bim = pd.DataFrame({"chrom": "1", "snp": [f"rs{j}" for j in range(P)], "pos": np.arange(P),
                        "a1": "A", "a2": "G"})
    return y, genotype_dataset(fam, bim, G)


@pytest.mark.slow
def test_profile_likelihood_finds_the_simulated_alpha():
    """N = 1,000, P = 500, h2 = 0.9, simulated under alpha = -1 (GCTA) and alpha = 1 (common
    SNPs carry more): each truth lies in its profile interval, and the two intervals are
    disjoint (the profile tells the two models apart)."""
    grid = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    found = {}
    for a in (-1.0, 1.0):
        y, ds = _simulate(a, N=1000, P=500, h2=0.9, seed=int(a + 5))
        prof = alpha_profile(y, ds, alphas=grid, maf=0.01)
        assert prof.table["delta_loglik"].max() == 0.0
        assert prof.ci[0] <= prof.alpha_hat <= prof.ci[1]
        assert prof.ci[0] <= a <= prof.ci[1]
        found[a] = prof
    assert found[-1.0].ci[1] < found[1.0].ci[0]


def test_bad_alpha_inputs():
    ds = _complete(make_dataset(N=20, P=30, missing=0.0))
    with pytest.raises(InputError, match="at least one alpha"):
        grms_alpha(ds, [])
    with pytest.raises(InputError, match="finite"):
        grms_alpha(ds, [np.nan])
    with pytest.raises(InputError, match="no polymorphic SNP"):
        grms_alpha(ds.isel(variant=[5]), [-1.0], maf=0.0)  # only the monomorphic SNP
