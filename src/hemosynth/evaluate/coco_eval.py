"""Our own COCO box evaluation (pycocotools), independent of any trainer's metric.

Each class is scored by :class:`pycocotools.cocoeval.COCOeval` on the images where it is
annotated (:attr:`~hemosynth.evaluate.testsets.TestSet.evaluated`), at up to ``max_dets``
detections per image and class. AP@0.5 is COCO's 101-point interpolated precision at IoU 0.5;
AP@0.5:0.95 averages it over IoU 0.50, 0.55, ..., 0.95. The means (mAP) are over the classes
that have at least one ground-truth box; classes absent from the test set are left out and
listed in :attr:`Scores.absent`.

Predictions are either COCO results (``image_id``, ``category_id``, ``bbox``, ``score``, with
the test set's ids, as :meth:`TestSet.coco` numbers them) or a plain list of
``{"file_name", "category", "bbox", "score"}`` (``category`` a class name, ``bbox``
``[x, y, w, h]`` in pixels), so predictions from any tool can be scored without knowing our ids.
``file_name`` may be a file name, a stem or a path (its name is used).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from .testsets import TestSet


@dataclass
class Scores:
    """The result of :func:`score`.

    Attributes
    ----------
    map50, map50_95 : float
        Means of AP@0.5 and AP@0.5:0.95 over :attr:`included` (NaN when none).
    per_class : dict
        Class -> ``{"ap50", "ap50_95", "gt", "images", "detections"}`` (APs are None for an
        absent class).
    included : list of str
        Classes in the means.
    absent : list of str
        Classes with no ground-truth box, left out of the means.
    ignored : dict
        Predictions not scored: ``{"unknown_class": {name: n}, "unknown_image": n}``.
    """

    map50: float
    map50_95: float
    per_class: dict[str, dict[str, Any]]
    included: list[str]
    absent: list[str]
    ignored: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN written as None)."""
        def num(v):
            return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(v, 6)

        return {
            "map50": num(self.map50),
            "map50_95": num(self.map50_95),
            "per_class": {
                c: {**d, "ap50": num(d["ap50"]), "ap50_95": num(d["ap50_95"])}
                for c, d in self.per_class.items()
            },
            "included": self.included,
            "absent": self.absent,
            "ignored": self.ignored,
        }

    def table(self) -> str:
        """A plain-text table: one line per class, then the means."""
        lines = [f"{'class':<16}{'AP@0.5':>8}{'AP@.5:.95':>11}{'boxes':>7}{'images':>8}{'dets':>8}"]
        for c, d in self.per_class.items():
            ap = "absent" if d["ap50"] is None else f"{d['ap50']:.3f}"
            ap2 = "" if d["ap50_95"] is None else f"{d['ap50_95']:.3f}"
            lines.append(
                f"{c:<16}{ap:>8}{ap2:>11}{d['gt']:>7}{d['images']:>8}{d['detections']:>8}"
            )
        lines.append(f"{'mAP':<16}{self.map50:>8.3f}{self.map50_95:>11.3f}")
        if self.absent:
            lines.append(f"left out of the mean (no test boxes): {', '.join(self.absent)}")
        unk = self.ignored.get("unknown_class") or {}
        if unk:
            lines.append(
                "predictions of classes the test set lacks (not scored): "
                + ", ".join(f"{k} {v}" for k, v in unk.items())
            )
        if self.ignored.get("unknown_image"):
            lines.append(f"predictions on images not in the test set: "
                         f"{self.ignored['unknown_image']}")
        return "\n".join(lines)


def load_predictions(
    predictions: str | Path | Sequence[dict[str, Any]], testset: TestSet
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Turn predictions into COCO results with ``testset``'s ids.

    Parameters
    ----------
    predictions : path-like or list of dict
        A JSON file, or its content: COCO results, or the plain form (module docstring).
    testset : TestSet

    Returns
    -------
    results : list of dict
        COCO results (``image_id``, ``category_id``, ``bbox``, ``score``).
    ignored : dict
        ``{"unknown_class": {name: count}, "unknown_image": count}``.

    Raises
    ------
    FormatError
        When an entry has neither form, or a bbox is not 4 numbers, naming the entry.
    """
    if isinstance(predictions, (str, Path)):
        p = Path(predictions)
        try:
            predictions = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise FormatError(f"{p}: cannot read predictions ({e})") from None
        if isinstance(predictions, dict) and "annotations" in predictions:
            predictions = predictions["annotations"]
    if not isinstance(predictions, list):
        raise FormatError("predictions: expected a JSON list of detections")
    index = testset.image_index()
    n_img = len(testset.images)
    n_cat = len(testset.categories)
    out: list[dict[str, Any]] = []
    unknown_class: dict[str, int] = {}
    unknown_image = 0
    for k, d in enumerate(predictions):
        if not isinstance(d, dict):
            raise FormatError(f"predictions[{k}]: expected an object, got {d!r}")
        try:
            bbox = [float(v) for v in d["bbox"]]
            s = float(d["score"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"predictions[{k}]: needs 'bbox' [x, y, w, h] and 'score'") from None
        if len(bbox) != 4:
            raise FormatError(f"predictions[{k}]: bbox must be [x, y, w, h], got {d['bbox']}")
        if "file_name" in d and "category" in d:
            name = Path(str(d["file_name"])).name
            img = index.get(name, index.get(Path(name).stem))
            cat = str(d["category"])
            if cat not in testset.categories:
                unknown_class[cat] = unknown_class.get(cat, 0) + 1
                continue
            cid = testset.category_id(cat)
        elif "image_id" in d and "category_id" in d:
            img = int(d["image_id"])
            img = img if 1 <= img <= n_img else None
            cid = int(d["category_id"])
            if not 1 <= cid <= n_cat:
                key = f"id {cid}"
                unknown_class[key] = unknown_class.get(key, 0) + 1
                continue
        else:
            raise FormatError(
                f"predictions[{k}]: needs 'file_name' and 'category' (plain form) or "
                f"'image_id' and 'category_id' (COCO results)"
            )
        if img is None:
            unknown_image += 1
            continue
        out.append({"image_id": img, "category_id": cid, "bbox": bbox, "score": s})
    return out, {"unknown_class": unknown_class, "unknown_image": unknown_image}


def _quiet_coco(dataset: dict[str, Any]):
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def score(
    testset: TestSet,
    predictions: str | Path | Sequence[dict[str, Any]],
    max_dets: int = 100,
) -> Scores:
    """Score predictions on a test set with pycocotools.

    Parameters
    ----------
    testset : TestSet
    predictions : path-like or list of dict
        COCO results or the plain form (see the module docstring).
    max_dets : int
        Detections kept per image and class (highest scores first).

    Returns
    -------
    Scores
    """
    from pycocotools.cocoeval import COCOeval

    results, ignored = load_predictions(predictions, testset)
    gt = _quiet_coco(testset.coco())
    dt = None
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(results)
    det_counts = dict.fromkeys(testset.categories, 0)
    for r in results:
        det_counts[testset.categories[r["category_id"] - 1]] += 1
    per_class: dict[str, dict[str, Any]] = {}
    included, absent = [], []
    for name in testset.categories:
        cid = testset.category_id(name)
        img_ids = testset.evaluated[name]
        n_gt = len(gt.getAnnIds(imgIds=img_ids, catIds=[cid]))
        entry = {"gt": n_gt, "images": len(img_ids), "detections": det_counts[name]}
        if n_gt == 0:
            absent.append(name)
            per_class[name] = {"ap50": None, "ap50_95": None, **entry}
            continue
        included.append(name)
        if dt is None:
            per_class[name] = {"ap50": 0.0, "ap50_95": 0.0, **entry}
            continue
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.catIds = [cid]
        ev.params.imgIds = img_ids
        ev.params.maxDets = [1, 10, max_dets]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
        prec = ev.eval["precision"][:, :, 0, 0, -1]  # (iou thresholds, recall points)

        def ap(p: np.ndarray) -> float:
            v = p[p > -1]
            return float(v.mean()) if v.size else 0.0

        per_class[name] = {"ap50": ap(prec[0]), "ap50_95": ap(prec), **entry}
    m50 = float(np.mean([per_class[c]["ap50"] for c in included])) if included else float("nan")
    m5095 = (float(np.mean([per_class[c]["ap50_95"] for c in included])) if included
             else float("nan"))
    return Scores(m50, m5095, per_class, included, absent, ignored)
