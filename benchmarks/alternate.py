"""Before and after on a noisy machine: two source trees timed alternately, in fresh processes.

A shared machine's speed drifts by 20-30% within minutes, so two versions timed one after the
other can differ by more than the change between them. This runs full generation (as
``throughput.py`` times it: ``generate_seconds``) for source tree A, then B, then A again, and
so on, and prints each run and the medians. Each tree's bytecode, kernels and prepared sprites
are made first, untimed.

Usage::

    python benchmarks/alternate.py OLD/src NEW/src [--smears 100] [--workers 2] [--reps 3]
                                   [--pool atlas|FOLDER]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: run in a fresh process with PYTHONPATH set to one source tree: prints "seconds rss_mb"
_ONE = """
import sys
sys.path.insert(0, {here!r})
from throughput import generate_seconds
if __name__ == "__main__":
    s, rss = generate_seconds({n}, {workers}, {pool!r})
    print(s, rss)
"""


#: run in a fresh process with PYTHONPATH set to one source tree, before the timed runs: the
#: kernels compiled and the pool's prepared sprites in the disk cache, as for throughput.py
_WARM = """
import sys
sys.path.insert(0, {here!r})
from throughput import compile_bytecode, warm_prepared
from hemosynth.parallel import warm_up_kernels
if __name__ == "__main__":
    compile_bytecode()
    warm_up_kernels()
    warm_prepared({pool!r})
"""


def warm(src: str, pool: str) -> None:
    """Compile the kernels of ``src`` and fill its disk cache of prepared sprites."""
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    subprocess.run([sys.executable, "-c", _WARM.format(here=str(HERE), pool=pool)], env=env,
                   capture_output=True, text=True, check=True)


def run_once(src: str, n: int, workers: int, pool: str) -> tuple[float, float]:
    """Seconds and peak RSS per worker (MB) of one generation with the code in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    code = _ONE.format(here=str(HERE), n=n, workers=workers, pool=pool)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="the first source tree (a checkout's src folder)")
    ap.add_argument("new", help="the second source tree")
    ap.add_argument("--smears", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pool", default="atlas")
    args = ap.parse_args()
    times: dict[str, list[float]] = {"old": [], "new": []}
    print(f"{args.smears} smears, {args.workers} workers, pool {args.pool}")
    print("run | tree | seconds | peak RSS per worker MB")
    print("--- | --- | --- | ---")
    for src in (args.old, args.new):
        warm(src, args.pool)
    for r in range(args.reps):
        for name, src in (("old", args.old), ("new", args.new)):
            s, rss = run_once(src, args.smears, args.workers, args.pool)
            times[name].append(s)
            print(f"{r + 1} | {name} ({src}) | {s:.2f} | {rss:.0f}", flush=True)
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"\nmedian: old {old:.2f} s, new {new:.2f} s ({(new - old) / old:+.0%})")


if __name__ == "__main__":
    main()
