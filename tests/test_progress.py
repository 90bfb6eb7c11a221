"""Progress on a terminal and in a redirected log: plain lines, no carriage returns, and the
sampler's time left estimated only after warm-up, from the post-warm-up rate."""

from __future__ import annotations

import io
from types import SimpleNamespace

from bayeslmm.progress import progress_bar, sampler_lines


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_redirected_bar_writes_plain_lines():
    out = io.StringIO()
    for _ in progress_bar(range(500), total=500, desc="passes", unit="pass", stream=out):
        pass
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3  # the first display and the last, not one per item
    assert lines[-1].startswith("passes") and "500/500" in lines[-1]


def test_terminal_gets_tqdms_own_bar():
    out = _Tty()
    bar = progress_bar(total=10, desc="x", stream=out)
    bar.update(10)
    bar.close()
    assert "\r" in out.getvalue()  # the redrawn bar, as on any terminal


def _chains(done, tuning, total=1000, div=0):
    return [SimpleNamespace(finished_draws=d, total_draws=total, tuning=t, divergences=div)
            for d, t in zip(done, tuning, strict=True)]


def test_sampler_lines_estimate_after_warm_up_only():
    now = {"t": 0.0}
    lines = []
    cb = sampler_lines(interval=10.0, emit=lines.append, clock=lambda: now["t"])
    now["t"] = 1.0
    cb(_chains([100, 80], [True, True]))
    assert len(lines) == 1 and "180/2000 draws (9%)" in lines[0] and "left" not in lines[0]
    now["t"] = 5.0
    cb(_chains([300, 250], [False, True]))  # within the interval: no line
    assert len(lines) == 1
    now["t"] = 20.0
    cb(_chains([600, 600], [False, False]))  # warm-up just ended: no rate yet
    assert "warm-up done in 2/2 chains" in lines[-1] and "left" not in lines[-1]
    now["t"] = 40.0
    cb(_chains([800, 800], [False, False], div=1))
    # 400 draws in 20 s after warm-up: 400 left -> 20 s
    assert lines[-1].endswith("about 20s left") and "2 divergences" in lines[-1]
    now["t"] = 41.0
    cb(_chains([1000, 1000], [False, False]))  # the end is always reported
    assert "2000/2000" in lines[-1] and "left" not in lines[-1]
