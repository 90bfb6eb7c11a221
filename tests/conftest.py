"""Shared fixtures: seeded generators, simulated mixed-model data, the GEMMA mouse data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Keep BLAS single-threaded per worker (pytest-xdist runs one worker per core); this must
# happen before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from peers import gunzip_example  # noqa: E402

MOUSE = ["mouse_hs1940.bed", "mouse_hs1940.bim", "mouse_hs1940.fam"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def simulate(N: int = 300, P: int = 600, h2: float = 0.5, M: int = 2, seed: int = 0,
             Vp: float = 1.0):
    """y = X beta + Z b + e with K = ZZ'/P (notes eq. 43), standardized Z.

    Returns (y, K, X, Z, g) with g = Z b the true genetic values.
    """
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, P)
    G = rng.binomial(2, freq, size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    K = Z @ Z.T / P
    X = np.column_stack([np.ones(N)] + [rng.standard_normal(N) for _ in range(M - 1)])
    beta = np.arange(1, M + 1, dtype=float)
    b = rng.normal(0, np.sqrt(h2 * Vp / P), P)
    g = Z @ b
    y = X @ beta + g + rng.normal(0, np.sqrt((1 - h2) * Vp), N)
    return y, K, X, Z, g


@pytest.fixture
def sim():
    return simulate()


@pytest.fixture(scope="session")
def mouse_dir(tmp_path_factory) -> Path:
    """The GEMMA example mouse fileset (Debian gemma-doc), decompressed once per session."""
    return gunzip_example(MOUSE, tmp_path_factory.mktemp("mouse"))


@pytest.fixture(scope="session")
def gemma_mouse(mouse_dir, tmp_path_factory) -> dict:
    """GEMMA run once per session on the mouse data: kinship by ``-gk 2`` and ``-lmm 1``
    on phenotype 1. Returns paths of the kinship, the association table and the log."""
    from peers import require_tool, run

    gemma = require_tool("gemma")
    out = tmp_path_factory.mktemp("gemma")
    prefix = str(mouse_dir / "mouse_hs1940")
    run([gemma, "-bfile", prefix, "-gk", "2", "-outdir", str(out), "-o", "kin"], cwd=out)
    run([gemma, "-bfile", prefix, "-k", str(out / "kin.sXX.txt"), "-lmm", "1", "-n", "1",
         "-outdir", str(out), "-o", "lmm"], cwd=out)
    return {"kinship": out / "kin.sXX.txt", "assoc": out / "lmm.assoc.txt",
            "log": out / "lmm.log.txt", "dir": out}


def gemma_log_values(path) -> dict:
    """The ``## key = value`` lines of a GEMMA log as floats where they parse."""
    values = {}
    for line in open(path):
        if line.startswith("##") and "=" in line:
            key, _, val = line[2:].partition("=")
            try:
                values[key.strip()] = float(val.split()[0])
            except (ValueError, IndexError):
                pass
    return values
