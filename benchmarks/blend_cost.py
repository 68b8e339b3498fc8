"""Cost of each sprite blend (and of the appearance steps) on a full 2592 x 1944 smear.

Plans one default smear with the built-in atlas, then times, per blend: shaping every planned
sprite, rendering the smear (background, harmonisation, compositing, optics), and the optics
alone. Run::

    .venv/bin/python benchmarks/blend_cost.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hemosynth.config import GenerationConfig
from hemosynth.pools.store import open_pool
from hemosynth.smear.canvas import apply_optics
from hemosynth.smear.plan import plan_smear
from hemosynth.smear.render import BLENDERS, render
from hemosynth.smear.sprite import transform_sprite


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    pool = open_pool("atlas")
    base = GenerationConfig()
    plan = plan_smear(base, pool, 0)
    raw = [transform_sprite(pool.load(int(s)), float(a), bool(f), float(k))
           for s, a, f, k in zip(plan.sprite_ids, plan.angles, plan.flips, plan.scales,
                                 strict=True)]
    print(f"smear {plan.width}x{plan.height}, {len(plan)} cells, pool {pool.name}")
    print(f"{'blend':10s} {'shape (s)':>10s} {'render (s)':>11s} {'total (s)':>10s}")
    for name, blender in BLENDERS.items():
        cfg = base.replace(**{"render.blend": name})
        shaped: list[np.ndarray] = []
        t_shape = best_of(lambda b=blender, out=shaped: out.__setitem__(
            slice(None), [b.shape(s) for s in raw]), args.repeat)
        t_render = best_of(lambda c=cfg, s=shaped: render(plan, s, c.render), args.repeat)
        print(f"{name:10s} {t_shape:10.3f} {t_render:11.3f} {t_shape + t_render:10.3f}")
    img = render(plan, shaped, base.render)
    t_opt = best_of(lambda: apply_optics(img, plan.appearance["optics"], plan.um_per_px,
                                         np.random.default_rng(0)), args.repeat)
    no_opt = base.replace(**{"render.optics": False, "render.harmonise": False})
    sprites = [BLENDERS["feather"].shape(s) for s in raw]
    t_bare = best_of(lambda: render(plan, sprites, no_opt.render), args.repeat)
    print(f"\noptics alone (defocus + vignetting + noise): {t_opt:.3f} s")
    print(f"feather render without optics and harmonisation: {t_bare:.3f} s")


if __name__ == "__main__":
    main()
