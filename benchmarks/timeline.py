"""Where a many-worker run's wall time goes: start, steady state, tail and end.

Runs ``generate_dataset`` (paper geometry, default pool) with K workers in a fresh process and
notes when each smear is reported done (its ``progress`` callback). Prints, in seconds from the
call: the first smear done, 25/50/75/100 % done, the return (the dataset-wide files written
after the last smear), and the steady rate between 25 % and 75 %; then what an ideal run at
that rate would take (every worker busy from the first worker's start to the end), so that the
start, the tail (workers idle while the last smears finish) and the end can be read off.

Usage::

    python benchmarks/timeline.py [--smears 200] [--workers 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from throughput import bench_config, compile_bytecode, warm_prepared


def _run(n: int, workers: int, out: str) -> list[float]:
    """In a fresh process: the times (s from the call) of each progress report, then the
    return's."""
    import warnings

    from hemosynth.dataset import generate_dataset
    from hemosynth.parallel import retain_freed_memory, settle_garbage_collector
    from hemosynth.pools.store import open_pool

    warnings.simplefilter("ignore")
    retain_freed_memory()
    cfg = bench_config(n, "atlas")
    open_pool(cfg.pool)
    settle_garbage_collector()
    marks: list[float] = []
    t0 = time.perf_counter()
    generate_dataset(cfg, out, workers=workers,
                     progress=lambda done, total: marks.append(time.perf_counter() - t0))
    marks.append(time.perf_counter() - t0)
    return marks[1:]  # the first report (0 done) is before any work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smears", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n, k = args.smears, args.workers
    compile_bytecode()
    warm_prepared("atlas")
    rows = []
    for _ in range(args.reps):
        tmp = Path(tempfile.mkdtemp(prefix="hemosynth-timeline-"))
        try:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
                marks = ex.submit(_run, n, k, str(tmp / "ds")).result()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        done, end = marks[:-1], marks[-1]
        q = [done[max(0, int(round(f * n)) - 1)] for f in (0.25, 0.5, 0.75, 1.0)]
        rate = (0.5 * n) / (q[2] - q[0])  # smears a second in the steady state
        rows.append((done[0], *q, end, rate, n / rate))
    print(f"{n} smears, {k} workers, paper geometry, pool atlas; seconds from the call; "
          f"medians of {args.reps} runs")
    print("first done | 25 % | 50 % | 75 % | all done | returned | steady smears/s "
          "| ideal at that rate | lost (returned - ideal)")
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(" | ".join(f"{v:.2f}" for v in med[:7]) + f" | {med[7]:.2f} | {med[5] - med[7]:.2f}")
    for r in rows:
        print("run: " + ", ".join(f"{v:.2f}" for v in r))


if __name__ == "__main__":
    main()
