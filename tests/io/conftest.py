"""Shared fixtures of the io tests: the GEMMA example mouse fileset and plink1.9."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GEMMA_EXAMPLE = Path("/usr/share/doc/gemma/example")


def need_peer(ok: bool, what: str) -> None:
    """Skip (or fail when BAYESLMM_REQUIRE_PEERS is set) if a peer resource is absent."""
    if ok:
        return
    if os.environ.get("BAYESLMM_REQUIRE_PEERS"):
        pytest.fail(f"{what} missing")
    pytest.skip(f"{what} not installed")


def run_plink(args: list[str], cwd: Path) -> None:
    """Run plink1.9 with ``--threads 2`` in ``cwd``; fail with its log on error."""
    exe = shutil.which("plink1.9")
    need_peer(exe is not None, "plink1.9")
    res = subprocess.run(
        [exe, *args, "--threads", "2"], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:
        pytest.fail(f"plink1.9 {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")


@pytest.fixture(scope="session")
def plink():
    """``plink(args, cwd)``: run plink1.9 (skips/fails the test if it is absent)."""
    return run_plink


@pytest.fixture(scope="session")
def mouse_bfile(tmp_path_factory) -> Path:
    """GEMMA's mouse_hs1940 PLINK fileset (1940 samples, 12226 SNPs) gunzipped into
    a temporary directory; returns the prefix."""
    need_peer((GEMMA_EXAMPLE / "mouse_hs1940.bed.gz").exists(), "gemma-doc example data")
    d = tmp_path_factory.mktemp("mouse")
    for ext in ("bed", "bim", "fam"):
        with gzip.open(GEMMA_EXAMPLE / f"mouse_hs1940.{ext}.gz", "rb") as src:
            with open(d / f"mouse_hs1940.{ext}", "wb") as dst:
                shutil.copyfileobj(src, dst)
    return d / "mouse_hs1940"


@pytest.fixture(scope="session")
def plink_mouse_grm(mouse_bfile: Path) -> Path:
    """``plink1.9 --make-grm-bin --nonfounders`` on the mouse fileset; returns the
    prefix of the GCTA files.  ``--nonfounders`` makes plink estimate allele
    frequencies from all samples (every mouse has parents in the .fam, so without
    it plink has no founder and uses 0.5 for every SNP)."""
    out = mouse_bfile.parent / "plink_nf"
    run_plink(
        ["--bfile", str(mouse_bfile), "--make-grm-bin", "--nonfounders", "--out", str(out)],
        mouse_bfile.parent,
    )
    return out
