"""Benchmark of ``pools build``: time and peak memory of a full PBC build, and the
segmentation table on wbc-masks.

Usage::

    python benchmarks/pools.py [--data ../shared/data] [--out /tmp/pool-bench] [--workers 2]
                               [--max-per-class N] [--size-range CLASS=MIN:MAX]
                               [--skip-build] [--skip-seg]

Prints the build report, wall time, peak memory (RSS of this process plus its workers), and
a table of mean IoU / boundary F-score per wbc-masks dataset and class.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024  # ru_maxrss is in KiB on Linux


def bench_build(data: Path, out: Path, workers: int, max_per_class: int | None,
                size_ranges: list[str]) -> None:
    from hemosynth.pools.build import Source, build_pool, parse_size_ranges

    t0 = time.perf_counter()
    report = build_pool(
        [Source(data / "pbc", "crops"), Source(data / "pbc-fields", "annotated")],
        out, workers=workers, max_per_class=max_per_class, overwrite=True,
        size_ranges=parse_size_ranges(size_ranges) if size_ranges else None,
    )
    dt = time.perf_counter() - t0
    print(report.to_text())
    print(f"\nbuild: {dt:.1f} s wall on {workers} workers; peak RSS (self + largest worker) "
          f"{_peak_mb():.0f} MB")
    for name, s in report.scales.items():
        ref = {"pbc": 74.0, "pbc-fields": 74.0}.get(name)
        if s.rbc_diameter_px and ref:
            print(f"scale {name}: RBC {s.rbc_diameter_px:.1f} px vs README {ref:.0f} px "
                  f"({100 * (s.rbc_diameter_px / ref - 1):+.1f}%)")


def bench_segmentation(data: Path) -> None:
    from hemosynth.pools.segeval import evaluate_wbc_masks, summarize

    print("\nsegmentation on wbc-masks (whole cell = mask > 0); 'kept': only the masks that "
          "pass the pool's no-cytoplasm filter")
    print(f"{'dataset':<10} {'class':<22} {'n':>4} {'IoU':>6} {'bF':>6} {'kept':>5} "
          f"{'IoU kept':>8} {'bF kept':>7}")
    for ds in ("Dataset 1", "Dataset 2"):
        t0 = time.perf_counter()
        scores = evaluate_wbc_masks(data / "wbc-masks" / ds)
        rows, kept = summarize(scores), summarize(scores, kept_only=True)
        for cls, (n, iou, bf) in rows.items():
            nk, iouk, bfk = kept.get(cls, (0, float("nan"), float("nan")))
            print(f"{ds:<10} {cls:<22} {n:>4} {iou:>6.3f} {bf:>6.3f} {nk:>5} {iouk:>8.3f} "
                  f"{bfk:>7.3f}")
        # the segmenter's design options were picked on the even images of Dataset 2 (in
        # sorted file order); the odd ones are the held-out figure
        for half, label in ((0, "all, even (tuning)"), (1, "all, odd (held out)")):
            n, iou, bf = summarize(scores[half::2])["all"]
            print(f"{ds:<10} {label:<22} {n:>4} {iou:>6.3f} {bf:>6.3f}")
        print(f"{ds:<10} ({time.perf_counter() - t0:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hemosynth-pool-bench"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-per-class", type=int, default=None)
    ap.add_argument("--size-range", action="append", default=None,
                    help="as pools build --size-range (default: Platelet=1.5:4.5, the "
                         "evaluation pool's)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-seg", action="store_true")
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        sys.exit(f"{a.data}: shared data not found")
    if not a.skip_build:
        bench_build(a.data, a.out, a.workers, a.max_per_class,
                    a.size_range or ["Platelet=1.5:4.5"])
    if not a.skip_seg:
        bench_segmentation(a.data)


if __name__ == "__main__":
    main()
