"""Shared pieces of the annotation writers."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from ..taxonomy import LabelSet


class Collector(Protocol):
    """Gathers, smear by smear, what a format writes once for the whole dataset.

    What it needs of a record is taken in two steps: :meth:`part` where the record is made (a
    worker), small and picklable, and :meth:`add_part` where the dataset is assembled, in index
    order; :meth:`add` does both.
    """

    def part(self, record: dict[str, Any]) -> Any:
        """What :meth:`add_part` needs of ``record``."""

    def add_part(self, part: Any) -> None:
        """Take the next smear's part (parts come in index order)."""

    def add(self, record: dict[str, Any]) -> None:
        """Take the next smear's record: ``add_part(part(record))``."""

    def write(self, root: Path) -> None:
        """Write the dataset-wide files (index files, a single JSON)."""

    def spool_in(self, folder: Path) -> None:
        """Keep what is gathered in an unnamed temporary file in ``folder`` (the dataset's)
        rather than in memory, where it grows with the dataset (may do nothing)."""

    def close(self) -> None:
        """Let go of what was gathered (its temporary file), written or not."""


class Writer(Protocol):
    """An annotation format's writer."""

    name: str

    def write_smear(
        self, root: Path, record: dict[str, Any], label_set: LabelSet, min_visible: float
    ) -> None:
        """Write what belongs to one smear (may do nothing)."""

    def collector(self, label_set: LabelSet, cfg: Any) -> Collector:
        """A new collector of the dataset-wide files of ``label_set``."""


class CollectorBase:
    """:meth:`Collector.add` from :meth:`~Collector.part` and :meth:`~Collector.add_part`;
    :meth:`Collector.spool_in` and :meth:`Collector.close` doing nothing."""

    def add(self, record: dict[str, Any]) -> None:
        self.add_part(self.part(record))

    def spool_in(self, folder: Path) -> None:
        pass

    def close(self) -> None:
        pass


class NoCollector(CollectorBase):
    """The collector of a format with no dataset-wide files."""

    def part(self, record: dict[str, Any]) -> None:
        return None

    def add_part(self, part: None) -> None:
        pass

    def write(self, root: Path) -> None:
        pass


def finalize(
    writer: Writer, root: Path, records: Iterable[dict[str, Any]], label_set: LabelSet, cfg: Any
) -> None:
    """Write ``writer``'s dataset-wide files of ``label_set`` from all ``records`` at once."""
    c = writer.collector(label_set, cfg)
    c.spool_in(root)
    try:
        for rec in records:
            c.add(rec)
        c.write(root)
    finally:
        c.close()


def labelled_cells(
    record: dict[str, Any], label_set: LabelSet, min_visible: float
) -> list[tuple[int, dict[str, Any]]]:
    """``(class id, cell)`` for each cell of ``record`` that ``label_set`` labels.

    Cells whose visible fraction is below ``min_visible`` or whose clipped box is empty are
    skipped.
    """
    ids = label_set.class_ids  # every pool class's id (None: not labelled)
    return [
        (cid, cell)
        for cell in record["cells"]
        if (cid := ids[cell["class"]]) is not None and cell["visible"] >= min_visible
        and (b := cell["box"])[2] > b[0] and b[3] > b[1]
    ]
