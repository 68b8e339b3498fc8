"""What a worker pays to open a pool and read its prepared sprites, in fresh processes.

Every worker process opens the pool (manifest, a check of the sprite files) and reads the
prepared form of each sprite it meets (premultiplied, edge-shaped, and its alpha circle) from
the disk cache of :mod:`hemosynth.pools.prepared`. This times both for one pool, in a fresh
process each repetition, after one untimed process has filled the cache (and packed it, where
the code packs): opening the pool, then asking for every sprite's two prepared forms.

Usage::

    python benchmarks/pool_load.py [--pool atlas|FOLDER] [--reps 3]

Run it with ``PYTHONPATH=<checkout>/src`` for another version of the code.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load(pool_spec: str) -> tuple[int, float, float]:
    """In a fresh process: (sprites, seconds to open the pool, seconds to read every prepared
    sprite)."""
    import time
    import warnings

    from throughput import bench_config

    from hemosynth.pools.store import PoolStore, open_pool
    from hemosynth.smear.plan import SourceSprites

    warnings.simplefilter("ignore")
    cfg = bench_config(1, pool_spec)
    folder = open_pool(cfg.pool).path  # the atlas too is a pool folder (in the cache)
    t0 = time.perf_counter()
    pool = PoolStore(folder)  # as a worker opens it
    t1 = time.perf_counter()
    sources = SourceSprites(pool, cfg, {})
    for i in range(len(pool)):
        sources.shaped(i)
        sources.bound(i)
    return len(pool), t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", default="atlas", help="atlas (default) or a pool folder")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from throughput import warm_prepared

    warm_prepared(args.pool)  # fills (and packs) the cache, untimed
    ctx = mp.get_context("spawn")
    runs = []
    for _ in range(args.reps):
        with ctx.Pool(1) as p:
            runs.append(p.apply(_load, (args.pool,)))
    n = runs[0][0]
    med = statistics.median
    print(f"pool {args.pool}: {n} sprites; medians of {args.reps} fresh processes")
    print("step | ms | ms per sprite")
    print("--- | --- | ---")
    print(f"open the pool | {1e3 * med(r[1] for r in runs):.1f} | "
          f"{1e3 * med(r[1] for r in runs) / n:.3f}")
    print(f"read every prepared sprite (2 forms) | {1e3 * med(r[2] for r in runs):.1f} | "
          f"{1e3 * med(r[2] for r in runs) / n:.3f}")


if __name__ == "__main__":
    main()
