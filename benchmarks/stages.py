"""Where the time of one smear goes: per-stage wall time in one process, paper geometry.

Plans, packs, measures visibility, renders, encodes and annotates smears of the default config
(2592 x 1944, Table 2 counts) one after the other, timing each stage; prints the median and the
mean per smear. The pool's prepared sources are warmed first (as in a long run).

Usage::

    python benchmarks/stages.py [--smears 16] [--pool atlas|FOLDER] [--split-render]

``--split-render`` times the render's parts (background, compositing, optics: the defocus blur
and the compiled pass) instead of the whole; the first smear is checked against ``render``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smears", type=int, default=16)
    ap.add_argument("--pool", default="atlas")
    ap.add_argument("--split-render", action="store_true",
                    help="time background, compositing and optics separately")
    args = ap.parse_args()

    import cv2
    from throughput import bench_config

    from hemosynth.dataset import _Context, make_record, smear_name
    from hemosynth.fileio import atomic_write_bytes, atomic_write_json, encode_image
    from hemosynth.formats import WRITERS
    from hemosynth.parallel import retain_freed_memory, warm_up_kernels
    from hemosynth.pools.store import open_pool
    from hemosynth.smear.plan import plan_smear
    from hemosynth.smear.render import pack_sprites, render, visibility

    warnings.simplefilter("ignore")
    cv2.setNumThreads(1)
    retain_freed_memory()  # as a worker process does
    warm_up_kernels()
    cfg = bench_config(args.smears, args.pool)
    pool = open_pool(cfg.pool)
    root = Path(tempfile.mkdtemp(prefix="hemosynth-stages-"))
    ctx = _Context(cfg, pool, root)
    for i in range(1000, 1012):  # fill the pool's cache of prepared sources
        plan_smear(cfg, pool, i, ctx.census)
    try:  # as a worker process does (code from session 7 on)
        from hemosynth.parallel import settle_garbage_collector

        settle_garbage_collector()
    except ImportError:
        pass

    times: dict[str, list[float]] = {}
    cells = []
    for i in range(args.smears):
        t = time.perf_counter()

        def tick(stage: str) -> None:
            nonlocal t
            now = time.perf_counter()
            times.setdefault(stage, []).append(now - t)
            t = now

        plan, sprites = plan_smear(cfg, pool, i, ctx.census, keep_sprites=True)
        tick("plan (draws, sprite transforms, placement)")
        pack = pack_sprites(plan, sprites)
        tick("pack sprites")
        frac, area, _ = visibility(plan, sprites, pack=pack)
        tick("visibility")
        if args.split_render:
            image = split_render(plan, pack, cfg, tick)
            if i == 0:  # the steps give what render gives (outside the timing)
                assert np.array_equal(image, render(plan, sprites, cfg.render, pack=pack))
                t = time.perf_counter()
        else:
            image = render(plan, sprites, cfg.render, pack=pack)
            tick("render (background, composite, optics)")
        data = encode_image(image, cfg.output.image_format, cfg.output.jpeg_quality)
        tick("encode JPEG")
        record = make_record(plan, smear_name(i, cfg), frac, area, None, cfg.output.box_margin)
        atomic_write_bytes(root / record["file_name"], data)
        for fmt in cfg.output.formats:
            for ls in ctx.sets:
                WRITERS[fmt].write_smear(root, record, ls, cfg.output.min_visible)
        atomic_write_json(root / "records" / f"smear_{i:06d}.json", record, indent=None)
        tick("record, labels, file writes")
        cells.append(len(plan))
    print(f"{args.smears} smears, pool {args.pool}, {np.mean(cells):.0f} cells a smear on average")
    print("stage | median ms | mean ms")
    print("--- | --- | ---")
    total = np.zeros(args.smears)
    for stage, v in times.items():
        total += np.asarray(v)
        print(f"{stage} | {1000 * np.median(v):.1f} | {1000 * np.mean(v):.1f}")
    print(f"total | {1000 * np.median(total):.1f} | {1000 * np.mean(total):.1f}")


def split_render(plan, pack, cfg, tick):
    """``render`` step by step (the default compositing), timing each step with ``tick``."""
    from hemosynth.smear.canvas import apply_optics
    from hemosynth.smear.kernels import composite_pack
    from hemosynth.smear.render import make_background

    rng = np.random.default_rng(plan.render_seed)
    look = plan.appearance
    canvas = make_background(plan.width, plan.height, cfg.render, rng, look, plan.um_per_px)
    tick("render: background")
    composite_pack(canvas, pack)
    tick("render: composite")
    image = apply_optics(canvas, look["optics"], plan.um_per_px, rng)
    tick("render: optics (defocus blur, compiled pass)")
    return image


if __name__ == "__main__":
    main()
