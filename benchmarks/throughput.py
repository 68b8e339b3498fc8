"""Full generation throughput against the JPEG-encoding floor, side by side in one run.

Generates N smears of the paper's geometry (2592 x 1944, Table 2 counts, default pool and
settings) with 1 and with K worker processes, and measures the floor: the time to only encode N
images of that size as JPEG (quality 95), on 1 process and on K processes. Two floors: a textured
test card (flat grey with a random row every 7 rows; the floor of earlier sessions) and the
generator's own smears (which encode about twice as fast). Peak memory (RSS) per worker is read
from the operating system. The disk cache of prepared sprites (``hemosynth.pools.prepared``) is
filled before the timing (``--prepared warm``, as in any run after the first with the pool) or
switched off (``--prepared off``: each worker prepares what it meets, as before the cache). The
package's bytecode is written first, as installing it does (:func:`compile_bytecode`).

Usage::

    python benchmarks/throughput.py [--smears 200] [--workers 2[,4,...]] [--pool atlas|FOLDER]
                                    [--prepared warm|off] [--reps 1] [--no-single]

``--no-single`` skips the 1-process floor and the 1-worker run (and the speed-ups): for
before/after runs on a lent machine that compare the many-worker ratio only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: the images the floor encodes: a textured test card, or smears made by the generator
IMAGES: dict[str, list[np.ndarray]] = {}


def textured_card() -> np.ndarray:
    """Flat grey with a random row every 7 rows (harder to encode than a smear)."""
    rng = np.random.default_rng(0)
    img = np.full((1944, 2592, 3), 220, np.uint8)
    img[::7] = rng.integers(0, 255, img[::7].shape, dtype=np.uint8)  # some texture
    return img


def bench_config(n: int, pool_spec: str):
    """The default config for ``n`` smears from ``pool_spec``, without the subtypes the pool
    lacks (a real pool has fewer than 17 classes)."""
    from hemosynth.config import GenerationConfig
    from hemosynth.pools.store import open_pool
    from hemosynth.taxonomy import POOL_CLASSES, RBC

    cfg = GenerationConfig(count=n, pool=pool_spec)
    have = set(open_pool(cfg.pool).classes)
    missing = [c for c in POOL_CLASSES if c != RBC and c not in have]
    return cfg.replace(**{"subtypes.exclude": missing}) if missing else cfg


def compile_bytecode() -> None:
    """Write the bytecode (``__pycache__``) of the hemosynth package being timed and of every
    module a run imports (numpy, numba, OpenCV's Python part...), as installing them with pip
    does. Where ``PYTHONDONTWRITEBYTECODE`` is set (this project's dev machine and the lent
    machines), Python never writes it on import: the fork server compiled hemosynth's modules
    from source in every run (about 70 ms before the first worker), and on the lent machines,
    whose environment holds no bytecode for numpy and numba, theirs too (importing numpy took
    0.2-0.3 s there). A folder that is not writable is left as it is."""
    import compileall
    import subprocess
    import sys

    import hemosynth

    compileall.compile_dir(Path(hemosynth.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import hemosynth.dataset, hemosynth.parallel\n"
                    "from hemosynth.parallel import warm_up_kernels\nwarm_up_kernels()"],
                   env=env, check=True)


def warm_prepared(pool_spec: str) -> None:
    """Put every sprite of the pool in the disk cache of prepared sprites (a no-op for code
    from before the cache, session 7)."""
    import warnings

    from hemosynth.pools.store import open_pool
    from hemosynth.smear.plan import SourceSprites

    warnings.simplefilter("ignore")
    cfg = bench_config(1, pool_spec)
    pool = open_pool(cfg.pool)
    sources = SourceSprites(pool, cfg, {})
    if not hasattr(sources, "shaped"):
        return
    for i in range(len(pool)):
        sources.shaped(i)
        sources.bound(i)
    if hasattr(pool, "pack_prepared"):  # as the end of a generated dataset does (session 10)
        pool.pack_prepared()


def generated_smears(k: int = 4, pool_spec: str = "atlas") -> list[np.ndarray]:
    """The first ``k`` images of the benchmarked dataset (default config, ``pool_spec``)."""
    import warnings

    from hemosynth.dataset import make_smear
    from hemosynth.pools.store import open_pool

    warnings.simplefilter("ignore")
    cfg = bench_config(k, pool_spec)
    pool = open_pool(cfg.pool)
    return [make_smear(cfg, pool, i)[0] for i in range(k)]


def _encode_many(n: int, kind: str) -> float:
    import cv2

    from hemosynth.fileio import encode_image

    cv2.setNumThreads(1)
    imgs = IMAGES[kind]
    t0 = time.perf_counter()
    for i in range(n):
        encode_image(imgs[i % len(imgs)], "jpg", 95)
    return time.perf_counter() - t0


def floor_seconds(n: int, workers: int, kind: str = "card") -> float:
    """Wall time to encode ``n`` 2592 x 1944 JPEGs of ``IMAGES[kind]`` on ``workers``
    processes."""
    if workers == 1:
        return _encode_many(n, kind)
    import cv2

    # the processes are forked from this one, which may have run OpenCV's thread pool (making
    # the smear floor's images): with one thread they never touch the pool's state, which a
    # fork leaves locked
    cv2.setNumThreads(1)
    parts = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
        ex.submit(int, 0).result()  # start the workers before timing
        t0 = time.perf_counter()
        list(ex.map(_encode_many, parts, [kind] * workers))
        return time.perf_counter() - t0


def _peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of process ``pid`` in MB, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _watch_workers(stop, peaks: dict[int, float]) -> None:
    """Sample the peak RSS of every hemosynth worker process until ``stop`` is set."""
    me = os.getpid()
    while not stop.is_set():
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"multiprocessing" in cmd or b"forkserver" in cmd:
                peaks[int(d)] = max(peaks.get(int(d), 0.0), _peak_rss_mb(int(d)))
        stop.wait(0.2)


def _generate(n: int, workers: int, out: str, pool_spec: str) -> tuple[float, float]:
    """Run in a fresh process: returns (seconds, peak RSS in MB of the largest worker)."""
    import threading
    import warnings

    from hemosynth.dataset import generate_dataset
    from hemosynth.pools.store import open_pool

    try:
        from hemosynth.parallel import retain_freed_memory
    except ImportError:  # code from before session 6, in a before/after run
        def retain_freed_memory() -> bool:
            return False
    try:
        from hemosynth.parallel import settle_garbage_collector
    except ImportError:  # code from before session 7
        def settle_garbage_collector() -> None:
            pass

    warnings.simplefilter("ignore")
    retain_freed_memory()  # as the generate command does
    if workers == 1:  # one core, OpenCV's threads included (the 1-process floor uses one)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cfg = bench_config(n, pool_spec)
    open_pool(cfg.pool)  # build or load the atlas cache outside the timing
    settle_garbage_collector()  # as the generate command does
    peaks: dict[int, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_workers, args=(stop, peaks), daemon=True)
    if workers > 1:
        watcher.start()
    t0 = time.perf_counter()
    generate_dataset(cfg, out, workers=workers)
    dt = time.perf_counter() - t0
    stop.set()
    if workers == 1:
        return dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    watcher.join()
    return dt, max(peaks.values(), default=float("nan"))


def generate_seconds(n: int, workers: int, pool_spec: str = "atlas") -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="hemosynth-bench-"))
    try:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
            return ex.submit(_generate, n, workers, str(tmp / "ds"), pool_spec).result()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smears", type=int, default=200)
    ap.add_argument("--workers", default="2",
                    help="worker count, or several separated by commas (e.g. 2,4,8,16)")
    ap.add_argument("--pool", default="atlas", help="atlas (default) or a pool folder")
    ap.add_argument("--prepared", choices=["warm", "off"], default="warm",
                    help="warm (default): every sprite of the pool is in the disk cache of "
                    "prepared sprites before the timing, as in any run after the first; off: "
                    "the cache is switched off, every worker prepares the sprites it meets")
    ap.add_argument("--reps", type=int, default=1,
                    help="repeat every measurement this many times; the table shows medians")
    ap.add_argument("--no-single", action="store_true",
                    help="skip the 1-process floor and the 1-worker run")
    args = ap.parse_args()
    n = args.smears
    ks = [int(k) for k in str(args.workers).split(",") if int(k) > 1]
    compile_bytecode()
    if args.prepared == "off":
        os.environ["HEMOSYNTH_PREPARED_CACHE"] = "0"  # inherited by the generating processes
    else:
        warm_prepared(args.pool)

    IMAGES["card"] = [textured_card()]
    IMAGES["smears"] = generated_smears(pool_spec=args.pool)
    every = ks if args.no_single else [1, *ks]
    reps = []  # each repetition measures every floor and every run again
    for _ in range(args.reps):
        floors = {k: (floor_seconds(n, k), floor_seconds(n, k, "smears")) for k in every}
        runs = {k: generate_seconds(n, k, args.pool) for k in every}
        reps.append((floors, runs))
    med = statistics.median
    floors = {k: (med(r[0][k][0] for r in reps), med(r[0][k][1] for r in reps))
              for k in every}
    runs = {k: (med(r[1][k][0] for r in reps), max(r[1][k][1] for r in reps))
            for k in every}
    print(f"{n} smears of 2592x1944 px, paper counts, pool {args.pool}; JPEG quality 95; "
          f"prepared-sprite cache {args.prepared}"
          + (f"; medians of {args.reps} repetitions" if args.reps > 1 else ""))
    print("run | seconds | smears/s | x floor (card, same processes) "
          "| x floor (smears, same processes) | peak RSS per worker MB")
    print("--- | --- | --- | --- | --- | ---")
    for k, (fc, fs) in floors.items():
        procs = "1 process" if k == 1 else f"{k} processes"
        print(f"JPEG encode only (test card), {procs} | {fc:.2f} | {n / fc:.1f} | 1.0 | - | -")
        print(f"JPEG encode only (generated smears), {procs} | {fs:.2f} | {n / fs:.1f} | - "
              "| 1.0 | -")
    for k, (g, m) in runs.items():
        fc, fs = floors[k]
        who = "1 worker" if k == 1 else f"{k} workers"
        print(f"generate, {who} | {g:.2f} | {n / g:.2f} | {g / fc:.2f} | {g / fs:.2f} | {m:.0f}")
    for k in ks:
        gk = runs[k][0]
        speed = "" if args.no_single else f"speed-up 1 -> {k} workers: {runs[1][0] / gk:.2f}x; "
        print(f"\n{speed}{k}-worker generation is "
              f"{gk / floors[k][0]:.2f}x the {k}-process floor of the test card and "
              f"{gk / floors[k][1]:.2f}x that of the generated smears")
    if args.reps > 1:  # each repetition's own ratio: floor and run measured minutes apart
        for k in every:
            ratios = [r[1][k][0] / r[0][k][0] for r in reps]
            print(f"x card floor, {k} worker(s), by repetition: "
                  f"{', '.join(f'{x:.2f}' for x in ratios)} (median {med(ratios):.2f})")


if __name__ == "__main__":
    main()
