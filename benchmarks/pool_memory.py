"""Memory of a large pool: open a 20,000-sprite pool and plan smears from it.

Writes a pool of N sprites (discs about 74-150 px across, spread over the 18 classes) to a
temporary folder, then, in a fresh process, opens it, plans and renders smears that touch
thousands of distinct sprites, and reports the peak RSS against the RSS after importing
hemosynth. The loader reads sprites lazily into a bounded cache (256 MB by default).

Usage::

    python benchmarks/pool_memory.py [--sprites 20000] [--smears 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _make(path: str, n: int) -> None:
    from hemosynth.pools.store import write_pool
    from hemosynth.taxonomy import POOL_CLASSES

    rng = np.random.default_rng(0)

    def sprites():
        for i in range(n):
            cls = POOL_CLASSES[i % len(POOL_CLASSES)]
            d = int(rng.integers(70, 150)) if cls != "RBC" else int(rng.integers(70, 80))
            s = np.zeros((d + 4, d + 4, 4), np.uint8)
            cv2.circle(s, (d // 2 + 2, d // 2 + 2), d // 2,
                       (*tuple(int(v) for v in rng.integers(50, 230, 3)), 255), -1)
            s[:, :, :3] = np.clip(s[:, :, :3] + rng.integers(0, 20, s[:, :, :3].shape), 0, 255)
            yield s, cls, 7.5 / 74, {"kind": "synthetic-benchmark"}

    write_pool(path, sprites(), name="big")


def _use(path: str, smears: int) -> tuple[float, float, int]:
    import warnings

    from hemosynth.config import GenerationConfig
    from hemosynth.dataset import make_smear
    from hemosynth.pools.store import open_pool
    from hemosynth.smear.counts import Census

    warnings.simplefilter("ignore")
    base = _rss_mb()
    pool = open_pool(path)
    cfg = GenerationConfig(pool=path)
    census = Census(cfg, set(pool.classes))
    used = set()
    for i in range(smears):
        _, rec = make_smear(cfg, pool, i, census)
        used.update(c["sprite"] for c in rec["cells"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return base, peak, len(used)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sprites", type=int, default=20000)
    ap.add_argument("--smears", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hemosynth-pool-"))
    try:
        t0 = time.perf_counter()
        _make(str(tmp / "pool"), args.sprites)
        size = sum(p.stat().st_size for p in (tmp / "pool").rglob("*")) / 2**20
        t1 = time.perf_counter()
        with mp.get_context("spawn").Pool(1) as p:
            base, peak, used = p.apply(_use, (str(tmp / "pool"), args.smears))
        print(f"pool: {args.sprites} sprites, {size:.0f} MB on disk, written in {t1 - t0:.0f} s")
        print(f"after import: {base:.0f} MB RSS; peak while planning and rendering "
              f"{args.smears} full smears ({used} distinct sprites): {peak:.0f} MB RSS")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
