"""Real annotated image sets (YOLO, VOC, COCO, hemosynth datasets) and class mappings.

A *test set* is a COCO ground truth plus, per class, the images on which that class is
annotated completely. It can be assembled from several *sources*, each contributing some of the
classes: the BCCD development set takes WBC and Platelets from BCCD's own VOC boxes (72 test
images) and RBC from the relabelled YOLO boxes (the 40 of them that were relabelled)::

    load_testset([
        "bccd/ImageSets/Main/test.txt@WBC,Platelets",
        "bccd-relabel/test.txt@RBC",
    ])

A source is written ``PATH[@CLASS,CLASS...]``; without ``@`` it contributes every class it has.
Images are matched across sources by file stem; a source whose images are not beside its labels
(``bccd-relabel``) borrows them from the other sources or from ``images=``.

Files are parsed by :func:`hemosynth.formats.readers.read_annotations` (boxes ``xyxy`` in pixel
edges, VOC's 1-based corners shifted, boxes clipped to the image, zero-size boxes such as
BCCD's two dropped); this module adds split lists, hemosynth dataset folders, declared class
names and multi-source test sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FormatError
from ..formats.readers import read_annotations as _read
from ..formats.readers import read_names
from ..taxonomy import canonical_class

FORMATS = ("yolo", "voc", "coco", "hemosynth")


@dataclass
class Annotated:
    """One annotated image.

    Attributes
    ----------
    file : Path
        The image file.
    width, height : int
    boxes : ndarray of shape (N, 4)
        ``xyxy`` in pixel edges, float.
    labels : list of str
        Class name of each box.
    """

    file: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]


class AnnotationList(list):
    """A list of :class:`Annotated` with the class names its source declares (or None).

    COCO categories and YOLO names may include classes with no box; a test set reports them
    as absent.
    """

    names: list[str] | None = None


def _with_names(items: list[Annotated], names: Sequence[str] | None) -> AnnotationList:
    out = AnnotationList(items)
    out.names = list(names) if names is not None else None
    return out


# ------------------------------------------------------------------------------- readers
def _read_list(path: Path) -> list[str]:
    """Stems listed in a split file (one per line: a stem or an image path)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(Path(line).stem)
    return out


def detect_format(path: Path) -> str:
    """Guess the format of ``path`` (see :func:`read_annotations`).

    Raises
    ------
    FormatError
        If nothing matches, naming the path.
    """
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "hemosynth"
        if (path / "Annotations").is_dir():
            return "voc"
        if (path / "labels").is_dir() or (path / "data.yaml").is_file():
            return "yolo"
    elif path.suffix == ".json":
        return "coco"
    elif path.suffix == ".xml":
        return "voc"
    elif path.suffix in (".yaml", ".yml"):
        return "yolo"
    elif path.suffix == ".txt":
        if len(path.parents) > 2 and path.parent.name == "Main" and (
            path.parents[2] / "Annotations"
        ).is_dir():
            return "voc"
        if (path.parent / "labels").is_dir():
            return "yolo"
    if path.is_dir():
        from ..formats.readers import detect_format as reader_format

        try:
            return reader_format(path)
        except FormatError:
            pass
    raise FormatError(
        f"{path}: cannot tell its annotation format (expected a VOC folder or split file, a "
        f"YOLO folder with labels/ or a list beside it, a COCO .json or a hemosynth dataset)"
    )


def read_annotations(
    path: str | Path,
    fmt: str | None = None,
    names: Sequence[str] | None = None,
    images: str | Path | Mapping[str, Path] | None = None,
    label_set: str | None = None,
) -> AnnotationList:
    """Read an annotated image set.

    Parameters
    ----------
    path : path-like
        ``voc``: a VOC root (``Annotations/``, ``JPEGImages/``), a split file
        ``ImageSets/Main/<split>.txt`` or one ``.xml``. ``yolo``: a folder with ``labels/`` (and
        ``images/``), a list file beside ``labels/`` (stems or image paths) or a ``data.yaml``
        whose ``train`` list is read. ``coco``: a ``.json``. ``hemosynth``: a dataset folder
        (its ``coco/<label set>.json``).
    fmt : str, optional
        One of :data:`FORMATS`; guessed from ``path`` when omitted.
    names : sequence of str, optional
        YOLO class names (default: ``classes.txt`` or ``data.yaml`` beside the labels).
    images : path-like or mapping, optional
        Where to find images that are not beside the labels: a folder, or stem -> file.
    label_set : str, optional
        For a hemosynth dataset: which label set (default ``main+rbc`` when written, else the
        first).

    Returns
    -------
    AnnotationList
        Annotated images in file order (images with no boxes are kept, as negatives), with
        ``.names``: the classes the source declares (None for VOC).

    Raises
    ------
    FormatError
        On a missing image, an unreadable file, or an unknown class id, naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file or folder")
    fmt = fmt or detect_format(p)
    if fmt == "hemosynth":
        return _read_hemosynth(p, label_set)
    if fmt not in FORMATS:
        raise ConfigError(f"format: unknown {fmt!r}; choose from {', '.join(FORMATS)}")
    stems = None
    declared: list[str] | None = None
    src = p
    if p.suffix == ".txt" and fmt in ("voc", "yolo"):
        stems = _read_list(p)
        src = p.parents[2] if fmt == "voc" else p.parent
    if fmt == "yolo" and names is None:
        for cand in (src / "classes.txt", src / "data.yaml"):
            if cand.is_file() and src.is_dir():
                names = read_names(cand)
                break
    if fmt == "yolo":
        declared = list(names) if names is not None else None
    img_dir: Path | None = None
    if isinstance(images, Mapping):
        # borrow images from other sources: the folder holding the wanted stems
        wanted = stems if stems is not None else sorted(
            q.stem for q in (src / "labels").glob("*.txt"))
        dirs = {images[s].parent for s in wanted if s in images}
        if len(dirs) == 1:
            img_dir = dirs.pop()
    elif images is not None:
        img_dir = Path(images)
    try:
        items = _read(src, fmt=fmt, names=names, images=img_dir, stems=stems)
    except FormatError as e:
        if fmt == "yolo" and img_dir is None and "image" in str(e).lower():
            raise FormatError(f"{e} (images not found: pass the image folder)") from None
        raise
    if img_dir is None and any(not a.file.is_file() for a in items):
        # hemosynth layout (voc/<set>/*.xml, coco/<set>.json beside ../images): look there
        base = src if src.is_dir() else src.parent
        for cand in (base.parent.parent / "images", base.parent / "images", base / "images"):
            if cand.is_dir():
                items = _read(src, fmt=fmt, names=names, images=cand, stems=stems)
                break
    lost = [a.file for a in items if not a.file.is_file()]
    if lost:
        raise FormatError(
            f"{p}: {len(lost)} image(s) not found, e.g. {lost[0]} (pass the image folder)"
        )
    if stems is not None:
        found = {a.file.stem for a in items}
        missing = [s for s in stems if s not in found]
        if missing:
            raise FormatError(
                f"{p}: {len(missing)} listed image(s) not found, e.g. {missing[0]} "
                f"(pass the image folder)"
            )
    if fmt == "coco":
        declared = _coco_names(src)
    out = [Annotated(a.file, a.width, a.height, np.asarray(a.boxes, float).reshape(-1, 4),
                     list(a.labels)) for a in items]
    return _with_names(out, declared)


def _coco_names(p: Path) -> list[str] | None:
    try:
        data = json.loads(p.read_text())
        return [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_hemosynth(p: Path, label_set: str | None) -> AnnotationList:
    from ..taxonomy import label_set as get_label_set

    coco_dir = p / "coco"
    slug = get_label_set(label_set).slug if label_set is not None else None
    if slug is None:
        have = [q.stem for q in sorted(coco_dir.glob("*.json"))] or [
            q.name for q in sorted((p / "yolo").glob("*")) if (q / "labels").is_dir()]
        if not have:
            raise FormatError(f"{p}: the dataset has no COCO or YOLO annotations")
        slug = "main_rbc" if "main_rbc" in have else have[0]
    f = coco_dir / f"{slug}.json"
    if not f.is_file():
        yolo = p / "yolo" / slug
        if (yolo / "labels").is_dir():
            items = _read(yolo, fmt="yolo", names=read_names(yolo / "data.yaml"),
                          images=p / "images")
            out = [Annotated(a.file, a.width, a.height,
                             np.asarray(a.boxes, float).reshape(-1, 4), list(a.labels))
                   for a in items]
            return _with_names(out, read_names(yolo / "data.yaml"))
        raise FormatError(f"{f}: missing (was the dataset generated with that label set?)")
    items = _read(f, fmt="coco", images=p / "images")
    out = [Annotated(a.file, a.width, a.height, np.asarray(a.boxes, float).reshape(-1, 4),
                     list(a.labels)) for a in items]
    return _with_names(out, _coco_names(f))


# ----------------------------------------------------------------------------- class maps
@dataclass(frozen=True)
class ClassMap:
    """A many-to-one mapping from training class names to test-set class names.

    Attributes
    ----------
    pairs : dict
        Training name -> test name, e.g. ``{"Platelet": "Platelets"}``.
    """

    pairs: dict[str, str]

    def __call__(self, name: str) -> str | None:
        """The test name of training class ``name``, or None when it is not mapped."""
        return self.pairs.get(name)

    @property
    def targets(self) -> list[str]:
        """The test names that something maps onto, in first-seen order."""
        return list(dict.fromkeys(self.pairs.values()))

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.pairs.items())


def _canon(name: str) -> str:
    try:
        return canonical_class(name)
    except ConfigError:
        return name.strip().lower()


def parse_class_map(
    spec: str | Mapping[str, str] | None, train_names: Sequence[str] = (),
    test_names: Sequence[str] = (),
) -> ClassMap:
    """Build a :class:`ClassMap`.

    Parameters
    ----------
    spec : str, mapping or None
        ``"RBC=RBC,WBC=WBC,Platelet=Platelets"`` (training name = test name, comma or newline
        separated), a path to a file holding such lines, a dict, or None to match names
        automatically: a training name maps onto the test name that is the same class by
        hemosynth's taxonomy aliases (``Platelet`` and ``Platelets``), or spelled the same
        ignoring case.
    train_names, test_names : sequence of str
        Used by the automatic matching, and to check the names of an explicit spec.

    Raises
    ------
    ConfigError
        On a malformed pair, or a test name the test set does not have.
    """
    pairs: dict[str, str] = {}
    if spec is None:
        by_canon = {_canon(t): t for t in test_names}
        for n in train_names:
            t = by_canon.get(_canon(n))
            if t is not None:
                pairs[n] = t
        if not pairs and train_names:
            raise ConfigError(
                f"classes: no training class ({', '.join(train_names)}) matches a test class "
                f"({', '.join(test_names)}); give --classes TRAIN=TEST,..."
            )
        return ClassMap(pairs)
    if isinstance(spec, Mapping):
        pairs = {str(k): str(v) for k, v in spec.items()}
    else:
        text = spec
        if "=" not in spec and Path(spec).is_file():
            text = Path(spec).read_text()
        elif Path(spec).suffix in (".txt", ".yaml", ".yml", ".map") and Path(spec).is_file():
            text = Path(spec).read_text()
        for part in text.replace("\n", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ConfigError(f"classes: expected TRAIN=TEST, got {part!r}")
            k, v = (s.strip() for s in part.split("=", 1))
            if not k or not v:
                raise ConfigError(f"classes: expected TRAIN=TEST, got {part!r}")
            pairs[k] = v
    if test_names:
        bad = [v for v in pairs.values() if v not in test_names]
        if bad:
            raise ConfigError(
                f"classes: {', '.join(map(repr, bad))} not in the test set's classes "
                f"({', '.join(test_names)})"
            )
    return ClassMap(pairs)


# ------------------------------------------------------------------------------ test sets
@dataclass
class TestSet:
    """A COCO ground truth with, per class, the images where that class is fully annotated.

    Attributes
    ----------
    categories : list of str
        Class names; COCO category id = position + 1.
    images : list of Annotated
        Image id = position + 1; ``file.name`` is the COCO ``file_name``.
    evaluated : dict
        Class name -> sorted image ids on which the class is annotated (its AP is computed on
        these images only).
    sources : list of str
        What was read, one line per source.
    notes : list of str
        What was dropped or fixed while reading.
    """

    __test__ = False  # not a pytest class

    categories: list[str]
    images: list[Annotated]
    evaluated: dict[str, list[int]]
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def category_id(self, name: str) -> int:
        return self.categories.index(name) + 1

    def coco(self) -> dict[str, Any]:
        """The COCO ground-truth dict (``bbox`` as ``[x, y, w, h]``)."""
        images, anns = [], []
        for i, im in enumerate(self.images, 1):
            images.append({"id": i, "file_name": im.file.name, "width": im.width,
                           "height": im.height})
            for box, lab in zip(im.boxes, im.labels, strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                anns.append({
                    "id": len(anns) + 1, "image_id": i, "category_id": self.category_id(lab),
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                })
        cats = [{"id": k + 1, "name": n} for k, n in enumerate(self.categories)]
        return {"images": images, "annotations": anns, "categories": cats}

    def counts(self) -> dict[str, int]:
        """Boxes per class."""
        out = dict.fromkeys(self.categories, 0)
        for im in self.images:
            for lab in im.labels:
                out[lab] += 1
        return out

    def absent(self) -> list[str]:
        """Classes with no box in the test set (left out of every mean)."""
        return [c for c, n in self.counts().items() if n == 0]

    def image_index(self) -> dict[str, int]:
        """File name and stem -> image id."""
        idx: dict[str, int] = {}
        for i, im in enumerate(self.images, 1):
            idx[im.file.name] = i
            idx.setdefault(im.file.stem, i)
        return idx


def split_spec(spec: str | Path) -> tuple[Path, list[str] | None]:
    """``"PATH@A,B"`` -> ``(PATH, ["A", "B"])``; ``"PATH"`` -> ``(PATH, None)``."""
    s = str(spec)
    if "@" in s:
        head, tail = s.rsplit("@", 1)
        if tail and "/" not in tail:
            return Path(head), [c.strip() for c in tail.split(",") if c.strip()]
    return Path(s), None


def load_testset(
    specs: Sequence[str | Path] | str | Path,
    names: Sequence[str] | None = None,
    images: str | Path | None = None,
) -> TestSet:
    """Read a test set from one or more sources.

    Parameters
    ----------
    specs : path-like or sequence of them
        Sources written ``PATH[@CLASS,CLASS...]`` (see the module docstring). When a class is
        named, only its boxes are taken from that source, and its AP is computed on that
        source's images only.
    names : sequence of str, optional
        YOLO class names for sources without ``classes.txt`` / ``data.yaml``.
    images : path-like, optional
        A folder of images for sources whose images are not beside their labels.

    Raises
    ------
    FormatError, ConfigError
        On unreadable sources, a class named but not present in its source, or a class
        taken from two sources.

    Examples
    --------
    The BCCD development set (WBC and Platelets on BCCD's boxes, RBC on the relabelled ones)::

        ts = load_testset(["data/bccd/ImageSets/Main/test.txt@WBC,Platelets",
                           "data/bccd-relabel/test.txt@RBC"])
    """
    if isinstance(specs, (str, Path)):
        specs = [specs]
    parsed = [split_spec(s) for s in specs]
    if not parsed:
        raise ConfigError("test: no test set given")
    # read sources that carry their own images first, so the others can borrow them
    lookup: dict[str, Path] = {}
    read: list[list[Annotated] | None] = [None] * len(parsed)
    pending = []
    for k, (path, _) in enumerate(parsed):
        try:
            read[k] = read_annotations(path, names=names, images=images)
        except FormatError as e:
            if "not found" not in str(e):
                raise
            pending.append((k, e))
            continue
        for a in read[k]:
            lookup.setdefault(a.file.stem, a.file)
    for k, err in pending:
        try:
            read[k] = read_annotations(parsed[k][0], names=names, images=lookup)
        except FormatError:
            raise err from None

    by_stem: dict[str, Annotated] = {}
    order: list[str] = []
    per_class_stems: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    sources: list[str] = []
    dropped_zero: dict[str, int] = {}
    for (path, keep), anns in zip(parsed, read, strict=True):
        present = list(dict.fromkeys(lab for a in anns for lab in a.labels))
        declared = getattr(anns, "names", None)
        if keep is not None:
            classes = keep
        elif declared is not None:
            classes = list(dict.fromkeys([*declared, *present]))
        else:
            classes = present
        if keep is not None:
            missing = [c for c in keep if c not in present and c not in (declared or ())]
            if missing:
                raise ConfigError(
                    f"{path}: has no boxes of {', '.join(map(repr, missing))} (its classes: "
                    f"{', '.join(present) or 'none'})"
                )
        for c in classes:
            if c in owner:
                raise ConfigError(f"test: class {c!r} comes from both {owner[c]} and {path}")
            owner[c] = str(path)
        stems = [a.file.stem for a in anns]
        for c in classes:
            per_class_stems[c] = stems
        n_boxes = 0
        for a in anns:
            s = a.file.stem
            if s not in by_stem:
                by_stem[s] = Annotated(a.file, a.width, a.height, np.zeros((0, 4)), [])
                order.append(s)
            tgt = by_stem[s]
            sel = [i for i, lab in enumerate(a.labels) if lab in classes]
            b = a.boxes[sel].copy()
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, a.width)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, a.height)
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            for i in np.flatnonzero(~ok):
                lab = a.labels[sel[i]]
                dropped_zero[lab] = dropped_zero.get(lab, 0) + 1
            tgt.boxes = np.concatenate([tgt.boxes, b[ok]])
            tgt.labels += [a.labels[sel[i]] for i in np.flatnonzero(ok)]
            n_boxes += int(ok.sum())
        sources.append(
            f"{path}: {len(anns)} images, {n_boxes} boxes of {', '.join(classes) or 'no class'}"
        )
    categories = list(owner)
    index = {s: i for i, s in enumerate(order, 1)}
    evaluated = {c: sorted(index[s] for s in per_class_stems[c]) for c in categories}
    notes = [f"dropped {n} zero-size {c} box(es)" for c, n in dropped_zero.items()]
    return TestSet(categories, [by_stem[s] for s in order], evaluated, sources, notes)


def bccd_dev_specs(data: str | Path) -> list[str]:
    """The BCCD development test set's sources under a ``shared/data`` folder.

    WBC and Platelets on BCCD's own boxes over the 72-image test split, RBC on the TXL-PBC
    relabelled boxes over the 40 of those images that were relabelled.
    """
    d = Path(data)
    return [
        f"{d / 'bccd' / 'ImageSets' / 'Main' / 'test.txt'}@WBC,Platelets",
        f"{d / 'bccd-relabel' / 'test.txt'}@RBC",
    ]
