"""Derived classes: mined from real sprites by a stated rule, marked ``derived``.

- **Hypersegmented neutrophil**: a segmented neutrophil whose nucleus has 6 or more lobes.
- **Hyposegmented neutrophil**: a segmented neutrophil whose nucleus has exactly 2 lobes.
- **Giant platelet**: a platelet at least :data:`GIANT_PLATELET_UM` (7 um, a red cell)
  across (equivalent diameter of the mask).

A derived sprite is a *copy*: the source sprite stays in its class, and the copy's provenance
is the source's with ``kind = "derived"``, ``rule`` (the rule in words) and ``derived_from``
(the source class), so a user can keep or drop derived sprites by kind.
"""

from __future__ import annotations

import cv2
import numpy as np

from .segment import _disk

#: equivalent diameter (um) from which a platelet counts as giant
GIANT_PLATELET_UM = 7.0
HYPER_LOBES = 6
HYPO_LOBES = 2

RULES: dict[str, str] = {
    "Hypersegmented neutrophil": f"Segmented neutrophil with >= {HYPER_LOBES} nucleus lobes",
    "Hyposegmented neutrophil": f"Segmented neutrophil with exactly {HYPO_LOBES} nucleus lobes",
    "Giant platelet": f"Platelet with equivalent diameter >= {GIANT_PLATELET_UM} um",
}


def count_lobes(nucleus: np.ndarray, min_fraction: float = 0.04) -> int:
    """Number of lobes of a nucleus mask.

    Lobes joined by thin chromatin filaments are separated by an opening with a disk of a
    quarter of the nucleus's largest inscribed radius; components smaller than
    ``min_fraction`` of the nucleus are ignored.

    Parameters
    ----------
    nucleus : ndarray of shape (H, W), bool

    Returns
    -------
    int
        0 for an empty mask.
    """
    m = nucleus.astype(np.uint8)
    total = int(m.sum())
    if total == 0:
        return 0
    dt = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    r = max(1.0, 0.35 * float(dt.max()))
    core = cv2.morphologyEx(m, cv2.MORPH_OPEN, _disk(r))
    _, _, stats, _ = cv2.connectedComponentsWithStats(core, 8)
    return int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= min_fraction * total))


def derived_class(cls: str, lobes: int, diameter_um: float) -> str | None:
    """The derived class of a sprite of class ``cls``, or None."""
    if cls == "Segmented neutrophil":
        if lobes >= HYPER_LOBES:
            return "Hypersegmented neutrophil"
        if lobes == HYPO_LOBES:
            return "Hyposegmented neutrophil"
    if cls == "Platelet" and diameter_um >= GIANT_PLATELET_UM:
        return "Giant platelet"
    return None
