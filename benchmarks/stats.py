"""Benchmark: statistics of 2,500 default-size smears from their records (target < 30 s, 2 cores).

Generating 2,500 full-size smears takes tens of minutes, and statistics never read images, so
the benchmark generates a few default smears (2592 x 1944 px, paper settings, about 600 cells
each) and replicates their records to 2,500 (``records/smear_NNNNNN.json`` and a manifest with
``count = 2500``). It then times ``hemosynth.stats.dataset_stats`` end to end (records ->
measures -> JSON + Markdown, with and without the PNG plots) for 1 and 2 workers.

Usage::

    python benchmarks/stats.py [--count 2500] [--seeds 10] [--workers 1 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path


def build(root: Path, count: int, seeds: int) -> int:
    """Generate ``seeds`` default smears into ``root/src`` and replicate to ``root/ds``."""
    from hemosynth import GenerationConfig, generate_dataset
    from hemosynth.dataset import DensityWarning

    src, ds = root / "src", root / "ds"
    cfg = GenerationConfig().replace(**{"count": seeds, "output.formats": ["coco"],
                                        "output.label_sets": ["main"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DensityWarning)
        generate_dataset(cfg, src, workers=2)
    (ds / "records").mkdir(parents=True)
    cells = 0
    for i in range(count):
        rec = json.loads((src / "records" / f"smear_{i % seeds:06d}.json").read_text())
        rec["index"] = i
        cells += len(rec["cells"])
        (ds / "records" / f"smear_{i:06d}.json").write_text(json.dumps(rec))
    man = json.loads((src / "manifest.json").read_text())
    man["count"] = count
    man["config"]["count"] = count
    man.pop("smears", None)
    (ds / "manifest.json").write_text(json.dumps(man))
    return cells


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2500)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", type=Path, help="build the dataset here and keep it")
    args = ap.parse_args()

    from hemosynth.stats import dataset_stats

    tmp = Path(tempfile.mkdtemp(prefix="hemosynth-bench-stats-"))
    root = args.keep or tmp
    try:
        t = time.perf_counter()
        if (root / "ds" / "manifest.json").is_file():
            cells = sum(len(json.loads(p.read_text())["cells"])
                        for p in sorted((root / "ds" / "records").glob("*.json")))
        else:
            cells = build(root, args.count, args.seeds)
        print(f"dataset: {args.count} smears, {cells} cells ({cells / args.count:.0f}/smear); "
              f"built in {time.perf_counter() - t:.1f} s")
        print("wall = elapsed seconds; cpu = CPU seconds of this process and its workers (on a "
              "shared machine cpu / workers is the wall time 2 idle cores would need)")
        print(f"{'workers':>8} {'plots':>6} {'wall s':>8} {'cpu s':>8} {'cpu/workers':>12}")
        for w in args.workers:
            for plots in (False, True):
                c0 = _cpu()
                t = time.perf_counter()
                dataset_stats(root / "ds", tmp / f"out{w}{int(plots)}", workers=w, plots=plots)
                dt = time.perf_counter() - t
                cpu = _cpu() - c0
                print(f"{w:>8} {'yes' if plots else 'no':>6} {dt:>8.2f} {cpu:>8.2f} "
                      f"{cpu / w:>12.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
