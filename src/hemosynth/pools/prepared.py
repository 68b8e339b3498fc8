"""A disk cache of what the generator derives from each sprite of an on-disk pool.

Before a sprite is pasted it is prepared: decoded, premultiplied and edge-shaped, and the circle
around its alpha is found (:meth:`hemosynth.pools.store.Pool.derived`). That is the same in
every smear and every run, and costs about 1.7 ms a sprite: every worker process paid it again
for each sprite it met, about 0.7 s a worker for the built-in atlas and several seconds for a
real pool of thousands of sprites. The results are kept on disk, one small ``.npy`` file per
sprite and kind, under::

    <cache>/prepared/<key>/<pool fingerprint>/<kind>/<sprite id>.npy

``<cache>`` is ``$HEMOSYNTH_CACHE`` or ``~/.cache/hemosynth`` (as for the atlas); ``<key>``
hashes :data:`PREPARED_VERSION` and the source of the modules that prepare sprites, so changed
code never reads stale files. Files are written atomically (a private name, then a rename), so
workers writing the same file at once are safe; a cache that cannot be written or read is
skipped (the sprite is prepared in memory as before). Set ``HEMOSYNTH_PREPARED_CACHE=0`` to
switch it off; delete the folder to reclaim the space (the atlas: about 35 MB).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import re
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

#: bump when what is derived from a sprite changes on purpose
PREPARED_VERSION = 1


@lru_cache(maxsize=1)
def code_key() -> str:
    """Short hash of :data:`PREPARED_VERSION` and the source of the preparing modules."""
    from ..smear import render, sprite

    try:
        src = inspect.getsource(render) + inspect.getsource(sprite)
    except OSError:  # no source files (a frozen build): the version alone decides
        src = ""
    return hashlib.sha256(f"{PREPARED_VERSION}\n{src}".encode()).hexdigest()[:12]


def prepared_dir(fingerprint: str) -> Path | None:
    """The cache folder of the pool with this fingerprint, or None when switched off."""
    if os.environ.get("HEMOSYNTH_PREPARED_CACHE", "1") == "0":
        return None
    from .atlas import cache_root

    return cache_root() / "prepared" / code_key() / fingerprint[:32]


def _file(folder: Path, kind: str, sprite_id: int) -> Path:
    return folder / kind.replace(":", "-") / f"{int(sprite_id)}.npy"


#: the header ``np.save`` writes for a C-ordered array of plain numbers
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][a-z]\d+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n"
)


def load_prepared(folder: Path, kind: str, sprite_id: int) -> np.ndarray | None:
    """The cached array, read-only, or None if it is not there (or unreadable)."""
    try:
        raw = _file(folder, kind, sprite_id).read_bytes()
    except OSError:
        return None
    out = _npy_array(raw)
    if out is None:  # another header than np.save's usual one: numpy reads it
        try:
            out = np.load(io.BytesIO(raw), allow_pickle=False)
        except (OSError, ValueError):
            return None
    out.flags.writeable = False
    return out


def _npy_array(raw: bytes) -> np.ndarray | None:
    """The array in ``raw`` (an ``.npy`` file) when its header is the usual one of ``np.save``
    (else None): read with a regular expression, several times faster than ``np.load``'s
    ``ast`` parse, which was most of the time of loading a worker's few hundred sprites."""
    if raw[:6] != b"\x93NUMPY" or len(raw) < 10:
        return None
    start = 10 if raw[6] == 1 else 12
    size = int.from_bytes(raw[8:start], "little")
    m = _NPY_HEADER.fullmatch(raw, start, start + size)
    if m is None:
        return None
    shape = tuple(int(v) for v in m[2].split(b",") if v.strip())
    dtype = np.dtype(m[1].decode("ascii"))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - start - size != count * dtype.itemsize:
        return None  # truncated (or longer): let numpy say what is wrong
    return np.frombuffer(raw, dtype, count, start + size).reshape(shape)


def save_prepared(folder: Path, kind: str, sprite_id: int, arr: np.ndarray) -> None:
    """Store ``arr`` atomically; a failure (read-only or full disk) is ignored."""
    path = _file(folder, kind, sprite_id)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.npy")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
