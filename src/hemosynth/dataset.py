"""Generated dataset folders: layout, per-smear production, manifest and resume.

Layout::

    DIR/manifest.json                 config, seed, version, pool fingerprint, status, counts
    DIR/images/smear_000000.jpg       the smears
    DIR/records/smear_000000.json     every placed cell (all classes, RBC included) with its box,
                                      visible fraction, sprite and transform: the source of the
                                      annotations and of ``hemosynth stats``
    DIR/yolo/<set>/...                YOLO labels and data.yaml (see hemosynth.formats.yolo)
    DIR/coco/<set>.json               COCO JSON
    DIR/voc/<set>/smear_000000.xml    VOC XML (on request)

A smear's files are written atomically, image and labels first and its record last, so a smear
counts as done exactly when its record exists. ``manifest.json`` is written first with
``"status": "incomplete"`` and rewritten with ``"status": "complete"`` after the dataset-wide
files; an interrupted run is finished by ``resume``, byte-identical to an uninterrupted one.
Nothing in the dataset depends on the worker count, the executor or the order of work. The
manifest's ``generator`` (:data:`GENERATOR`) says which version of the generator's output it
holds; ``resume`` refuses a dataset begun by another.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import GenerationConfig
from .errors import ConfigError, DatasetError, HemosynthError, PoolError
from .fileio import (
    atomic_write_bytes,
    atomic_write_json,
    encode_image,
    remove_stale_temporaries,
)
from .formats import WRITERS
from .formats.coco import window_rle
from .pools.store import Pool, open_pool
from .server import start_server
from .smear.counts import GROUPS, Census
from .smear.plan import SmearPlan, plan_smear
from .smear.render import pack_sprites, render, visibility
from .taxonomy import MAIN_OF, RBC, label_set

MANIFEST = "manifest.json"
FORMAT = "hemosynth-dataset"
#: what a seed and a config make: bumped whenever the same seed and config give other files
#: (1: datasets whose manifest has no "generator"; 2: session 9, cells drawn band by band and
#: the background in float32). A dataset is resumed only by the generator that began it.
GENERATOR = 2


class DensityWarning(UserWarning):
    """The requested cells do not all fit in the field: some were dropped."""


def smear_name(index: int, cfg: GenerationConfig) -> str:
    """File name of smear ``index``'s image."""
    return f"smear_{index:06d}.{cfg.output.image_format}"


def widen_box(box: list[int], margin: float, width: int, height: int) -> list[int]:
    """``box`` (xyxy) with ``margin`` times its width / height added on each side, rounded
    outwards and clipped to the ``width`` x ``height`` field."""
    x0, y0, x1, y1 = box
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    return [max(0, int(np.floor(x0 - dx))), max(0, int(np.floor(y0 - dy))),
            min(width, int(np.ceil(x1 + dx))), min(height, int(np.ceil(y1 + dy)))]


def make_record(
    plan: SmearPlan, file_name: str, frac: np.ndarray, area: np.ndarray,
    rles: list[dict[str, Any] | None] | None = None,
    box_margin: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The JSON-ready record of a rendered smear (see the module docstring).

    ``box_margin`` (main type -> fraction, ``output.box_margin``) widens those cells'
    annotation boxes; their tight box is kept as ``tight_box``.
    """
    margins = box_margin or {}
    # plain Python numbers first: per-cell numpy scalars would cost most of the time here
    boxes = plan.clipped_boxes().astype(np.int64).tolist()
    fulls = plan.boxes.astype(np.int64).tolist()
    visible = [round(v, 4) for v in np.asarray(frac, np.float64).tolist()]
    areas = np.asarray(area, np.int64).tolist()
    sprites = plan.sprite_ids.tolist()
    angles = [round(v, 4) for v in plan.angles.astype(np.float64).tolist()]
    flips = plan.flips.astype(bool).tolist()
    scales = [round(v, 6) for v in plan.scales.astype(np.float64).tolist()]
    strengths = plan.strengths.tolist() if plan.strengths is not None else None
    cells = []
    for i, cls in enumerate(plan.classes):
        full, box = fulls[i], boxes[i]
        margin = margins.get(MAIN_OF[cls], 0.0)
        cell = {
            "class": cls,
            "box": widen_box(box, margin, plan.width, plan.height) if margin else box,
            "full_box": full,
            "truncated": box != full,
            "visible": visible[i],
            "area": areas[i],
            "sprite": sprites[i],
            "angle": angles[i],
            "flip": flips[i],
            "scale": scales[i],
        }
        if margin:
            cell["tight_box"] = box
        if strengths is not None and strengths[i] != 1.0:
            cell["strength"] = round(strengths[i], 4)
        if rles is not None and rles[i] is not None:
            cell["rle"] = rles[i]
        cells.append(cell)
    return {
        "index": plan.index,
        "file_name": f"images/{file_name}",
        "width": plan.width,
        "height": plan.height,
        "um_per_px": plan.um_per_px,
        "threshold": round(plan.threshold, 6),
        "strategy": plan.strategy,
        "requested": plan.requested,
        "placed": plan.placed(),
        "dropped": plan.dropped,
        "attempts": plan.stats.attempts,
        "checks": plan.stats.checks,
        "appearance": plan.appearance,
        "cells": cells,
    }


def make_smear(
    cfg: GenerationConfig, pool: Pool, index: int, census: Census | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Plan and render smear ``index``; return the RGB image and its record."""
    plan, sprites = plan_smear(cfg, pool, index, census, keep_sprites=True)
    want_masks = cfg.output.coco_masks
    pack = pack_sprites(plan, sprites)
    frac, area, masks = visibility(plan, sprites, masks=want_masks, pack=pack)
    rles = None
    if masks is not None:
        rles = []
        clipped = plan.clipped_boxes()
        for i, m in enumerate(masks):
            if m is None:
                rles.append(None)
                continue
            rles.append(window_rle(m, int(clipped[i, 0]), int(clipped[i, 1]), plan.width,
                                   plan.height))
    image = render(plan, sprites, cfg.render, pack=pack)
    return image, make_record(plan, smear_name(index, cfg), frac, area, rles,
                              cfg.output.box_margin)


def collectors(cfg: GenerationConfig) -> list:
    """A new collector (:class:`~hemosynth.formats.Collector`) of every format and label set
    of ``cfg``, in a fixed order."""
    return [
        WRITERS[fmt].collector(label_set(s), cfg)
        for fmt in cfg.output.formats
        for s in cfg.output.label_sets
    ]


def digest(record: dict[str, Any], parts_of: list) -> dict[str, Any]:
    """What the dataset's assembly needs of a record: its index, counts, manifest entry
    (:func:`summarize`) and each collector's part (``parts_of``: as :func:`collectors`).

    Made where the record is made, so that a worker sends this, not the record of every cell,
    and the formats' per-smear work is done in the workers.
    """
    return {
        "index": record["index"],
        "requested": record["requested"],
        "placed": record["placed"],
        "dropped": record["dropped"],
        "summary": summarize(record),
        "parts": [c.part(record) for c in parts_of],
    }


class _Context:
    """What a worker needs to produce smears: the config, the opened pool, the census."""

    def __init__(self, cfg: GenerationConfig, pool: Pool, root: Path) -> None:
        self.cfg = cfg
        self.pool = pool
        self.root = root
        self.census = Census(cfg, set(pool.classes))
        self.sets = [label_set(s) for s in cfg.output.label_sets]
        self.collectors = collectors(cfg)  # only their part(): the assembly has its own

    def produce(self, index: int) -> dict[str, Any]:
        """Make and write smear ``index``; return its :func:`digest`."""
        cfg = self.cfg
        image, record = make_smear(cfg, self.pool, index, self.census)
        atomic_write_bytes(
            self.root / record["file_name"],
            encode_image(image, cfg.output.image_format, cfg.output.jpeg_quality),
        )
        for fmt in cfg.output.formats:
            for ls in self.sets:
                WRITERS[fmt].write_smear(self.root, record, ls, cfg.output.min_visible)
        atomic_write_json(record_path(self.root, index), record, indent=None)
        return digest(record, self.collectors)


def record_path(root: Path, index: int) -> Path:
    return root / "records" / f"smear_{index:06d}.json"


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """The manifest's per-smear entry."""
    return {
        "index": record["index"],
        "file": record["file_name"],
        "threshold": record["threshold"],
        "requested": record["requested"],
        "placed": record["placed"],
        "dropped": record["dropped"],
    }


def check_pool(cfg: GenerationConfig, pool: Pool) -> None:
    """Raise PoolError if the pool lacks a class the config can ask for."""
    needed = []
    if cfg.counts.rbc.mean > 0:
        needed.append(RBC)
    excluded = set(cfg.subtypes.exclude)
    for group, classes in GROUPS.items():
        g = cfg.counts.wbc if group == "nucleated" else cfg.counts.platelet
        if g.mean <= 0 and g.sd <= 0:
            continue
        for c in classes:
            if c in excluded:
                continue
            if cfg.subtypes.mode == "weights" and cfg.subtypes.weights.get(c, 0) <= 0:
                continue
            needed.append(c)
    missing = [c for c in needed if len(pool.ids(c)) == 0]
    if missing:
        raise PoolError(
            f"pool {pool.name!r} ({pool.source}) has no sprites of "
            f"{', '.join(repr(c) for c in missing)}; add them, or list them in subtypes.exclude"
        )


def check_density(cfg: GenerationConfig, pool: Pool) -> float:
    """Expected share of the field covered by the requested boxes (raises if impossible).

    Raises
    ------
    ConfigError
        When the mean requested box area exceeds twice the field's area, naming the counts.

    Returns
    -------
    float
        Requested box area over field area; above about 0.7 expect dropped cells.
    """
    from .smear.counts import area_factor

    f = area_factor(cfg)
    field = cfg.canvas.width * cfg.canvas.height

    def mean_box(cls_list):
        areas = []
        for c in cls_list:
            for sid in pool.ids(c)[:50]:
                r = pool.records[int(sid)]
                s = r.um_per_px / cfg.canvas.um_per_px
                areas.append(r.size[0] * r.size[1] * s * s)
        return float(np.mean(areas)) if areas else 0.0

    demand = {
        "counts.rbc": cfg.counts.rbc.mean * f * mean_box([RBC]),
        "counts.wbc": cfg.counts.wbc.mean * f * mean_box(GROUPS["nucleated"]),
        "counts.platelet": cfg.counts.platelet.mean * f * mean_box(GROUPS["platelet"]),
    }
    total = sum(demand.values()) / field
    if total > 2.0:
        worst = max(demand, key=demand.get)
        raise ConfigError(
            f"{worst}: impossible density: the requested cells' boxes cover {total:.1f}x the "
            f"{cfg.canvas.width}x{cfg.canvas.height} px field; lower the counts or enlarge "
            f"the canvas"
        )
    return total


def _manifest(cfg: GenerationConfig, pool: Pool, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "generator": GENERATOR,
        "hemosynth_version": __version__,
        "status": status,
        "count": cfg.count,
        "seed": cfg.seed,
        "pool": {"name": pool.name, "source": pool.source, "fingerprint": pool.fingerprint},
        "config": cfg.to_dict(),
        **extra,
    }


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Read ``DIR/manifest.json``.

    Raises
    ------
    DatasetError
        If it is missing or unreadable.
    """
    path = Path(root) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no manifest (is {root} a hemosynth dataset?)") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a hemosynth dataset manifest")
    return data


@dataclass(frozen=True)
class DatasetSummary:
    """What a generation run made.

    Attributes
    ----------
    root : Path
    count : int
        Smears in the dataset.
    made : int
        Smears made by this run (fewer than ``count`` on resume).
    requested, placed, dropped : dict
        Class -> totals over the dataset.
    """

    root: Path
    count: int
    made: int
    requested: dict[str, int]
    placed: dict[str, int]
    dropped: dict[str, int]


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def generate_dataset(
    cfg: GenerationConfig,
    out: str | Path,
    workers: int = 1,
    executor: str = "local",
    resume: bool = False,
    overwrite: bool = False,
    pool: Pool | None = None,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> DatasetSummary:
    """Generate (or finish) a dataset folder.

    Parameters
    ----------
    cfg : GenerationConfig
    out : path-like
        The dataset folder; created if missing.
    workers : int
        Worker processes (1 = in this process, 0 = one per usable core).
    executor : str
        ``local`` (processes on this machine) or ``dask`` (dask.distributed).
    resume : bool
        Finish an interrupted dataset in ``out`` (its manifest's config must equal ``cfg``).
    overwrite : bool
        Delete an existing dataset in ``out`` first.
    pool : Pool, optional
        Use this pool instead of opening ``cfg.pool``.
    progress : callable(done, total), optional
    scheduler : str, optional
        Address of a running dask scheduler (``executor="dask"``).

    Raises
    ------
    DatasetError, PoolError, ConfigError
        With a message naming the folder, file, class or key at fault.
    """
    from .parallel import EXECUTORS, build_kernel_library

    root = Path(out)
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: unknown {executor!r}; choose from {', '.join(EXECUTORS)}")
    if workers < 0:
        raise ConfigError(f"workers: must be >= 0 (0 = every usable core), got {workers}")
    if workers == 0:
        from .parallel import usable_cores

        workers = usable_cores()
    # the kernels' ahead-of-time library, built where it is missing (the first run, about 20 s),
    # so that every process started below runs it; then a local multi-process run's fork
    # server starts, in the background: its start (about 0.25 s) overlaps opening and checking
    # the pool (about 35 ms for a real pool's folder)
    build_kernel_library()
    start_server(min(workers, cfg.count), executor)
    pool = pool if pool is not None else open_pool(cfg.pool)
    check_pool(cfg, pool)
    coverage = check_density(cfg, pool)
    _prepare_folder(root, cfg, pool, resume, overwrite)

    todo = [i for i in range(cfg.count) if not record_path(root, i).is_file()]
    done = cfg.count - len(todo)
    if progress:
        progress(done, cfg.count)
    run = EXECUTORS[executor]
    # the dataset-wide files are built from the records as they come in, while the workers
    # go on; only writing them is left at the end
    with _Assembly(root, cfg, todo) as assembly:
        for made in run(cfg, pool, root, todo, workers, scheduler=scheduler):
            assembly.offer(made)
            done += 1
            if progress:
                progress(done, cfg.count)
        summary = assembly.write(pool, made=len(todo), coverage=coverage)
    pool.pack_prepared()  # what the workers prepared, packed for the next run
    return summary


def _prepare_folder(
    root: Path, cfg: GenerationConfig, pool: Pool, resume: bool, overwrite: bool
) -> None:
    manifest = root / MANIFEST
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root}: exists and is not a folder")
    if manifest.exists():
        if overwrite:
            shutil.rmtree(root)
        elif resume:
            old = read_manifest(root)
            if old.get("generator", 1) != GENERATOR:
                raise DatasetError(
                    f"{manifest}: begun by generator {old.get('generator', 1)} (hemosynth "
                    f"{old.get('hemosynth_version', '?')}), which makes other files from the "
                    f"same seed than this one ({GENERATOR}); finish it with that version, or "
                    f"regenerate it (--overwrite)"
                )
            if old.get("config") != cfg.to_dict():
                raise ConfigError(
                    f"{manifest}: the dataset was made with another config; resume with the "
                    f"same config (or omit --config to reuse the manifest's)"
                )
            if old.get("pool", {}).get("fingerprint") != pool.fingerprint:
                raise PoolError(
                    f"{manifest}: the dataset was made from another pool (fingerprint "
                    f"{old.get('pool', {}).get('fingerprint', '?')[:12]}, now "
                    f"{pool.fingerprint[:12]})"
                )
            remove_stale_temporaries(root)  # half-written files of the interrupted run
            return
        else:
            raise DatasetError(
                f"{root}: already holds a dataset; use --resume to finish it, --overwrite to "
                f"replace it, or another folder"
            )
    elif root.exists() and any(root.iterdir()):
        if overwrite:
            raise DatasetError(f"{root}: is not empty and has no manifest; refusing to delete it")
        raise DatasetError(f"{root}: is not empty and holds no hemosynth dataset")
    elif resume:
        raise DatasetError(f"{root}: nothing to resume (no manifest)")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(manifest, _manifest(cfg, pool, "incomplete"))


def finalize_dataset(
    root: Path, cfg: GenerationConfig, pool: Pool, made: int = 0, coverage: float | None = None
) -> DatasetSummary:
    """Write the dataset-wide files (COCO, data.yaml) and the complete manifest from the
    records on disk."""
    with _Assembly(Path(root), cfg, ()) as assembly:
        return assembly.write(pool, made=made, coverage=coverage)


class _Assembly:
    """The dataset-wide files and the manifest's totals, built from the smears' digests in
    index order.

    Workers finish smears out of order: a :func:`digest` is held until every earlier one is
    in, then consumed (the format collectors, the manifest's per-smear entries and totals).
    Smears this run does not make (made before a resume) are digested from their records on
    disk in their turn. A context manager: leaving it lets go of the collectors' temporary
    files.
    """

    def __init__(self, root: Path, cfg: GenerationConfig, made_now: Iterable[int]):
        self.root, self.cfg = root, cfg
        self.made_now = set(made_now)
        self.waiting: dict[int, dict[str, Any]] = {}
        self.next = 0
        self.collectors = collectors(cfg)
        for c in self.collectors:  # what grows with the dataset (COCO's annotations) on disk
            c.spool_in(root)
        self.smears: list[dict[str, Any]] = []
        self.requested: dict[str, int] = {}
        self.placed: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def __enter__(self) -> _Assembly:
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.collectors:
            c.close()

    def offer(self, made: dict[str, Any] | None = None) -> None:
        """Take a newly made smear's :func:`digest`, and consume every one whose turn has
        come."""
        if made is not None:
            self.waiting[made["index"]] = made
        while self.next < self.cfg.count:
            i = self.next
            if i in self.waiting:
                d = self.waiting.pop(i)
            elif i not in self.made_now:
                d = digest(read_record(self.root, i), self.collectors)
            else:
                return
            for c, part in zip(self.collectors, d["parts"], strict=True):
                c.add_part(part)
            _add(self.requested, d["requested"])
            _add(self.placed, d["placed"])
            _add(self.dropped, d["dropped"])
            self.smears.append(d["summary"])
            self.next += 1

    def write(self, pool: Pool, made: int, coverage: float | None) -> DatasetSummary:
        """Write the dataset-wide files and the complete manifest; warn about dropped cells.

        Raises
        ------
        DatasetError
            If a record is missing, naming it.
        """
        self.offer()
        if self.next < self.cfg.count:
            raise DatasetError(
                f"{record_path(self.root, self.next)}: missing record (the dataset is "
                "incomplete)"
            )
        cfg, root = self.cfg, self.root
        for c in self.collectors:
            c.write(root)
        requested, placed, dropped = self.requested, self.placed, self.dropped
        totals: dict[str, Any] = {"requested": requested, "placed": placed, "dropped": dropped}
        by_main: dict[str, int] = {}
        for c, v in placed.items():
            _add(by_main, {MAIN_OF[c]: v})
        totals["placed_by_main_type"] = by_main
        atomic_write_json(root / MANIFEST, _manifest(cfg, pool, "complete", totals=totals,
                                                     smears=self.smears))
        n_drop = sum(dropped.values())
        if n_drop:
            n_req = sum(requested.values())
            detail = ", ".join(
                f"{c} {v}" for c, v in sorted(dropped.items(), key=lambda x: -x[1])
            )
            cov = f"; requested boxes cover {coverage:.2f} of the field" if coverage else ""
            warnings.warn(
                DensityWarning(
                    f"{n_drop} of {n_req} requested cells ({100 * n_drop / n_req:.1f}%) could "
                    f"not be placed within {cfg.placement.max_attempts} attempts at IoU <= "
                    f"{cfg.placement.iou_threshold_range[1]} on a {cfg.canvas.width}x"
                    f"{cfg.canvas.height} px field ({detail}){cov}; lower the counts, widen "
                    f"placement.iou_threshold_range or raise placement.max_attempts"
                ),
                stacklevel=3,
            )
        return DatasetSummary(root, cfg.count, made, requested, placed, dropped)


def iter_records(root: str | Path, count: int | None = None) -> Iterable[dict[str, Any]]:
    """Yield the records of a dataset in index order.

    Raises
    ------
    DatasetError
        If a record is missing or unreadable, naming it.
    """
    root = Path(root)
    if count is None:
        count = int(read_manifest(root)["count"])
    for i in range(count):
        yield read_record(root, i)


def read_record(root: str | Path, index: int) -> dict[str, Any]:
    """The record of smear ``index`` of the dataset in ``root``.

    Raises
    ------
    DatasetError
        If the record is missing or unreadable, naming it.
    """
    p = record_path(Path(root), index)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{p}: missing record (the dataset is incomplete)") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: unreadable record ({e})") from None


def load_dataset_config(root: str | Path) -> GenerationConfig:
    """The config stored in a dataset's manifest."""
    return GenerationConfig.from_dict(read_manifest(root)["config"])


__all__ = [
    "DatasetSummary",
    "DensityWarning",
    "HemosynthError",
    "finalize_dataset",
    "generate_dataset",
    "iter_records",
    "load_dataset_config",
    "make_record",
    "make_smear",
    "read_manifest",
    "read_record",
]
