"""Annotation formats: pure record -> text converters, and a writer per format.

A *record* is the per-smear dict written by :mod:`hemosynth.dataset` (see
:func:`hemosynth.dataset.make_record`): image file name and size, and one entry per cell with
its class, clipped xyxy box (pixel edges), visible fraction and visible area.

Writers (:data:`WRITERS`) have ``write_smear(root, record, label_set, min_visible)``, called as
each smear is made (in the worker that made it), and ``collector(label_set, cfg)``: a
:class:`~.base.Collector` that takes the records in index order as the smears come in and
writes the dataset-wide files at the end (:func:`~.base.finalize` does both at once).
"""

from __future__ import annotations

from .base import Collector, Writer, finalize, labelled_cells
from .coco import CocoWriter
from .voc import VocWriter
from .yolo import YoloWriter

#: format name -> writer
WRITERS: dict[str, Writer] = {"yolo": YoloWriter(), "coco": CocoWriter(), "voc": VocWriter()}

__all__ = [
    "WRITERS", "CocoWriter", "Collector", "VocWriter", "Writer", "YoloWriter", "finalize",
    "labelled_cells",
]
