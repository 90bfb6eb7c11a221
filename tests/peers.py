"""Access to the peer tools and the public example data sets the tests compare against.

A peer that is missing skips the test on a developer machine; with BAYESLMM_REQUIRE_PEERS=1
(set by .ci/run) it fails instead, so CI cannot go green by skipping every comparison.
"""

from __future__ import annotations

import gzip
import importlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GEMMA_EXAMPLE = Path("/usr/share/doc/gemma/example")
BOLT_EXAMPLE = Path("/usr/share/doc/bolt-lmm/examples")


def missing(what: str) -> None:
    """Skip, or fail when peers are required, because `what` is not available."""
    if os.environ.get("BAYESLMM_REQUIRE_PEERS"):
        pytest.fail(f"peer not available but BAYESLMM_REQUIRE_PEERS is set: {what}")
    pytest.skip(f"peer not available: {what}")


def require_tool(name: str) -> str:
    """Path of an executable peer (gemma, plink1.9, Rscript, bolt), or skip/fail."""
    path = shutil.which(name)
    if path is None:
        missing(f"the '{name}' executable (Debian package)")
    return path


def require_module(name: str):
    """Import a Python peer (glimix_core, statsmodels), or skip/fail."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python package '{name}'")


def gunzip_example(names: list[str], dest: Path, source: Path = GEMMA_EXAMPLE) -> Path:
    """Decompress example files ``name.gz`` from `source` into `dest` (once) and return dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        out = dest / name
        if out.exists():
            continue
        gz = source / f"{name}.gz"
        plain = source / name
        if gz.exists():
            with gzip.open(gz, "rb") as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        elif plain.exists():
            shutil.copy(plain, out)
        else:
            missing(f"{gz} (Debian package gemma-doc)")
    return dest


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a peer command; on failure show its output in the test report."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def r_env_with_boost(tmp_path) -> dict:
    """Environment for Rscript in which rstan finds Boost (and compiles without -g).

    Debian's r-cran-bh (1.74.0-2) ships BH without its ``include`` directory (the headers
    are libboost-dev's, in /usr/include), and rstan then stops with "Boost not found". A
    private copy of BH whose ``include`` points at /usr/include, first on R_LIBS, fixes it
    for this process only.
    """
    import os
    import shutil
    import subprocess

    env = dict(os.environ)
    probe = subprocess.run(["Rscript", "-e", "cat(system.file('include', 'boost', "
                            "package = 'BH'), find.package('BH', quiet = TRUE))"],
                           capture_output=True, text=True)
    parts = probe.stdout.split()
    if len(parts) == 1 and os.path.isdir("/usr/include/boost"):
        lib = tmp_path / "rlib"
        lib.mkdir()
        shutil.copytree(parts[0], lib / "BH", symlinks=True)
        (lib / "BH" / "include").symlink_to("/usr/include")
        env["R_LIBS"] = f"{lib}:{env['R_LIBS']}" if env.get("R_LIBS") else str(lib)
    # R's default C++ flags carry -g: debug information for Stan's templates costs a quarter
    # of each model's compilation (71 s against 55 s for the probit brms model), and the
    # tests never debug the C++. Same optimisation level, so sampling is unchanged.
    r_exe = shutil.which("R")
    flags = [] if r_exe is None else subprocess.run(
        [r_exe, "CMD", "config", "CXX17FLAGS"], capture_output=True, text=True).stdout.split()
    if "-g" in flags:
        makevars = tmp_path / "Makevars.nodebug"
        opt = " ".join(f for f in flags if f != "-g")
        makevars.write_text("".join(f"{v} = {opt}\n" for v in
                                    ("CXXFLAGS", "CXX11FLAGS", "CXX14FLAGS", "CXX17FLAGS")))
        env["R_MAKEVARS_USER"] = str(makevars)
    return env
