"""A Krylov run stopped by SIGTERM keeps its completed passes in PREFIX.resume/ (the one
stated exception to "nothing left after a signal") and, started again, resumes after them
with the identical result; success removes the folder; --no-resume keeps none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> tuple[Path, Path]:
    """500 samples x 6,000 SNPs with missing calls (a pass takes a few tenths of a second,
    long enough for a signal between passes) and a phenotype."""
    from bed_reader import to_bed

    rng = np.random.default_rng(11)
    N, P = 500, 6000
    G = rng.binomial(2, rng.uniform(0.05, 0.5, P), size=(N, P)).astype(np.float32)
    Z = (G - G.mean(0)) / G.std(0)
    y = Z[:, :300] @ rng.normal(0, np.sqrt(0.5 / 300), 300) + rng.normal(0, np.sqrt(0.5), N)
    G[rng.random(G.shape) < 0.01] = np.nan
    d = tmp_path_factory.mktemp("resume")
    iid = [f"i{k}" for k in range(N)]
    to_bed(d / "g.bed", G, properties={"fid": iid, "iid": iid,
                                       "chromosome": np.repeat(["1", "2"], P // 2)})
    (d / "y.txt").write_text("".join(f"{i} {i} {v:.6f}\n" for i, v in zip(iid, y, strict=True)))
    return d / "g", d / "y.txt"


def _argv(fileset, out: Path, *extra: str) -> list[str]:
    bfile, pheno = fileset
    return [sys.executable, "-m", "bayeslmm.cli", "assoc", "--bfile", str(bfile), "--pheno",
            str(pheno), "--engine", "krylov", "--test", "grammar-gamma", "--probes", "8",
            "--lanczos-steps", "8", "--threads", "1", "--memory", "1", "--out", str(out),
            *extra]


def _run(argv, stop_after: int | None = None, folder: Path | None = None):
    """Run; with ``stop_after``, SIGTERM once ``folder`` holds that many passes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if stop_after is not None:
        t0 = time.monotonic()
        while len(list(folder.glob("pass-*.npz"))) < stop_after:
            assert proc.poll() is None, "the run ended before the signal"
            assert time.monotonic() - t0 < 120
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    return proc.returncode, err


def test_resume_after_sigterm_at_each_stage(fileset, tmp_path):
    ref_rc, ref_err = _run(_argv(fileset, tmp_path / "ref", "--no-resume"))
    assert ref_rc == 0, ref_err
    assert not (tmp_path / "ref.resume").exists() and "Resum" not in ref_err
    # --memory 1 (MiB): the int8 cache does not fit, the passes read the .bed's 2-bit bytes
    assert "2-bit bytes" in (tmp_path / "ref.log").read_text()

    out, folder = tmp_path / "run", tmp_path / "run.resume"
    # REML stage (9 passes: 8 Lanczos steps and the trace), then the association stage
    for stop_after in (3, 11):
        rc, err = _run(_argv(fileset, out), stop_after, folder)
        assert rc == 143, err
        assert err.rstrip().endswith("interrupted by SIGTERM; no output written")
        assert "Traceback" not in err
        # the resume folder, and nothing else of this run
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run")) == \
            ["run.resume"]
        assert len(list(folder.glob("pass-*.npz"))) >= stop_after
    rc, err = _run(_argv(fileset, out))
    assert rc == 0, err
    assert "Resuming from" in err and "completed passes" in err
    assert not folder.exists()
    assert (tmp_path / "run.assoc.tsv").read_bytes() == (tmp_path / "ref.assoc.tsv").read_bytes()
    # the REML fit too (its lines in the log), the counting pass read back as well
    log, ref_log = ((tmp_path / f"{r}.log").read_text() for r in ("run", "ref"))
    fit = [ln for ln in log.splitlines() if ln.startswith(("V(", "logL"))]
    assert len(fit) == 6 and fit == [ln for ln in ref_log.splitlines()
                                     if ln.startswith(("V(", "logL"))]
    assert "passes=0," in log and "decode_passes=0" in log


def test_resume_folder_that_is_not_ours_is_refused(fileset, tmp_path):
    (tmp_path / "x.resume").mkdir()
    (tmp_path / "x.resume" / "notes.txt").write_text("mine\n")
    rc, err = _run(_argv(fileset, tmp_path / "x"))
    last = err.rstrip("\n").split("\n")[-1]
    assert rc == 1 and "Traceback" not in err
    assert last.startswith("bayeslmm: error: ") and "is not a bayeslmm resume folder" in last
    assert (tmp_path / "x.resume" / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.resume"]
