"""Pool summaries: ``hemosynth pools info`` (counts, sizes, scale, sources) and contact sheets."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..fileio import atomic_write_bytes, encode_image
from ..taxonomy import POOL_CLASSES
from .store import Pool, open_pool

#: RGB of the neutral contact-sheet background
SHEET_BACKGROUND = (236, 232, 228)


def pool_info(pool: Pool | str | os.PathLike[str]) -> dict[str, Any]:
    """Summary of a pool.

    Returns
    -------
    dict
        ``name``, ``source``, ``fingerprint``, ``n``, ``um_per_px`` (sorted distinct scales),
        ``classes``: {class: {n, size_um median/min/max of the larger side, derived, kinds}},
        ``sources``: {dataset: n}, ``kinds``: {kind: n}, ``derived_share``.
    """
    pool = open_pool(pool)
    classes: dict[str, Any] = {}
    sources: Counter = Counter()
    kinds: Counter = Counter()
    for c in POOL_CLASSES:
        ids = pool.ids(c)
        if not len(ids):
            continue
        recs = [pool.records[int(i)] for i in ids]
        sizes = np.array([max(r.size) * r.um_per_px for r in recs])
        ck = Counter(r.provenance.get("kind", "real") for r in recs)
        classes[c] = {
            "n": len(recs),
            "size_um": {
                "median": round(float(np.median(sizes)), 2),
                "min": round(float(sizes.min()), 2),
                "max": round(float(sizes.max()), 2),
            },
            "derived": ck.get("derived", 0),
            "kinds": dict(ck),
        }
    for r in pool.records:
        kinds[r.provenance.get("kind", "real")] += 1
        prov = r.provenance
        sources[prov.get("dataset", prov.get("filled_from", prov.get("merged_from", "?")))] += 1
    n = len(pool.records)
    return {
        "name": pool.name,
        "source": pool.source,
        "fingerprint": pool.fingerprint,
        "n": n,
        "um_per_px": sorted({round(r.um_per_px, 6) for r in pool.records}),
        "classes": classes,
        "sources": dict(sources),
        "kinds": dict(kinds),
        "derived_share": round(kinds.get("derived", 0) / n, 4) if n else 0.0,
    }


def format_info(info: dict[str, Any]) -> str:
    """The text form of :func:`pool_info`."""
    scales = ", ".join(f"{u:.4f}" for u in info["um_per_px"])
    lines = [
        f"pool {info['name']} ({info['source']})",
        f"  {info['n']} sprites, scale {scales} um/px, fingerprint {info['fingerprint'][:12]}",
        f"  derived share {100 * info['derived_share']:.1f}%",
        "  class                          n   size um (median, min-max)  derived",
    ]
    for c, v in info["classes"].items():
        s = v["size_um"]
        lines.append(
            f"  {c:<28} {v['n']:>5}   {s['median']:>6.1f} ({s['min']:.1f}-{s['max']:.1f})"
            f"{v['derived']:>14}"
        )
    lines.append("  sources: " + ", ".join(f"{k} {v}" for k, v in info["sources"].items()))
    lines.append("  kinds: " + ", ".join(f"{k} {v}" for k, v in info["kinds"].items()))
    return "\n".join(lines)


def contact_sheet(
    pool: Pool | str | os.PathLike[str],
    path: str | os.PathLike[str] | None = None,
    per_class: int = 10,
    tile: int = 96,
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """A contact sheet: one row per class, ``per_class`` sprites on a neutral background.

    Sprites are shown at the pool's common scale (so sizes compare across classes), shrunk
    only when larger than a tile; the class name is written at the start of each row.

    Parameters
    ----------
    pool : Pool or path
    path : path-like, optional
        Write the sheet as PNG here.
    per_class : int
        Sprites per row (drawn at random when the class has more).
    tile : int
        Tile side in pixels.
    rng : Generator, int or None
        Which sprites are shown.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        The sheet (RGB).
    """
    pool = open_pool(pool)
    rng = np.random.default_rng(rng)
    label_w = 200
    classes = pool.classes
    sheet = np.empty((tile * len(classes), label_w + tile * per_class, 3), np.uint8)
    sheet[:] = SHEET_BACKGROUND
    scale = 1.0
    big = max((max(r.size) for r in pool.records), default=tile)
    if big > tile - 4:
        scale = (tile - 4) / big
    for row, c in enumerate(classes):
        ids = pool.ids(c)
        if len(ids) > per_class:
            ids = np.sort(rng.choice(ids, per_class, replace=False))
        y = row * tile
        cv2.putText(sheet, f"{c} ({len(pool.ids(c))})", (6, y + tile // 2 + 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
        for k, i in enumerate(ids):
            rgba = np.asarray(pool.load(int(i)))
            h, w = rgba.shape[:2]
            s = min(scale, (tile - 4) / max(h, w))
            if s < 1:
                rgba = cv2.resize(rgba, (max(1, round(w * s)), max(1, round(h * s))),
                                  interpolation=cv2.INTER_AREA)
            h, w = rgba.shape[:2]
            x0 = label_w + k * tile + (tile - w) // 2
            y0 = y + (tile - h) // 2
            a = rgba[..., 3:4].astype(np.float32) / 255
            region = sheet[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
            sheet[y0 : y0 + h, x0 : x0 + w] = np.round(
                rgba[..., :3] * a + region * (1 - a)
            ).astype(np.uint8)
    if path is not None:
        atomic_write_bytes(Path(path), encode_image(sheet, "png"))
    return sheet
