"""Two runs on one --out prefix (issue 22): the second is refused with one line naming the
prefix and the holder's PID while the first runs; a lock left by a dead process is taken
over with a log line; the lock goes with the run, whether it succeeds, fails or is
stopped by a signal."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError, Interrupted
from bayeslmm.reports.writers import prefix_lock

from helpers import run_cli

DEMO = load_demo()
HOST = socket.gethostname()


def _grm(out: Path) -> int:
    return run_cli(["grm", "--bfile", str(DEMO.bfile), "--out", str(out), "--quiet"])


@pytest.fixture
def live_pid():
    """A process that is alive for the test's duration."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p.pid
    p.kill()
    p.wait()


@pytest.fixture(scope="module")
def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_live_holder_refuses_the_second_run(tmp_path, live_pid, capsys):
    out = tmp_path / "o"
    lock = Path(f"{out}.lock")
    lock.write_text(f"{live_pid} {HOST}\n")
    assert _grm(out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"PID {live_pid}" in err[0] and f"prefix '{out}'" in err[0]
    assert lock.read_text() == f"{live_pid} {HOST}\n"  # the holder's lock is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.lock"]  # nothing written


def test_a_lock_of_another_host_is_respected(tmp_path, dead_pid):
    with pytest.raises(InputError, match=f"PID {dead_pid} on elsewhere"):
        Path(tmp_path / "o.lock").write_text(f"{dead_pid} elsewhere\n")
        with prefix_lock(tmp_path / "o"):
            pass


def test_a_dead_holder_is_taken_over_and_the_lock_released(tmp_path, dead_pid):
    out = tmp_path / "o"
    Path(f"{out}.lock").write_text(f"{dead_pid} {HOST}\n")
    assert _grm(out) == 0
    log = Path(f"{out}.log").read_text()
    assert "taking over" in log and f"PID {dead_pid}" in log
    assert not Path(f"{out}.lock").exists() and Path(f"{out}.grm.bin").exists()


def test_the_lock_is_held_during_the_block_and_removed_after_any_end(tmp_path):
    prefix = tmp_path / "p"
    lock = Path(f"{prefix}.lock")
    with prefix_lock(prefix) as held:
        assert held == lock and lock.read_text().split()[0] == str(__import__("os").getpid())
    assert not lock.exists()
    for exc in (InputError("bad input"), Interrupted(2)):  # an error, a signal
        with pytest.raises(type(exc)):
            with prefix_lock(prefix):
                assert lock.exists()
                raise exc
        assert not lock.exists()
    with prefix_lock(None) as held:  # the demo's folder: no lock
        assert held is None


def test_a_run_without_a_competitor_leaves_no_lock(tmp_path):
    out = tmp_path / "o"
    assert _grm(out) == 0
    assert not Path(f"{out}.lock").exists()
