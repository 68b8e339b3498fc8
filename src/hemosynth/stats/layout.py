"""Cell layouts: the boxes of one field, in the form every statistic reads.

A :class:`Layout` is one image's cells: clipped ``xyxy`` boxes in pixels (pixel edges), a
class per box, and the image's scale in micrometres per pixel, so that every statistic can be
stated in micrometres. Generated datasets give layouts from their records (never from the
images); real annotated sets give them from their label files through a :class:`ClassMap`
that names, for each of the real set's class names, the hemosynth class it stands for.

Classes are compared at the level of the *main types* plus red cells (:data:`GROUPS`:
``RBC``, ``WBC``, ``Platelet``, ``Nucleated RBC``): real sets rarely label subtypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..taxonomy import MAIN_OF, MAIN_TYPES, POOL_CLASSES, RBC, canonical_class

#: the classes statistics are grouped by: red cells and the three main types
GROUPS: tuple[str, ...] = (RBC, *MAIN_TYPES)
#: group name -> index in :data:`GROUPS`
GROUP_INDEX: dict[str, int] = {g: k for k, g in enumerate(GROUPS)}
#: pool class -> index in :data:`~hemosynth.taxonomy.POOL_CLASSES`
POOL_INDEX: dict[str, int] = {c: k for k, c in enumerate(POOL_CLASSES)}
#: pool class index -> group index
POOL_TO_GROUP: np.ndarray = np.array([GROUP_INDEX[MAIN_OF[c]] for c in POOL_CLASSES], np.int64)
#: a red cell's diameter in micrometres, used to estimate a real set's scale
RBC_DIAMETER_UM = 7.5
#: target name that drops a real class from the statistics
IGNORE = "ignore"


def group_of(name: str) -> str:
    """The group (``RBC`` or a main type) of a pool class or main-type name."""
    return name if name in GROUP_INDEX else MAIN_OF[name]


@dataclass(frozen=True)
class Layout:
    """The cells of one field.

    Attributes
    ----------
    name : str
        Image file (or record) the layout comes from, for messages.
    width, height : int
        Field size in pixels.
    um_per_px : float
        Scale in micrometres per pixel.
    boxes : ndarray of shape (N, 4), float
        Clipped ``x0, y0, x1, y1`` boxes in pixel edges.
    groups : ndarray of shape (N,), int64
        Index into :data:`GROUPS` of each cell.
    pool : ndarray of shape (N,), int64
        Index into :data:`~hemosynth.taxonomy.POOL_CLASSES` of each cell, or -1 where only the
        main type is known (real sets labelled ``WBC``).
    visible : ndarray of shape (N,), optional
        Visible fraction after occlusion and border cut (generated sets only).
    area : ndarray of shape (N,), optional
        Visible pixels (generated sets only).
    """

    name: str
    width: int
    height: int
    um_per_px: float
    boxes: np.ndarray
    groups: np.ndarray
    pool: np.ndarray
    visible: np.ndarray | None = None
    area: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def area_um2(self) -> float:
        """Field area in square micrometres."""
        return self.width * self.height * self.um_per_px**2


def make_layout(
    name: str,
    width: int,
    height: int,
    um_per_px: float,
    boxes: np.ndarray,
    classes: Iterable[str],
    visible: np.ndarray | None = None,
    area: np.ndarray | None = None,
    pool_classes: bool = False,
) -> Layout:
    """Build a :class:`Layout` from boxes and hemosynth class names.

    Parameters
    ----------
    classes : iterable of str
        Pool classes (``"Lymphocyte"``) or main types / ``RBC`` (``"WBC"``).
    pool_classes : bool
        Every name is a pool class (as in generated records): ``"Platelet"`` then means the
        subtype, not the main type.

    Examples
    --------
    >>> lay = make_layout("x", 100, 100, 0.5, [[0, 0, 10, 10]], ["WBC"])
    >>> GROUPS[lay.groups[0]], int(lay.pool[0])
    ('WBC', -1)
    """
    classes = list(classes)
    b = np.asarray(boxes, float).reshape(-1, 4)
    if len(b) != len(classes):
        raise ValueError(f"{name}: {len(b)} boxes but {len(classes)} classes")
    groups = np.array([GROUP_INDEX[group_of(c)] for c in classes], np.int64)
    pool = np.array(
        [POOL_INDEX[c] if c in POOL_INDEX and (pool_classes or c not in MAIN_TYPES) else -1
         for c in classes],
        np.int64,
    )
    # RBC is both a group and a pool class
    pool[groups == GROUP_INDEX[RBC]] = POOL_INDEX[RBC]
    return Layout(name, int(width), int(height), float(um_per_px), b, groups, pool,
                  visible, area)


def resolve_class(name: str) -> str | None:
    """The hemosynth class a real class name stands for, or None if it is not recognised.

    Main types and ``RBC`` are matched case-insensitively; other names go through
    :func:`~hemosynth.taxonomy.canonical_class` (``"Platelets"`` -> ``"Platelet"``).
    """
    key = name.strip().lower()
    for g in GROUPS:
        if key == g.lower():
            return g
    if key in ("wbc", "white blood cell", "leukocyte", "leucocyte"):
        return "WBC"
    try:
        return canonical_class(name)
    except ConfigError:
        return None


class ClassMap:
    """How a real set's class names map onto hemosynth classes.

    Parameters
    ----------
    entries : mapping or iterable of str, optional
        ``{"Platelets": "Platelet"}`` or ``["Platelets=Platelet", "Debris=ignore"]``; the
        target is a main type, ``RBC``, a pool class, or ``ignore``. Names without an entry
        are resolved by :func:`resolve_class`.

    Raises
    ------
    ConfigError
        If an entry is malformed or its target is not a hemosynth class, naming the entry.
    """

    def __init__(self, entries: Mapping[str, str] | Iterable[str] | None = None) -> None:
        self.explicit: dict[str, str | None] = {}
        if entries is None:
            return
        items: list[tuple[str, str]] = []
        if isinstance(entries, Mapping):
            items = [(str(k), str(v)) for k, v in entries.items()]
        else:
            for raw in entries:
                for part in str(raw).split(","):
                    if not part.strip():
                        continue
                    if "=" not in part:
                        raise ConfigError(
                            f"--map {part.strip()!r}: expected SOURCE=TARGET, e.g. "
                            "Platelets=Platelet"
                        )
                    src, dst = part.split("=", 1)
                    items.append((src.strip(), dst.strip()))
        for src, dst in items:
            if not src:
                raise ConfigError(f"--map {src}={dst}: empty source class")
            if dst.lower() == IGNORE:
                self.explicit[src] = None
                continue
            target = resolve_class(dst)
            if target is None:
                raise ConfigError(
                    f"--map {src}={dst}: unknown class {dst!r}; use RBC, "
                    f"{', '.join(MAIN_TYPES)}, a subtype ({', '.join(POOL_CLASSES[1:4])}, ...) "
                    f"or {IGNORE}"
                )
            self.explicit[src] = target

    def __call__(self, name: str, where: str = "") -> str | None:
        """The hemosynth class of real class ``name`` (None = ignored).

        Raises
        ------
        ConfigError
            If ``name`` is neither in the map nor recognised, naming ``where``.
        """
        if name in self.explicit:
            return self.explicit[name]
        target = resolve_class(name)
        if target is None:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown class {name!r}; map it with --map '{name}=<class>' (RBC, "
                f"{', '.join(MAIN_TYPES)}, a subtype, or {IGNORE})"
            )
        return target

    def check_sources(self, seen: set[str], where: str) -> None:
        """Raise ConfigError for a map entry whose source class never occurs in ``where``."""
        for src in self.explicit:
            if src not in seen:
                raise ConfigError(
                    f"--map {src}=...: class {src!r} does not occur in {where} (its classes: "
                    f"{', '.join(sorted(seen)) or 'none'})"
                )


def estimate_um_per_px(layouts_px: Iterable[tuple[np.ndarray, np.ndarray, int, int]]) -> float:
    """Scale of a real set from the median diameter of its whole red-cell boxes.

    Parameters
    ----------
    layouts_px : iterable of (boxes, is_rbc, width, height)
        Boxes of shape (N, 4) in pixels and a boolean mask of the red cells.

    Returns
    -------
    float
        ``RBC_DIAMETER_UM / median((w + h) / 2)`` over red-cell boxes that do not touch the
        image border.

    Raises
    ------
    ConfigError
        If the set has no whole red-cell box to measure.
    """
    diam = []
    for boxes, is_rbc, w, h in layouts_px:
        b = np.asarray(boxes, float).reshape(-1, 4)[np.asarray(is_rbc, bool)]
        inside = (b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < w) & (b[:, 3] < h)
        b = b[inside]
        diam.append(((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / 2)
    d = np.concatenate(diam) if diam else np.empty(0)
    if d.size == 0:
        raise ConfigError(
            "cannot estimate the real set's scale: it has no whole RBC box; pass --real-um-per-px"
        )
    return RBC_DIAMETER_UM / float(np.median(d))


__all__ = [
    "GROUPS",
    "IGNORE",
    "RBC_DIAMETER_UM",
    "ClassMap",
    "Layout",
    "estimate_um_per_px",
    "group_of",
    "make_layout",
    "resolve_class",
]
