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

from helpers import simulate  # noqa: E402, F401  (re-exported for fixtures)
from peers import gunzip_example  # noqa: E402

MOUSE = ["mouse_hs1940.bed", "mouse_hs1940.bim", "mouse_hs1940.fam"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


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
