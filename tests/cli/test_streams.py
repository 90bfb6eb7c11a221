"""What a user sees on the terminal: results on stdout, steps and warnings on stderr,
``--quiet`` silencing the steps only; help that names every default; a parser that starts
without the numerical stack; the command a GCTA/GEMMA user meant."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bayeslmm.cli.parser import build_parser
from bayeslmm.datasets import load_demo

from helpers import run_cli

DEMO = load_demo()


@pytest.mark.parametrize("quiet", [False, True])
def test_reml_result_on_stdout_steps_on_stderr(demo_grm, tmp_path, capsys, quiet):
    argv = ["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--out",
            str(tmp_path / "r")]
    assert run_cli(argv + ["--quiet"] * quiet) == 0
    out, err = capsys.readouterr()
    assert "V(G)/Vp" in out and "logL" in out  # the .hsq table: the result
    assert "V(G)/Vp" not in err
    if quiet:
        assert err == ""
    else:
        assert "bayeslmm reml" in err  # the step lines, not the result
    log = (tmp_path / "r.log").read_text()  # the file keeps both
    assert "V(G)/Vp" in log and "bayeslmm reml" in log


def test_quiet_keeps_warnings_on_stderr(demo_grm, tmp_path, capsys):
    # a stale file from an earlier run is a warning: --quiet must not hide it
    (tmp_path / "r.indi.blp").write_text("old\n")
    argv = ["reml", "--grm", str(demo_grm), "--pheno", str(DEMO.pheno), "--out",
            str(tmp_path / "r"), "--quiet"]
    assert run_cli(argv) == 0
    out, err = capsys.readouterr()
    assert "earlier run" in err and "earlier run" not in out


def test_assoc_top_hits_on_stdout(tmp_path, capsys):
    argv = ["assoc", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--out",
            str(tmp_path / "a"), "--quiet"]
    assert run_cli(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out[out.index("strongest associations"):].splitlines()
    header = lines[1].split()
    assert header[:3] == ["variant", "chrom", "pos"] and header[-1] == "p"
    p = [float(line.split()[-1]) for line in lines[2:12]]
    assert p == sorted(p) and len(p) == 10


def _flags(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for a in sub._actions:
                    yield name, a


def test_every_flag_with_a_default_shows_it():
    parser = build_parser()
    missing = []
    for cmd, a in _flags(parser):
        if a.nargs == 0 or a.default in (None, [], argparse.SUPPRESS):
            continue
        help_text = parser._subparsers._group_actions[0].choices[cmd].format_help()
        block = help_text[help_text.index(f"\n  {a.option_strings[-1]}") + 1:]
        block = block[:block.find("\n  -") % (len(block) + 1)]  # up to the next flag
        if "default" not in block:
            missing.append(f"{cmd} {a.option_strings[-1]}")
    assert not missing, f"flags whose help does not show their default: {missing}"


def test_help_default_check_sees_a_missing_default():
    # the other direction: a flag without its default in the help is caught by the search
    p = argparse.ArgumentParser(formatter_class=argparse.HelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="draws")
    text = p.format_help()
    assert "default" not in text[text.index("\n  --draws"):]


def test_parser_imports_no_numerical_stack():
    # `bayeslmm --help` must not pay for numpy/pandas/xarray/scipy (seconds); benchmark:
    # benchmarks/bench_cli_startup.py
    code = ("import sys, bayeslmm.cli.app as a; a.build_parser().format_help(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'xarray', 'scipy', 'pymc', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, bayeslmm; bayeslmm.reml; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "True"  # the lazy top level still gives the library on use


@pytest.mark.parametrize("argv, meant", [(["--reml", "--grm", "mouse"], "'bayeslmm reml ...'"),
                                         (["-gk", "1", "-bfile", "m"], "'bayeslmm grm ...'"),
                                         (["--mlma", "--grm", "g"], "'bayeslmm assoc ...'")])
def test_gcta_habits_name_the_command(argv, meant, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert meant in err and len(err.strip().splitlines()) == 1


def test_plain_syntax_error_has_no_habit_hint(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reml", "--grm"])
    err = capsys.readouterr().err
    assert "commands are words" not in err and "--help" in err


def test_warnings_are_one_line_without_python_source(capsys):
    import warnings

    from bayeslmm.reports.run_log import capture_log

    def warn():
        warnings.warn("R-hat 1.2 for h2:\n  rerun with more draws", UserWarning, stacklevel=1)

    with capture_log(False) as buf:
        warn()
    err = capsys.readouterr().err
    assert buf.lines == ["UserWarning: R-hat 1.2 for h2: rerun with more draws"]
    assert err.strip() == buf.lines[0] and "warnings.warn(" not in err
    # outside a run, Python's own format (file, line, source) is left as it was
    assert "test_streams.py" in warnings.formatwarning("m", UserWarning, __file__, 1)


def test_lazy_top_level_keeps_functions_over_same_named_submodules():
    # `bayeslmm.blup` is the function even after the submodule bayeslmm.blup is imported
    code = ("import bayeslmm.blup, bayeslmm.formula, bayeslmm, sys; "
            "print(callable(bayeslmm.blup), callable(bayeslmm.fit), "
            "type(sys.modules['bayeslmm.blup']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "module"]
