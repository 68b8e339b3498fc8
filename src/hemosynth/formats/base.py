"""Shared pieces of the annotation writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ..taxonomy import LabelSet


class Writer(Protocol):
    """An annotation format's writer."""

    name: str

    def write_smear(
        self, root: Path, record: dict[str, Any], label_set: LabelSet, min_visible: float
    ) -> None:
        """Write what belongs to one smear (may do nothing)."""

    def finalize(
        self, root: Path, records: list[dict[str, Any]], label_set: LabelSet, cfg: Any
    ) -> None:
        """Write what needs every smear (index files, a single JSON)."""


def labelled_cells(
    record: dict[str, Any], label_set: LabelSet, min_visible: float
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(class id, cell)`` for each cell of ``record`` that ``label_set`` labels.

    Cells whose visible fraction is below ``min_visible`` or whose clipped box is empty are
    skipped.
    """
    for cell in record["cells"]:
        cid = label_set.class_id(cell["class"])
        if cid is None or cell["visible"] < min_visible:
            continue
        x0, y0, x1, y1 = cell["box"]
        if x1 <= x0 or y1 <= y0:
            continue
        yield cid, cell
