"""The built-in default pool: the procedural cell atlas, cached on disk.

The atlas holds :data:`SPRITES_PER_CLASS` cells of each of the 18 classes, drawn by the
renderers of :mod:`hemosynth.pools.procedural` at :data:`ATLAS_UM_PER_PX`. Sprite ``i`` of a
class draws from ``SeedSequence([ATLAS_SEED, class index, i])``, so the atlas is the same on
every machine and one class can change without touching the others.

It is written once in the ordinary pool format (:func:`~hemosynth.pools.store.write_pool`) to
``<cache>/atlas-v<ATLAS_VERSION>-<key>``, where ``<cache>`` is ``$HEMOSYNTH_CACHE`` or
``~/.cache/hemosynth`` and ``<key>`` hashes the atlas settings and the renderers' source, and
reused by every later run (and reopened by path in worker processes). Bump
:data:`ATLAS_VERSION` when the look changes on purpose; a new version or changed renderers give
a new folder. Two processes building at once each write a private folder and rename it into
place; the loser drops its copy and opens the winner's. If the cache cannot be written the
atlas is kept in memory.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PoolError
from ..taxonomy import POOL_CLASSES
from . import procedural
from .store import MemoryPool, Pool, PoolStore, write_pool

#: version of the atlas's look; bump to invalidate every cached atlas
ATLAS_VERSION = 2
#: scale the atlas cells are drawn at (a little finer than the PBC images, 0.101 um/px)
ATLAS_UM_PER_PX = 0.09
#: cells per class
SPRITES_PER_CLASS = 24
#: master seed of the atlas
ATLAS_SEED = 20240611


def cache_root() -> Path:
    """The cache folder: ``$HEMOSYNTH_CACHE`` or ``~/.cache/hemosynth``."""
    env = os.environ.get("HEMOSYNTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hemosynth"


def atlas_key(
    per_class: int = SPRITES_PER_CLASS, um_per_px: float = ATLAS_UM_PER_PX,
    version: int = ATLAS_VERSION,
) -> str:
    """Short hash of everything that determines the atlas's pixels."""
    from ..smear import stain

    try:
        src = inspect.getsource(procedural) + inspect.getsource(stain)
    except OSError:  # no source files (a frozen build): the version alone decides
        src = ""
    blob = json.dumps([version, ATLAS_SEED, per_class, um_per_px, src]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def atlas_path(
    per_class: int = SPRITES_PER_CLASS, um_per_px: float = ATLAS_UM_PER_PX,
    version: int = ATLAS_VERSION, root: Path | None = None,
) -> Path:
    """Folder of the cached atlas for these settings."""
    root = cache_root() if root is None else Path(root)
    return root / f"atlas-v{version}-{atlas_key(per_class, um_per_px, version)}"


def atlas_sprites(
    per_class: int = SPRITES_PER_CLASS, um_per_px: float = ATLAS_UM_PER_PX,
    version: int = ATLAS_VERSION,
) -> Iterator[tuple[np.ndarray, str, float, dict[str, Any]]]:
    """Yield the atlas's sprites as ``(rgba, class, um_per_px, provenance)``, deterministically."""
    for ci, cls in enumerate(POOL_CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng(np.random.SeedSequence([ATLAS_SEED, ci, i]))
            rgba = procedural.render_cell(cls, rng, um_per_px)
            prov = {
                "kind": "procedural",
                "generator": "hemosynth.pools.procedural",
                "atlas_version": version,
                "seed": [ATLAS_SEED, ci, i],
                "stain": "pbc",
            }
            yield rgba, cls, um_per_px, prov


def build_atlas(
    path: Path, per_class: int = SPRITES_PER_CLASS, um_per_px: float = ATLAS_UM_PER_PX,
    version: int = ATLAS_VERSION,
) -> PoolStore:
    """Write the atlas to ``path`` (unless a complete one is there) and open it.

    Safe when several processes call it at once: each writes a private folder and renames it
    into place; whoever loses the race removes its copy and opens the winner's.
    """
    path = Path(path)
    if (path / "pool.json").is_file():
        return PoolStore(path)
    private = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    write_pool(
        private, atlas_sprites(per_class, um_per_px, version), name="atlas",
        description=f"hemosynth procedural cell atlas v{version} ({per_class} cells per class)",
        overwrite=True,
    )
    try:
        os.rename(private, path)
    except OSError:
        shutil.rmtree(private, ignore_errors=True)
        if not (path / "pool.json").is_file():
            raise
    return PoolStore(path)


def memory_atlas(
    per_class: int = SPRITES_PER_CLASS, um_per_px: float = ATLAS_UM_PER_PX,
) -> MemoryPool:
    """The atlas drawn in memory, without touching the disk."""
    return MemoryPool("atlas", list(atlas_sprites(per_class, um_per_px)),
                      source="built-in procedural atlas (in memory)")


@lru_cache(maxsize=1)
def default_pool() -> Pool:
    """The built-in default pool: the procedural atlas, built once and cached on disk.

    Returns
    -------
    PoolStore, or MemoryPool if the cache folder cannot be written.
    """
    per_class, um, version = SPRITES_PER_CLASS, ATLAS_UM_PER_PX, ATLAS_VERSION
    try:
        return build_atlas(atlas_path(per_class, um, version), per_class, um, version)
    except (OSError, PoolError):
        return memory_atlas(per_class, um)


# --------------------------------------------------------------------------- contact sheet
#: folder names of common single-cell datasets -> pool classes (besides taxonomy aliases)
_FOLDER_ALIASES = {"erythroblast": "Nucleated RBC", "platelet": "Platelet",
                   "neutrophil": "Segmented neutrophil"}


def _folder_class(name: str) -> str | None:
    from ..errors import ConfigError
    from ..taxonomy import canonical_class

    key = name.strip().lower()
    if key in _FOLDER_ALIASES:
        return _FOLDER_ALIASES[key]
    try:
        return canonical_class(key)
    except ConfigError:
        return None


def real_examples(folder: Path, per_class: int) -> dict[str, list[np.ndarray]]:
    """Up to ``per_class`` RGB images per class from a folder-per-class dataset.

    Files are matched to pool classes by their folder and file-name prefix with the pool
    builder's class mapping (``erythroblast`` -> Nucleated RBC, ``neutrophil/SNE_*`` ->
    Segmented neutrophil, ``neutrophil/BNE_*`` -> Band cell); others (e.g. ``ig``) are
    skipped. Images are taken evenly from each class's sorted file list.
    """
    import cv2

    from .mapping import ClassMapping

    mapping = ClassMapping()
    by_class: dict[str, list[Path]] = {}
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"):
                continue
            cls = mapping.resolve(sub.name, f.name)[0] or _folder_class(sub.name)
            if cls is not None:
                by_class.setdefault(cls, []).append(f)
    out: dict[str, list[np.ndarray]] = {}
    for cls, files in by_class.items():
        step = max(1, len(files) // max(1, per_class))
        imgs = []
        for f in files[::step][:per_class]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                imgs.append(img[:, :, ::-1])
        if imgs:
            out[cls] = imgs
    return out


def contact_sheet(
    pool: Pool, per_class: int = 8, tile_um: float = 26.0, tile_px: int = 160,
    real: dict[str, list[np.ndarray]] | None = None, real_um_per_px: float = 7.5 / 74.0,
    profile: str = "pbc",
) -> np.ndarray:
    """A labelled grid: one row per class of varied pool cells, real examples beside them.

    Parameters
    ----------
    pool : Pool
    per_class : int
        Pool cells per row.
    tile_um, tile_px : float, int
        Each tile shows ``tile_um`` micrometres in ``tile_px`` pixels.
    real : dict, optional
        Class -> RGB images (centre crops are shown at the same scale), for the classes that
        both have.
    real_um_per_px : float
        Scale of the real images.
    profile : str
        Stain profile whose background the cells are shown on.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        RGB image.
    """
    import cv2

    from ..smear.stain import get_profile

    bg = np.clip(get_profile(profile).illuminant, 0, 255).astype(np.uint8)
    real = real or {}
    n_real = min(per_class, max((len(v) for v in real.values()), default=0))
    label_w, gap = 190, 8
    width = label_w + per_class * tile_px + (gap + n_real * tile_px if n_real else 0)
    rows = []
    for cls in pool.classes:
        row = np.full((tile_px, width, 3), 255, np.uint8)
        cv2.putText(row, cls, (6, tile_px // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
        ids = pool.ids(cls)
        for k, sid in enumerate(ids[np.linspace(0, len(ids) - 1, per_class).astype(int)]):
            tile = _sprite_tile(pool, int(sid), tile_um, tile_px, bg)
            row[:, label_w + k * tile_px : label_w + (k + 1) * tile_px] = tile
        x = label_w + per_class * tile_px + gap
        for k, img in enumerate(real.get(cls, [])[:n_real]):
            row[:, x + k * tile_px : x + (k + 1) * tile_px] = _real_tile(
                img, real_um_per_px, tile_um, tile_px)
        rows.append(row)
    head = np.full((24, width, 3), 255, np.uint8)
    cv2.putText(head, f"{pool.name}: procedural atlas ({tile_um:g} um per tile)", (6, 17),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if n_real:
        cv2.putText(head, "real examples", (label_w + per_class * tile_px + gap + 4, 17),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([head, *rows])


def _sprite_tile(pool: Pool, sid: int, tile_um: float, tile_px: int, bg: np.ndarray):
    import cv2

    rgba = pool.load(sid)
    f = pool.records[sid].um_per_px * tile_px / tile_um
    s = cv2.resize(rgba, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    tile = np.broadcast_to(bg, (tile_px, tile_px, 3)).astype(np.float32)
    h, w = min(s.shape[0], tile_px), min(s.shape[1], tile_px)
    y0, x0 = (tile_px - h) // 2, (tile_px - w) // 2
    sy, sx = (s.shape[0] - h) // 2, (s.shape[1] - w) // 2
    a = s[sy : sy + h, sx : sx + w, 3:4].astype(np.float32) / 255.0
    rgb = s[sy : sy + h, sx : sx + w, :3].astype(np.float32)
    tile[y0 : y0 + h, x0 : x0 + w] = tile[y0 : y0 + h, x0 : x0 + w] * (1 - a) + rgb * a
    return np.clip(tile + 0.5, 0, 255).astype(np.uint8)


def _real_tile(img: np.ndarray, um_per_px: float, tile_um: float, tile_px: int):
    import cv2

    side = int(round(tile_um / um_per_px))
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = img[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(np.ascontiguousarray(crop), (tile_px, tile_px),
                      interpolation=cv2.INTER_AREA)
