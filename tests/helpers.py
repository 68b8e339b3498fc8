"""Small builders shared by the tests."""

from __future__ import annotations

import cv2
import numpy as np

from hemosynth.config import GenerationConfig
from hemosynth.pools.store import MemoryPool
from hemosynth.taxonomy import POOL_CLASSES


def disc_sprite(diameter: int, rgb=(200, 100, 100), ellipse: float = 1.0) -> np.ndarray:
    """An RGBA disc (or ellipse) with a hard edge, alpha 0 outside."""
    size = diameter + 4
    rgba = np.zeros((size, size, 4), np.uint8)
    axes = (diameter // 2, max(1, int(diameter * ellipse) // 2))
    cv2.ellipse(rgba, (size // 2, size // 2), axes, 0, 0, 360, (*rgb, 255), -1)
    return rgba


def tiny_pool(per_class: int = 2, um_per_px: float = 0.5) -> MemoryPool:
    """A pool with every class: discs about 8 um (RBC) to 12 um (others) across."""
    rng = np.random.default_rng(1)
    sprites = []
    for c in POOL_CLASSES:
        for _ in range(per_class):
            um = 7.5 if c == "RBC" else (2.5 if "latelet" in c else 12.0)
            d = int(round(um / um_per_px))
            rgb = tuple(int(v) for v in rng.integers(40, 220, 3))
            sprites.append((disc_sprite(d, rgb, ellipse=rng.uniform(0.7, 1.0)), c, um_per_px,
                            {"kind": "test"}))
    return MemoryPool("tiny", sprites)


def small_config(**changes) -> GenerationConfig:
    """A fast config: a 320 x 240 field at 0.25 um/px, about 28 RBCs per smear (no drops)."""
    base = GenerationConfig.from_dict(
        {
            "count": 4,
            "seed": 7,
            "canvas": {"width": 320, "height": 240, "um_per_px": 0.25},
            "counts": {"rbc": {"mean": 300.0, "sd": 60.0}},
        }
    )
    return base.replace(**changes) if changes else base
