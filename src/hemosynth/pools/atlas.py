"""The built-in default pool.

PLACEHOLDER: until the procedural cell atlas lands, the default pool is a deliberately simple
set of flat-shaded discs (one colour and size range per class, a dark nucleus for nucleated
cells). It exists so that ``hemosynth generate`` runs end to end without any user images. Its
provenance says ``placeholder``; it is not meant to look like a real smear.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..taxonomy import MAIN_OF, POOL_CLASSES
from .store import MemoryPool

#: sprite scale of the placeholder pool (micrometres per pixel)
PLACEHOLDER_UM_PER_PX = 7.5 / 74.0
SPRITES_PER_CLASS = 8

# class -> (diameter range in um, body RGB, nucleus RGB or None)
_LOOKS: dict[str, tuple[tuple[float, float], tuple[int, int, int], tuple[int, int, int] | None]] = {
    "RBC": ((7.0, 8.0), (214, 120, 120), None),
    "Platelet": ((1.5, 3.0), (150, 100, 170), None),
    "Giant platelet": ((7.0, 10.0), (150, 100, 170), None),
    "Activated platelet": ((3.0, 5.0), (140, 90, 165), None),
    "Nucleated RBC": ((8.0, 12.0), (200, 140, 150), (60, 30, 80)),
}


def _look(cls: str):
    if cls in _LOOKS:
        return _LOOKS[cls]
    return ((10.0, 16.0), (200, 180, 210), (95, 50, 130))


def _placeholder_sprite(cls: str, rng: np.random.Generator) -> np.ndarray:
    (dmin, dmax), body, nucleus = _look(cls)
    d_px = rng.uniform(dmin, dmax) / PLACEHOLDER_UM_PER_PX
    ratio = rng.uniform(0.85, 1.0)
    size = int(np.ceil(d_px)) + 4
    rgba = np.zeros((size, size, 4), np.uint8)
    c = (size // 2, size // 2)
    axes = (max(1, int(d_px / 2)), max(1, int(d_px * ratio / 2)))
    cv2.ellipse(rgba, c, axes, 0, 0, 360, (*body, 255), -1, lineType=cv2.LINE_8)
    if nucleus is not None:
        n_axes = (max(1, axes[0] // 2), max(1, axes[1] // 2))
        off = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
        cv2.ellipse(rgba, (c[0] + off[0], c[1] + off[1]), n_axes, 0, 0, 360, (*nucleus, 255), -1)
    elif MAIN_OF[cls] == "RBC":
        cv2.circle(rgba, c, max(1, axes[1] // 3), (*[min(255, v + 40) for v in body], 255), -1)
    return rgba


@lru_cache(maxsize=1)
def default_pool() -> MemoryPool:
    """The built-in default pool (currently the placeholder discs), drawn deterministically."""
    rng = np.random.default_rng(20240611)
    sprites = []
    for cls in POOL_CLASSES:
        for _ in range(SPRITES_PER_CLASS):
            sprites.append(
                (_placeholder_sprite(cls, rng), cls, PLACEHOLDER_UM_PER_PX, {"kind": "placeholder"})
            )
    return MemoryPool("placeholder", sprites, source="built-in placeholder")
