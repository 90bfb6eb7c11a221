"""A run's log and its thread limit: what the command line wraps around every command.

:func:`capture_log` keeps the package's log lines (and Python warnings, e.g. a
:class:`~bayeslmm.errors.SamplingWarning`) for ``PREFIX.log`` and shows them on stderr;
:func:`limit_threads` caps BLAS/OpenMP/numba threads (``--threads``), also usable from Python.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

from bayeslmm.errors import InputError

__all__ = ["RESULTS", "RunLog", "THREAD_VARS", "capture_log", "limit_threads"]

#: the logger of a run's results (the .hsq table, the posterior summary, ...): its lines go to
#: stdout, so `bayeslmm reml ... > result.txt` keeps the result and nothing else
RESULTS = "bayeslmm.results"

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP threads to ``n``: threadpoolctl for the libraries already loaded
    (numpy's BLAS), environment variables for those loaded later (numba, subprocesses)."""
    if n is None:
        yield
        return
    if n < 1:
        raise InputError(f"--threads must be at least 1, got {n}")
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: str(n) for v in THREAD_VARS})
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=n):
            yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


class RunLog(logging.Handler):
    """Keeps the run's log lines, written to ``PREFIX.log`` with the other outputs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the command line shows it: its category and message on one line."""
    return f"{category.__name__}: {' '.join(str(message).split())}"


def _stream(stream, level: int, results: bool) -> logging.Handler:
    h = logging.StreamHandler(stream)
    h.setLevel(level)
    h.setFormatter(logging.Formatter("%(message)s"))
    h.addFilter(lambda r: r.name.startswith(RESULTS) == results)
    return h


@contextlib.contextmanager
def capture_log(quiet: bool) -> Iterator[RunLog]:
    """The package's log (and Python warnings) for the length of a run: all of it kept in a
    :class:`RunLog` for ``PREFIX.log``; the results (logger :data:`RESULTS`) shown on stdout,
    the rest on stderr: the steps unless ``quiet``, warnings and errors always."""
    root = logging.getLogger("bayeslmm")
    buf = RunLog()
    handlers: list[logging.Handler] = [
        buf, _stream(sys.stdout, logging.INFO, results=True),
        _stream(sys.stderr, logging.WARNING if quiet else logging.INFO, results=False)]
    old_level = root.level
    root.setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    # Warnings (e.g. SamplingWarning on R-hat) belong in the run's log, not only on stderr.
    warn_log = logging.getLogger("py.warnings")
    for h in handlers:
        warn_log.addHandler(h)
    logging.captureWarnings(True)
    # one line per warning, "Category: message": not the file, line and Python source line
    # of the call that raised it, which mean nothing to a user of the command
    saved_format = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    try:
        yield buf
    finally:
        warnings.formatwarning = saved_format
        logging.captureWarnings(False)
        for h in handlers:
            root.removeHandler(h)
            warn_log.removeHandler(h)
        root.setLevel(old_level)
