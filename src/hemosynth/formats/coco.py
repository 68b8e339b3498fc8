"""COCO detection JSON: ``coco/<set>.json``, one file per label set.

Images have ``id = index + 1`` and ``file_name`` relative to the dataset's ``images/`` folder.
Categories have ``id = class id + 1`` (COCO ids start at 1) and the main type as
``supercategory``. Each annotation has ``bbox = [x, y, w, h]`` in pixels (the clipped box),
``area`` = visible pixels (the cell's weight >= 0.5 after occlusion), ``iscrowd = 0``,
``visible_fraction``, and, with ``output.coco_masks``, the visible mask as compressed RLE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_json
from ..taxonomy import MAIN_OF, LabelSet
from .base import labelled_cells


def window_rle(
    mask: np.ndarray, x0: int, y0: int, width: int, height: int
) -> dict[str, Any]:
    """Compressed COCO RLE of a full ``height`` x ``width`` mask that is zero outside a window.

    Parameters
    ----------
    mask : ndarray of shape (h, w), bool
        The window's pixels, placed at column ``x0``, row ``y0`` (inside the image).

    Returns
    -------
    dict
        ``{"size": [height, width], "counts": str}``, as pycocotools encodes it.
    """
    from pycocotools import mask as mask_utils

    h, w = mask.shape
    cols = np.zeros((w, height), bool)  # column-major: one row here per image column
    cols[:, y0 : y0 + h] = mask.T
    flat = cols.ravel()
    start = x0 * height
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    runs[0] += start
    total = sum(runs)
    tail = width * height - total
    if len(runs) % 2 == 1:  # last run is zeros: extend it
        runs[-1] += tail
    elif tail:
        runs.append(tail)
    rle = mask_utils.frPyObjects({"counts": runs, "size": [height, width]}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def coco_dict(
    records: list[dict[str, Any]], label_set: LabelSet, min_visible: float = 0.0
) -> dict[str, Any]:
    """Build the COCO detection dict of ``records`` for ``label_set``."""
    images, anns = [], []
    for rec in records:
        image_id = rec["index"] + 1
        images.append(
            {
                "id": image_id,
                "file_name": Path(rec["file_name"]).name,
                "width": rec["width"],
                "height": rec["height"],
            }
        )
        for cid, cell in labelled_cells(rec, label_set, min_visible):
            x0, y0, x1, y1 = cell["box"]
            ann = {
                "id": len(anns) + 1,
                "image_id": image_id,
                "category_id": cid + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": cell["area"],
                "iscrowd": 0,
                "visible_fraction": cell["visible"],
            }
            if "rle" in cell:
                ann["segmentation"] = cell["rle"]
            anns.append(ann)
    cats = [
        {"id": k + 1, "name": n, "supercategory": MAIN_OF.get(n, n)}
        for k, n in enumerate(label_set.names)
    ]
    return {
        "info": {"description": f"hemosynth synthetic blood smears, label set {label_set.name}"},
        "images": images,
        "annotations": anns,
        "categories": cats,
    }


class CocoWriter:
    """Writes ``coco/<set>.json`` once every smear is made."""

    name = "coco"

    def write_smear(self, root, record, label_set, min_visible):
        pass

    def finalize(self, root, records, label_set, cfg):
        atomic_write_json(
            root / "coco" / f"{label_set.slug}.json",
            coco_dict(records, label_set, cfg.output.min_visible),
            indent=None,
        )
