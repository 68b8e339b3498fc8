"""Loading layouts and measuring them: generated datasets (records) and real annotated sets.

Generated datasets are read from ``manifest.json`` and ``records/smear_NNNNNN.json``, never
from the images; real sets through :func:`hemosynth.formats.readers.read_annotations` (VOC,
YOLO or COCO) and a :class:`~hemosynth.stats.layout.ClassMap`.

Either way the result is a :class:`SetMeasures`: every cell's measures concatenated, and the
per-field counts and sums, which :mod:`hemosynth.stats.report` turns into figures.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import read_manifest, read_record, record_path
from ..errors import DatasetError, FormatError
from ..parallel import mp_context
from ..taxonomy import POOL_CLASSES
from .layout import (
    GROUP_INDEX,
    GROUPS,
    POOL_INDEX,
    POOL_TO_GROUP,
    ClassMap,
    Layout,
    estimate_um_per_px,
    make_layout,
)
from .spatial import LayoutMeasures, measure_layout

NG = len(GROUPS)
NP = len(POOL_CLASSES)


@dataclass
class SetMeasures:
    """The measures of every cell and field of one dataset.

    Attributes
    ----------
    name : str
        The dataset's path, for the report.
    kind : str
        ``generated`` or ``real``.
    fields : list of str
        Image (or record) names, in order.
    um_per_px : ndarray of shape (F,)
    width, height : ndarray of shape (F,), int
    cell_field : ndarray of shape (N,), int64
        Field index of each cell.
    groups, pool : ndarray of shape (N,), int64
        Group index and pool-class index (-1 if unknown) of each cell.
    labelled : ndarray of shape (N,), bool
        Whether the cell is written to the annotation files (visible enough, non-empty box).
    width_um, height_um, nn_um, max_iou : ndarray of shape (N,)
    border, nn_ok : ndarray of shape (N,), bool
    overlaps, touches : ndarray of shape (N, G), bool
    ripley : ndarray of shape (G + 1, B)
    n_pairs : ndarray of shape (G + 1,)
    coverage, cell_coverage : ndarray of shape (F,)
    requested, dropped : ndarray of shape (F, P), int64, optional
        Per-smear requested / dropped cells per pool class (generated sets).
    r_edges : ndarray of shape (B + 1,)
    info : dict
        Manifest config (generated) or reading options (real).
    """

    name: str
    kind: str
    r_edges: np.ndarray
    fields: list[str] = field(default_factory=list)
    um_per_px: np.ndarray = field(default_factory=lambda: np.empty(0))
    width: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    height: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cell_field: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    groups: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    pool: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    labelled: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    width_um: np.ndarray = field(default_factory=lambda: np.empty(0))
    height_um: np.ndarray = field(default_factory=lambda: np.empty(0))
    nn_um: np.ndarray = field(default_factory=lambda: np.empty(0))
    max_iou: np.ndarray = field(default_factory=lambda: np.empty(0))
    border: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    nn_ok: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    overlaps: np.ndarray = field(default_factory=lambda: np.empty((0, NG), bool))
    touches: np.ndarray = field(default_factory=lambda: np.empty((0, NG), bool))
    ripley: np.ndarray | None = None
    n_pairs: np.ndarray = field(default_factory=lambda: np.zeros(NG + 1))
    coverage: np.ndarray = field(default_factory=lambda: np.empty(0))
    cell_coverage: np.ndarray = field(default_factory=lambda: np.empty(0))
    requested: np.ndarray | None = None
    dropped: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def field_counts(self, labelled_only: bool = False) -> np.ndarray:
        """Cells per field and group, shape (F, G)."""
        sel = self.labelled if labelled_only else slice(None)
        idx = self.cell_field[sel] * NG + self.groups[sel]
        return np.bincount(idx, minlength=self.n_fields * NG).reshape(self.n_fields, NG)

    def pool_counts(self, labelled_only: bool = True) -> np.ndarray:
        """Cells per pool class over the set, shape (P,) (cells of unknown subtype excluded)."""
        sel = (self.pool >= 0) & (self.labelled if labelled_only else True)
        return np.bincount(self.pool[sel], minlength=NP)


class _Builder:
    """Collects per-layout measures; concatenates once at the end."""

    def __init__(self, r_edges: np.ndarray) -> None:
        self.r_edges = r_edges
        self.parts: dict[str, list[np.ndarray]] = {}
        self.fields: list[str] = []
        self.scalars: dict[str, list[float]] = {k: [] for k in
                                                ("um_per_px", "width", "height", "coverage",
                                                 "cell_coverage")}
        self.ripley = np.zeros((NG + 1, len(r_edges) - 1))
        self.n_pairs = np.zeros(NG + 1)
        self.requested: list[np.ndarray] = []
        self.dropped: list[np.ndarray] = []

    def add(self, lay: Layout, m: LayoutMeasures, labelled: np.ndarray) -> None:
        f = len(self.fields)
        self.fields.append(lay.name)
        for k, v in (("um_per_px", lay.um_per_px), ("width", lay.width),
                     ("height", lay.height), ("coverage", m.coverage),
                     ("cell_coverage", m.cell_coverage)):
            self.scalars[k].append(v)
        n = len(lay)
        for k, v in (
            ("cell_field", np.full(n, f, np.int64)), ("groups", lay.groups), ("pool", lay.pool),
            ("labelled", labelled), ("width_um", m.width_um), ("height_um", m.height_um),
            ("nn_um", m.nn_um), ("max_iou", m.max_iou), ("border", m.border),
            ("nn_ok", m.nn_ok), ("overlaps", m.overlaps), ("touches", m.touches),
        ):
            self.parts.setdefault(k, []).append(v)
        self.ripley += m.ripley
        self.n_pairs += m.n_pairs

    def merge(self, other: _Builder) -> None:
        off = len(self.fields)
        self.fields += other.fields
        for k, v in other.scalars.items():
            self.scalars[k] += v
        for k, v in other.parts.items():
            if k == "cell_field":
                v = [a + off for a in v]
            self.parts.setdefault(k, []).extend(v)
        self.ripley += other.ripley
        self.n_pairs += other.n_pairs
        self.requested += other.requested
        self.dropped += other.dropped

    def compact(self) -> _Builder:
        """Concatenate the parts (smaller to pickle back from a worker)."""
        for k, v in self.parts.items():
            if len(v) > 1:
                self.parts[k] = [np.concatenate(v)]
        return self

    def build(self, name: str, kind: str, info: dict[str, Any]) -> SetMeasures:
        def cat(k: str, empty: np.ndarray) -> np.ndarray:
            v = self.parts.get(k)
            return np.concatenate(v) if v else empty

        out = SetMeasures(
            name=name, kind=kind, r_edges=self.r_edges, fields=self.fields,
            um_per_px=np.asarray(self.scalars["um_per_px"], float),
            width=np.asarray(self.scalars["width"], np.int64),
            height=np.asarray(self.scalars["height"], np.int64),
            cell_field=cat("cell_field", np.empty(0, np.int64)),
            groups=cat("groups", np.empty(0, np.int64)),
            pool=cat("pool", np.empty(0, np.int64)),
            labelled=cat("labelled", np.empty(0, bool)),
            width_um=cat("width_um", np.empty(0)), height_um=cat("height_um", np.empty(0)),
            nn_um=cat("nn_um", np.empty(0)), max_iou=cat("max_iou", np.empty(0)),
            border=cat("border", np.empty(0, bool)), nn_ok=cat("nn_ok", np.empty(0, bool)),
            overlaps=cat("overlaps", np.empty((0, NG), bool)),
            touches=cat("touches", np.empty((0, NG), bool)),
            ripley=self.ripley, n_pairs=self.n_pairs,
            coverage=np.asarray(self.scalars["coverage"], float),
            cell_coverage=np.asarray(self.scalars["cell_coverage"], float),
            info=info,
        )
        if self.requested:
            out.requested = np.stack(self.requested)
            out.dropped = np.stack(self.dropped)
        return out


# ---------------------------------------------------------------------------- generated sets


def record_layout(rec: dict[str, Any], where: str = "") -> Layout:
    """The :class:`Layout` of one generated record (see :func:`hemosynth.dataset.make_record`).

    Boxes are the cells' tight boxes (``tight_box`` where ``output.box_margin`` widened the
    annotation box), so geometry statistics describe the cells, not the label convention.

    Raises
    ------
    DatasetError
        If the record lacks a field or names an unknown class, naming ``where``.
    """
    try:
        cells = rec["cells"]
        boxes = np.array([c.get("tight_box", c["box"]) for c in cells], float).reshape(-1, 4)
        pool = np.array([POOL_INDEX[c["class"]] for c in cells], np.int64)
        visible = np.array([c["visible"] for c in cells], float)
        area = np.array([c["area"] for c in cells], float)
        return Layout(
            str(rec.get("file_name", where)), int(rec["width"]), int(rec["height"]),
            float(rec["um_per_px"]), boxes, POOL_TO_GROUP[pool], pool, visible, area,
        )
    except KeyError as e:
        raise DatasetError(f"{where}: record lacks {e} (or names an unknown class)") from None
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: malformed record ({e})") from None


def _labelled(lay: Layout, min_visible: float) -> np.ndarray:
    b = lay.boxes
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    if lay.visible is not None:
        ok &= lay.visible >= min_visible
    return ok


def _per_class(d: dict[str, int], where: str) -> np.ndarray:
    v = np.zeros(NP, np.int64)
    for c, n in d.items():
        if c not in POOL_INDEX:
            raise DatasetError(f"{where}: unknown class {c!r}")
        v[POOL_INDEX[c]] = n
    return v


def _measure_records(
    root: str, indices: list[int], r_edges: np.ndarray, tol_um: float, min_visible: float
) -> _Builder:
    bld = _Builder(r_edges)
    for i in indices:
        p = record_path(Path(root), i)
        rec = read_record(root, i)
        lay = record_layout(rec, str(p))
        bld.add(lay, measure_layout(lay, r_edges, tol_um), _labelled(lay, min_visible))
        bld.requested.append(_per_class(rec.get("requested", {}), str(p)))
        bld.dropped.append(_per_class(rec.get("dropped", {}), str(p)))
    return bld.compact()


def load_generated(
    root: str | Path, r_edges: np.ndarray, tol_um: float = 0.5, workers: int = 1,
    limit: int | None = None,
) -> SetMeasures:
    """Measure every smear of a generated dataset from its manifest and records.

    Parameters
    ----------
    root : path-like
        The dataset folder (holding ``manifest.json`` and ``records/``).
    r_edges : ndarray of shape (B + 1,)
        Distance bins (micrometres) for Ripley's K.
    tol_um : float
        Box gap that counts as touching.
    workers : int
        Processes to measure with (records are split in contiguous chunks).
    limit : int, optional
        Measure only the first ``limit`` smears.

    Raises
    ------
    DatasetError
        If the folder has no manifest, or a record is missing or malformed (naming it).
    """
    root = Path(root)
    manifest = read_manifest(root)
    count = int(manifest.get("count", 0))
    if limit is not None:
        count = min(count, int(limit))
    if count < 1:
        raise DatasetError(f"{root / 'manifest.json'}: the dataset has no smears")
    cfg = manifest.get("config", {})
    min_visible = float(cfg.get("output", {}).get("min_visible", 0.0))
    if not (root / "records").is_dir():
        raise DatasetError(f"{root / 'records'}: missing (statistics read the per-smear records)")
    indices = list(range(count))
    if workers <= 1 or count < 64:
        bld = _measure_records(str(root), indices, r_edges, tol_um, min_visible)
    else:
        edges = np.linspace(0, count, workers * 4 + 1).astype(int)
        chunks = [indices[a:b] for a, b in pairwise(edges.tolist())]
        bld = _Builder(r_edges)
        ctx = mp_context(("hemosynth.stats.loaders",))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futs = [ex.submit(_measure_records, str(root), c, r_edges, tol_um, min_visible)
                    for c in chunks if c]
            for f in futs:
                bld.merge(f.result())
    info = {"manifest": {k: manifest.get(k) for k in
                         ("hemosynth_version", "status", "count", "seed", "pool")},
            "config": cfg, "measured": count}
    return bld.build(str(root), "generated", info)


# ---------------------------------------------------------------------------- real sets


def split_stems(real: str | Path, split: str | Path | None) -> list[str] | None:
    """Image stems of a split: a list file, or a name looked up beside the real set.

    ``split`` may be a file of stems or image paths (one per line), or a name such as
    ``test`` found as ``REAL/test.txt`` or ``REAL/ImageSets/Main/test.txt``.

    Raises
    ------
    FormatError
        If no such list exists, naming the places looked at.
    """
    if split is None:
        return None
    real = Path(real)
    cands = [Path(split)]
    if real.is_dir():
        cands += [real / f"{split}.txt", real / "ImageSets" / "Main" / f"{split}.txt"]
    for c in cands:
        if c.is_file():
            lines = [ln.strip() for ln in c.read_text().splitlines() if ln.strip()]
            if not lines:
                raise FormatError(f"{c}: split list is empty")
            return [Path(ln.split()[0]).stem for ln in lines]
    raise FormatError(f"split {split!r}: no list found (looked at {', '.join(map(str, cands))})")


def real_layouts(
    path: str | Path,
    fmt: str | None = None,
    names: Any = None,
    images: str | Path | None = None,
    split: str | Path | None = None,
    class_map: ClassMap | None = None,
    um_per_px: float | None = None,
) -> tuple[list[Layout], dict[str, Any]]:
    """Read a real annotated set as layouts.

    Parameters
    ----------
    path : path-like
        VOC, YOLO or COCO annotations (see :func:`hemosynth.formats.readers.read_annotations`).
    fmt : str, optional
        ``voc``, ``yolo`` or ``coco``; guessed when omitted.
    names : list of str or path, optional
        YOLO class names (else found beside the labels).
    images : path-like, optional
        Image folder (YOLO needs the images' sizes).
    split : str or path, optional
        Only these images (see :func:`split_stems`).
    class_map : ClassMap, optional
        Real class -> hemosynth class (default: recognise the usual names).
    um_per_px : float, optional
        The set's scale; estimated from its red cells (7.5 um) when omitted.

    Returns
    -------
    layouts : list of Layout
    info : dict
        What was read: path, format, images, classes seen, scale and how it was found.

    Raises
    ------
    FormatError
        On a missing path or malformed label file (naming the file and line).
    ConfigError
        On an unknown class (naming the annotation file) or a bad map entry.
    """
    from ..formats.readers import detect_format, read_annotations

    class_map = class_map or ClassMap()
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: real annotation path not found")
    stems = split_stems(path, split)
    fmt = fmt or detect_format(path)
    anns = read_annotations(path, fmt, names, images=images, stems=stems)
    if not anns:
        raise FormatError(f"{path}: no annotated images" + (f" in split {split}" if split else ""))
    seen: set[str] = set()
    mapped: list[tuple[Any, np.ndarray, list[str]]] = []
    for a in anns:
        keep, classes = [], []
        for k, lab in enumerate(a.labels):
            seen.add(lab)
            target = class_map(lab, str(a.annotation or a.file))
            if target is not None:
                keep.append(k)
                classes.append(target)
        mapped.append((a, a.boxes[keep], classes))
    class_map.check_sources(seen, str(path))
    how = "given"
    if um_per_px is None:
        um_per_px = estimate_um_per_px(
            (b, np.array([c == "RBC" for c in cl], bool), a.width, a.height)
            for a, b, cl in mapped
        )
        how = "estimated from the median whole-RBC box (7.5 um)"
    layouts = [make_layout(str(a.file.name), a.width, a.height, um_per_px, b, cl)
               for a, b, cl in mapped]
    info = {
        "path": str(path), "format": fmt, "images": str(images) if images else None,
        "split": str(split) if split else None, "classes": sorted(seen),
        "map": {k: class_map(k) for k in sorted(seen)},
        "um_per_px": um_per_px, "um_per_px_source": how,
    }
    return layouts, info


def measure_layouts(
    layouts: list[Layout], r_edges: np.ndarray, name: str, kind: str = "real",
    info: dict[str, Any] | None = None, tol_um: float = 0.5,
) -> SetMeasures:
    """Measure a list of layouts (a real set, or hand-made ones)."""
    bld = _Builder(r_edges)
    for lay in layouts:
        bld.add(lay, measure_layout(lay, r_edges, tol_um), _labelled(lay, 0.0))
    return bld.build(name, kind, info or {})


def load_real(
    path: str | Path, r_edges: np.ndarray, tol_um: float = 0.5, **kwargs: Any
) -> SetMeasures:
    """Read and measure a real annotated set (``kwargs`` as for :func:`real_layouts`)."""
    layouts, info = real_layouts(path, **kwargs)
    return measure_layouts(layouts, r_edges, str(path), "real", info, tol_um)


__all__ = [
    "GROUP_INDEX",
    "SetMeasures",
    "load_generated",
    "load_real",
    "measure_layouts",
    "real_layouts",
    "record_layout",
    "split_stems",
]
