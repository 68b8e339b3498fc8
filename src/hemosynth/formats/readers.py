"""Readers of annotated smears: Pascal VOC XML, YOLO txt and COCO JSON.

One entry point, :func:`read_annotations`, turns any of the three layouts into a list of
:class:`ImageAnnotations`, one per image, with boxes as ``xyxy`` floats in pixel edges (the
package's convention) and labels as the *source's* class names (``"WBC"``, ``"Platelets"``);
mapping them onto the 18 pool classes is the caller's business.

Accepted inputs
---------------
VOC
    An ``.xml`` file, a folder of ``.xml`` files, or a dataset folder holding
    ``Annotations/`` (and ``JPEGImages/``). VOC boxes are 1-based and inclusive: ``xmin = x0 + 1``,
    ``xmax = x1``.
YOLO
    A ``data.yaml`` (ultralytics: ``path``, ``train``/``val``/``test`` image folders or lists,
    ``names``), a dataset folder holding ``labels/`` (and ``images/``), or a folder of label
    ``.txt`` files. Class names come from ``names`` (a list, or a names file), else from a
    ``classes.txt`` / ``*.names`` / ``data.yaml`` found beside the labels. YOLO coordinates are
    normalised, so the image size is read from each image's header: the images must exist
    (pass ``images=`` when they live elsewhere, as for ``bccd-relabel``). Polygon lines
    (``cls x1 y1 x2 y2 ...``, the ultralytics segmentation format) become their bounding box.
COCO
    A detection ``.json`` (``images``, ``annotations``, ``categories``); ``bbox`` is
    ``[x, y, w, h]``.

Rules shared by every format
----------------------------
- A box that lies partly outside the image is clipped to it; a box with no part inside the
  image, or with ``x1 < x0``, is a :class:`~hemosynth.errors.FormatError` naming the file and
  line (or annotation id).
- Zero-size boxes (``x1 == x0`` or ``y1 == y0``, after clipping) are dropped silently.
- Exact duplicate annotations (same label, same box) are dropped when ``dedupe`` is on (the
  default): some public label files repeat lines.

Examples
--------
>>> anns = read_annotations("shared/data/bccd")                         # doctest: +SKIP
>>> anns = read_annotations("shared/data/bccd-relabel",
...                         images="shared/data/bccd/JPEGImages")          # doctest: +SKIP
>>> a = anns[0]; a.boxes.shape, a.labels[:2]                            # doctest: +SKIP
((23, 4), ['RBC', 'RBC'])
"""

from __future__ import annotations

import json
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import FormatError

#: image file extensions looked for (lower case)
IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: format name -> short description (for help texts)
FORMATS: dict[str, str] = {
    "voc": "Pascal VOC XML",
    "yolo": "YOLO txt with a names file or data.yaml",
    "coco": "COCO detection JSON",
}

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ImageAnnotations:
    """The boxes of one annotated image.

    Attributes
    ----------
    file : Path
        The image file (it may not exist for VOC/COCO when the images were not found; the
        reader never opens images it does not need).
    width, height : int
        Image size in pixels.
    boxes : ndarray of shape (N, 4), float64
        ``x0, y0, x1, y1`` in pixel edges, clipped to the image, all with positive size.
    labels : list of str
        The source's class name of each box.
    annotation : Path
        The annotation file the boxes came from.
    """

    file: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]
    annotation: Path = field(default=Path())

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def stem(self) -> str:
        """The image's file name without extension."""
        return self.file.stem


def read_annotations(
    path: PathLike,
    fmt: str | None = None,
    names: Sequence[str] | PathLike | None = None,
    *,
    images: PathLike | None = None,
    stems: Iterable[str] | None = None,
    dedupe: bool = True,
) -> list[ImageAnnotations]:
    """Read an annotated smear dataset in VOC, YOLO or COCO form.

    Parameters
    ----------
    path : path-like
        File or folder (see the module docstring for what each format accepts).
    fmt : {"voc", "yolo", "coco"}, optional
        The format; guessed from ``path`` when omitted.
    names : sequence of str or path-like, optional
        YOLO class names in id order, or a names file (one per line) or ``data.yaml``.
        Ignored for VOC and COCO, whose files name their classes.
    images : path-like, optional
        Folder holding the images, when not at the usual place (``images/`` or
        ``JPEGImages/`` beside the labels).
    stems : iterable of str, optional
        Only read these image stems (e.g. a split list).
    dedupe : bool
        Drop exact duplicate (label, box) annotations of an image.

    Returns
    -------
    list of ImageAnnotations
        Sorted by image file name.

    Raises
    ------
    FormatError
        If the path does not exist, the format cannot be guessed, or a file is malformed
        (naming the file and line).
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: annotation path not found")
    fmt = fmt.lower() if fmt else detect_format(path)
    keep = None if stems is None else {str(s) for s in stems}
    img_dir = Path(images) if images is not None else None
    if img_dir is not None and not img_dir.is_dir():
        raise FormatError(f"{img_dir}: image folder not found")
    if fmt == "voc":
        out = _read_voc(path, img_dir, keep)
    elif fmt == "yolo":
        out = _read_yolo(path, names, img_dir, keep)
    elif fmt == "coco":
        out = _read_coco(path, img_dir, keep)
    else:
        raise FormatError(f"{path}: unknown annotation format {fmt!r}; use {', '.join(FORMATS)}")
    if dedupe:
        out = [_dedupe(a) for a in out]
    return sorted(out, key=lambda a: a.file.name)


def detect_format(path: PathLike) -> str:
    """Guess the annotation format of ``path`` (``voc``, ``yolo`` or ``coco``).

    Raises
    ------
    FormatError
        If nothing in ``path`` looks like a known format.
    """
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix == ".xml":
            return "voc"
        if suffix in (".yaml", ".yml", ".txt"):
            return "yolo"
        raise FormatError(f"{path}: cannot tell the annotation format from the file name")
    if (path / "Annotations").is_dir() or next(path.glob("*.xml"), None) is not None:
        return "voc"
    if (
        (path / "labels").is_dir()
        or (path / "data.yaml").is_file()
        or next(path.glob("*.txt"), None) is not None
    ):
        return "yolo"
    jsons = sorted(path.glob("*.json"))
    if len(jsons) == 1:
        return "coco"
    raise FormatError(
        f"{path}: cannot tell the annotation format (no Annotations/, labels/, *.xml, *.txt "
        "or single *.json); pass fmt"
    )


# ---------------------------------------------------------------------------------- helpers


def image_size(path: PathLike) -> tuple[int, int]:
    """Width and height of an image, read from its header (PNG, JPEG, BMP; else decoded).

    Raises
    ------
    FormatError
        If the file is missing or is not a readable image.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:2] == b"BM" and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return abs(int(w)), abs(int(h))
            if head[:2] == b"\xff\xd8":
                size = _jpeg_size(f)
                if size is not None:
                    return size
    except OSError as e:
        raise FormatError(f"{path}: cannot read image ({e.strerror})") from None
    import cv2

    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FormatError(f"{path}: corrupt or unreadable image")
    return int(img.shape[1]), int(img.shape[0])


def _jpeg_size(f: Any) -> tuple[int, int] | None:
    f.seek(2)
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        seg = f.read(2)
        if len(seg) < 2:
            return None
        (length,) = struct.unpack(">H", seg)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return int(w), int(h)
        f.seek(length - 2, os.SEEK_CUR)


def _find_image(stem: str, dirs: Iterable[Path], name: str | None = None) -> Path | None:
    for d in dirs:
        if name:
            cand = d / name
            if cand.is_file():
                return cand
        for ext in IMAGE_EXTS:
            for e in (ext, ext.upper()):
                cand = d / f"{stem}{e}"
                if cand.is_file():
                    return cand
    return None


def _clip_box(
    x0: float, y0: float, x1: float, y1: float, w: int, h: int, where: str
) -> tuple[float, float, float, float] | None:
    """Clip a box to the image; None for a zero-size box; FormatError for a bad one."""
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        raise FormatError(f"{where}: box ({x0}, {y0}, {x1}, {y1}) is not finite")
    if x1 < x0 or y1 < y0:
        raise FormatError(f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0")
    if x1 == x0 or y1 == y0:
        return None
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise FormatError(
            f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} image"
        )
    x0, x1 = max(0.0, x0), min(float(w), x1)
    y0, y1 = max(0.0, y0), min(float(h), y1)
    return x0, y0, x1, y1


def _make(
    file: Path, w: int, h: int, rows: list[tuple[float, float, float, float]], labels: list[str],
    annotation: Path,
) -> ImageAnnotations:
    boxes = np.asarray(rows, np.float64).reshape(-1, 4)
    return ImageAnnotations(file, int(w), int(h), boxes, list(labels), annotation)


def _dedupe(a: ImageAnnotations) -> ImageAnnotations:
    seen: set[tuple[str, tuple[float, ...]]] = set()
    keep = []
    for i, (lab, box) in enumerate(zip(a.labels, a.boxes, strict=True)):
        key = (lab, tuple(np.round(box, 6).tolist()))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if len(keep) == len(a.labels):
        return a
    return ImageAnnotations(
        a.file, a.width, a.height, a.boxes[keep], [a.labels[i] for i in keep], a.annotation
    )


# ---------------------------------------------------------------------------------- VOC


def _read_voc(path: Path, img_dir: Path | None, keep: set[str] | None) -> list[ImageAnnotations]:
    if path.is_file():
        files = [path]
        base = path.parent
    else:
        base = path / "Annotations" if (path / "Annotations").is_dir() else path
        files = sorted(base.glob("*.xml"))
        if not files:
            raise FormatError(f"{base}: no VOC .xml files")
    dirs = [d for d in (img_dir, base.parent / "JPEGImages", base.parent / "images", base) if d]
    out = []
    for f in files:
        if keep is not None and f.stem not in keep:
            continue
        out.append(_read_voc_file(f, dirs))
    return out


def _read_voc_file(path: Path, dirs: list[Path]) -> ImageAnnotations:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise FormatError(f"{path}: malformed VOC XML ({e})") from None
    if root.tag != "annotation":
        raise FormatError(f"{path}: root element is <{root.tag}>, not <annotation>")
    filename = (root.findtext("filename") or "").strip()
    stem = Path(filename).stem if filename else path.stem
    img = _find_image(stem, dirs, filename or None)
    if img is None:
        img = dirs[0] / (filename or f"{path.stem}.jpg")
    w = _int_text(root, "size/width", path)
    h = _int_text(root, "size/height", path)
    if not w or not h:
        if not img.is_file():
            raise FormatError(f"{path}: no <size> and image {img} not found")
        w, h = image_size(img)
    rows, labels = [], []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        where = f"{path}: object {k}" + (f" ({name})" if name else "")
        if not name:
            raise FormatError(f"{where}: <name> is missing")
        bb = obj.find("bndbox")
        if bb is None:
            raise FormatError(f"{where}: <bndbox> is missing")
        try:
            xmin, ymin, xmax, ymax = (float(bb.findtext(t) or "") for t in
                                      ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise FormatError(f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from None
        box = _clip_box(xmin - 1, ymin - 1, xmax, ymax, w, h, where)
        if box is None or xmax == xmin or ymax == ymin:
            continue
        rows.append(box)
        labels.append(name)
    return _make(img, w, h, rows, labels, path)


def _int_text(root: ET.Element, tag: str, path: Path) -> int:
    text = root.findtext(tag)
    if text is None or not text.strip():
        return 0
    try:
        return int(float(text))
    except ValueError:
        raise FormatError(f"{path}: <{tag}> is not a number: {text!r}") from None


# ---------------------------------------------------------------------------------- YOLO


def read_names(path: PathLike) -> list[str]:
    """Class names from a names file (one per line) or an ultralytics ``data.yaml``.

    Raises
    ------
    FormatError
        If the file is missing, empty, or its ``names`` is neither a list nor an id dict.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise FormatError(f"{path}: cannot read class names ({e.strerror})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise FormatError(f"{path}: malformed YAML ({e})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                ids = sorted(int(k) for k in names)
            except ValueError:
                raise FormatError(f"{path}: names keys must be class ids") from None
            if ids != list(range(len(ids))):
                raise FormatError(f"{path}: names ids must be 0..{len(ids) - 1}, got {ids}")
            out = [str(names[k] if k in names else names[str(k)]) for k in ids]
        elif isinstance(names, list):
            out = [str(n) for n in names]
        else:
            raise FormatError(f"{path}: no 'names' list or dict")
    else:
        out = [line.strip() for line in text.splitlines() if line.strip()]
    if not out:
        raise FormatError(f"{path}: no class names")
    return out


def _find_names(dirs: Iterable[Path]) -> Path | None:
    for d in dirs:
        for cand in ("classes.txt", "obj.names", "data.yaml", "data.yml"):
            if (d / cand).is_file():
                return d / cand
        found = sorted(d.glob("*.names"))
        if found:
            return found[0]
    return None


def _read_yolo(
    path: Path,
    names: Sequence[str] | PathLike | None,
    img_dir: Path | None,
    keep: set[str] | None,
) -> list[ImageAnnotations]:
    pairs: list[tuple[Path, Path | None]] = []  # (label file, image or None)
    names_src: Path | None = None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        names_src = path
        pairs = _yolo_pairs_from_yaml(path)
    else:
        if path.is_file():
            label_files = [path]
            label_dir = path.parent
        else:
            label_dir = path / "labels" if (path / "labels").is_dir() else path
            label_files = sorted(
                p for p in label_dir.rglob("*.txt") if p.name not in ("classes.txt",)
                and not (label_dir == path and p.parent == path and _is_list_file(p))
            )
            if not label_files:
                raise FormatError(f"{label_dir}: no YOLO label .txt files")
        dirs = [d for d in (img_dir,) if d]
        for lf in label_files:
            rel = lf.parent.relative_to(label_dir)
            cands = [*dirs, label_dir.parent / "images" / rel, lf.parent, label_dir.parent]
            pairs.append((lf, _find_image(lf.stem, [c for c in cands if c.is_dir()])))
        if names is None:
            names_src = _find_names([label_dir, label_dir.parent, path])
    if isinstance(names, (str, os.PathLike)):
        class_names = read_names(names)
    elif names is not None:
        class_names = [str(n) for n in names]
        if not class_names:
            raise FormatError(f"{path}: empty class names list")
    elif names_src is not None:
        class_names = read_names(names_src)
    else:
        raise FormatError(
            f"{path}: no YOLO class names (no classes.txt, *.names or data.yaml); pass names"
        )
    out = []
    for lf, img in pairs:
        if keep is not None and lf.stem not in keep:
            continue
        if img is None:
            raise FormatError(
                f"{lf}: no image named {lf.stem}.* found for this label file (pass images=)"
            )
        w, h = image_size(img)
        out.append(_read_yolo_file(lf, img, w, h, class_names))
    return out


def _is_list_file(p: Path) -> bool:
    """True for split lists (``train.txt`` of image paths or stems) beside ``labels/``."""
    return p.stem.lower() in ("train", "val", "test", "trainval", "valid")


def _yolo_pairs_from_yaml(path: Path) -> list[tuple[Path, Path | None]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise FormatError(f"{path}: cannot read data.yaml ({e})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: data.yaml must be a mapping")
    root = Path(data.get("path") or path.parent)
    if not root.is_absolute():
        root = path.parent / root
    images: list[Path] = []
    for key in ("train", "val", "test"):
        entries = data.get(key)
        if not entries:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            p = root / str(entry)
            if p.is_dir():
                images += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTS)
            elif p.is_file() and p.suffix.lower() == ".txt":
                for line in p.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        q = Path(line.strip())
                        images.append(q if q.is_absolute() else (p.parent / q))
            else:
                raise FormatError(f"{path}: {key} entry {entry!r} is not a folder or list file")
    if not images:
        raise FormatError(f"{path}: lists no images (train/val/test)")
    pairs, seen = [], set()
    for img in images:
        img = Path(os.path.normpath(img))
        if img in seen:
            continue
        seen.add(img)
        parts = list(img.parts)
        if "images" not in parts:
            raise FormatError(f"{path}: image {img} is not under an 'images' folder")
        k = len(parts) - 1 - parts[::-1].index("images")
        parts[k] = "labels"
        label = Path(*parts).with_suffix(".txt")
        if label.is_file():
            pairs.append((label, img if img.is_file() else None))
        # an image without a label file is a background image: no boxes
        elif img.is_file():
            pairs.append((label, img))
    return pairs


def _read_yolo_file(
    path: Path, img: Path, w: int, h: int, names: list[str]
) -> ImageAnnotations:
    rows, labels = [], []
    if not path.is_file():
        return _make(img, w, h, rows, labels, path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read label file ({e})") from None
    for ln, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{ln}"
        try:
            c = int(parts[0])
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise FormatError(f"{where}: bad YOLO line {line.strip()!r}") from None
        if not 0 <= c < len(names):
            raise FormatError(
                f"{where}: class id {c} out of range 0..{len(names) - 1} ({len(names)} names)"
            )
        if len(vals) == 4:
            xc, yc, bw, bh = vals
            x0, y0, x1, y1 = xc - bw / 2, yc - bh / 2, xc + bw / 2, yc + bh / 2
        elif len(vals) >= 6 and len(vals) % 2 == 0:
            xs, ys = vals[0::2], vals[1::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise FormatError(
                f"{where}: expected 'class xc yc w h' or a polygon, got {len(parts)} fields"
            )
        box = _clip_box(x0 * w, y0 * h, x1 * w, y1 * h, w, h, where)
        if box is None:
            continue
        rows.append(box)
        labels.append(names[c])
    return _make(img, w, h, rows, labels, path)


# ---------------------------------------------------------------------------------- COCO


def _read_coco(path: Path, img_dir: Path | None, keep: set[str] | None) -> list[ImageAnnotations]:
    if path.is_dir():
        jsons = sorted(path.glob("*.json"))
        if len(jsons) != 1:
            raise FormatError(f"{path}: expected one COCO .json file, found {len(jsons)}")
        path = jsons[0]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FormatError(f"{path}: unreadable COCO JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{path}: not a COCO detection file (no 'images' list)")
    try:
        cats = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{path}: every category needs an id and a name") from None
    dirs = [d for d in (img_dir, path.parent / "images", path.parent.parent / "images",
                        path.parent) if d]
    images: dict[int, tuple[Path, int, int]] = {}
    for k, im in enumerate(data["images"]):
        try:
            iid, fname = int(im["id"]), str(im["file_name"])
            w, h = int(im.get("width") or 0), int(im.get("height") or 0)
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: images[{k}] needs id and file_name") from None
        found = _find_image(Path(fname).stem, [d for d in dirs if d.is_dir()], fname)
        file = found or (dirs[0] / fname)
        if not w or not h:
            if found is None:
                raise FormatError(f"{path}: images[{k}] has no size and {fname} was not found")
            w, h = image_size(found)
        images[iid] = (file, w, h)
    per: dict[int, tuple[list, list]] = {iid: ([], []) for iid in images}
    for k, a in enumerate(data.get("annotations", [])):
        where = f"{path}: annotation id {a.get('id', k) if isinstance(a, dict) else k}"
        try:
            iid, cid = int(a["image_id"]), int(a["category_id"])
            x, y, bw, bh = (float(v) for v in a["bbox"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(
                f"{where}: needs image_id, category_id and bbox [x, y, w, h]"
            ) from None
        if iid not in images:
            raise FormatError(f"{where}: image_id {iid} is not in 'images'")
        if cid not in cats:
            raise FormatError(f"{where}: category_id {cid} is not in 'categories'")
        file, w, h = images[iid]
        box = _clip_box(x, y, x + bw, y + bh, w, h, where)
        if box is None:
            continue
        per[iid][0].append(box)
        per[iid][1].append(cats[cid])
    out = []
    for iid, (file, w, h) in images.items():
        if keep is not None and file.stem not in keep:
            continue
        rows, labels = per[iid]
        out.append(_make(file, w, h, rows, labels, path))
    return out


__all__ = [
    "FORMATS",
    "ImageAnnotations",
    "detect_format",
    "image_size",
    "read_annotations",
    "read_names",
]
