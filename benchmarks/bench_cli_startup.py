"""Benchmark: how long the command line takes to answer ``--help`` (target in the user-surface
issue: under 0.5 s), against the interpreter's own start-up in the same run, and how long the
full library import takes (what a command pays once it has parsed its flags).

Run: ``python benchmarks/bench_cli_startup.py [--repeat 7]``; prints the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _median_wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    py = sys.executable
    base = _median_wall([py, "-c", "pass"], a.repeat)
    helps = _median_wall([py, "-m", "bayeslmm.cli", "--help"], a.repeat)
    sub = _median_wall([py, "-m", "bayeslmm.cli", "assoc", "--help"], a.repeat)
    lib = _median_wall([py, "-c", "import bayeslmm.association.fixed_variance, "
                        "bayeslmm.estimation.reml"], a.repeat)
    print(f"python -c pass            {base:6.3f} s")
    print(f"bayeslmm --help           {helps:6.3f} s  (target < 0.5 s: "
          f"{'met' if helps < 0.5 else 'NOT met'})")
    print(f"bayeslmm assoc --help     {sub:6.3f} s")
    print(f"import of the library     {lib:6.3f} s  (paid by a command after parsing)")


if __name__ == "__main__":
    main()
