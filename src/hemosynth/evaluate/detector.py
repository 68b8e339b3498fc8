"""The ultralytics adapter: train a YOLO detector, predict on a test set.

ultralytics and torch are imported inside the functions (extra ``eval``); a missing one raises
:class:`EvalDependencyError` with a one-line message. Nothing here reaches the network: models
are built from their yaml (bundled with ultralytics), ``--weights`` must be a local file, AMP
and plots are off, and ``YOLO_OFFLINE=1`` is set before ultralytics is imported (call
:func:`offline_env` first if you import it yourself).

Training runs in ``OUT/`` (ultralytics' ``save_dir``): ``OUT/weights/last.pt`` is saved every
epoch, so an interrupted run resumes from it; ``OUT/train_done.json`` marks a finished run.
Predictions use ``last.pt`` (the end of the budget), not a "best" checkpoint chosen on a
validation set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, HemosynthError

#: Progress callback: ``(batches done, batches in all, text)``.
Progress = Callable[[int, int, str], None]


class EvalDependencyError(HemosynthError, ImportError):
    """The ``eval`` extra (ultralytics, torch, pycocotools) is not installed."""


def require_eval() -> None:
    """Raise :class:`EvalDependencyError` unless ultralytics, torch and pycocotools import."""
    offline_env()
    for mod in ("torch", "ultralytics", "pycocotools"):
        try:
            __import__(mod)
        except ImportError as e:
            raise EvalDependencyError(
                f"training and prediction need the 'eval' extra ({mod} is missing: {e}); "
                f"install it with: pip install 'hemosynth[eval]'"
            ) from None


def offline_env(config_dir: str | Path | None = None) -> None:
    """Keep ultralytics off the network: ``YOLO_OFFLINE=1`` and, if given, its config folder.

    Must run before ultralytics is first imported to take effect.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    if config_dir is not None:
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)


@dataclass(frozen=True)
class TrainOptions:
    """How a detector is trained (the same for every arm of a comparison).

    Attributes
    ----------
    model : str
        ultralytics model yaml (``yolov8n.yaml`` nano, ``yolov8s.yaml`` small, ...), built
        from scratch.
    weights : str, optional
        A local ``.pt`` file to start from (transferred onto ``model``).
    imgsz : int
        Training and prediction input size.
    epochs : int
    batch : int
    multi_scale : float
        Random input resizing each batch, as a fraction of ``imgsz`` (0 = off; the paper's
        random resizing is about 0.3-0.5).
    workers : int
        Dataloader worker processes.
    cache : str
        ``ram``, ``disk`` or ``none``: decoded-image cache.
    seed : int
    device : str
        ``cpu``, or a CUDA device such as ``0``.
    extra : dict
        Other ultralytics training arguments, passed as they are.
    """

    model: str = "yolov8n.yaml"
    weights: str | None = None
    imgsz: int = 416
    epochs: int = 40
    batch: int = 16
    multi_scale: float = 0.0
    workers: int = 2
    cache: str = "ram"
    seed: int = 0
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ConfigError(f"imgsz: must be a multiple of 32 and >= 32, got {self.imgsz}")
        if self.epochs < 1:
            raise ConfigError(f"epochs: must be >= 1, got {self.epochs}")
        if self.batch < 1:
            raise ConfigError(f"batch: must be >= 1, got {self.batch}")
        if not 0 <= self.multi_scale < 1:
            raise ConfigError(f"multi_scale: must be in [0, 1), got {self.multi_scale}")
        if self.cache not in ("ram", "disk", "none"):
            raise ConfigError(f"cache: must be ram, disk or none, got {self.cache!r}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise ConfigError(f"weights: {self.weights}: no such file (weights are never "
                              f"downloaded; give a local .pt)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _progress_callbacks(model: Any, progress: Progress) -> None:
    state = {"i": 0}

    def on_epoch_start(trainer):
        state["i"] = 0

    def on_batch_end(trainer):
        state["i"] += 1
        nb = len(trainer.train_loader)
        total = trainer.epochs * nb
        done = min(trainer.epoch * nb + state["i"], total)
        progress(done, total, f"epoch {trainer.epoch + 1}/{trainer.epochs}")

    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_batch_end", on_batch_end)


def _finished(checkpoint: Path) -> bool:
    """Whether an ultralytics checkpoint is a finished run's (stripped: nothing to resume).

    Resuming a finished checkpoint would make ultralytics fall back to its default dataset
    (and try to download it), so it must never be resumed.
    """
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return int(ckpt.get("epoch", -1)) < 0 or ckpt.get("optimizer") is None


def train_detector(
    data_yaml: str | Path,
    out: str | Path,
    opts: TrainOptions,
    progress: Progress | None = None,
    verbose: bool = False,
) -> Path:
    """Train (or resume, or reuse) a detector; return its final weights.

    Parameters
    ----------
    data_yaml : path-like
        ultralytics ``data.yaml`` (absolute ``train`` / ``val`` lists, or relative to it).
    out : path-like
        The run folder (ultralytics ``save_dir``).
    opts : TrainOptions
    progress : callable, optional
        Called after each batch with (batches done, total, text).
    verbose : bool
        Let ultralytics print its own logs and progress bars.

    Returns
    -------
    Path
        ``out/weights/last.pt``.
    """
    require_eval()
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    out = Path(out).resolve()
    last = out / "weights" / "last.pt"
    done = out / "train_done.json"
    if done.is_file() and last.is_file():
        return last
    level = LOGGER.level
    if not verbose:
        LOGGER.setLevel(40)
    try:
        t0 = time.perf_counter()
        if last.is_file():
            if not _finished(last):
                model = YOLO(str(last))
                if progress:
                    _progress_callbacks(model, progress)
                model.train(resume=True)
        else:
            model = YOLO(opts.model)
            if opts.weights:
                model.load(opts.weights)
            if progress:
                _progress_callbacks(model, progress)
            model.train(
                data=str(Path(data_yaml).resolve()),
                epochs=opts.epochs,
                imgsz=opts.imgsz,
                batch=opts.batch,
                multi_scale=opts.multi_scale,
                workers=opts.workers,
                cache=False if opts.cache == "none" else opts.cache,
                seed=opts.seed,
                device=opts.device,
                project=str(out.parent),
                name=out.name,
                exist_ok=True,
                plots=False,
                amp=False,
                val=False,
                save_period=-1,
                verbose=verbose,
                **opts.extra,
            )
    finally:
        LOGGER.setLevel(level)
    if not last.is_file():
        raise HemosynthError(f"{out}: training ended without {last.name}")
    done.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1),
                                "options": opts.to_dict()}, indent=1))
    return last


def predict(
    weights: str | Path,
    files: Sequence[str | Path],
    imgsz: int = 416,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 300,
    device: str = "cpu",
    names: Callable[[str], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Run a detector on images; return plain-form predictions.

    Parameters
    ----------
    weights : path-like
        A local ultralytics ``.pt``.
    files : sequence of path-like
        The images.
    imgsz, conf, iou, max_det, device
        ultralytics prediction arguments (a low ``conf`` for mAP).
    names : callable, optional
        Maps the model's class names onto the test set's (None drops a class); identity by
        default.

    Returns
    -------
    list of dict
        ``{"file_name", "category", "bbox": [x, y, w, h], "score"}`` in image pixels.
    """
    require_eval()
    from ultralytics import YOLO

    model = YOLO(str(weights))
    out: list[dict[str, Any]] = []
    for f in files:
        res = model.predict(str(f), imgsz=imgsz, conf=conf, iou=iou, max_det=max_det,
                            device=device, verbose=False, save=False)
        for r in res:
            b = r.boxes
            xyxy = b.xyxy.cpu().numpy()
            cls = b.cls.cpu().numpy().astype(int)
            sc = b.conf.cpu().numpy()
            for (x0, y0, x1, y1), c, s in zip(xyxy, cls, sc, strict=True):
                name = r.names[int(c)]
                if names is not None:
                    name = names(name)
                    if name is None:
                        continue
                out.append({
                    "file_name": Path(f).name, "category": name,
                    "bbox": [round(float(x0), 2), round(float(y0), 2),
                             round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                    "score": round(float(s), 5),
                })
    return out
