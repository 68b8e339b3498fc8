"""Pascal VOC XML: ``voc/<set>/<stem>.xml``, one file per image and label set.

VOC boxes are 1-based and inclusive: a box covering pixel columns ``x0 .. x1 - 1`` (pixel edges
``x0``, ``x1``) is written ``xmin = x0 + 1``, ``xmax = x1``. ``truncated`` is 1 for cells cut by
the field's border.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import atomic_write_text
from ..taxonomy import LabelSet
from .base import NoCollector, labelled_cells


def escape(text: str) -> str:
    """``&``, ``>`` and ``<`` as XML entities (as ``xml.sax.saxutils.escape``, whose import
    pulls in ``urllib.request``: 25 ms of every worker's start)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def voc_xml(record: dict[str, Any], label_set: LabelSet, min_visible: float = 0.0) -> str:
    """The VOC XML of one record."""
    name = Path(record["file_name"]).name
    parts = [
        "<annotation>",
        "  <folder>images</folder>",
        f"  <filename>{escape(name)}</filename>",
        "  <source><database>hemosynth</database></source>",
        f"  <size><width>{record['width']}</width><height>{record['height']}</height>"
        "<depth>3</depth></size>",
        "  <segmented>0</segmented>",
    ]
    for cid, cell in labelled_cells(record, label_set, min_visible):
        x0, y0, x1, y1 = (int(round(v)) for v in cell["box"])
        truncated = int(cell.get("truncated", False))
        parts += [
            "  <object>",
            f"    <name>{escape(label_set.names[cid])}</name>",
            "    <pose>Unspecified</pose>",
            f"    <truncated>{truncated}</truncated>",
            "    <difficult>0</difficult>",
            f"    <bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


class VocWriter:
    """Writes one VOC XML per smear and label set."""

    name = "voc"

    def write_smear(self, root, record, label_set, min_visible):
        stem = Path(record["file_name"]).stem
        atomic_write_text(
            root / "voc" / label_set.slug / f"{stem}.xml", voc_xml(record, label_set, min_visible)
        )

    def collector(self, label_set, cfg):
        return NoCollector()
