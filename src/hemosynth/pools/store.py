"""The on-disk pool format and its lazy loader.

A pool is a folder::

    POOL/
      pool.json                 the manifest
      sprites/<class slug>/<name>.png   one RGBA PNG per cell, background alpha = 0

``pool.json`` holds::

    {
      "format": "hemosynth-pool", "version": 1,
      "name": "pbc", "description": "...",
      "sprites": [
        {"file": "sprites/rbc/000001.png", "class": "RBC", "um_per_px": 0.1014,
         "size": [76, 74], "sha256": "<hex of the PNG file>",
         "provenance": {"kind": "real", "dataset": "pbc-fields", "file": "...",
                        "box": [x0, y0, x1, y1]}},
        ...
      ]
    }

``class`` is one of the 18 pool classes; ``um_per_px`` the sprite's scale (micrometres per
pixel); ``provenance.kind`` is ``real``, ``derived`` (with a ``rule``), ``procedural`` or
``placeholder``. Sprites are read lazily on first use and kept in a bounded LRU cache, so a pool
of 20,000 sprites costs a worker its manifest plus the cache (256 MB by default).

The pool's *fingerprint* is the SHA-256 of its manifest; because the manifest holds every
sprite's SHA-256, it changes whenever any sprite does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, PoolError
from ..taxonomy import POOL_CLASSES, SLUGS, canonical_class
from .prepared import (
    load_prepared,
    load_verified,
    pack_prepared,
    packed_ids,
    prepared_dir,
    save_prepared,
    save_verified,
)

FORMAT = "hemosynth-pool"
VERSION = 1
MANIFEST = "pool.json"


@dataclass(frozen=True)
class SpriteRecord:
    """One sprite's manifest entry.

    Attributes
    ----------
    file : str
        Path relative to the pool folder (``""`` for in-memory sprites).
    cls : str
        Pool class.
    um_per_px : float
        Scale of the sprite in micrometres per pixel.
    size : (int, int)
        Width and height in pixels.
    sha256 : str
        Hex digest of the file (or of the pixels, for in-memory sprites).
    provenance : dict
        Where the sprite came from (``kind`` is always present).
    """

    file: str
    cls: str
    um_per_px: float
    size: tuple[int, int]
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "class": self.cls,
            "um_per_px": self.um_per_px,
            "size": list(self.size),
            "sha256": self.sha256,
            "provenance": self.provenance,
        }


class Pool:
    """Common interface of pools: records by class and sprite pixels by id.

    Attributes
    ----------
    name : str
    records : list of SpriteRecord
        Sprite id = position in this list.
    """

    name: str
    records: list[SpriteRecord]
    source: str

    def __init__(self, name: str, records: list[SpriteRecord], source: str) -> None:
        self.name = name
        self.records = records
        self.source = source
        by_class: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_class.setdefault(r.cls, []).append(i)
        self._by_class = {c: np.asarray(ids, dtype=np.int64) for c, ids in by_class.items()}

    @property
    def classes(self) -> tuple[str, ...]:
        """Classes with at least one sprite, in taxonomy order."""
        return tuple(c for c in POOL_CLASSES if c in self._by_class)

    def ids(self, cls: str) -> np.ndarray:
        """Sprite ids of class ``cls`` (an empty array if it has none)."""
        return self._by_class.get(cls, np.empty(0, dtype=np.int64))

    def require(self, classes: Iterable[str]) -> None:
        """Raise PoolError naming the first of ``classes`` the pool has no sprite of."""
        for c in classes:
            if c not in self._by_class:
                raise PoolError(
                    f"pool {self.name!r} ({self.source}) has no sprites of class {c!r}; "
                    f"it has: {', '.join(self.classes) or 'nothing'}"
                )

    @property
    def fingerprint(self) -> str:
        """SHA-256 over every record (class, scale, pixel hash, provenance)."""
        blob = json.dumps([r.to_json() for r in self.records], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def load(self, sprite_id: int) -> np.ndarray:
        """Pixels of sprite ``sprite_id``, an RGBA uint8 array of shape (H, W, 4)."""
        raise NotImplementedError

    #: bytes of derived arrays (see :meth:`derived`) a pool keeps in each process
    DERIVED_BYTES = 128 << 20

    def derived(
        self, kind: str, sprite_id: int, make: Callable[[np.ndarray], np.ndarray],
        persist: bool = False,
    ) -> np.ndarray:
        """``make(self.load(sprite_id))``, computed once per ``kind`` and kept (read-only).

        For what a generator derives from a sprite the same way in every smear (premultiplied
        and edge-shaped sources); a least-recently-used cache of at most
        :data:`DERIVED_BYTES`, never pickled with the pool. With ``persist`` (only for a
        ``make`` whose code :func:`hemosynth.pools.prepared.code_key` covers), a pool on disk
        also keeps the result in the disk cache of :mod:`hemosynth.pools.prepared`, for every
        later process and run.
        """
        cache = self.__dict__.setdefault("_derived", OrderedDict())
        key = (kind, int(sprite_id))
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        folder = self._prepared_folder() if persist else None
        out = self._load_prepared(folder, kind, sprite_id) if folder is not None else None
        if out is None:
            out = make(self.load(sprite_id))
            if folder is not None:
                save_prepared(folder, kind, sprite_id, out)
        out.flags.writeable = False
        cache[key] = out
        self._derived_bytes = self.__dict__.get("_derived_bytes", 0) + out.nbytes
        while self._derived_bytes > self.DERIVED_BYTES and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self._derived_bytes -= old.nbytes
        return out

    def _prepared_folder(self) -> Path | None:
        """Where this pool's prepared sprites are cached on disk (None: not cached)."""
        return None

    def _load_prepared(self, folder: Path, kind: str, sprite_id: int) -> np.ndarray | None:
        return load_prepared(folder, kind, sprite_id)

    def pack_prepared(self) -> int:
        """Gather this pool's prepared sprites on disk into packs, which later processes read
        faster (:func:`hemosynth.pools.prepared.pack_prepared`); returns how many files were
        packed (0 for a pool without a disk cache)."""
        folder = self._prepared_folder()
        return pack_prepared(folder) if folder is not None else 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_derived", None)
        state.pop("_derived_bytes", None)
        return state

    def __len__(self) -> int:
        return len(self.records)


class MemoryPool(Pool):
    """A pool held in memory (the procedural atlas, tests).

    Parameters
    ----------
    name : str
    sprites : sequence of (rgba, cls, um_per_px, provenance)
    """

    def __init__(
        self,
        name: str,
        sprites: Sequence[tuple[np.ndarray, str, float, dict[str, Any]]],
        source: str = "memory",
    ) -> None:
        self._pixels: list[np.ndarray] = []
        records = []
        for rgba, cls, um, prov in sprites:
            rgba = _check_rgba(rgba, f"{name}: sprite {len(records)}")
            self._pixels.append(rgba)
            records.append(
                SpriteRecord(
                    file="",
                    cls=canonical_class(cls),
                    um_per_px=float(um),
                    size=(rgba.shape[1], rgba.shape[0]),
                    sha256=hashlib.sha256(rgba.tobytes()).hexdigest(),
                    provenance=dict(prov),
                )
            )
        super().__init__(name, records, source)

    def load(self, sprite_id: int) -> np.ndarray:
        return self._pixels[sprite_id]


class PoolStore(Pool):
    """A pool folder on disk, read lazily. Use :func:`open_pool` to open one.

    Parameters
    ----------
    path : Path
    cache_bytes : int
        Upper bound of the decoded-sprite cache.
    verify : bool
        Check each sprite file's SHA-256 against the manifest when it is first read, also
        when its prepared form comes from the disk cache; once the cache is packed, files
        hashed then are checked by size and modification time instead (see
        :meth:`pack_prepared`).
    """

    def __init__(self, path: Path, cache_bytes: int = 256 << 20, verify: bool = True) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not self.path.is_dir():
            raise PoolError(f"{self.path}: pool folder not found")
        if not manifest.is_file():
            raise PoolError(f"{manifest}: pool manifest not found (is {self.path} a pool?)")
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as e:
            raise PoolError(f"{manifest}: unreadable pool manifest ({e})") from None
        self._manifest_bytes = manifest.read_bytes()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PoolError(f"{manifest}: not a hemosynth pool manifest (format != {FORMAT!r})")
        if data.get("version") != VERSION:
            raise PoolError(f"{manifest}: unsupported pool version {data.get('version')!r}")
        entries = data.get("sprites")
        if not isinstance(entries, list) or not entries:
            raise PoolError(f"{manifest}: the pool is empty (no sprites)")
        records = [_record_from_json(e, manifest, i) for i, e in enumerate(entries)]
        listed = {r.file for r in records}
        if len(listed) != len(records):
            raise PoolError(f"{manifest}: a sprite file is listed twice")
        found = _png_files(self.path, "sprites")  # one walk, not a stat per sprite
        for r in records:
            if r.file not in found and not (self.path / r.file).is_file():
                raise PoolError(f"{self.path / r.file}: sprite listed in the manifest is missing")
        extra = sorted(found - listed, key=lambda rel: rel.split("/"))
        if extra:
            raise PoolError(f"{self.path / extra[0]}: sprite file is not listed in {manifest}")
        super().__init__(str(data.get("name", self.path.name)), records, str(self.path))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._verify = verify
        self._verified: set[int] = set()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self._manifest_bytes).hexdigest()

    def _prepared_folder(self) -> Path | None:
        if "_prepared" not in self.__dict__:
            self._prepared = prepared_dir(self.fingerprint)
        return self._prepared

    def _load_prepared(self, folder: Path, kind: str, sprite_id: int) -> np.ndarray | None:
        out = load_prepared(folder, kind, sprite_id)
        if out is not None and self._verify and sprite_id not in self._verified:
            # the sprite file still matches the manifest: unchanged since it was last hashed
            # (same size and modification time), or hashed now
            known = self.__dict__.get("_known")
            if known is None:
                known = self._known = load_verified(folder)
            sig = known.get(sprite_id)
            if sig is not None and sig == self._signature(sprite_id):
                self._verified.add(sprite_id)
            else:
                self._read(sprite_id)
        return out

    def _signature(self, sprite_id: int) -> tuple[int, int] | None:
        """The sprite file's (size, mtime_ns), None if it cannot be read."""
        try:  # (a plain string path: pathlib's joining would cost more than the stat)
            st = os.stat(os.path.join(self.path, self.records[sprite_id].file))
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def pack_prepared(self) -> int:
        """:meth:`Pool.pack_prepared`; with ``verify``, also hash every packed sprite's file not
        yet on record and record those that match the manifest with their size and modification
        time, so that later processes check those two instead of hashing the file (a file
        changed in place keeping both would go unnoticed while its prepared form is cached;
        the generated data would still be that of the manifest's sprite)."""
        packed = super().pack_prepared()
        folder = self._prepared_folder()
        if folder is None or not self._verify:
            return packed
        known = load_verified(folder)
        new = {}
        for sid in sorted(packed_ids(folder) - known.keys()):
            if not 0 <= sid < len(self.records):
                continue
            before = self._signature(sid)
            try:
                raw = (self.path / self.records[sid].file).read_bytes()
            except OSError:
                continue
            if (hashlib.sha256(raw).hexdigest() == self.records[sid].sha256
                    and before is not None and self._signature(sid) == before):
                new[sid] = before
        if new:
            save_verified(folder, {**known, **new})
        return packed

    def _read(self, sprite_id: int) -> bytes:
        """The sprite's file, checked against the manifest's SHA-256 (with ``verify``)."""
        r = self.records[sprite_id]
        path = self.path / r.file
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise PoolError(f"{path}: cannot read sprite ({e.strerror})") from None
        if self._verify and sprite_id not in self._verified:
            if hashlib.sha256(raw).hexdigest() != r.sha256:
                raise PoolError(f"{path}: sprite does not match its SHA-256 in the manifest")
            self._verified.add(sprite_id)
        return raw

    def load(self, sprite_id: int) -> np.ndarray:
        hit = self._cache.get(sprite_id)
        if hit is not None:
            self._cache.move_to_end(sprite_id)
            return hit
        r = self.records[sprite_id]
        path = self.path / r.file
        raw = self._read(sprite_id)
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise PoolError(f"{path}: corrupt or unreadable image")
        if img.ndim != 3 or img.shape[2] != 4:
            raise PoolError(f"{path}: sprite must be RGBA (4 channels), got shape {img.shape}")
        rgba = np.ascontiguousarray(img[:, :, [2, 1, 0, 3]])
        if (rgba.shape[1], rgba.shape[0]) != tuple(r.size):
            raise PoolError(
                f"{path}: size {rgba.shape[1]}x{rgba.shape[0]} differs from the manifest's "
                f"{r.size[0]}x{r.size[1]}"
            )
        if not rgba[:, :, 3].any():
            raise PoolError(f"{path}: sprite is fully transparent")
        rgba.setflags(write=False)
        self._cache[sprite_id] = rgba
        self._cache_bytes += rgba.nbytes
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes
        return rgba


def _png_files(root: Path, sub: str) -> set[str]:
    """The ``.png`` files under ``root / sub`` (symbolic links to files included), as paths
    relative to ``root`` with ``/`` separators; empty if there is no such folder."""
    found: set[str] = set()
    todo = [sub]
    while todo:
        rel = todo.pop()
        try:
            entries = list(os.scandir(root / rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                todo.append(f"{rel}/{entry.name}")
            elif entry.name.endswith(".png") and entry.is_file():
                found.add(f"{rel}/{entry.name}")
    return found


def _record_from_json(e: Any, manifest: Path, i: int) -> SpriteRecord:
    def bad(detail: str) -> PoolError:  # the message is built only for a bad entry
        return PoolError(f"{manifest}: sprite #{i}{detail}")

    if not isinstance(e, dict):
        raise bad(": expected an object")
    try:
        file = str(e["file"])
        cls_name = str(e["class"])
        um = float(e["um_per_px"])
        size = tuple(int(v) for v in e["size"])
        sha = str(e["sha256"])
    except (KeyError, TypeError, ValueError) as err:
        raise bad(f": missing or bad field ({err})") from None
    try:
        cls = canonical_class(cls_name)
    except ConfigError:
        raise bad(f" ({file}): unknown class {cls_name!r}") from None
    if not (0 < um < 100):
        raise bad(f" ({file}): um_per_px must be positive, got {um}")
    if len(size) != 2 or min(size) < 1:
        raise bad(f" ({file}): bad size {list(size)}")
    prov = e.get("provenance") or {}
    if not isinstance(prov, dict):
        raise bad(f" ({file}): provenance must be an object")
    return SpriteRecord(file, cls, um, (size[0], size[1]), sha, prov)


def _check_rgba(rgba: np.ndarray, where: str) -> np.ndarray:
    rgba = np.asarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise PoolError(f"{where}: expected an RGBA uint8 array, got {rgba.dtype} {rgba.shape}")
    if not rgba[:, :, 3].any():
        raise PoolError(f"{where}: sprite is fully transparent")
    return rgba


def open_pool(spec: str | os.PathLike[str] | Pool, **kwargs: Any) -> Pool:
    """Open a pool by spec: a Pool instance, ``"atlas"`` (the built-in pool) or a folder path.

    Raises
    ------
    PoolError
        If the folder is not a valid pool.
    """
    if isinstance(spec, Pool):
        return spec
    if str(spec) == "atlas":
        from .atlas import default_pool

        return default_pool()
    return PoolStore(Path(spec), **kwargs)


def write_pool(
    path: str | os.PathLike[str],
    sprites: Iterable[tuple[np.ndarray, str, float, dict[str, Any]]],
    name: str | None = None,
    description: str = "",
    overwrite: bool = False,
) -> PoolStore:
    """Write a pool folder atomically and return it opened.

    The pool is written to a temporary folder beside ``path`` and renamed into place only when
    every sprite is written, so a failure never leaves a half-written pool.

    Parameters
    ----------
    path : path-like
        The pool folder to create.
    sprites : iterable of (rgba, cls, um_per_px, provenance)
        RGBA uint8 arrays of shape (H, W, 4) with alpha = 0 outside the cell.
    name, description : str
    overwrite : bool
        Replace an existing pool folder.

    Raises
    ------
    PoolError
        If a sprite is invalid, no sprite is given, or ``path`` exists and ``overwrite`` is off.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PoolError(f"{path}: already exists (pass overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        entries = []
        counters: dict[str, int] = {}
        for rgba, cls_name, um, prov in sprites:
            cls = canonical_class(cls_name)
            rgba = _check_rgba(rgba, f"sprite {len(entries)} ({cls})")
            n = counters.get(cls, 0)
            counters[cls] = n + 1
            rel = f"sprites/{SLUGS[cls]}/{n:06d}.png"
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgba[:, :, [2, 1, 0, 3]]))
            if not ok:
                raise PoolError(f"{rel}: PNG encoding failed")
            data = buf.tobytes()
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
            prov = dict(prov)
            prov.setdefault("kind", "real")
            entries.append(
                SpriteRecord(
                    rel, cls, float(um), (rgba.shape[1], rgba.shape[0]),
                    hashlib.sha256(data).hexdigest(), prov,
                ).to_json()
            )
        if not entries:
            raise PoolError(f"{path}: no sprites to write (empty pool)")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": name or path.name,
            "description": description,
            "sprites": entries,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PoolStore(path)
