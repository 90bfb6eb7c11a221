"""The ``bayeslmm`` command: one command of :mod:`bayeslmm.cli.commands` run as a
transaction. The run's log goes to stderr and ``PREFIX.log``; bad input ends it with one line
and status 1, SIGINT/SIGTERM with 130/143, and either way no output file is written (they are
staged and renamed into place at the very end). Bugs are not caught: they show a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bayeslmm.cli.interrupts import received, signals_raise
from bayeslmm.cli.parser import PROG, build_parser
from bayeslmm.errors import BayesLMMError, InputError, Interrupted
from bayeslmm.reports.run_log import capture_log, limit_threads

__all__ = ["build_parser", "main"]

log = logging.getLogger("bayeslmm.cli")


def split_mpheno(args: argparse.Namespace) -> None:
    """``--mpheno k1 k2 ...``: keep the list in ``mpheno_all`` and the first column in
    ``mpheno`` (what the one-trait commands read)."""
    mp = getattr(args, "mpheno", None)
    if not isinstance(mp, list):
        return
    args.mpheno_all = mp
    args.mpheno = mp[0]
    if len(mp) > 1 and args.command not in ("reml", "sample"):
        raise InputError(f"--mpheno takes one column with '{args.command}'; several columns "
                         "(the multi-trait model) work with reml and sample")
    if len(set(mp)) != len(mp):
        raise InputError(f"--mpheno lists a column twice: {mp}")


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        msg = f"{exc.strerror or exc}: '{exc.filename}'"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())  # one line, whatever the message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayeslmm`` command; returns 0, or exits with status 1 on a user error
    (one line on stderr, no traceback), 2 on a command-line syntax error, and 130 / 143
    when stopped by SIGINT / SIGTERM (one line, no output file)."""
    with signals_raise():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    # Figures are written to files: no display is needed or wanted. Set here, by the
    # program, not by importing the library (which leaves a user's backend alone).
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    staged = None
    try:
        # the library is imported after parsing, so that --help and syntax errors are instant
        from bayeslmm.cli import commands
        from bayeslmm.cli.checks import check_args, input_files
        from bayeslmm.reports.writers import (
            StagedOutputs,
            check_overwrites,
            log_stale_outputs,
            prefix_lock,
        )

        check_args(args, parser)  # before any file is read: a typo costs no time
        with limit_threads(args.threads), capture_log(args.quiet) as buf, \
                prefix_lock(None if args.command == "demo" else args.out):  # demo: a folder
            t0 = time.perf_counter()
            log.info("bayeslmm %s", " ".join(sys.argv[1:] if argv is None else argv))
            split_mpheno(args)
            staged = StagedOutputs()
            prefix = getattr(commands, f"cmd_{args.command}")(args, staged)
            inputs = input_files(args)
            log_stale_outputs(prefix, [*staged.destinations, Path(f"{prefix}.log")], inputs)
            log.info("Finished in %.1f s.", time.perf_counter() - t0)
            staged.write_text(f"{prefix}.log", "\n".join(buf.lines) + "\n")
            check_overwrites(staged.destinations, inputs)
            if received() is not None:  # its exception was lost (see interrupts.py)
                raise Interrupted(received())
            staged.commit()
    except Interrupted as exc:
        if staged is not None:
            staged.abort()
        parser.exit(exc.exit_status, f"{PROG}: {exc}; no output written\n")
    except KeyboardInterrupt:  # outside the main thread, where no handler is installed
        if staged is not None:
            staged.abort()
        parser.exit(130, f"{PROG}: interrupted; no output written\n")
    except (BayesLMMError, OSError) as exc:
        if staged is not None:
            staged.abort()
        _exit_if_signalled(parser)
        parser.exit(1, f"{PROG}: error: {_error_line(exc)}\n")
    except BaseException:
        if staged is not None:
            staged.abort()  # no partial output after a bug either
        _exit_if_signalled(parser)
        raise
    return 0


def _exit_if_signalled(parser) -> None:
    """Exit 128 + signal when a signal stopped the run but its exception reached us as
    another one (a library that catches exceptions raised in its callbacks replaces it)."""
    signum = received()
    if signum is not None:
        exc = Interrupted(signum)
        parser.exit(exc.exit_status, f"{PROG}: {exc}; no output written\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
