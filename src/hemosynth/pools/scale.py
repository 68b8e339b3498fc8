"""Scale calibration: micrometres per pixel from the median red-cell diameter.

A red cell is about 7.5 um across (:data:`RBC_DIAMETER_UM`), so a source whose red cells
measure ``d`` pixels has ``7.5 / d`` um per pixel. ``d`` comes from RBC boxes of an annotated
source (the median of ``(w + h) / 2`` over boxes that do not touch the image border, which are
whole cells) or, for crops without boxes, from the round, isolated red cells found in the crop
backgrounds (equivalent diameter ``2 sqrt(area / pi)`` of blobs that are neither stained nor
cut by the border).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from .segment import _disk, _fill_holes, _nucleus_score, _otsu, _otsu3, _plasma_lab

#: default diameter of a red cell in micrometres
RBC_DIAMETER_UM = 7.5


@dataclass(frozen=True)
class ScaleEstimate:
    """A source's scale.

    Attributes
    ----------
    um_per_px : float
    rbc_diameter_px : float or None
        Median red-cell diameter measured (None when the user gave the scale).
    n : int
        Red cells measured.
    method : str
        ``user``, ``boxes`` or ``crops``.
    """

    um_per_px: float
    rbc_diameter_px: float | None
    n: int
    method: str


def diameters_from_boxes(boxes: np.ndarray, width: int, height: int, margin: float = 1.0):
    """Diameters ``(w + h) / 2`` of the boxes that do not touch the image border.

    Parameters
    ----------
    boxes : ndarray of shape (N, 4)
        ``xyxy`` in pixels.
    width, height : int
    margin : float
        A box within ``margin`` px of an edge counts as touching it.

    Returns
    -------
    ndarray of shape (M,)
    """
    b = np.asarray(boxes, float).reshape(-1, 4)
    inside = (
        (b[:, 0] >= margin) & (b[:, 1] >= margin)
        & (b[:, 2] <= width - margin) & (b[:, 3] <= height - margin)
    )
    b = b[inside]
    return ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / 2


def diameters_from_image(rgb: np.ndarray, min_px: float = 8.0) -> np.ndarray:
    """Equivalent diameters of the isolated, round red cells in an RGB image.

    A red cell is a blob that differs from the plasma colour (Otsu on the Lab distance to the
    plasma), holds no stained (nucleus-coloured) pixel, does not touch the border, and is
    round: solidity >= 0.93 and ``4 pi area / perimeter^2`` >= 0.8.

    Returns
    -------
    ndarray of shape (M,)
    """
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (0, 0), 1.0), cv2.COLOR_RGB2LAB).astype(np.float32)
    bg = _plasma_lab(lab)
    dist = np.sqrt(((lab - bg) ** 2).sum(-1))
    fg = dist > max(_otsu(dist), 6.0)
    fg = _fill_holes(cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0)
    score = _nucleus_score(lab)
    stained = score > _otsu3(score)[1]
    n, lab_img, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), 8)
    h, w = fg.shape
    out = []
    for k in range(1, n):
        x, y, bw, bh, area = stats[k]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue
        d = 2 * np.sqrt(area / np.pi)
        if d < min_px:
            continue
        comp = (lab_img[y : y + bh, x : x + bw] == k).astype(np.uint8)
        if stained[y : y + bh, x : x + bw][comp > 0].mean() > 0.02:
            continue
        cs, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(cs, key=cv2.contourArea)
        hull = cv2.contourArea(cv2.convexHull(c))
        per = cv2.arcLength(c, True)
        if hull <= 0 or per <= 0:
            continue
        if area / hull < 0.93 or 4 * np.pi * area / per**2 < 0.8:
            continue
        out.append(d)
    return np.asarray(out, float)


def estimate_scale(
    diameters: Iterable[float], method: str, rbc_um: float = RBC_DIAMETER_UM
) -> ScaleEstimate | None:
    """A :class:`ScaleEstimate` from measured red-cell diameters (None if there are none)."""
    d = np.asarray(list(diameters), float)
    if d.size == 0:
        return None
    med = float(np.median(d))
    return ScaleEstimate(rbc_um / med, med, int(d.size), method)
