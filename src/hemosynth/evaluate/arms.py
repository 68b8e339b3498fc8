"""Training arms at one budget: ``synthetic``, ``real`` and ``real+synthetic``.

Every arm trains the same model with the same options for the same number of epochs over an
epoch of the same length ``L`` (the same number of images seen, ``L * epochs``, and so the same
iterations, warm-up, mosaic schedule and learning-rate decay). Only what an epoch holds differs:

``synthetic``
    ``L`` synthetic images (cycled when there are fewer).
``real``
    ``L`` real images (cycled: every real image appears about equally often).
``real+synthetic``
    ``round(mix * L)`` synthetic and the rest real; with the default ``L`` every real image
    appears at least once per epoch.

The default ``L`` is the smallest epoch that holds every real image in every arm:
``ceil(R / (1 - mix))`` with ``R`` real images when the mixed arm runs, ``R`` when only the real
arm does, and the synthetic count without real data; ``epochs = round(budget / L)``.

Each arm is a resumable step in ``OUT/<arm>/``::

    data/            images/ (symlinks), labels/ (YOLO, test-set class names), train.txt,
                     val.txt (a few training images: ultralytics validates once at the end),
                     data.yaml
    train/           ultralytics' run folder (weights/last.pt saved each epoch: resumable)
    predictions.json the arm's predictions on the test set, COCO results (test set's ids)
    result.json      scores, budget, options, timing: the arm is done when this exists

A finished arm is reused when its training settings and test set are unchanged; if only the
test set changed, the trained model is reused and only prediction and scoring run again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..fileio import atomic_write_json
from .coco_eval import load_predictions, score
from .detector import Progress, TrainOptions, predict, train_detector
from .testsets import Annotated, ClassMap, TestSet

ARMS = ("synthetic", "real", "real+synthetic")
N_VAL = 8


@dataclass(frozen=True)
class Budget:
    """An arm's schedule.

    Attributes
    ----------
    epoch_images : int
        ``L``, images per epoch (the same in every arm).
    epochs : int
    """

    epoch_images: int
    epochs: int

    @property
    def images_seen(self) -> int:
        return self.epoch_images * self.epochs


def plan_budget(
    budget: int,
    arms: Sequence[str],
    n_real: int,
    n_synthetic: int,
    mix: float = 0.5,
    epochs: int | None = None,
    epoch_images: int | None = None,
) -> Budget:
    """Choose the epoch length and epoch count shared by all arms.

    Parameters
    ----------
    budget : int
        Training images seen per arm (about ``budget``; the exact figure is
        :attr:`Budget.images_seen`).
    arms : sequence of str
    n_real, n_synthetic : int
        Sizes of the training sources.
    mix : float
        Synthetic share of the ``real+synthetic`` arm's epoch.
    epochs, epoch_images : int, optional
        Fix one of them; the other follows from ``budget``.

    Raises
    ------
    ConfigError
        On a non-positive budget or a mix outside (0, 1).
    """
    if budget < 1:
        raise ConfigError(f"budget: must be >= 1 image, got {budget}")
    if not 0 < mix < 1:
        raise ConfigError(f"mix: the synthetic share must be in (0, 1), got {mix}")
    if epoch_images is None and epochs is not None:
        epoch_images = max(1, math.ceil(budget / epochs))
    if epoch_images is None:
        if "real+synthetic" in arms and n_real:
            epoch_images = math.ceil(n_real / (1 - mix))
        elif "real" in arms and n_real:
            epoch_images = n_real
        else:
            epoch_images = max(1, n_synthetic)
    epoch_images = min(epoch_images, budget)
    if epochs is None:
        epochs = max(1, round(budget / epoch_images))
    return Budget(int(epoch_images), int(epochs))


def _cycle(items: Sequence[Annotated], n: int) -> list[Annotated]:
    if n <= 0:
        return []
    if not items:
        raise ConfigError("an arm needs training images, and its source has none")
    return [items[i % len(items)] for i in range(n)]


def arm_entries(
    arm: str, budget: Budget, real: Sequence[Annotated], synthetic: Sequence[Annotated],
    mix: float = 0.5,
) -> list[tuple[str, Annotated]]:
    """The ``(source, image)`` entries of one epoch of ``arm`` (source is real / synthetic).

    Raises
    ------
    ConfigError
        On an unknown arm, or an arm whose source is empty.
    """
    L = budget.epoch_images
    if arm == "synthetic":
        if not synthetic:
            raise ConfigError("arm 'synthetic' needs --train (a synthetic dataset)")
        return [("synthetic", a) for a in _cycle(synthetic, L)]
    if arm == "real":
        if not real:
            raise ConfigError("arm 'real' needs --train-real (real training images)")
        return [("real", a) for a in _cycle(real, L)]
    if arm == "real+synthetic":
        if not real or not synthetic:
            raise ConfigError("arm 'real+synthetic' needs both --train and --train-real")
        n_syn = min(L - 1, max(1, round(mix * L))) if L > 1 else 1
        return ([("real", a) for a in _cycle(real, L - n_syn)]
                + [("synthetic", a) for a in _cycle(synthetic, n_syn)])
    raise ConfigError(f"arm: unknown {arm!r}; choose from {', '.join(ARMS)}")


def write_arm_data(
    folder: Path, entries: Sequence[tuple[str, Annotated]], classes: Sequence[str],
    maps: dict[str, ClassMap],
) -> dict[str, Any]:
    """Write an arm's ultralytics dataset; return box counts per class and dropped names.

    Parameters
    ----------
    folder : Path
        Gets ``images/`` (symlinks named ``<position>_<stem>``), ``labels/``, ``train.txt``,
        ``val.txt`` and ``data.yaml``.
    entries : sequence of (source, Annotated)
    classes : sequence of str
        The model's classes (test-set names), in id order.
    maps : dict
        Source -> ClassMap from the source's names to ``classes``.
    """
    img_dir, lab_dir = folder / "images", folder / "labels"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(classes)}
    counts = dict.fromkeys(classes, 0)
    unmapped: dict[str, int] = {}
    lines_all = []
    for k, (src, a) in enumerate(entries):
        stem = f"{k:06d}_{a.file.stem}"
        link = img_dir / f"{stem}{a.file.suffix.lower()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(a.file.resolve(), link)
        rows = []
        for (x0, y0, x1, y1), lab in zip(a.boxes, a.labels, strict=True):
            t = maps[src](lab)
            if t is None or t not in index:
                unmapped[lab] = unmapped.get(lab, 0) + 1
                continue
            x0, x1 = max(0.0, x0), min(float(a.width), x1)
            y0, y1 = max(0.0, y0), min(float(a.height), y1)
            if x1 <= x0 or y1 <= y0:
                continue
            counts[t] += 1
            rows.append(
                f"{index[t]} {(x0 + x1) / 2 / a.width:.6f} {(y0 + y1) / 2 / a.height:.6f} "
                f"{(x1 - x0) / a.width:.6f} {(y1 - y0) / a.height:.6f}\n"
            )
        (lab_dir / f"{stem}.txt").write_text("".join(rows))
        lines_all.append(str(link.absolute()))
    names = lines_all
    (folder / "train.txt").write_text("".join(f"{n}\n" for n in names))
    (folder / "val.txt").write_text("".join(f"{n}\n" for n in names[:N_VAL]))
    data = {"path": str(folder.resolve()), "train": "train.txt", "val": "val.txt",
            "nc": len(classes), "names": dict(enumerate(classes))}
    (folder / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return {"boxes_per_epoch": counts, "unmapped_boxes_per_epoch": unmapped}


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_arm(
    arm: str,
    out: str | Path,
    testset: TestSet,
    real: Sequence[Annotated],
    synthetic: Sequence[Annotated],
    maps: dict[str, ClassMap],
    opts: TrainOptions,
    budget: Budget,
    mix: float = 0.5,
    sources: dict[str, str] | None = None,
    progress: Progress | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Train, predict and score one arm (or reuse its kept result).

    Parameters
    ----------
    arm : str
        One of :data:`ARMS`.
    out : path-like
        The comparison folder; the arm works in ``out/<arm>/``.
    testset : TestSet
    real, synthetic : sequence of Annotated
        The training sources (either may be empty when the arm does not use it).
    maps : dict
        ``{"real": ClassMap, "synthetic": ClassMap}`` onto the test set's class names.
    opts : TrainOptions
        ``opts.epochs`` is replaced by ``budget.epochs``.
    budget : Budget
    mix : float
        Synthetic share of ``real+synthetic``.
    sources : dict, optional
        Descriptions of the training sources, kept in the result.
    progress : callable, optional
    verbose : bool

    Returns
    -------
    dict
        The arm's result (also in ``out/<arm>/result.json``).
    """
    folder = Path(out) / arm.replace("+", "_")
    folder.mkdir(parents=True, exist_ok=True)
    classes = list(testset.categories)
    opts = TrainOptions(**{**opts.to_dict(), "epochs": budget.epochs})
    train_key = _key({
        "arm": arm, "options": opts.to_dict(), "budget": [budget.epoch_images, budget.epochs],
        "mix": mix if arm == "real+synthetic" else None, "classes": classes,
        "maps": {k: v.pairs for k, v in maps.items()},
        "real": [str(a.file) for a in real] if arm != "synthetic" else None,
        "synthetic": [str(a.file) for a in synthetic] if arm != "real" else None,
    })
    test_key = _key([testset.sources, [str(a.file) for a in testset.images],
                     testset.evaluated])
    result_path = folder / "result.json"
    if result_path.is_file():
        old = json.loads(result_path.read_text())
        if old.get("train_key") == train_key and old.get("test_key") == test_key:
            return old
    run_dir = folder / "train"
    key_file = folder / "train_key.txt"
    if run_dir.exists() and key_file.is_file() and key_file.read_text().strip() != train_key:
        raise ConfigError(
            f"{folder}: holds a run trained with other settings; use another --out or delete it"
        )
    t0 = time.perf_counter()
    entries = arm_entries(arm, budget, real, synthetic, mix)
    data_info = write_arm_data(folder / "data", entries, classes, maps)
    key_file.write_text(train_key + "\n")
    weights = train_detector(folder / "data" / "data.yaml", run_dir, opts, progress=progress,
                             verbose=verbose)
    t1 = time.perf_counter()
    preds = predict(weights, [a.file for a in testset.images], imgsz=opts.imgsz,
                    device=opts.device)
    results, _ = load_predictions(preds, testset)
    atomic_write_json(folder / "predictions.json", results, indent=None)
    sc = score(testset, results)
    scored = sc.to_dict()["included"]
    t2 = time.perf_counter()
    done = json.loads((run_dir / "train_done.json").read_text())
    n_real = sum(1 for s, _ in entries if s == "real")
    result = {
        "arm": arm,
        "train_key": train_key,
        "test_key": test_key,
        "scores": sc.to_dict(),
        "budget": {"epoch_images": budget.epoch_images, "epochs": budget.epochs,
                   "images_seen": budget.images_seen,
                   "real_per_epoch": n_real, "synthetic_per_epoch": len(entries) - n_real,
                   "distinct_real": len({str(a.file) for s, a in entries if s == "real"}),
                   "distinct_synthetic": len({str(a.file) for s, a in entries
                                              if s == "synthetic"})},
        "mix": mix if arm == "real+synthetic" else None,
        "options": opts.to_dict(),
        "classes": classes,
        "maps": {k: v.pairs for k, v in maps.items()},
        "sources": sources or {},
        "test": {"sources": testset.sources, "notes": testset.notes,
                 "images": len(testset.images)},
        "data": data_info,
        "train_seconds": done.get("seconds"),
        "predict_seconds": round(t2 - t1, 1),
        "wall_seconds_this_run": round(t2 - t0, 1),
        "weights": str(weights),
        "predictions": str(folder / "predictions.json"),
        "unlearned": unlearned_classes(results, testset.categories, scored),
    }
    atomic_write_json(result_path, result)
    return result


#: a class whose best detection on the whole test set scores below this was not learned
UNLEARNED_SCORE = 0.05


def unlearned_classes(
    results: Sequence[Mapping[str, Any]], categories: Sequence[str], classes: Sequence[str],
    threshold: float = UNLEARNED_SCORE,
) -> list[str]:
    """The ``classes`` of which no prediction scores ``threshold`` or more.

    A detector that learned a class finds some instance of it with a confident score; one
    whose best score stays at the trainer's floor never learned the class: a training
    failure, which another seed may not repeat, or training data that hide it (session 4:
    BCCD-like synthetic smears placed at random, whose platelets lie on red cells).

    Parameters
    ----------
    results : sequence of dict
        COCO results (``category_id`` is 1 + the index in ``categories``, ``score``).
    categories : sequence of str
        The test set's category names.
    classes : sequence of str
        The classes to check (those scored).
    threshold : float
    """
    best = dict.fromkeys(classes, 0.0)
    for r in results:
        name = categories[int(r["category_id"]) - 1]
        if name in best:
            best[name] = max(best[name], float(r["score"]))
    return [c for c in classes if best[c] < threshold]


def run_comparison(
    out: str | Path,
    test: Sequence[str | Path],
    train: str | Path | None = None,
    train_real: str | Path | None = None,
    classes: str | dict[str, str] | None = None,
    arms: Sequence[str] | None = None,
    mix: float = 0.5,
    budget: int = 8000,
    epochs: int | None = None,
    epoch_images: int | None = None,
    opts: TrainOptions | None = None,
    label_set: str | None = None,
    test_images: str | Path | None = None,
    progress_for: Any = None,
    verbose: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run several arms at one budget and write the report (the ``hemosynth evaluate`` core).

    Parameters
    ----------
    out : path-like
        Comparison folder (arms in subfolders, ``report.json`` and ``report.md``).
    test : sequence of str
        Test-set sources (see :func:`~hemosynth.evaluate.testsets.load_testset`).
    train : path-like, optional
        Synthetic training data: a hemosynth dataset folder, or any YOLO / VOC / COCO set.
    train_real : path-like, optional
        Real training data (YOLO / VOC / COCO).
    classes : str or dict, optional
        Synthetic name -> test name (``"RBC=RBC,WBC=WBC,Platelet=Platelets"``); matched by
        name when omitted.
    arms : sequence of str, optional
        Default: ``synthetic`` without ``train_real``; all three with it (``real`` alone
        without ``train``).
    mix, budget, epochs, epoch_images
        See :func:`plan_budget`.
    opts : TrainOptions, optional
    label_set : str, optional
        Label set of a hemosynth ``train`` dataset (default ``main+rbc`` when written).
    test_images : path-like, optional
        Image folder for test sources whose images are not beside their labels.
    progress_for : callable(arm) -> Progress, optional
    verbose : bool

    Returns
    -------
    dict
        Arm -> result.
    """
    from .report import write_report
    from .testsets import load_testset, parse_class_map, read_annotations

    opts = opts or TrainOptions()
    testset = load_testset(test, images=test_images)
    if arms is None:
        arms = (["real"] if train is None else ["synthetic"]) if train_real is None else (
            ["real"] if train is None else list(ARMS))
    for a in arms:
        if a not in ARMS:
            raise ConfigError(f"arm: unknown {a!r}; choose from {', '.join(ARMS)}")
    synthetic = read_annotations(train, label_set=label_set) if train is not None else []
    real = read_annotations(train_real) if train_real is not None else []
    cats = testset.categories
    syn_names = list(dict.fromkeys(lab for a in synthetic for lab in a.labels))
    real_names = list(dict.fromkeys(lab for a in real for lab in a.labels))
    maps = {
        "synthetic": parse_class_map(classes, syn_names, cats) if synthetic else ClassMap({}),
        "real": parse_class_map(None, real_names, cats) if real else ClassMap({}),
    }
    plan = plan_budget(budget, arms, len(real), len(synthetic), mix, epochs, epoch_images)
    sources = {"synthetic": str(train) if train else None,
               "real": str(train_real) if train_real else None}
    results = {}
    for a in arms:
        prog = progress_for(a) if progress_for else None
        results[a] = run_arm(a, out, testset, real, synthetic, maps, opts, plan, mix,
                             sources=sources, progress=prog, verbose=verbose)
    kept = {}
    for f in sorted(Path(out).glob("*/result.json")):
        r = json.loads(f.read_text())
        if r.get("arm") not in results and r.get("test_key") == results[arms[0]]["test_key"]:
            kept[r["arm"]] = r
    write_report(out, {**results, **kept})
    return results
