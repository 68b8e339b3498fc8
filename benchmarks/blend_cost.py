"""Cost of each sprite blend (and of the appearance steps) on a full 2592 x 1944 smear.

Plans one default smear with the built-in atlas, then times, per blend, the two steps the
generator runs: preparing the smear's sprites (each distinct source sprite premultiplied,
re-stained and edge-shaped once, then every cell rotated and rescaled:
``prepare_sprites``) and rendering (background, compositing, optics); and the optics alone.
Run::

    .venv/bin/python benchmarks/blend_cost.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hemosynth.config import GenerationConfig
from hemosynth.pools.store import open_pool
from hemosynth.smear.canvas import apply_optics
from hemosynth.smear.plan import plan_smear, prepare_sprites
from hemosynth.smear.render import BLENDERS, render


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
    print(f"smear {plan.width}x{plan.height}, {len(plan)} cells, pool {pool.name}")
    print(f"{'blend':10s} {'prepare (s)':>11s} {'render (s)':>11s} {'total (s)':>10s}")
    for name in BLENDERS:
        cfg = base.replace(**{"render.blend": name})
        sprites: list[np.ndarray] = []
        t_prep = best_of(lambda c=cfg, out=sprites: out.__setitem__(
            slice(None), prepare_sprites(plan, pool, c)), args.repeat)
        t_render = best_of(lambda c=cfg, s=sprites: render(plan, s, c.render), args.repeat)
        print(f"{name:10s} {t_prep:11.3f} {t_render:11.3f} {t_prep + t_render:10.3f}")
    sprites = prepare_sprites(plan, pool, base)
    img = render(plan, sprites, base.render)
    t_opt = best_of(lambda: apply_optics(img, plan.appearance["optics"], plan.um_per_px,
                                         np.random.default_rng(0)), args.repeat)
    no_opt = base.replace(**{"render.optics": False})
    t_bare = best_of(lambda: render(plan, sprites, no_opt.render), args.repeat)
    print(f"\noptics alone (defocus + vignetting + noise): {t_opt:.3f} s")
    print(f"feather render without optics: {t_bare:.3f} s")

if __name__ == "__main__":
    main()
