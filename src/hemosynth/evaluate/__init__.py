"""Train on synthetic, test on real: test sets, COCO scoring, a YOLO adapter and arms.

Modules
-------
testsets
    Real annotated sets (YOLO, VOC, COCO) read into a COCO ground truth, possibly assembled
    from several sources that each contribute some classes; class mappings.
coco_eval
    Our own COCO evaluation (pycocotools): mAP@0.5, mAP@0.5:0.95, per-class AP@0.5, from COCO
    results JSON or a plain list of ``{"file_name", "category", "bbox", "score"}``.
detector
    The ultralytics adapter: train from a model yaml (or weights), predict on a test set.
    ultralytics and torch are imported only when training or predicting (extra ``eval``).
arms
    The ``synthetic``, ``real`` and ``real+synthetic`` arms at one training budget, each a
    resumable step whose result JSON is kept.
report
    One table, one JSON, and each arm's predictions as COCO results.

Nothing here imports ultralytics or torch at import time.
"""

from __future__ import annotations

from .coco_eval import Scores, load_predictions, score
from .testsets import ClassMap, TestSet, load_testset, parse_class_map

__all__ = [
    "ClassMap",
    "Scores",
    "TestSet",
    "load_predictions",
    "load_testset",
    "parse_class_map",
    "score",
]
