"""The exact low-rank tier vs the dense eigen path (evidence: brute force, GEMMA's mouse
genotypes and phenotype)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.covariance.lowrank import decompose_lowrank
from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import grm
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import read_fam, read_plink


@pytest.fixture(scope="module")
def mouse_lowrank(mouse_dir):
    """Every 20th mouse SNP (515 < N = 1940) and phenotype 1 of the .fam (missing dropped)."""
    ds = read_plink(mouse_dir / "mouse_hs1940").isel(variant=slice(0, None, 20))
    fam = read_fam(mouse_dir / "mouse_hs1940.fam")
    y = pd.Series(fam["pheno"].to_numpy(), index=ds["sample"].to_numpy().astype(str))
    return ds, y[y.notna()]


def test_decomposition_rebuilds_the_grm(mouse_lowrank):
    ds, _ = mouse_lowrank
    op = GenotypeOperator(ds, progress=False)
    dec = decompose_lowrank(op)
    K = np.asarray(grm(ds).K)
    assert dec.rank <= op.P < dec.N
    np.testing.assert_allclose(dec.kernel(), K, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec.U.T @ dec.U, np.eye(dec.rank), rtol=0, atol=1e-9)
    assert op.stats.passes == 2


def test_reml_equals_eigen_path(mouse_lowrank):
    ds, y = mouse_lowrank
    fit_low = bayeslmm.reml_genotypes(ds, y, engine="lowrank", progress=False)
    fit_eig = bayeslmm.reml_genotypes(ds, y, engine="eigen", progress=False)
    assert 0.05 < fit_eig.h2 < 0.95
    # The likelihood is the same function to rounding (|l| ~ 2e3, so ~1e-12) ...
    grid = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(fit_low.model.profile(grid).loglik,
                               fit_eig.model.profile(grid).loglik, rtol=0, atol=1e-8)
    assert abs(fit_low.loglik - fit_eig.loglik) < 1e-8
    # ... and its argmax moves by ~sqrt(2 * 1e-12 * SE^2) ~ 5e-8 at most under such rounding.
    assert abs(fit_low.h2 - fit_eig.h2) < 1e-7
    assert abs(fit_low.h2_se - fit_eig.h2_se) < 1e-7
    # ... and the posterior runs unchanged on the same decomposition.
    p_low = bayeslmm.posterior_h2_quadrature(fit_low, n_grid=401)
    p_eig = bayeslmm.posterior_h2_quadrature(fit_eig, n_grid=401)
    assert abs(float(p_low["mean"]) - float(p_eig["mean"])) < 1e-8


def test_needs_fewer_snps_than_samples():
    from bayeslmm.datasets import load_demo

    op = GenotypeOperator(read_plink(load_demo().bfile), progress=False)
    with pytest.raises(InputError, match="fewer SNPs than samples"):
        decompose_lowrank(op)

