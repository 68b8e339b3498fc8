"""COCO detection JSON: ``coco/<set>.json``, one file per label set.

Images have ``id = index + 1`` and ``file_name`` relative to the dataset's ``images/`` folder.
Categories have ``id = class id + 1`` (COCO ids start at 1) and the main type as
``supercategory``. Each annotation has ``bbox = [x, y, w, h]`` in pixels (the clipped box),
``area`` = visible pixels (the cell's weight >= 0.5 after occlusion), ``iscrowd = 0``,
``visible_fraction``, and, with ``output.coco_masks``, the visible mask as compressed RLE.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from math import isfinite
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DatasetError
from ..fileio import atomic_write_chunks
from ..taxonomy import MAIN_OF, LabelSet
from .base import CollectorBase, labelled_cells


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


def coco_entries(
    record: dict[str, Any], label_set: LabelSet, min_visible: float = 0.0, first_id: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO image entry of one record and its annotations, numbered from ``first_id``."""
    image = _image(record)
    anns: list[dict[str, Any]] = []
    for cid, cell in labelled_cells(record, label_set, min_visible):
        anns.append(_annotation(first_id + len(anns), image["id"], cid, cell))
    return image, anns


def _image(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["index"] + 1,
        "file_name": Path(record["file_name"]).name,
        "width": record["width"],
        "height": record["height"],
    }


def _annotation(ann_id: int, image_id: int, cid: int, cell: dict[str, Any]) -> dict[str, Any]:
    x0, y0, x1, y1 = cell["box"]
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cid + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": cell["area"],
        "iscrowd": 0,
        "visible_fraction": cell["visible"],
    }
    if "rle" in cell:
        ann["segmentation"] = cell["rle"]
    return ann


def _info(label_set: LabelSet) -> dict[str, Any]:
    return {"description": f"hemosynth synthetic blood smears, label set {label_set.name}"}


def _categories(label_set: LabelSet) -> list[dict[str, Any]]:
    return [
        {"id": k + 1, "name": n, "supercategory": MAIN_OF.get(n, n)}
        for k, n in enumerate(label_set.names)
    ]


def coco_dict(
    records: list[dict[str, Any]], label_set: LabelSet, min_visible: float = 0.0
) -> dict[str, Any]:
    """Build the COCO detection dict of ``records`` for ``label_set``."""
    images, anns = [], []
    for rec in records:
        image, more = coco_entries(rec, label_set, min_visible, len(anns) + 1)
        images.append(image)
        anns.extend(more)
    return {
        "info": _info(label_set),
        "images": images,
        "annotations": anns,
        "categories": _categories(label_set),
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)  # as atomic_write_json writes


#: how every annotation's JSON text begins, its id written as 0 (see :class:`_CocoText`)
_ANN_HEAD = '{"id": 0, "image_id": '


class _CocoText(CollectorBase):
    """``coco/<set>.json`` built as JSON text smear by smear, so that only joining the parts is
    left when the last smear is made. The bytes are those of :func:`coco_dict` written by
    :func:`~hemosynth.fileio.atomic_write_json` (``indent=None``).

    A smear's part (made in the worker) is its image entry and its annotations as JSON text,
    every annotation id written as 0: the ids run on from smear to smear, so only the assembly
    knows them, and puts them in (:meth:`add_part`). The annotations' text, which grows with
    the dataset (about 85 kB a smear for ``main+rbc``), is written as it comes to an unnamed
    temporary file (:meth:`spool_in`: in the dataset's folder; otherwise the system's temporary
    folder) and copied into the JSON file at the end, so that the process assembling the
    dataset does not hold it, nor three copies of it while writing it.
    """

    def __init__(self, label_set: LabelSet, min_visible: float):
        self.label_set, self.min_visible = label_set, min_visible
        self.images: list[str] = []
        self.next_id = 1
        self._folder: Path | None = None
        self._spool: BinaryIO | None = None  # the annotations' text so far, ", "-separated

    def spool_in(self, folder: Path) -> None:
        self._folder = Path(folder)

    def part(self, record: dict[str, Any]) -> tuple[str, str, int]:
        image = _image(record)
        head = f'{_ANN_HEAD}{image["id"]}, "category_id": '
        anns = []
        for cid, cell in labelled_cells(record, self.label_set, self.min_visible):
            x0, y0, x1, y1 = cell["box"]
            v = cell["visible"]
            if ("rle" in cell or not type(x0) is type(y0) is type(x1) is type(y1)
                    is type(cell["area"]) is int
                    or not (type(v) is int or (type(v) is float and isfinite(v)))):
                ann = _annotation(0, image["id"], cid, cell)
                anns.append(_dumps(ann))
                continue
            # what json.dumps writes for these ints and this finite float (their repr), a few
            # times faster; anything else (a mask, other types) goes through json.dumps
            anns.append(f'{head}{cid + 1}, "bbox": [{x0}, {y0}, {x1 - x0}, {y1 - y0}], '
                        f'"area": {cell["area"]}, "iscrowd": 0, '
                        f'"visible_fraction": {v!r}}}')
        return _dumps(image), ", ".join(anns), len(anns)

    def add_part(self, part: tuple[str, str, int]) -> None:
        image, text, n = part
        self.images.append(image)
        if not n:
            return
        pieces = text.split(_ANN_HEAD)  # "", then each annotation after its head
        if len(pieces) != n + 1 or pieces[0]:
            raise ValueError(f"a COCO part of {n} annotations has {len(pieces) - 1} heads")
        first = self.next_id
        joined = "".join(f'{{"id": {first + k}, "image_id": {p}'
                         for k, p in enumerate(pieces[1:]))
        if self._spool is None:
            import tempfile

            try:
                self._spool = tempfile.TemporaryFile(dir=self._folder)
            except OSError as e:
                where = self._folder if self._folder is not None else tempfile.gettempdir()
                raise DatasetError(f"{where}: cannot write a temporary file "
                                   f"({e.strerror or e})") from None
        else:
            joined = ", " + joined
        try:
            self._spool.write(joined.encode("utf-8"))
        except OSError as e:
            raise DatasetError(f"{self._folder or 'the temporary folder'}: cannot write the "
                               f"COCO annotations ({e.strerror or e})") from None
        self.next_id += n

    def _annotations(self) -> Iterator[bytes]:
        """The annotations' text so far, in blocks."""
        if self._spool is None:
            return
        self._spool.flush()
        self._spool.seek(0)
        while block := self._spool.read(1 << 20):
            yield block

    def write(self, root: Path) -> None:
        ls = self.label_set
        head = (f'{{"info": {_dumps(_info(ls))}, "images": [{", ".join(self.images)}], '
                f'"annotations": [')
        tail = f'], "categories": {_dumps(_categories(ls))}}}\n'
        atomic_write_chunks(root / "coco" / f"{ls.slug}.json",
                            chain([head.encode("utf-8")], self._annotations(),
                                  [tail.encode("utf-8")]))

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class CocoWriter:
    """Writes ``coco/<set>.json`` once every smear is made."""

    name = "coco"

    def write_smear(self, root, record, label_set, min_visible):
        pass

    def collector(self, label_set, cfg):
        return _CocoText(label_set, cfg.output.min_visible)
