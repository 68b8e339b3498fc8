"""Pool merging: fill the classes a real pool lacks from another pool (the default atlas).

Sprites taken from the filler are rescaled to the target scale and keep their own provenance,
with ``filled_from`` naming the filler pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from .store import Pool, open_pool


def rescale_sprite(rgba: np.ndarray, factor: float) -> np.ndarray:
    """Resize an RGBA sprite by ``factor`` (area filter when shrinking)."""
    if abs(factor - 1.0) < 1e-3:
        return rgba
    h, w = rgba.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    out = cv2.resize(rgba, size, interpolation=interp)
    if not out[..., 3].any():
        out[size[1] // 2, size[0] // 2, 3] = 255
    return out


def fill_missing(
    present: Iterable[str], filler: str | Pool, um_per_px: float
) -> Iterator[tuple[np.ndarray, str, float, dict[str, Any]]]:
    """Sprites of ``filler`` for every class not in ``present``, at scale ``um_per_px``.

    Parameters
    ----------
    present : iterable of str
        Classes the real pool already has.
    filler : str or Pool
        A pool spec (``"atlas"`` or a folder) or a Pool.
    um_per_px : float
        Target scale.

    Yields
    ------
    (rgba, cls, um_per_px, provenance)
    """
    pool = open_pool(filler)
    have = set(present)
    for cls in pool.classes:
        if cls in have:
            continue
        for i in pool.ids(cls):
            rec = pool.records[int(i)]
            rgba = rescale_sprite(np.asarray(pool.load(int(i))), rec.um_per_px / um_per_px)
            prov = dict(rec.provenance)
            prov.setdefault("kind", "procedural")
            prov["filled_from"] = pool.name
            yield rgba, cls, um_per_px, prov
