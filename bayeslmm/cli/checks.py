"""Checks of a command line run made before any work and before its files are committed.

* :func:`check_args`: every number and the output prefix, before a file is read, so that a
  typo costs no time (``--seed -1``, ``--draws 0``, ``--out results/``...).
* :func:`input_files`: the run's input files, which no output may replace
  (:func:`bayeslmm.reports.writers.check_overwrites`) and which are never stale outputs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from bayeslmm.bayes import families  # noqa: F401  (the table the flags are checked against)
from bayeslmm.data import SEED_MAX
from bayeslmm.errors import InputError
from bayeslmm.registry import COMMAND_OUTPUTS, GENOTYPE_FORMATS, check_applicable, genotype_source
from bayeslmm.reports.writers import check_output_prefix

__all__ = ["COMMAND_OUTPUTS", "SEED_MAX", "check_args", "input_files"]

def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise InputError(msg)


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
               ) -> None:
    """Check the numbers and the output prefix of a parsed command line.

    Raises
    ------
    InputError
        Naming the flag, the value given and what is allowed.
    """
    a = vars(args)
    for name in ("draws", "chains", "probes", "lanczos_steps"):
        if a.get(name) is not None:
            _need(a[name] >= 1, f"--{name.replace('_', '-')} must be at least 1, got {a[name]}")
    if a.get("tune") is not None:
        _need(a["tune"] >= 0, f"--tune must be 0 or more, got {a['tune']}")
    for name in ("seed", "probe_seed"):
        if a.get(name) is not None:
            _need(0 <= a[name] <= SEED_MAX, f"--{name.replace('_', '-')} must be an integer "
                                            f"from 0 to 2^32 - 1 = {SEED_MAX}, got {a[name]}")
    if a.get("threads") is not None:
        _need(a["threads"] >= 1, f"--threads must be at least 1, got {a['threads']}")
    if a.get("mpheno") is not None:
        for k in np.atleast_1d(a["mpheno"]):
            _need(k >= 1, f"--mpheno is 1-based and must be at least 1, got {k}")
    if a.get("maf") is not None:
        _need(0.0 <= a["maf"] <= 0.5, f"--maf must be in [0, 0.5], got {a['maf']}")
    if a.get("geno") is not None:
        _need(0.0 <= a["geno"] <= 1.0, f"--geno must be in [0, 1], got {a['geno']}")
    if a.get("lkj_eta") is not None:
        _need(np.isfinite(a["lkj_eta"]) and a["lkj_eta"] > 0,
              f"--lkj-eta must be a finite number above 0, got {a['lkj_eta']}")
    if a.get("scheduler") is not None:
        _need(re.fullmatch(r"([a-z]+://)?[\w.\-\[\]:]+:\d+", a["scheduler"]) is not None,
              f"--scheduler must be a dask scheduler address such as tcp://host:8786, got "
              f"{a['scheduler']!r}")
    # compare's REML side is transformed to the threshold model's liability scale with K
    _need(not (a.get("command") == "compare" and a.get("model") == "threshold"
               and a.get("prevalence") is None),
          "compare --model threshold needs --prevalence K: the threshold model's h2 is on the "
          "liability scale, and K transforms REML's to it")
    check_output_prefix(args.out, input_files(args), COMMAND_OUTPUTS.get(args.command, ()),
                        folder=args.command == "demo")
    if parser is not None:  # flags that apply to none of the chosen model, engine, traits
        sub = parser._subparsers._group_actions[0].choices[args.command]
        mp = a.get("mpheno")
        check_applicable({d for d, v in a.items() if v != sub.get_default(d)},
                         model=a.get("model") or "linear", engine=a.get("engine"),
                         traits=len(mp) if isinstance(mp, list) else 1,
                         genotypes=genotype_source(a) is not None or args.command == "grm")


def input_files(args: argparse.Namespace) -> list[Path]:
    """Every existing input file of a parsed command line (PLINK and GRM filesets expanded,
    the GRMs an ``--mgrm`` file lists included)."""
    a = vars(args)
    files: list[Path] = []
    src = genotype_source(a)
    if src is not None:
        files += GENOTYPE_FORMATS[src[0]].files(src[1], **src[2])
    grms = [a["grm"]] if a.get("grm") else []
    if a.get("mgrm"):
        files.append(Path(a["mgrm"]))
        try:
            with open(a["mgrm"], encoding="utf-8", errors="replace") as fh:
                grms += [ln.strip() for ln in fh if ln.strip()]
        except OSError:
            pass  # reported by the reader
    for g in grms:
        files += [Path(f"{g}{s}") for s in COMMAND_OUTPUTS["grm"]]
    for name in ("pheno", "covar", "qcovar", "keep", "remove", "extract", "exclude", "h2",
                 "sumstats"):
        if isinstance(a.get(name), str):  # ldsc's --h2 is a file, ldpred's a number
            files.append(Path(a[name]))
    return [f for f in files if f.is_file()]
