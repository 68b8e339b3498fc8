"""Scoring background removal against ground-truth masks (the ``wbc-masks`` layout).

``wbc-masks`` holds ``Dataset K/NNN.bmp`` images and ``Dataset K/NNN.png`` masks (0 background,
128 cytoplasm, 255 nucleus) plus ``Class Labels of Dataset K.csv``. The whole cell is
``mask > 0``. :func:`score_masks` computes the IoU and the boundary F-score of a predicted
mask; :func:`evaluate_wbc_masks` runs :func:`~hemosynth.pools.segment.segment_cell` over a
dataset and returns one row per image.

The boundary F-score follows the DAVIS benchmark: boundary pixels of prediction and truth are
matched within a tolerance of ``max(1, round(0.0075 * diagonal))`` pixels (1 px on the 120 px
Dataset 1 crops, 3 px on the 300 px Dataset 2 crops); F is the harmonic mean of boundary
precision and recall.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FormatError

#: class ids of the wbc-masks CSVs
WBC_MASK_CLASSES: dict[int, str] = {
    1: "Segmented neutrophil", 2: "Lymphocyte", 3: "Monocyte", 4: "Eosinophil", 5: "Basophil",
}


@dataclass(frozen=True)
class MaskScore:
    """The scores of one predicted mask."""

    name: str
    cls: str
    iou: float
    boundary_f: float
    #: whether a pool build would keep the mask (passes the ``no-cytoplasm`` filter)
    kept: bool = True


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT)) > 0


def score_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """IoU and boundary F-score of a predicted boolean mask against the truth.

    Parameters
    ----------
    pred, truth : ndarray of shape (H, W), bool

    Returns
    -------
    (float, float)
        IoU and boundary F-score, both in [0, 1] (1 when both masks are empty).
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    union = np.count_nonzero(pred | truth)
    iou = np.count_nonzero(pred & truth) / union if union else 1.0
    tol = max(1, round(0.0075 * float(np.hypot(*truth.shape))))
    bp, bt = _boundary(pred), _boundary(truth)
    if not bp.any() and not bt.any():
        return iou, 1.0
    if not bp.any() or not bt.any():
        return iou, 0.0
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    near_t = cv2.dilate(bt.astype(np.uint8), disk) > 0
    near_p = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = np.count_nonzero(bp & near_t) / np.count_nonzero(bp)
    recall = np.count_nonzero(bt & near_p) / np.count_nonzero(bt)
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(iou), float(f)


def iter_wbc_masks(
    folder: str | os.PathLike[str],
) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """Yield ``(name, class, rgb, whole-cell mask)`` for each pair of a wbc-masks dataset folder.

    Parameters
    ----------
    folder : path-like
        ``.../wbc-masks/Dataset K``; the class CSV is looked for beside it.

    Raises
    ------
    FormatError
        If the folder has no image/mask pairs or a file cannot be read.
    """
    folder = Path(folder)
    classes: dict[int, str] = {}
    csv_path = folder.parent / f"Class Labels of {folder.name}.csv"
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if len(row) >= 2 and row[0].strip().isdigit():
                    classes[int(row[0])] = WBC_MASK_CLASSES.get(int(row[1]), row[1].strip())
    images = sorted(folder.glob("*.bmp"))
    if not images:
        raise FormatError(f"{folder}: no .bmp images")
    for img_path in images:
        mask_path = img_path.with_suffix(".png")
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            raise FormatError(f"{img_path}: image or its mask {mask_path.name} is unreadable")
        # snap stray values to the nearest of {0, 128, 255}; the whole cell is > 64
        cell = mask > 64
        name = img_path.stem
        cls = classes.get(int(name), "?") if name.isdigit() else "?"
        yield name, cls, cv2.cvtColor(img, cv2.COLOR_BGR2RGB), cell


def evaluate_wbc_masks(
    folder: str | os.PathLike[str],
    segment: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[MaskScore]:
    """Score a segmenter on one wbc-masks dataset folder.

    Parameters
    ----------
    folder : path-like
        ``.../wbc-masks/Dataset K``.
    segment : callable, optional
        ``rgb -> bool mask``; defaults to the whole-cell mask of
        :func:`~hemosynth.pools.segment.segment_cell`.

    Returns
    -------
    list of MaskScore
        One per image.
    """
    if segment is None:
        from .quality import MIN_CELL_TO_NUCLEUS, missed_cytoplasm
        from .segment import segment_cell

        rows = []
        for name, cls, rgb, truth in iter_wbc_masks(folder):
            seg = segment_cell(rgb, cls=cls)
            kept = not missed_cytoplasm(seg, MIN_CELL_TO_NUCLEUS.get(cls))
            rows.append(MaskScore(name, cls, *score_masks(seg.mask, truth), kept=kept))
        return rows
    return [
        MaskScore(name, cls, *score_masks(segment(rgb), truth))
        for name, cls, rgb, truth in iter_wbc_masks(folder)
    ]


def summarize(
    scores: list[MaskScore], kept_only: bool = False
) -> dict[str, tuple[int, float, float]]:
    """``{class or "all": (n, mean IoU, mean boundary F)}`` of a list of scores.

    With ``kept_only``, only the masks a pool build keeps (:attr:`MaskScore.kept`).
    """
    if kept_only:
        scores = [s for s in scores if s.kept]
    out: dict[str, tuple[int, float, float]] = {}
    groups: dict[str, list[MaskScore]] = {"all": list(scores)}
    for s in scores:
        groups.setdefault(s.cls, []).append(s)
    for k, g in groups.items():
        if g:
            out[k] = (
                len(g),
                float(np.mean([s.iou for s in g])),
                float(np.mean([s.boundary_f for s in g])),
            )
    return out
