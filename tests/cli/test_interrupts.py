"""SIGINT and SIGTERM stop a run cleanly: exit 130 / 143, one line on stderr, no output and
no staging file; a partial chain is never written (or returned) as a posterior.

The signals go to a real ``bayeslmm`` process at several stages (reading, REML, sampling,
GRM pass, LOCO pass), found from its log lines on stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bayeslmm.datasets import load_demo
from bayeslmm.errors import Interrupted
from bayeslmm.reports.writers import StagedOutputs

DEMO = load_demo()
ROOT = Path(__file__).resolve().parents[2]


def _start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "bayeslmm.cli", *argv], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def _signal_at(proc: subprocess.Popen, startswith: str, sig: int, delay: float) -> str:
    """Send ``sig`` ``delay`` s after the process logs a line starting with ``startswith``;
    return all of its stderr."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(startswith):
            time.sleep(delay)
            proc.send_signal(sig)
            break
    else:
        proc.wait()
        pytest.fail(f"the process ended before '{startswith}':\n{''.join(seen)}")
    seen.append(proc.stderr.read())
    proc.wait(timeout=60)
    return "".join(seen)


def _assert_stopped(proc, err: str, sig: int, out_dir: Path, before: set[str]) -> None:
    assert proc.returncode == 128 + sig, err
    last = err.rstrip("\n").split("\n")[-1]
    assert last == f"bayeslmm: interrupted by {signal.Signals(sig).name}; no output written"
    assert "Traceback" not in err
    # Nothing new, hidden staging files (.x.hsq.*.tmp, .x.*/ folders) included.
    assert {p.name for p in out_dir.iterdir()} == before


@pytest.fixture(scope="module")
def big_bfile(tmp_path_factory) -> Path:
    """600 samples x 16,000 SNPs on 4 chromosomes: each pass over it takes about a second,
    long enough to be hit by a signal."""
    from bed_reader import to_bed

    rng = np.random.default_rng(7)
    N, P = 600, 16000
    G = rng.integers(0, 3, size=(N, P), dtype=np.int8)
    d = tmp_path_factory.mktemp("sig_big")
    to_bed(d / "big.bed", G, count_A1=True,
           properties={"chromosome": np.repeat(["1", "2", "3", "4"], P // 4),
                       "bp_position": np.tile(np.arange(1, P // 4 + 1) * 100, 4)})
    return d / "big"


@pytest.mark.slow
def test_sample_and_grm_loco_stopped_at_each_stage(demo_grm, big_bfile, tmp_path):
    """Four real processes, run side by side to keep the test short: ``sample`` stopped by
    SIGINT inside NUTS and by SIGTERM while reading/fitting; ``grm --loco`` stopped by
    SIGTERM in the first GRM pass and by SIGINT in the LOCO pass (the whole-genome GRM
    already staged). An earlier run's ``.hsq`` must survive untouched."""
    sample = ["sample", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--draws",
              "20000", "--tune", "500", "--chains", "2", "--seed", "1", "--threads", "1"]
    loco = ["grm", "--bfile", str(big_bfile), "--loco", "--threads", "1"]
    cases = [
        (sample, signal.SIGINT, "Priors as used:", 1.0),
        (sample, signal.SIGTERM, "bayeslmm sample", 0.0),
        (loco, signal.SIGTERM, "Read 600 samples", 0.05),
        (loco, signal.SIGINT, "GRM of 600 samples", 0.05),
    ]
    results: dict[int, tuple] = {}
    threads = []
    for k, (argv, sig, stage, delay) in enumerate(cases):
        out = tmp_path / f"run{k}"
        out.mkdir()
        (out / "o.hsq").write_text("earlier\n")
        before = {p.name for p in out.iterdir()}
        proc = _start([*argv, "--out", str(out / "o")])

        def watch(k=k, proc=proc, sig=sig, stage=stage, delay=delay, out=out, before=before):
            try:
                results[k] = (proc, _signal_at(proc, stage, sig, delay), out, before)
            except BaseException as exc:  # re-raised in the test's thread below
                results[k] = exc

        t = threading.Thread(target=watch)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=120)
    for k, (_, sig, stage, _) in enumerate(cases):
        if isinstance(results[k], BaseException):
            raise results[k]
        proc, err, out, before = results[k]
        _assert_stopped(proc, err, sig, out, before)
        assert (out / "o.hsq").read_text() == "earlier\n"
        if stage == "Priors as used:":
            assert "Sampled" not in err  # no claim of a finished chain


def test_sampler_interrupt_raises_not_partial_posterior(monkeypatch):
    """API: Ctrl-C during bayes.sample raises KeyboardInterrupt and cancels the sampler; it
    does not return the NaN-padded partial trace nutpie's blocking call hands back."""
    import types

    import bayeslmm.bayes.sampling as sampling

    state = {}

    class Running:
        def wait(self):
            raise KeyboardInterrupt

        def cancel(self):
            state["cancelled"] = True

    def fake_sample(*a, blocking=True, **k):
        state["blocking"] = blocking
        return Running()

    fake = types.SimpleNamespace(sample=fake_sample, compile_pymc_model=lambda m: None)
    monkeypatch.setitem(sys.modules, "nutpie", fake)
    with pytest.raises(KeyboardInterrupt):
        sampling._sample_nutpie(None, 10, 10, 1, None, 1, False, {}, compiled_logp=False)
    assert state == {"blocking": False, "cancelled": True}


def test_commit_interrupted_restores_earlier_outputs(tmp_path, monkeypatch):
    """A signal in the middle of the commit: the files already renamed are taken back and
    the earlier outputs restored; no staging file is left."""
    (tmp_path / "r.hsq").write_text("old hsq\n")
    st = StagedOutputs()
    st.write_text(tmp_path / "r.hsq", "new hsq\n")
    st.write_text(tmp_path / "r.indi.blp", "new blp\n")
    st.write_text(tmp_path / "r.log", "new log\n")
    real = os.replace
    calls = []

    def flaky(a, b):
        calls.append((a, b))
        if Path(b).name == "r.indi.blp":
            raise Interrupted(signal.SIGTERM)
        return real(a, b)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(Interrupted):
        st.commit()
    monkeypatch.setattr(os, "replace", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.hsq"]
    assert (tmp_path / "r.hsq").read_text() == "old hsq\n"


def test_interrupted_exit_status():
    assert Interrupted(signal.SIGINT).exit_status == 130
    assert Interrupted(signal.SIGTERM).exit_status == 143
    assert str(Interrupted(signal.SIGTERM)) == "interrupted by SIGTERM"
    assert not isinstance(Interrupted(2), (Exception, KeyboardInterrupt))


def test_signals_raise_in_process(tmp_path):
    """The handler turns a signal into Interrupted in the main thread and is removed after."""
    from bayeslmm.cli.interrupts import signals_raise

    old = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as exc, signals_raise():
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        time.sleep(5)
    assert exc.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == old


def test_signal_whose_exception_a_library_replaced_still_exits_128_plus_signal(
        monkeypatch, tmp_path, capsys):
    """numpy's string functions call back into Python and turn an exception raised inside the
    callback (the signal handler's) into their own TypeError: the run must still end as
    stopped by the signal, with no output. Without a signal, the same TypeError is a bug and
    is raised as one."""
    from bayeslmm.cli import app as cli
    from bayeslmm.cli import commands, interrupts

    out = tmp_path / "o"

    def command(args, staged, signalled):
        staged.write_text(f"{out}.hsq", "partial\n")
        if signalled:
            interrupts._raise(signal.SIGTERM, None)
        raise TypeError("result array type does not match underlying function")

    argv = ["grm", "--bfile", str(DEMO.bfile), "--out", str(out)]
    monkeypatch.setattr(interrupts, "_received", [])
    with interrupts.signals_raise():
        monkeypatch.setattr(commands, "cmd_grm", lambda a, s: command(a, s, signalled=False))
        with pytest.raises(TypeError):
            cli._main(argv)
    assert list(tmp_path.iterdir()) == []

    def replaced(args, staged):
        try:
            command(args, staged, signalled=True)
        except Interrupted as exc:  # what numpy does to the handler's exception
            raise TypeError("result array type does not match underlying function") from exc

    def swallowed(args, staged):
        # Python ignores an exception raised in a weakref callback: the run goes on, and only
        # the recorded signal can still stop it before its files are committed.
        staged.write_text(f"{out}.hsq", "complete\n")
        try:
            interrupts._raise(signal.SIGINT, None)
        except Interrupted:
            pass
        return out

    monkeypatch.setattr(interrupts, "_received", [])
    with interrupts.signals_raise():
        monkeypatch.setattr(commands, "cmd_grm", swallowed)
        with pytest.raises(SystemExit) as stop:
            cli._main(argv)
    assert stop.value.code == 130 and list(tmp_path.iterdir()) == []
    capsys.readouterr()

    monkeypatch.setattr(interrupts, "_received", [])
    with interrupts.signals_raise():
        monkeypatch.setattr(commands, "cmd_grm", replaced)
        with pytest.raises(SystemExit) as stop:
            cli._main(argv)
    assert stop.value.code == 143
    err = capsys.readouterr().err
    assert err.rstrip("\n").split("\n")[-1] == ("bayeslmm: interrupted by SIGTERM; "
                                                "no output written")
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_each_run_starts_unsignalled(monkeypatch):
    """A signal recorded by an earlier run in this process (the tests run the command line
    in-process) does not stop the next run; both directions."""
    from bayeslmm.cli import interrupts

    monkeypatch.setattr(interrupts, "_received", [signal.SIGTERM])
    assert interrupts.received() == signal.SIGTERM
    with interrupts.signals_raise():
        assert interrupts.received() is None
