"""Progress for long steps, readable both on a terminal and in a redirected log.

On a terminal a step shows tqdm's bar. When stderr is a file or a pipe (a cluster job's log,
``2> run.log``), a bar's carriage returns make one unreadable line; there the same step
writes a plain line every :data:`PLAIN_INTERVAL` seconds (and at its end) with the count, the
rate and the time left. :func:`sampler_lines` does the same for nutpie's chains, whose own
bar needs a terminal: draws done, the warm-up, divergences, and an estimate of the time left
once warm-up is over (warm-up draws cost more than later ones, so no estimate is made from
them).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["PLAIN_INTERVAL", "is_terminal", "progress_bar", "sampler_lines"]

#: seconds between two plain progress lines (``BAYESLMM_PROGRESS_INTERVAL`` overrides it)
PLAIN_INTERVAL = float(os.environ.get("BAYESLMM_PROGRESS_INTERVAL", 30.0))

log = logging.getLogger("bayeslmm.progress")


def is_terminal(stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", leave: bool = True, stream=None) -> Any:
    """tqdm's bar on a terminal; elsewhere a tqdm whose every display is one plain line,
    at most one per :data:`PLAIN_INTERVAL` seconds (and the last one at the end)."""
    from tqdm import tqdm
    from tqdm.auto import tqdm as auto

    stream = sys.stderr if stream is None else stream
    if is_terminal(stream):
        return auto(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream)

    class _Lines(tqdm):
        def display(self, msg=None, pos=None):  # a line, never a carriage return
            self.fp.write(self.__str__().strip() + "\n")
            self.fp.flush()
            return True

    class _Text:  # tqdm's own writes are only cursor moves and blank lines here: dropped
        def __init__(self, s):
            self.s = s

        def write(self, text: str) -> None:
            if text.strip():
                self.s.write(text)

        def flush(self) -> None:
            self.s.flush()

    return _Lines(iterable, total=total, desc=desc, unit=unit, file=_Text(stream), ascii=True,
                  mininterval=PLAIN_INTERVAL, maxinterval=PLAIN_INTERVAL, disable=False,
                  dynamic_ncols=False, ncols=100)


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def sampler_lines(*, interval: float | None = None,
                  emit: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.perf_counter) -> Callable[[Sequence], None]:
    """A ``progress_callback`` for nutpie: every ``interval`` seconds one line such as
    ``sampling: 2400/8000 draws (30%), warm-up done in 4/4 chains, 0 divergences, 35s
    elapsed, about 1m10s left``. The time left is the post-warm-up draws still to come at the
    post-warm-up rate so far, and is left out until every chain has finished its warm-up."""
    interval = PLAIN_INTERVAL if interval is None else interval
    emit = emit or log.info
    t0 = clock()
    state: dict[str, float | None] = {"last": None, "tuned_at": None, "tuned_draws": None}

    def callback(chains: Sequence) -> None:
        now = clock()
        done = sum(int(c.finished_draws) for c in chains)
        total = sum(int(c.total_draws) for c in chains)
        tuned = sum(not c.tuning for c in chains)
        finished = done >= total
        if tuned == len(chains) and state["tuned_at"] is None:
            state["tuned_at"], state["tuned_draws"] = now, done
        last = state["last"]
        if not finished and last is not None and now - last < interval:
            return
        state["last"] = now
        div = sum(int(c.divergences) for c in chains)
        line = (f"sampling: {done}/{total} draws ({100 * done / max(total, 1):.0f}%), "
                f"warm-up done in {tuned}/{len(chains)} chains, {div} divergences, "
                f"{_fmt(now - t0)} elapsed")
        t1, d1 = state["tuned_at"], state["tuned_draws"]
        if not finished and t1 is not None and done > d1 and now > t1:
            rate = (done - d1) / (now - t1)
            line += f", about {_fmt((total - done) / rate)} left"
        emit(line)

    return callback
