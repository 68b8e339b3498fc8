"""Copy a pool without the red cells that the pools build's ``inclusions`` filter rejects.

Session 3 used it to make ``pools/pbc-v3`` from ``pools/pbc-v2`` for the train-on-synthetic
runs (docs/benchmarks.md): the test (:func:`hemosynth.pools.quality.stained_spots` against
:data:`~hemosynth.pools.quality.MAX_SPOT_SHARE` of the cell) is the build's, applied to the
stored sprites (their alpha > 128 as the mask) instead of to crop and segmentation.

Usage::

    python benchmarks/pool_drop_inclusions.py pools/pbc-v2 pools/pbc-v3
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from hemosynth import open_pool
    from hemosynth.pools import quality
    from hemosynth.pools.store import write_pool

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="pool folder to read")
    ap.add_argument("dst", help="pool folder to write")
    args = ap.parse_args()
    pool = open_pool(args.src)
    dropped = []

    def sprites():
        for i, rec in enumerate(pool.records):
            rgba = pool.load(i)
            if rec.cls == "RBC":
                mask = rgba[..., 3] > 128
                if quality.stained_spots(rgba[..., :3], mask) > quality.MAX_SPOT_SHARE * mask.sum():
                    dropped.append(rec.file)
                    continue
            yield rgba, rec.cls, rec.um_per_px, rec.provenance

    write_pool(args.dst, sprites(), name=Path(args.dst).name,
               description=f"{args.src} without the red cells failing 'inclusions'")
    print(f"{args.dst}: {len(pool) - len(dropped)} sprites; dropped {len(dropped)} red cells")


if __name__ == "__main__":
    main()
