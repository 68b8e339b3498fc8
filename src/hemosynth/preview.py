"""Annotated previews: smears with their boxes in class colours, a legend, and a contact sheet.

Works on generated datasets (boxes from the records, filtered by the label set as the
annotation writers do) and on real annotated sets (VOC, YOLO or COCO, classes mapped with a
:class:`~hemosynth.stats.layout.ClassMap`), so the two can be viewed side by side with the same
colours. Drawing uses OpenCV only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import DatasetError
from .fileio import atomic_write_bytes, encode_image, read_image
from .taxonomy import MAIN_TYPES, RBC, SUBTYPES, label_set

#: tab20-like palette, assigned in a fixed class order so colours agree across datasets
_PALETTE = (
    (214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14),
    (23, 190, 207), (188, 189, 34), (227, 119, 194), (140, 86, 75), (127, 127, 127),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)
_ORDER = (RBC, "WBC", "Platelet", "Nucleated RBC",
          *[c for c in SUBTYPES if c not in ("Platelet", "Nucleated RBC")])
#: class name -> RGB colour
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    c: _PALETTE[k % len(_PALETTE)] for k, c in enumerate(_ORDER)
}


def class_colour(name: str) -> tuple[int, int, int]:
    """RGB colour of a class (a stable fallback colour for names outside the taxonomy)."""
    if name in CLASS_COLOURS:
        return CLASS_COLOURS[name]
    return _PALETTE[sum(name.encode()) % len(_PALETTE)]


def class_colour_hex(name: str) -> str:
    """The colour of :func:`class_colour` as ``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*class_colour(name))


@dataclass(frozen=True)
class PreviewItem:
    """One image to preview: its file, boxes (N, 4) xyxy pixels and class names."""

    file: Path
    boxes: np.ndarray
    names: list[str]


def draw_boxes(image: np.ndarray, boxes: np.ndarray, names: list[str],
               thickness: int | None = None) -> np.ndarray:
    """A copy of an RGB image with each box outlined in its class colour."""
    out = np.ascontiguousarray(image.copy())
    t = thickness or max(1, int(round(min(out.shape[:2]) / 320)))
    for (x0, y0, x1, y1), name in zip(np.asarray(boxes, float).reshape(-1, 4), names,
                                      strict=True):
        p0 = (int(round(x0)), int(round(y0)))
        p1 = (max(int(round(x1)) - 1, p0[0]), max(int(round(y1)) - 1, p0[1]))
        cv2.rectangle(out, p0, p1, class_colour(name), t, lineType=cv2.LINE_8)
    return out


def legend(entries: dict[str, int], height: int, width: int = 260) -> np.ndarray:
    """A white RGB panel listing ``class (count)`` with colour swatches."""
    row = 22
    h = max(height, row * (len(entries) + 1) + 8)
    panel = np.full((h, width, 3), 255, np.uint8)
    cv2.putText(panel, "classes (boxes)", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    for k, (name, n) in enumerate(entries.items(), 1):
        y = 8 + k * row
        cv2.rectangle(panel, (8, y), (26, y + 14), class_colour(name), -1)
        cv2.putText(panel, f"{name} ({n})", (34, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def _with_legend(image: np.ndarray, entries: dict[str, int]) -> np.ndarray:
    pan = legend(entries, image.shape[0])
    if pan.shape[0] > image.shape[0]:
        pad = np.full((pan.shape[0] - image.shape[0], image.shape[1], 3), 255, np.uint8)
        image = np.vstack([image, pad])
    return np.hstack([image, pan])


def _entries(names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    order = {c: k for k, c in enumerate(_ORDER)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def _pick(total: int, n: int) -> list[int]:
    if total <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, min(n, total))})


def generated_items(root: str | Path, set_name: str, n: int) -> Iterator[PreviewItem]:
    """Preview items of a generated dataset: the labelled cells of ``set_name``."""
    from .dataset import read_manifest, read_record
    from .formats.base import labelled_cells

    root = Path(root)
    manifest = read_manifest(root)
    ls = label_set(set_name)
    min_visible = float(manifest.get("config", {}).get("output", {}).get("min_visible", 0.0))
    for i in _pick(int(manifest["count"]), n):
        rec = read_record(root, i)
        boxes, names = [], []
        for cid, cell in labelled_cells(rec, ls, min_visible):
            boxes.append(cell["box"])
            names.append(ls.names[cid])
        yield PreviewItem(root / rec["file_name"], np.asarray(boxes, float).reshape(-1, 4),
                          names)


def _real_name(target: str, set_name: str) -> str | None:
    from .stats.layout import group_of

    g = group_of(target)
    if set_name == "main+rbc":
        return g
    if g == RBC:
        return None
    if set_name == "sub":
        return target if target in SUBTYPES and target not in MAIN_TYPES else g
    return g


def real_items(path: str | Path, set_name: str, n: int, fmt: str | None = None,
               names: Any = None, images: str | Path | None = None,
               split: str | Path | None = None, class_map: Any = None) -> Iterator[PreviewItem]:
    """Preview items of a real annotated set, classes mapped and filtered by ``set_name``."""
    from .formats.readers import read_annotations
    from .stats.layout import ClassMap
    from .stats.loaders import split_stems

    label_set(set_name)
    class_map = class_map or ClassMap()
    anns = read_annotations(path, fmt, names, images=images, stems=split_stems(path, split))
    for i in _pick(len(anns), n):
        a = anns[i]
        keep, out_names = [], []
        for k, lab in enumerate(a.labels):
            target = class_map(lab, str(a.annotation or a.file))
            shown = None if target is None else _real_name(target, set_name)
            if shown is not None:
                keep.append(k)
                out_names.append(shown)
        yield PreviewItem(a.file, a.boxes[keep], out_names)


def write_previews(items: list[PreviewItem] | Iterator[PreviewItem], out: str | Path,
                   columns: int = 4, thumb_width: int = 480) -> dict[str, Any]:
    """Write one annotated image per item and a contact sheet into ``out``.

    Returns
    -------
    dict
        ``images``: the per-image paths; ``contact_sheet``: the sheet's path.

    Raises
    ------
    DatasetError
        If there is nothing to preview or an image cannot be read, naming it.
    """
    out = Path(out)
    written: list[Path] = []
    thumbs: list[np.ndarray] = []
    all_names: list[str] = []
    for item in items:
        img = read_image(item.file)
        drawn = draw_boxes(img, item.boxes, item.names)
        entries = _entries(item.names)
        path = out / f"{item.file.stem}.jpg"
        atomic_write_bytes(path, encode_image(_with_legend(drawn, entries), "jpg", 90))
        written.append(path)
        all_names += item.names
        s = thumb_width / drawn.shape[1]
        th = cv2.resize(drawn, (thumb_width, max(1, int(round(drawn.shape[0] * s)))),
                        interpolation=cv2.INTER_AREA)
        cap = np.full((22, thumb_width, 3), 255, np.uint8)
        cv2.putText(cap, f"{item.file.name}: {len(item.names)} boxes", (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        thumbs.append(np.vstack([cap, th]))
    if not thumbs:
        raise DatasetError(f"{out}: nothing to preview (no images)")
    cols = min(columns, len(thumbs))
    th_h = max(t.shape[0] for t in thumbs)
    rows = []
    for r in range(0, len(thumbs), cols):
        cells = []
        for t in thumbs[r : r + cols]:
            pad = np.full((th_h - t.shape[0], t.shape[1], 3), 255, np.uint8)
            cells.append(np.vstack([t, pad]))
        while len(cells) < cols:
            cells.append(np.full((th_h, thumb_width, 3), 255, np.uint8))
        rows.append(np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255)
                               for c in cells]))
    sheet = _with_legend(np.vstack(rows), _entries(all_names))
    sheet_path = out / "contact_sheet.jpg"
    atomic_write_bytes(sheet_path, encode_image(sheet, "jpg", 90))
    return {"images": written, "contact_sheet": sheet_path}


def preview(dataset: str | Path, out: str | Path, set_name: str = "main", n: int = 8,
            **real_options: Any) -> dict[str, Any]:
    """Previews of a generated dataset (it has ``manifest.json``) or of a real annotated set.

    Parameters
    ----------
    dataset : path-like
        A generated dataset folder, or real annotations (VOC, YOLO, COCO).
    out : path-like
        Output folder.
    set_name : {"main", "sub", "main+rbc"}
        Which classes to draw (real sets: mapped classes; a real ``WBC`` stays ``WBC`` in
        ``sub``).
    n : int
        Number of images, evenly spread over the dataset.
    **real_options
        ``fmt``, ``names``, ``images``, ``split``, ``class_map`` for real sets.
    """
    dataset = Path(dataset)
    if n < 1:
        raise DatasetError(f"--n must be >= 1, got {n}")
    if (dataset / "manifest.json").is_file():
        items = generated_items(dataset, set_name, n)
    else:
        items = real_items(dataset, set_name, n, **real_options)
    return write_previews(list(items), out)


__all__ = [
    "CLASS_COLOURS",
    "PreviewItem",
    "class_colour",
    "class_colour_hex",
    "draw_boxes",
    "generated_items",
    "legend",
    "preview",
    "real_items",
    "write_previews",
]
