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

Opening, reading and parsing a small file costs about 0.1-0.2 ms, which for thousands of
sprites was a good part of a worker's time (about 1 s a worker for a real pool of 3,213
sprites). So the files of a kind are gathered into one *pack* (:func:`pack_prepared`, called at
the end of a generated dataset)::

    <cache>/prepared/<key>/<pool fingerprint>/<kind>.pack

an ``.npy`` index (int64 rows: sprite id, offset in elements, ndim, up to three sides) followed
by an ``.npy`` of every array's elements, end to end. A process opens a pack once and reads each
array with one ``pread`` (:class:`Pack`). A pack is written atomically and then its files are
deleted; what a later run prepares goes to files again until the next packing. Reading looks in
the pack first, then in the files.

A pool folder also gets ``verified.npy`` there (:func:`load_verified`): the size and
modification time of each packed sprite's file when the packing found it to match the
manifest's SHA-256, so that a later process checks those instead of hashing every file again
(:meth:`hemosynth.pools.store.PoolStore.pack_prepared`).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import math
import os
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: bump when what is derived from a sprite, or how it is stored, changes on purpose (2: packs,
#: whose files earlier versions would miss and prepare again)
PREPARED_VERSION = 2


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
    """The cached array, read-only, or None if it is not there (or unreadable): from the
    kind's pack if it holds it, else from its own file."""
    pack = open_pack(folder, kind)
    if pack is not None and (out := pack.get(sprite_id)) is not None:
        return out
    return _load_file(_file(folder, kind, sprite_id))


def _load_file(path: Path) -> np.ndarray | None:
    try:
        raw = path.read_bytes()
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
    count = math.prod(shape)
    if len(raw) - start - size != count * dtype.itemsize:
        return None  # truncated (or longer): let numpy say what is wrong
    return np.frombuffer(raw, dtype, count, start + size).reshape(shape)


def save_prepared(folder: Path, kind: str, sprite_id: int, arr: np.ndarray) -> None:
    """Store ``arr`` atomically; a failure (read-only or full disk) is ignored."""
    path = _file(folder, kind, sprite_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_npy(path, np.ascontiguousarray(arr))
    except OSError:
        pass


def _save_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` with a file that becomes ``path`` atomically: a private name first
    (unique to this process and call, so that processes writing the same file at once are
    safe), then renamed.

    Raises
    ------
    OSError
        When it cannot be written; the private file is removed.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:  # a full disk, or an interrupt while a large pack is written
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """``np.save`` of ``arr`` into ``path``, atomically (:func:`_save_atomic`)."""
    _save_atomic(path, lambda f: np.save(f, arr, allow_pickle=False))


# -- packs --------------------------------------------------------------------------------------

#: the most dimensions an array in a pack may have (others stay in their own files)
PACK_NDIM = 3


def _pack_path(folder: Path, kind: str) -> Path:
    return folder / f"{kind.replace(':', '-')}.pack"


class Pack:
    """An open pack: reads each array with one ``pread`` (see the module docstring).

    Parameters
    ----------
    path : Path

    Raises
    ------
    OSError, ValueError
        The file cannot be read or is not a whole pack (cut short, say).
    """

    def __init__(self, path: Path) -> None:
        self.fd = -1
        fd = os.open(path, os.O_RDONLY)
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                index = np.load(f, allow_pickle=False)
                fmt = np.lib.format
                read_header = (fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0)
                               else fmt.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                start = f.tell()
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        if (index.ndim != 2 or index.shape[1] != 3 + PACK_NDIM or index.dtype != np.int64
                or len(shape) != 1 or fortran or size != start + shape[0] * dtype.itemsize):
            os.close(fd)
            raise ValueError(f"{path}: not a whole pack")
        self.fd, self.dtype = fd, dtype
        item = dtype.itemsize
        #: sprite id -> (byte offset, byte count, shape)
        self.rows = {}
        for r in index.tolist():
            shape = tuple(r[3:3 + r[2]])
            self.rows[r[0]] = (start + r[1] * item, math.prod(shape) * item, shape)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, sprite_id: int) -> np.ndarray | None:
        """The array of ``sprite_id`` (read-only), or None if the pack lacks it."""
        row = self.rows.get(sprite_id)
        if row is None:
            return None
        offset, n, shape = row
        raw = os.pread(self.fd, n, offset)
        if len(raw) != n:
            return None
        out = np.frombuffer(raw, self.dtype).reshape(shape)
        out.flags.writeable = False
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


#: this process's open packs by (folder, kind) (None: no usable pack there); the oldest are
#: closed
_PACKS: OrderedDict[tuple[Path, str], Pack | None] = OrderedDict()
_PACKS_OPEN = 16


def open_pack(folder: Path, kind: str) -> Pack | None:
    """The pack of ``kind`` in ``folder``, opened once per process (None: there is none, or it
    is unreadable). A pack written after this process first looked is not seen by it, unless
    this process wrote it."""
    if not hasattr(os, "pread"):  # pragma: no cover - Windows: the files alone
        return None
    key = (folder, kind)
    pack = _PACKS.get(key, False)
    if pack is not False:
        return pack
    try:
        pack = Pack(_pack_path(folder, kind))
    except (OSError, ValueError):
        pack = None
    _PACKS[key] = pack
    while len(_PACKS) > _PACKS_OPEN:
        _, old = _PACKS.popitem(last=False)
        if old is not None:
            old.close()
    return pack


def _forget_pack(path: Path) -> None:
    """Close and forget this process's pack at ``path``."""
    for key in [k for k in _PACKS if _pack_path(*k) == path]:
        old = _PACKS.pop(key)
        if old is not None:
            old.close()


def pack_prepared(folder: Path | None, min_share: float = 0.125) -> int:
    """Gather each kind's files in ``folder`` into its pack (with what the pack held), then
    delete the files.

    A kind is packed when it has files and they are at least ``min_share`` of what its pack
    holds, so that a pack of thousands of sprites is not rewritten for a few new ones. Arrays
    of another dtype than the pack's, or of more than :data:`PACK_NDIM` dimensions, stay in
    their files. Never raises for the cache's sake: a folder that cannot be read or written is
    left as it is.

    Returns
    -------
    int
        How many files were packed.
    """
    if folder is None or not folder.is_dir() or not hasattr(os, "pread"):
        return 0  # (no pread on Windows: no packs there)
    packed = 0
    try:
        kinds = [d for d in folder.iterdir() if d.is_dir()]
    except OSError:
        return 0
    for kind_dir in sorted(kinds):
        try:
            packed += _pack_kind(folder, kind_dir, min_share)
        except OSError:
            continue
    return packed


def _pack_kind(folder: Path, kind_dir: Path, min_share: float) -> int:
    files = {}
    for p in kind_dir.iterdir():
        if p.suffix == ".npy" and not p.name.startswith(".") and p.stem.isdigit():
            files[int(p.stem)] = p
    path = folder / f"{kind_dir.name}.pack"
    _forget_pack(path)
    try:
        old = Pack(path)
    except (OSError, ValueError):
        old = None
    try:
        if not files or len(files) < min_share * (len(old) if old is not None else 0):
            return 0
        # each array's shape and how to read it: the arrays are read one at a time as the
        # pack is written, so that packing a large pool holds one sprite in memory, not all
        entries: dict[int, tuple[tuple[int, ...], Callable[[], np.ndarray | None]]] = {}
        dtype = old.dtype if old is not None and len(old) else None
        if old is not None:
            for sid, (_, _, shape) in old.rows.items():
                entries[sid] = (shape, partial(old.get, sid))
        taken = []
        for sid, p in sorted(files.items()):
            a = _load_file(p)
            if a is None or a.ndim > PACK_NDIM:
                continue
            dtype = a.dtype if dtype is None else dtype
            if a.dtype == dtype:
                entries[sid] = (a.shape, partial(_load_file, p))
                taken.append(p)
        if not taken:
            return 0
        _write_pack(path, entries, dtype)
    finally:
        if old is not None:
            old.close()
    for p in taken:
        try:
            p.unlink()
        except OSError:
            pass
    return len(taken)


def _write_pack(
    path: Path, entries: dict[int, tuple[tuple[int, ...], Callable[[], np.ndarray | None]]],
    dtype: np.dtype,
) -> None:
    """Write the pack ``path`` atomically from ``entries`` (sprite id -> shape, reader).

    Raises
    ------
    OSError
        Also when an array can no longer be read as it was (a file another process packed
        meanwhile): nothing is written.
    """
    ids = sorted(entries)
    index = np.zeros((len(ids), 3 + PACK_NDIM), np.int64)
    total = 0
    for row, sid in zip(index, ids, strict=True):
        shape = entries[sid][0]
        row[0], row[1], row[2] = sid, total, len(shape)
        row[3:3 + len(shape)] = shape
        total += math.prod(shape)
    fmt = np.lib.format

    def write(f) -> None:
        np.save(f, index, allow_pickle=False)
        fmt.write_array_header_1_0(
            f, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": False, "shape": (total,)})
        for sid in ids:
            shape, read = entries[sid]
            a = read()
            if a is None or a.shape != shape or a.dtype != dtype:
                raise OSError(f"prepared sprite {sid} changed while it was packed")
            f.write(np.ascontiguousarray(a).tobytes())

    _save_atomic(path, write)


# -- verified sprite files ----------------------------------------------------------------------

#: the file of a pool folder's checked sprite files: int64 rows (sprite id, size, mtime_ns)
VERIFIED = "verified.npy"


def packed_ids(folder: Path) -> set[int]:
    """Every sprite id that some pack in ``folder`` holds."""
    ids: set[int] = set()
    try:
        packs = sorted(folder.glob("*.pack"))
    except OSError:
        return ids
    for path in packs:
        try:
            pack = Pack(path)
        except (OSError, ValueError):
            continue
        ids.update(pack.rows)
        pack.close()
    return ids


def load_verified(folder: Path) -> dict[int, tuple[int, int]]:
    """Sprite id -> (size, mtime_ns) of its file when it was last found to match the manifest
    (empty when there is no record, or it is unreadable)."""
    try:
        rows = np.load(folder / VERIFIED, allow_pickle=False)
    except (OSError, ValueError):
        return {}
    if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype != np.int64:
        return {}
    return {r[0]: (r[1], r[2]) for r in rows.tolist()}


def save_verified(folder: Path, verified: dict[int, tuple[int, int]]) -> None:
    """Store :func:`load_verified`'s record atomically; a failure is ignored."""
    rows = np.array([(k, *v) for k, v in sorted(verified.items())], np.int64).reshape(-1, 3)
    try:
        _save_npy(folder / VERIFIED, rows)
    except OSError:
        pass
