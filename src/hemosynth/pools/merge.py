"""Pool merging: fill the classes a real pool lacks from another pool (the default atlas), or
write one pool from chosen classes of several (:func:`merge_pools`).

Sprites taken from the filler are rescaled to the target scale and keep their own provenance,
with ``filled_from`` naming the filler pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import PoolError
from ..taxonomy import POOL_CLASSES
from .store import Pool, PoolStore, open_pool, write_pool


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
    missing = [c for c in pool.classes if c not in have]
    for rgba, cls, prov in _rescaled(pool, missing, um_per_px):
        prov.setdefault("kind", "procedural")
        prov["filled_from"] = pool.name
        yield rgba, cls, um_per_px, prov


def _rescaled(
    pool: Pool, classes: Iterable[str], um_per_px: float
) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """Every sprite of ``classes`` in ``pool`` rescaled to ``um_per_px``, with a copy of its
    provenance."""
    for cls in classes:
        for i in pool.ids(cls):
            rec = pool.records[int(i)]
            rgba = rescale_sprite(np.asarray(pool.load(int(i))), rec.um_per_px / um_per_px)
            yield rgba, cls, dict(rec.provenance)


def merge_pools(
    dst: str | Path,
    sources: Sequence[tuple[str | Pool, Sequence[str] | None]],
    um_per_px: float | None = None,
    overwrite: bool = False,
) -> PoolStore:
    """Write one pool from several: all classes of a source, or only those named.

    Parameters
    ----------
    dst : path-like
        The pool folder to write (atomically: never half-written).
    sources : sequence of (pool, classes)
        A pool spec (``"atlas"`` or a folder) or a Pool, and the classes taken from it (None:
        all of its classes). A class given by two sources holds the sprites of both.
    um_per_px : float, optional
        The merged pool's scale (default: the first source's, the median of its sprites);
        every sprite is rescaled to it, so the pool keeps one magnification.
    overwrite : bool

    Returns
    -------
    PoolStore
        The merged pool, opened. Each sprite keeps its provenance, plus ``merged_from`` (the
        source pool's name).

    Raises
    ------
    PoolError
        If a source lacks a class named for it, or no sources are given.
    """
    if not sources:
        raise PoolError("merge needs at least one source pool")
    pools = [(open_pool(p), classes) for p, classes in sources]
    for pool, classes in pools:
        for c in classes or ():
            if c not in POOL_CLASSES:
                raise PoolError(f"unknown class {c!r}; choose from {', '.join(POOL_CLASSES)}")
            if c not in pool.classes:
                raise PoolError(f"pool {pool.name!r} has no sprites of {c!r}")
    if um_per_px is None:
        first = pools[0][0]
        um_per_px = float(np.median([r.um_per_px for r in first.records]))

    def sprites() -> Iterator[tuple[np.ndarray, str, float, dict[str, Any]]]:
        for pool, classes in pools:
            for rgba, cls, prov in _rescaled(pool, classes or pool.classes, um_per_px):
                yield rgba, cls, um_per_px, {**prov, "merged_from": pool.name}

    names = ", ".join(f"{p.name} ({', '.join(c) if c else 'all'})" for p, c in pools)
    return write_pool(dst, sprites(), name=Path(dst).name, overwrite=overwrite,
                      description=f"merged from {names}")
