"""Checks of a command-line run before any work and before its files are committed
(bayeslmm.cli.checks, the commit of bayeslmm.reports.writers.StagedOutputs)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path

import pytest

from bayeslmm.cli.app import build_parser, main
from bayeslmm.cli.checks import SEED_MAX, check_args
from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.reports.writers import StagedOutputs, stale_outputs

DEMO = load_demo()


def run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), err.getvalue()


@pytest.fixture(scope="module")
def grm(demo_grm) -> Path:
    return demo_grm


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["sample", "--grm", "g", "--pheno", "p", *extra])


@pytest.mark.parametrize("flags", [("--seed", "0"), ("--seed", str(SEED_MAX)),
                                   ("--draws", "1"), ("--tune", "0"), ("--chains", "1"),
                                   ("--maf", "0.5"), ("--geno", "0")])
def test_edge_values_accepted(flags, tmp_path):
    check_args(_args(*flags, "--out", str(tmp_path / "x")))


@pytest.mark.parametrize("flags, msg", [
    (("--seed", "-1"), "--seed must be"), (("--seed", str(SEED_MAX + 1)), "--seed must be"),
    (("--draws", "0"), "--draws must"), (("--tune", "-1"), "--tune must"),
    (("--chains", "0"), "--chains must"), (("--threads", "0"), "--threads must"),
    (("--mpheno", "0"), "--mpheno"), (("--maf", "0.51"), "--maf"), (("--geno", "-0.1"), "--geno")])
def test_bad_values_rejected(flags, msg, tmp_path):
    with pytest.raises(InputError, match=msg):
        check_args(_args(*flags, "--out", str(tmp_path / "x")))


def test_bad_values_rejected_before_any_file_is_read(tmp_path):
    # --grm and --pheno do not exist: the --seed error comes first, nothing is written
    code, err = run(["sample", "--grm", "nope", "--pheno", "nope", "--seed", "-5", "--out",
                     str(tmp_path / "x")])
    assert code == 1 and err == "bayeslmm: error: --seed must be an integer from 0 to " \
        f"2^32 - 1 = {SEED_MAX}, got -5\n"
    assert list(tmp_path.iterdir()) == []


def test_syntax_errors_are_one_line(tmp_path):
    code, err = run(["sample", "--grm", "g", "--pheno", "p", "--seed", "1.5"])
    assert code == 2 and err.count("\n") == 1 and "invalid int value: '1.5'" in err


@pytest.mark.parametrize("out, msg", [("", "empty"), ("{d}", "is a folder"),
                                      ("{d}/", "ends in '/'"), ("{d}/no/x", "does not exist")])
def test_bad_out(out, msg, tmp_path):
    with pytest.raises(InputError, match=msg):
        check_args(_args("--out", out.format(d=tmp_path)))


def test_out_equal_to_an_input_is_refused_and_the_input_kept(grm, tmp_path):
    pheno = tmp_path / "y.txt"
    pheno.write_bytes(DEMO.pheno.read_bytes())
    code, err = run(["reml", "--grm", str(grm), "--pheno", str(pheno), "--out", str(pheno),
                     "--quiet"])
    assert code == 1 and "is the input file" in err
    hsq_named = tmp_path / "z.hsq"  # an input that this run's output would replace
    hsq_named.write_bytes(DEMO.pheno.read_bytes())
    code, err = run(["reml", "--grm", str(grm), "--pheno", str(hsq_named), "--out",
                     str(tmp_path / "z"), "--quiet"])
    assert code == 1 and "which is the input file" in err
    assert hsq_named.read_bytes() == DEMO.pheno.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.txt", "z.hsq"]


def test_stale_outputs_reported_in_the_log(grm, tmp_path):
    out = str(tmp_path / "r")
    assert run(["blup", "--grm", str(grm), "--bfile", str(DEMO.bfile), "--pheno",
                str(DEMO.pheno), "--out", out, "--quiet"])[0] == 0
    assert "earlier run" not in Path(f"{out}.log").read_text()
    assert run(["reml", "--grm", str(grm), "--pheno", str(DEMO.pheno), "--out", out,
                "--quiet"])[0] == 0
    log = Path(f"{out}.log").read_text()
    assert "2 file(s) with prefix" in log and "r.indi.blp" in log and "r.snp.blp" in log
    assert "r.hsq," not in log  # rewritten by this run: not stale


def test_stale_outputs_function(tmp_path):
    for name in ("p.hsq", "p.snp.blp", "p.loco-chr1.grm.bin", "p.exact.assoc.tsv",
                 "p.txt", "px.hsq", "p.log"):
        (tmp_path / name).write_text("")
    stale = stale_outputs(tmp_path / "p", [tmp_path / "p.hsq", tmp_path / "p.log"])
    assert [f.name for f in stale] == ["p.exact.assoc.tsv", "p.loco-chr1.grm.bin",
                                       "p.snp.blp"]
    # an input named like an output (--grm P --out P) is not stale
    assert stale_outputs(tmp_path / "p", [tmp_path / "p.hsq", tmp_path / "p.log"],
                         inputs=stale) == []


def test_commit_refuses_a_folder_destination_and_writes_nothing(tmp_path):
    (tmp_path / "r.indi.blp").mkdir()
    (tmp_path / "r.hsq").write_text("old\n")
    st = StagedOutputs()
    st.write_text(tmp_path / "r.hsq", "new\n")
    st.write_text(tmp_path / "r.indi.blp", "new\n")
    with pytest.raises(InputError, match="a folder of that name"):
        st.commit()
    assert (tmp_path / "r.hsq").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.hsq", "r.indi.blp"]


def test_commit_failure_midway_restores_everything(tmp_path, monkeypatch):
    for n in ("a", "b", "c"):
        (tmp_path / n).write_text(f"old {n}\n")
    st = StagedOutputs()
    for n in ("a", "b", "c"):
        st.write_text(tmp_path / n, f"new {n}\n")
    real = os.replace

    def failing(src, dst):
        if Path(dst).name == "c" and not str(src).endswith(".old"):  # the new file only
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(PermissionError):
        st.commit()
    monkeypatch.setattr(os, "replace", real)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a": "old a\n", "b": "old b\n", "c": "old c\n"}
    st2 = StagedOutputs()
    st2.write_text(tmp_path / "a", "new a\n")
    st2.commit()
    assert (tmp_path / "a").read_text() == "new a\n"


# ----------------------------------------------------------------------------- flags that apply
_APPLY = [
    # (argv after the command's own inputs, error fragment or None when it applies)
    (["sample", "--link", "logit"], "--link does not apply"),
    (["sample", "--model", "threshold", "--link", "logit"], None),
    (["sample", "--lkj-eta", "2"], "--lkj-eta does not apply"),
    (["sample", "--mpheno", "1", "2", "--lkj-eta", "2"], None),
    (["reml", "--mpheno", "1", "2", "--prevalence", "0.1"], "--prevalence does not apply"),
    (["reml", "--prevalence", "0.1"], None),
    (["sample", "--mpheno", "1", "2", "--model", "threshold"], "is for one trait"),
    (["reml", "--engine", "eigen", "--prevalence", "0.1"], "not applied by --engine"),
    (["reml", "--engine", "eigen", "--grm-cutoff", "0.05"], "not applied by --engine"),
    (["reml", "--engine", "krylov", "--mpheno", "1", "2"], "fits one trait"),
    (["reml", "--probes", "5"], "--probes does not apply"),
    (["reml", "--engine", "krylov", "--probes", "5"], None),
    (["reml", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler does not apply"),
    (["reml", "--engine", "eigen", "--scheduler", "tcp://127.0.0.1:8786"], None),
    (["reml", "--engine", "eigen", "--scheduler", "not a url"], "dask scheduler address"),
    (["reml", "--engine", "krylov", "--probe-seed", "-1"], "--probe-seed must be"),
    (["sample", "--mpheno", "1", "2", "--lkj-eta", "inf"], "--lkj-eta must be"),
]


@pytest.mark.parametrize("argv,error", _APPLY)
def test_a_flag_applies_or_is_refused_before_any_work(argv, error, tmp_path):
    """Both directions: the flag that applies passes the checks, the one that would be
    silently ignored is an error naming it (the registry's table of families and engines)."""
    parser = build_parser()
    cmd, rest = argv[0], argv[1:]
    args = parser.parse_args([cmd, "--bfile", "x", "--pheno", "p", *rest,
                              "--out", str(tmp_path / "o")])
    if error is None:
        check_args(args, parser)
    else:
        with pytest.raises(InputError, match=error):
            check_args(args, parser)


def test_snp_selections_need_genotypes_and_chr_flags_combine(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["reml", "--grm", "g", "--pheno", "p", "--extract", "s.txt",
                              "--out", str(tmp_path / "o")])
    with pytest.raises(InputError, match="--extract selects SNPs"):
        check_args(args, parser)
    args = parser.parse_args(["reml", "--grm", "g", "--pheno", "p", "--keep", "k.txt",
                              "--out", str(tmp_path / "o")])
    check_args(args, parser)  # --keep selects samples: it applies with a GRM
    args = parser.parse_args(["grm", "--bfile", "b", "--chr", "1", "--chr", "2", "--out",
                              str(tmp_path / "o")])
    assert args.chr == ["1", "2"]  # combined, as PLINK does, not the last one
