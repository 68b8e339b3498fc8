"""Annotation formats: pure record -> text converters, and a writer per format.

A *record* is the per-smear dict written by :mod:`hemosynth.dataset` (see
:func:`hemosynth.dataset.make_record`): image file name and size, and one entry per cell with
its class, clipped xyxy box (pixel edges), visible fraction and visible area.

Writers (:data:`WRITERS`) have ``write_smear(root, record, label_set, min_visible)``, called as
each smear is made, and ``finalize(root, records, label_set, cfg)``, called once at the end.
"""

from __future__ import annotations

from .base import Writer, labelled_cells
from .coco import CocoWriter
from .voc import VocWriter
from .yolo import YoloWriter

#: format name -> writer
WRITERS: dict[str, Writer] = {"yolo": YoloWriter(), "coco": CocoWriter(), "voc": VocWriter()}

__all__ = ["WRITERS", "CocoWriter", "VocWriter", "Writer", "YoloWriter", "labelled_cells"]
