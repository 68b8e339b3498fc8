"""Pool subsets: a smaller pool (a sample per class, some classes only) that keeps provenance.

Used to ship or move a pool (a few hundred sprites per class are enough for datasets of a few
thousand smears), to drop classes a target lab does not label, or to hold out sprites.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import PoolError
from ..taxonomy import POOL_CLASSES
from .store import PoolStore, open_pool, write_pool


def subset_pool(
    src: str | Path,
    dst: str | Path,
    per_class: int | Mapping[str, int] | None = None,
    classes: Iterable[str] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> PoolStore:
    """Write a pool holding at most ``per_class`` sprites of each of ``classes`` of ``src``.

    Parameters
    ----------
    src : path-like
        The pool to read.
    dst : path-like
        The pool folder to write (atomically: never half-written).
    per_class : int or mapping, optional
        The most sprites kept per class (one number for every class, or class -> number,
        classes not named kept whole), drawn without replacement with ``seed`` and kept in
        their original order; None keeps all.
    classes : iterable of str, optional
        The classes to keep (default: all of the source's).
    seed : int
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    PoolStore
        The new pool, opened.

    Raises
    ------
    PoolError
        If a class is unknown or absent from the source, or ``per_class`` is below 1.
    """
    pool = open_pool(src)
    keep_classes = list(pool.classes) if classes is None else list(classes)
    for c in keep_classes:
        if c not in POOL_CLASSES:
            raise PoolError(f"unknown class {c!r}; choose from {', '.join(POOL_CLASSES)}")
        if c not in pool.classes:
            raise PoolError(f"pool {pool.name!r} has no sprites of {c!r}")
    caps = dict(per_class) if isinstance(per_class, Mapping) else {
        c: per_class for c in keep_classes if per_class is not None}
    for c, n in caps.items():
        if c not in keep_classes:
            raise PoolError(f"per_class names {c!r}, which is not among the classes kept")
        if n < 1:
            raise PoolError(f"per_class must be at least 1, got {n} for {c!r}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in keep_classes:
        ids = np.asarray(pool.ids(c))
        cap = caps.get(c)
        if cap is not None and len(ids) > cap:
            ids = np.sort(rng.choice(ids, cap, replace=False))
        chosen.extend(int(i) for i in ids)
    chosen.sort()

    def sprites():
        for i in chosen:
            rec = pool.records[i]
            yield pool.load(i), rec.cls, rec.um_per_px, rec.provenance

    rule = (", ".join(f"{c} <= {n}" for c, n in caps.items()) or "all sprites")
    return write_pool(dst, sprites(), name=Path(dst).name, overwrite=overwrite,
                      description=f"subset of {pool.name} ({rule} of {', '.join(keep_classes)}; "
                                  f"seed {seed})")
