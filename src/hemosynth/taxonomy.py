"""The cell taxonomy: 18 pool classes, 3 main types, and the label sets.

The pool classes are the paper's 18 pools: red blood cells plus the 17 annotated classes.
Every annotated class belongs to one *main type* (``WBC``, ``Platelet`` or
``Nucleated RBC``). A *label set* maps pool classes to the class ids written in the
annotation files:

``main``
    3 classes, the main types (the paper's annotation set 1).
``sub``
    17 classes, the annotated subtypes (the paper's annotation set 2).
``main+rbc``
    4 classes, the main types plus ``RBC`` (BCCD-style RBC / WBC / Platelet counting).

Red cells are pasted in every smear but only labelled in ``main+rbc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .errors import ConfigError

RBC = "RBC"

#: main type -> its subtypes, in the order used for class ids.
MAIN_TYPES: dict[str, tuple[str, ...]] = {
    "WBC": (
        "Atypical lymphocyte",
        "Atypical monocyte",
        "Band cell",
        "Basket cell",
        "Basophil",
        "Eosinophil",
        "Hypersegmented neutrophil",
        "Hyposegmented neutrophil",
        "Lymphocyte",
        "Monocyte",
        "Plasma cell",
        "Reactive lymphocyte",
        "Segmented neutrophil",
    ),
    "Platelet": ("Platelet", "Giant platelet", "Activated platelet"),
    "Nucleated RBC": ("Nucleated RBC",),
}

#: the 17 annotated classes, in label-set ``sub`` order.
SUBTYPES: tuple[str, ...] = tuple(c for subs in MAIN_TYPES.values() for c in subs)

#: the 18 pool classes: RBC first, then the 17 annotated classes.
POOL_CLASSES: tuple[str, ...] = (RBC, *SUBTYPES)

#: pool class -> main type (``RBC`` maps to itself).
MAIN_OF: dict[str, str] = {RBC: RBC, **{c: m for m, subs in MAIN_TYPES.items() for c in subs}}

#: short, filesystem-safe names used for sprite folders.
SLUGS: dict[str, str] = {c: c.lower().replace(" ", "_") for c in POOL_CLASSES}

#: accepted spellings for classes (case-insensitive), e.g. in mapping files.
ALIASES: dict[str, str] = {
    **{c.lower(): c for c in POOL_CLASSES},
    **{s: c for c, s in SLUGS.items()},
    "basket (smudge) cell": "Basket cell",
    "smudge cell": "Basket cell",
    "nrbc": "Nucleated RBC",
    "erythroblast": "Nucleated RBC",
    "red blood cell": RBC,
    "erythrocyte": RBC,
    "platelets": "Platelet",
    "neutrophil": "Segmented neutrophil",
}


def canonical_class(name: str) -> str:
    """Return the canonical pool class for ``name``.

    Parameters
    ----------
    name : str
        A class name in any case, a slug (``band_cell``) or a known alias (``NRBC``).

    Returns
    -------
    str
        One of :data:`POOL_CLASSES`.

    Raises
    ------
    ConfigError
        If ``name`` is not a known class.

    Examples
    --------
    >>> canonical_class("band_cell")
    'Band cell'
    >>> canonical_class("NRBC")
    'Nucleated RBC'
    """
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    raise ConfigError(f"unknown cell class {name!r}; known classes: {', '.join(POOL_CLASSES)}")


@dataclass(frozen=True)
class LabelSet:
    """A mapping from pool classes to annotation class ids.

    Attributes
    ----------
    name : str
        ``main``, ``sub`` or ``main+rbc``.
    names : tuple of str
        Class names in id order (id = position).
    """

    name: str
    names: tuple[str, ...]

    def class_id(self, pool_class: str) -> int | None:
        """Return the id of ``pool_class`` in this set, or None if it is not labelled."""
        ids = self.class_ids
        return ids[pool_class] if pool_class in ids else self._find(pool_class)

    def _find(self, pool_class: str) -> int | None:
        target = pool_class if self.name == "sub" else MAIN_OF[pool_class]
        try:
            return self.names.index(target)
        except ValueError:
            return None

    @cached_property
    def class_ids(self) -> dict[str, int | None]:
        """:meth:`class_id` of every pool class, looked up once (it is asked per cell)."""
        return {c: self._find(c) for c in POOL_CLASSES}

    @property
    def slug(self) -> str:
        """A filesystem-safe form of the name (``main+rbc`` -> ``main_rbc``)."""
        return self.name.replace("+", "_")


LABEL_SETS: dict[str, LabelSet] = {
    "main": LabelSet("main", tuple(MAIN_TYPES)),
    "sub": LabelSet("sub", SUBTYPES),
    "main+rbc": LabelSet("main+rbc", (RBC, *MAIN_TYPES)),
}


def label_set(name: str) -> LabelSet:
    """Return the label set called ``name``.

    Raises
    ------
    ConfigError
        If there is no such label set.
    """
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown label set {name!r}; choose from {', '.join(LABEL_SETS)}"
        ) from None
