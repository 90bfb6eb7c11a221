"""SIGINT and SIGTERM turned into :class:`~bayeslmm.errors.Interrupted`.

A command line run that is stopped must end like a failed one: its staged files deleted, no
posterior made of a partial chain, one line on stderr and the shell's exit status (130 for
SIGINT, 143 for SIGTERM). Python's default SIGTERM kills the process without running any
cleanup, and its default SIGINT raises a :class:`KeyboardInterrupt` that samplers catch to
return what they have drawn so far; :func:`signals_raise` replaces both, for the duration of
a ``with`` block, by a handler raising :class:`~bayeslmm.errors.Interrupted`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from bayeslmm.errors import Interrupted

__all__ = ["SIGNALS", "received", "signals_raise"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The signal that stopped the run: its exception can be replaced on its way up (numpy's string
# callbacks make it a TypeError) or lost (Python ignores it in a weakref callback, a __del__).
_received: list[int] = []


def received() -> int | None:
    """The signal number that stopped this process's run, or None if none arrived."""
    return _received[0] if _received else None


def _raise(signum: int, frame) -> None:
    # The first signal stops the run; later ones are ignored so that the cleanup it starts
    # (deleting staged files, restoring replaced outputs) is never itself cut short.
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    _received.append(int(signum))
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`~bayeslmm.errors.Interrupted`.

    Does nothing outside the main thread (Python delivers signals to the main thread only,
    and ``signal.signal`` is refused elsewhere). The previous handlers are restored on exit.
    """
    _received.clear()  # a run starts unsignalled (an earlier run in this process may not)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
