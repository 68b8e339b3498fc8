"""Build a real cell pool from a user's images, in three input shapes.

``crops``
    Folders of single-cell crops, one folder per class, each crop centred on its cell (the PBC
    layout). The class is the folder name, refined by the file-name prefix through the mapping.
``annotated``
    Annotated smears (VOC, YOLO, COCO; see :mod:`hemosynth.formats.readers`): every box of a
    mapped class is a candidate, cut with a margin of context around it.
``sprites``
    Already segmented RGBA PNGs, one folder per class; the alpha is kept as it is.

The flow is: list candidates -> calibrate each source's scale -> segment and filter each
candidate (in worker processes) -> size filter per class -> near-duplicate removal ->
``--exclude-like`` leakage control -> derived classes -> optional fill from the atlas ->
:func:`~hemosynth.pools.store.write_pool` (atomic). Every skip is counted with its reason in
the returned :class:`BuildReport`.

Nucleated classes (white cells, nucleated red cells) go through
:func:`~hemosynth.pools.segment.segment_cell`; red cells through
:func:`~hemosynth.pools.segment.segment_blob`; platelets through
:func:`~hemosynth.pools.segment.segment_stained`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, PoolError
from ..formats.readers import IMAGE_EXTS, read_annotations
from ..parallel import mp_context
from ..taxonomy import MAIN_OF, POOL_CLASSES
from . import dedup, derive, quality, scale
from .mapping import ClassMapping
from .merge import fill_missing, rescale_sprite
from .segment import cutout, segment_blob, segment_cell, segment_stained
from .store import write_pool

KINDS = ("crops", "annotated", "sprites")

#: context margin around a box, as a fraction of the box's larger side
BOX_MARGIN = 0.3
#: at most this many crops per source are measured for the scale estimate
SCALE_SAMPLE = 80


@dataclass(frozen=True)
class Source:
    """One input of a build.

    Attributes
    ----------
    path : Path
        Folder (or annotation file).
    kind : str
        ``crops``, ``annotated`` or ``sprites``; guessed from the folder when None.
    name : str
        Dataset name recorded in provenance (the folder name by default).
    um_per_px : float or None
        The source's scale when known; estimated from red cells otherwise.
    fmt, names, images
        Passed to :func:`~hemosynth.formats.readers.read_annotations` (annotated sources).
    """

    path: Path
    kind: str | None = None
    name: str = ""
    um_per_px: float | None = None
    fmt: str | None = None
    names: Any = None
    images: Path | None = None

    def resolved(self) -> Source:
        path = Path(self.path)
        if not path.exists():
            raise PoolError(f"{path}: source not found")
        kind = self.kind or guess_kind(path)
        if kind not in KINDS:
            raise PoolError(f"{path}: unknown source kind {kind!r}; use {', '.join(KINDS)}")
        return Source(path, kind, self.name or path.name, self.um_per_px, self.fmt,
                      self.names, self.images)


def guess_kind(path: Path) -> str:
    """Guess a source's kind: annotation files -> annotated; RGBA PNGs -> sprites; else crops."""
    if path.is_file():
        return "annotated"
    if any((path / d).is_dir() for d in ("Annotations", "labels")) or any(
        next(path.glob(p), None) is not None for p in ("*.xml", "*.json", "data.yaml")
    ):
        return "annotated"
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir())[:3]:
            if f.suffix.lower() == ".png":
                img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
                if img is not None and img.ndim == 3 and img.shape[2] == 4:
                    return "sprites"
        break
    return "crops"


@dataclass
class BuildReport:
    """What a build did: counts per class, skips with reasons, scales, sources."""

    counts: Counter = field(default_factory=Counter)
    candidates: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # reason -> n
    rejected_by_class: dict[str, Counter] = field(default_factory=dict)
    unmapped: Counter = field(default_factory=Counter)  # "source: key" -> n
    derived: Counter = field(default_factory=Counter)
    filled: Counter = field(default_factory=Counter)
    scales: dict[str, scale.ScaleEstimate] = field(default_factory=dict)
    um_per_px: float = 0.0
    path: str = ""

    def reject(self, cls: str, reason: str, n: int = 1) -> None:
        self.rejected[reason] += n
        self.rejected_by_class.setdefault(cls, Counter())[reason] += n

    def to_text(self) -> str:
        """A human-readable multi-line summary."""
        lines = [f"pool {self.path}: {sum(self.counts.values())} sprites at "
                 f"{self.um_per_px:.4f} um/px"]
        for name, s in self.scales.items():
            d = f", median RBC {s.rbc_diameter_px:.1f} px from {s.n} cells" if s.n else ""
            lines.append(f"  scale of {name}: {s.um_per_px:.4f} um/px ({s.method}{d})")
        lines.append("  class                         sprites  candidates  derived  filled")
        for c in POOL_CLASSES:
            if self.counts[c] or self.candidates[c]:
                lines.append(f"  {c:<28} {self.counts[c]:>8} {self.candidates[c]:>11} "
                             f"{self.derived[c]:>8} {self.filled[c]:>7}")
        if self.rejected:
            lines.append("  skipped:")
            for reason, n in self.rejected.most_common():
                lines.append(f"    {reason:<18} {n:>6}  {quality.REASONS.get(reason, '')}")
        if self.unmapped:
            lines.append("  unmapped source classes (skipped):")
            for key, n in sorted(self.unmapped.items()):
                lines.append(f"    {key:<30} {n:>6}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Item:
    cls: str
    box: tuple[float, float, float, float] | None  # None: the whole crop
    label: str


@dataclass(frozen=True)
class _Task:
    source: int
    dataset: str
    image: Path
    rel: str
    items: tuple[_Item, ...]
    um_per_px: float
    target_um: float


@dataclass
class _Result:
    source: int
    cls: str
    reason: str | None
    rgba: np.ndarray | None = None
    prov: dict[str, Any] = field(default_factory=dict)
    area_um2: float = 0.0
    lobes: int = 0
    sprite_hash: int = 0
    image_hash: int = 0


# ----------------------------------------------------------------------------------- listing


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def _class_folders(src: Source) -> list[Path]:
    folders = sorted(p for p in src.path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise PoolError(f"{src.path}: no class folders (expected one folder per class)")
    return folders


def _list_folder_source(
    src: Source, mapping: ClassMapping, report: BuildReport, limit: int | None
) -> list[tuple[Path, str, str]]:
    """``(file, class, label)`` of a crops or sprites source."""
    out = []
    any_file = False
    for folder in _class_folders(src):
        per: Counter = Counter()
        for f in _list_images(folder):
            any_file = True
            cls, key = mapping.resolve(folder.name, f.name)
            if cls is None:
                report.unmapped[f"{src.name}: {key}"] += 1
                continue
            if limit is not None and per[cls] >= limit:
                continue
            per[cls] += 1
            out.append((f, cls, folder.name))
    if not any_file:
        raise PoolError(f"{src.path}: the class folders hold no images")
    return out


def _plan_source(
    src: Source, mapping: ClassMapping, report: BuildReport, limit: int | None,
) -> tuple[list[tuple[Path, str, list[_Item]]], scale.ScaleEstimate | None]:
    """The candidates of one source, grouped by image, and its scale if measured here."""
    groups: list[tuple[Path, str, list[_Item]]] = []
    est = None
    if src.kind in ("crops", "sprites"):
        for f, cls, label in _list_folder_source(src, mapping, report, limit):
            groups.append((f, f.relative_to(src.path).as_posix(), [_Item(cls, None, label)]))
        if src.um_per_px is None and groups:
            files = [g[0] for g in groups]
            if src.kind == "crops":
                step = max(1, len(files) // SCALE_SAMPLE)
                diam = []
                for f in files[::step][:SCALE_SAMPLE]:
                    img = _read_rgb(f)
                    if img is not None:
                        diam.extend(scale.diameters_from_image(img).tolist())
                est = scale.estimate_scale(diam, "crops")
            else:
                rbc = [g[0] for g in groups if g[2][0].cls == "RBC"]
                diam = []
                for f in rbc[:500]:
                    img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
                    if img is not None and img.ndim == 3 and img.shape[2] == 4:
                        diam.append(2 * np.sqrt(np.count_nonzero(img[..., 3] > 127) / np.pi))
                est = scale.estimate_scale(diam, "sprites")
        return groups, est
    anns = read_annotations(src.path, src.fmt, src.names, images=src.images)
    if not anns:
        raise PoolError(f"{src.path}: no annotated images")
    diam = []
    per: Counter = Counter()
    root = src.path if src.path.is_dir() else src.path.parent
    for a in anns:
        items = []
        rbc = [i for i, lab in enumerate(a.labels) if mapping.resolve(lab, a.file.name)[0] == "RBC"]
        diam.extend(scale.diameters_from_boxes(a.boxes[rbc], a.width, a.height).tolist())
        for box, lab in zip(a.boxes, a.labels, strict=True):
            cls, key = mapping.resolve(lab, a.file.name)
            if cls is None:
                report.unmapped[f"{src.name}: {key}"] += 1
                continue
            report.candidates[cls] += 1
            if quality.box_touches_border(box, a.width, a.height):
                report.reject(cls, "cut-by-border")
                continue
            if limit is not None and per[cls] >= limit:
                report.candidates[cls] -= 1
                continue
            per[cls] += 1
            items.append(_Item(cls, tuple(float(v) for v in box), lab))
        if items:
            try:
                rel = a.file.relative_to(root).as_posix()
            except ValueError:
                rel = a.file.name
            groups.append((a.file, rel, items))
    if src.um_per_px is None:
        est = scale.estimate_scale(diam, "boxes")
        if est is None:  # no RBC boxes: measure the red cells in the images
            d2: list[float] = []
            for f, _, _ in groups[:SCALE_SAMPLE]:
                img = _read_rgb(f)
                if img is not None:
                    d2.extend(scale.diameters_from_image(img).tolist())
            est = scale.estimate_scale(d2, "crops")
    return groups, est


# ----------------------------------------------------------------------------------- workers


def _read_rgb(path: Path) -> np.ndarray | None:
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)


def _segment(rgb: np.ndarray, cls: str, center: tuple[float, float] | None):
    main = MAIN_OF[cls]
    if main in ("WBC", "Nucleated RBC"):
        return segment_cell(rgb, center, cls=cls), True
    if main == "Platelet":
        return segment_stained(rgb, center), False
    return segment_blob(rgb, center), False


def _process(task: _Task, kind: str, blur_threshold: float) -> list[_Result]:
    img = _read_rgb(task.image)
    if img is None:
        return [_Result(task.source, it.cls, "unreadable") for it in task.items]
    image_hash = dedup.phash(img)
    factor = task.um_per_px / task.target_um
    out = []
    for it in task.items:
        res = _Result(task.source, it.cls, None, image_hash=image_hash)
        if kind == "sprites":
            if img.shape[2] != 4 or not img[..., 3].any():
                res.reason = "empty"
                out.append(res)
                continue
            rgba = img
            box = (0, 0, img.shape[1], img.shape[0])
            mask = img[..., 3] > 127
            nucleus = None
        else:
            rgb = img[..., :3]
            H, W = rgb.shape[:2]
            if it.box is None:
                crop, off, center = rgb, (0, 0), None
            else:
                x0, y0, x1, y1 = it.box
                m = BOX_MARGIN * max(x1 - x0, y1 - y0)
                cx0, cy0 = max(0, int(x0 - m)), max(0, int(y0 - m))
                cx1, cy1 = min(W, int(np.ceil(x1 + m))), min(H, int(np.ceil(y1 + m)))
                crop, off = rgb[cy0:cy1, cx0:cx1], (cx0, cy0)
                center = ((y0 + y1) / 2 - cy0, (x0 + x1) / 2 - cx0)
            seg, nucleated = _segment(crop, it.cls, center)
            reason = quality.check_candidate(
                crop, seg, nucleated, blur_threshold, regular=it.cls == "RBC",
                min_cell_ratio=quality.MIN_CELL_TO_NUCLEUS.get(it.cls))
            if reason is None and it.box is not None:
                # the mask must stay roughly inside its box (else it grabbed a neighbour)
                bx0, by0, bx1, by1 = seg.bbox
                bw, bh = it.box[2] - it.box[0], it.box[3] - it.box[1]
                if (bx1 - bx0) > 1.6 * bw + 4 or (by1 - by0) > 1.6 * bh + 4:
                    reason = "merged"
            if reason is not None:
                res.reason = reason
                out.append(res)
                continue
            rgba, (sx0, sy0, sx1, sy1) = cutout(crop, seg)
            box = (sx0 + off[0], sy0 + off[1], sx1 + off[0], sy1 + off[1])
            mask = seg.mask
            nucleus = seg.nucleus[sy0:sy1, sx0:sx1]
        if nucleus is not None and it.cls == "Segmented neutrophil":
            res.lobes = derive.count_lobes(nucleus)
        res.area_um2 = float(np.count_nonzero(mask)) * task.um_per_px**2
        res.rgba = rescale_sprite(np.ascontiguousarray(rgba), factor)
        res.sprite_hash = dedup.phash(res.rgba)
        res.prov = {
            "kind": "real",
            "dataset": task.dataset,
            "file": task.rel,
            "box": [int(v) for v in box],
            "label": it.label,
            "source_um_per_px": round(task.um_per_px, 6),
        }
        out.append(res)
    return out


def _run_task(args: tuple[_Task, str, float]) -> list[_Result]:
    return _process(*args)


# ----------------------------------------------------------------------------------- build


def build_pool(
    sources: Iterable[Source | str | os.PathLike[str]],
    out: str | os.PathLike[str],
    mapping: ClassMapping | None = None,
    *,
    um_per_px: float | None = None,
    rbc_um: float = scale.RBC_DIAMETER_UM,
    exclude_like: Iterable[str | os.PathLike[str]] = (),
    fill_from: str | None = None,
    derived: bool = True,
    dedupe: bool = True,
    max_per_class: int | None = None,
    size_ranges: dict[str, tuple[float, float]] | None = None,
    blur_threshold: float = quality.BLUR_THRESHOLD,
    workers: int = 1,
    name: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build a pool folder from crops, annotated smears and sprite folders.

    Parameters
    ----------
    sources : iterable of Source or path
        The inputs; a bare path is a :class:`Source` of guessed kind.
    out : path-like
        The pool folder to write (atomically).
    mapping : ClassMapping, optional
        Source class names -> pool classes (the built-in mapping by default).
    um_per_px : float, optional
        The pool's scale; by default the finest source scale (no source is upsampled).
    rbc_um : float
        Red-cell diameter in micrometres used to calibrate sources of unknown scale.
    exclude_like : iterable of path-like
        Folders of images (a test set): sprites whose source image nearly matches one of them
        are dropped.
    fill_from : str, optional
        A pool spec (``"atlas"``) whose sprites fill the classes the real pool lacks.
    derived : bool
        Mine derived classes (hyper/hyposegmented neutrophils, giant platelets).
    dedupe : bool
        Drop near-duplicate sprites within a class.
    max_per_class : int, optional
        Use at most this many candidates per class and source (quick builds, tests).
    size_ranges : dict, optional
        ``{class: (min_um, max_um)}``: keep only cells of that class whose equivalent
        diameter lies in the range (e.g. normal-sized platelets only); the others are
        rejected as ``size``. Without a range, a class is checked against its own median per
        source (:func:`hemosynth.pools.quality.size_outliers`).
    blur_threshold : float
        Sharpness threshold of the blur filter (Laplacian over gradient energy, see
        :func:`hemosynth.pools.quality.sharpness`).
    workers : int
        Worker processes for segmentation.
    name : str, optional
        Pool name (the folder name by default).
    overwrite : bool
        Replace an existing pool.
    progress : callable, optional
        ``progress(done, total)`` after each image.

    Returns
    -------
    BuildReport

    Raises
    ------
    PoolError
        If a source is missing or empty, no scale can be found, or no sprite survives.
    FormatError
        If an annotation file is malformed.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise PoolError(f"{out}: already exists (pass overwrite to replace it)")
    size_ranges = check_size_ranges(size_ranges or {})
    mapping = mapping or ClassMapping()
    exclude_like = [Path(d) for d in exclude_like]
    for d in exclude_like:
        if not d.is_dir():
            raise PoolError(f"{d}: --exclude-like folder not found")
    srcs = [(s if isinstance(s, Source) else Source(Path(s))).resolved() for s in sources]
    if not srcs:
        raise PoolError("no sources given")
    report = BuildReport(path=str(out))
    plans = []
    for src in srcs:
        groups, est = _plan_source(src, mapping, report, max_per_class)
        if not groups:
            continue
        if src.um_per_px is not None:
            est = scale.ScaleEstimate(float(src.um_per_px), None, 0, "user")
        elif est is None:
            raise PoolError(
                f"{src.path}: cannot estimate the scale (no red cells found); give um_per_px"
            )
        elif est.rbc_diameter_px:
            est = scale.ScaleEstimate(rbc_um / est.rbc_diameter_px, est.rbc_diameter_px, est.n,
                                      est.method)
        report.scales[src.name] = est
        plans.append((src, groups, est))
    if not plans:
        raise PoolError("no candidate cells in any source (check the class mapping)")
    target = float(um_per_px) if um_per_px else min(e.um_per_px for _, _, e in plans)
    report.um_per_px = target
    tasks = []
    for k, (src, groups, est) in enumerate(plans):
        for f, rel, items in groups:
            if src.kind != "annotated":
                for it in items:
                    report.candidates[it.cls] += 1
            tasks.append((_Task(k, src.name, f, rel, tuple(items), est.um_per_px, target),
                          src.kind, blur_threshold))
    results: list[_Result] = []
    done = 0
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers,
                                 mp_context=mp_context(("hemosynth.pools.build",))) as ex:
            for res in ex.map(_run_task, tasks, chunksize=8):
                results.extend(res)
                done += 1
                if progress:
                    progress(done, len(tasks))
    else:
        for t in tasks:
            results.extend(_run_task(t))
            done += 1
            if progress:
                progress(done, len(tasks))
    kept = _filter(results, report, exclude_like, dedupe, size_ranges)
    sprites = [(r.rgba, r.cls, target, r.prov) for r in kept]
    if derived:
        for r in kept:
            d_um = 2 * np.sqrt(r.area_um2 / np.pi)
            dcls = derive.derived_class(r.cls, r.lobes, d_um)
            if dcls is not None:
                prov = {**r.prov, "kind": "derived", "rule": derive.RULES[dcls],
                        "derived_from": r.cls}
                if r.lobes:
                    prov["lobes"] = r.lobes
                sprites.append((r.rgba, dcls, target, prov))
                report.derived[dcls] += 1
    if fill_from:
        present = {c for _, c, _, _ in sprites}
        for sp in fill_missing(present, fill_from, target):
            sprites.append(sp)
            report.filled[sp[1]] += 1
    if not sprites:
        raise PoolError(f"{out}: no sprite passed the filters; nothing written")
    sprites.sort(key=lambda s: POOL_CLASSES.index(s[1]))
    for _, c, _, _ in sprites:
        report.counts[c] += 1
    desc = "built by hemosynth pools build from " + ", ".join(s.name for s in srcs)
    write_pool(out, sprites, name=name or out.name, description=desc, overwrite=overwrite)
    return report


def _filter(
    results: list[_Result],
    report: BuildReport,
    exclude_like: list[Path],
    dedupe: bool,
    size_ranges: dict[str, tuple[float, float]] | None = None,
) -> list[_Result]:
    size_ranges = size_ranges or {}
    ok = []
    for r in results:
        if r.reason is not None:
            report.reject(r.cls, r.reason)
        else:
            ok.append(r)
    banks = [dedup.hash_folder(d) for d in exclude_like]
    bank = np.concatenate(banks) if banks else np.empty(0, np.uint64)
    if bank.size:
        cache: dict[int, bool] = {}
        final = []
        for r in ok:
            hit = cache.setdefault(r.image_hash, dedup.matches_any(r.image_hash, bank))
            if hit:
                report.reject(r.cls, "excluded-like")
            else:
                final.append(r)
        ok = final
    # sizes are judged per class *and source*: sources put different cells in one class
    # (PBC's platelet crops are 6-7 um, its fields' platelet boxes 3 um)
    groups: dict[tuple[str, int], list[_Result]] = {}
    for r in ok:
        groups.setdefault((r.cls, r.source), []).append(r)
    sized: dict[str, list[_Result]] = {}
    for (cls, _), rs in groups.items():
        areas = np.array([r.area_um2 for r in rs])
        if cls in size_ranges:
            lo, hi = size_ranges[cls]
            d = 2 * np.sqrt(areas / np.pi)
            out = (d < lo) | (d > hi)
        else:
            out = quality.size_outliers(areas)
        if out.any():
            report.reject(cls, "size", int(out.sum()))
        sized.setdefault(cls, []).extend(r for r, bad in zip(rs, out, strict=True) if not bad)
    kept: list[_Result] = []
    for rs in sized.values():
        if dedupe and len(rs) > 1:
            dup = dedup.near_duplicates([r.sprite_hash for r in rs])
            if dup.any():
                report.reject(rs[0].cls, "duplicate", int(dup.sum()))
            rs = [r for r, d in zip(rs, dup, strict=True) if not d]
        kept.extend(rs)
    return kept


def check_size_ranges(ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Validate ``{class: (min_um, max_um)}``; a ``ConfigError`` names a bad entry."""
    out = {}
    for cls, rng in ranges.items():
        if cls not in POOL_CLASSES:
            raise ConfigError(f"size range: unknown class {cls!r}")
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise ConfigError(f"size range of {cls}: expected (min_um, max_um), got {rng!r}"
                              ) from None
        if not 0 <= lo < hi:
            raise ConfigError(f"size range of {cls}: need 0 <= min < max, got {lo:g}:{hi:g}")
        out[cls] = (lo, hi)
    return out


def parse_size_ranges(options: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Parse ``CLASS=MIN:MAX`` options (equivalent diameter in um) into a range dict."""
    ranges: dict[str, tuple[float, float]] = {}
    for opt in options:
        cls, sep, rng = opt.rpartition("=")
        lo, sep2, hi = rng.partition(":")
        if not sep or not sep2:
            raise ConfigError(f"--size-range {opt!r}: expected CLASS=MIN:MAX (um)")
        try:
            ranges[cls.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ConfigError(f"--size-range {opt!r}: MIN and MAX must be numbers") from None
    return check_size_ranges(ranges)
