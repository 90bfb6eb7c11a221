"""Shared fixtures of the Bayesian tests: small simulated data, its REML fit, the mouse GRM."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import simulate  # tests/conftest.py is on sys.path (see there)


def to_values(model, natural: dict) -> dict:
    """Point in the sampler's (transformed) space from natural parameter values."""
    out = {}
    for rv in model.free_RVs:
        v = np.asarray(natural[rv.name], dtype=np.float64)
        value_var = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        out[value_var.name] = (v if tr is None
                               else np.asarray(tr.forward(v, *rv.owner.inputs).eval()))
    return out


@pytest.fixture(scope="session")
def small():
    """N = 120, P = 300, h2 = 0.5: y, K, X, Z, g."""
    return simulate(N=120, P=300, h2=0.5, seed=11)


@pytest.fixture(scope="session")
def sim300():
    import bayeslmm

    y, K, X, Z, g = simulate(N=300, P=600, h2=0.5, seed=3)
    return y, K, X, Z, bayeslmm.reml(y, K, X)


@pytest.fixture(scope="session")
def mouse(mouse_dir):
    """Phenotype 1 of the GEMMA mouse example, K = ZZ'/P from standardized genotypes."""
    bed_reader = pytest.importorskip("bed_reader")
    with bed_reader.open_bed(mouse_dir / "mouse_hs1940.bed") as bed:
        G = bed.read(dtype="float32")
    fam = np.loadtxt(mouse_dir / "mouse_hs1940.fam", dtype=str)
    pheno = np.array([np.nan if v in ("NA", "-9") else float(v) for v in fam[:, 5]])
    keep = np.isfinite(pheno)
    G = G[keep].astype(np.float64)
    mean = np.nanmean(G, axis=0)
    sd = np.nanstd(G, axis=0)
    ok = sd > 0
    Z = (G[:, ok] - mean[ok]) / sd[ok]
    Z[np.isnan(Z)] = 0.0
    K = Z @ Z.T / Z.shape[1]
    return pheno[keep], K
