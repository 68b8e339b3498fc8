"""YOLO (ultralytics) labels: ``yolo/<set>/labels/<stem>.txt`` plus ``data.yaml``.

Layout per label set::

    yolo/<set>/images -> ../../images      (a relative directory symlink)
    yolo/<set>/labels/<stem>.txt           "class xc yc w h", normalised to [0, 1]
    yolo/<set>/train.txt, val.txt          image lists (./images/<file>)
    yolo/<set>/data.yaml                   names, train, val

ultralytics finds a label by replacing the last ``/images/`` of an image path with
``/labels/``; the symlink lets every label set share the one ``images/`` folder. ``data.yaml``
has no ``path`` key, so ultralytics resolves ``train``/``val`` against the yaml's own folder
(pass it by absolute path).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from ..fileio import atomic_write_text
from ..taxonomy import LabelSet
from .base import CollectorBase, labelled_cells


def yolo_lines(record: dict[str, Any], label_set: LabelSet, min_visible: float = 0.0) -> str:
    """The YOLO label text of one record (may be empty: a background image)."""
    w, h = record["width"], record["height"]
    cells = labelled_cells(record, label_set, min_visible)
    values: list[float] = []
    add = values.extend
    for cid, cell in cells:
        x0, y0, x1, y1 = cell["box"]
        add((cid, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h))
    # one formatting of every line at once (a third faster than a string per line)
    return ("%d %.6f %.6f %.6f %.6f\n" * len(cells)) % tuple(values)


def parse_yolo(text: str, width: int, height: int, n_classes: int, where: str = "") -> np.ndarray:
    """Parse YOLO label text into an array of ``(class, x0, y0, x1, y1)`` rows in pixels.

    Raises
    ------
    FormatError
        On a malformed line, a class id out of range or a box outside [0, 1], naming the line.
    """
    rows = []
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 5:
                raise ValueError(f"expected 5 fields, got {len(parts)}")
            c = int(parts[0])
            xc, yc, bw, bh = (float(v) for v in parts[1:])
        except ValueError as e:
            raise FormatError(f"{where}:{ln}: bad YOLO line {line!r} ({e})") from None
        if not 0 <= c < n_classes:
            raise FormatError(f"{where}:{ln}: class id {c} out of range 0..{n_classes - 1}")
        if not (0 <= xc <= 1 and 0 <= yc <= 1 and 0 < bw <= 1 and 0 < bh <= 1):
            raise FormatError(f"{where}:{ln}: box {parts[1:]} outside [0, 1]")
        rows.append(
            (c, (xc - bw / 2) * width, (yc - bh / 2) * height,
             (xc + bw / 2) * width, (yc + bh / 2) * height)
        )
    return np.asarray(rows, float).reshape(-1, 5)


class YoloWriter:
    """Writes YOLO label files and the ultralytics ``data.yaml``."""

    name = "yolo"

    @staticmethod
    def folder(root: Path, label_set: LabelSet) -> Path:
        return root / "yolo" / label_set.slug

    def write_smear(self, root, record, label_set, min_visible):
        stem = Path(record["file_name"]).stem
        path = self.folder(root, label_set) / "labels" / f"{stem}.txt"
        atomic_write_text(path, yolo_lines(record, label_set, min_visible))

    def collector(self, label_set, cfg):
        return _YoloLists(self.folder, label_set, cfg.output.val_fraction)


class _YoloLists(CollectorBase):
    """The image lists (train/val) and ``data.yaml`` of one label set."""

    def __init__(self, folder, label_set: LabelSet, val_fraction: float):
        self.folder, self.label_set, self.val_fraction = folder, label_set, val_fraction
        self.names: list[str] = []

    def part(self, record: dict[str, Any]) -> str:
        return Path(record["file_name"]).name

    def add_part(self, part: str) -> None:
        self.names.append(part)

    def write(self, root: Path) -> None:
        folder = self.folder(root, self.label_set)
        link = folder / "images"
        folder.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            if link.exists():
                raise FormatError(f"{link}: exists and is not the images symlink")
            os.symlink(Path("..") / ".." / "images", link, target_is_directory=True)
        names = self.names
        n_val = int(round(len(names) * self.val_fraction))
        # the last smears are the validation split: stable when the count grows
        train = names[: len(names) - n_val] if n_val else names
        val = names[len(names) - n_val :] if n_val else names
        atomic_write_text(folder / "train.txt", "".join(f"./images/{n}\n" for n in train))
        atomic_write_text(folder / "val.txt", "".join(f"./images/{n}\n" for n in val))
        data = {
            "train": "train.txt",
            "val": "val.txt",
            "nc": len(self.label_set.names),
            "names": dict(enumerate(self.label_set.names)),
        }
        import yaml  # here: the workers, which import this module, never write YAML

        atomic_write_text(folder / "data.yaml", yaml.safe_dump(data, sort_keys=False))
