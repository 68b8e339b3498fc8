"""``hemosynth evaluate`` and ``hemosynth score``: train on synthetic, test on real.

Registered onto the main Typer app by :func:`register`. ultralytics and torch are imported only
when a detector is trained or run (extra ``eval``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)

_TEST_HELP = (
    "Real test set (repeatable): a VOC folder or split file (ImageSets/Main/test.txt), a YOLO "
    "folder or list file, a COCO .json; PATH@CLASS,CLASS takes only those classes from it "
    "(their AP is computed on its images only)."
)


def evaluate(
    test: Annotated[list[str], typer.Option("--test", help=_TEST_HELP)],
    train: Annotated[
        Path | None, typer.Option("--train", help="Synthetic training data (hemosynth dataset "
                                  "folder, or YOLO / VOC / COCO).")
    ] = None,
    train_real: Annotated[
        Path | None, typer.Option("--train-real", help="Real training data (YOLO / VOC / COCO, "
                                  "e.g. bccd/ImageSets/Main/trainval.txt).")
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Synthetic -> test class names, e.g. "
                                 "'RBC=RBC,WBC=WBC,Platelet=Platelets' (or a file); matched by "
                                 "name when omitted.")
    ] = None,
    arms: Annotated[
        str | None, typer.Option(help="Comma-separated arms: synthetic, real, real+synthetic "
                                 "(default: every arm the data allows).")
    ] = None,
    mix: Annotated[float, typer.Option(help="Synthetic share of real+synthetic.")] = 0.5,
    budget: Annotated[int, typer.Option(help="Training images seen per arm.")] = 8000,
    epochs: Annotated[
        int | None, typer.Option(help="Fix the epoch count (the epoch length follows).")
    ] = None,
    model: Annotated[
        str, typer.Option(help="ultralytics model yaml: yolov8n.yaml (nano), yolov8s.yaml, ...")
    ] = "yolov8n.yaml",
    weights: Annotated[
        Path | None, typer.Option(help="Local pretrained .pt to start from.")
    ] = None,
    imgsz: Annotated[int, typer.Option(help="Input size (multiple of 32).")] = 416,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
    multi_scale: Annotated[
        float, typer.Option(help="Random resizing per batch, fraction of imgsz (0 = off).")
    ] = 0.0,
    workers: Annotated[int, typer.Option(help="Dataloader workers.")] = 2,
    cache: Annotated[str, typer.Option(help="Image cache: ram, disk or none.")] = "ram",
    device: Annotated[str, typer.Option(help="cpu, or a CUDA device id.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    seeds: Annotated[
        str | None, typer.Option(help="Repeat every arm with these training seeds, e.g. "
                                 "0,1,2 (OUT/seed_K each), and print their mean and sd.")
    ] = None,
    label_set: Annotated[
        str | None, typer.Option(help="Label set of a hemosynth --train dataset.")
    ] = None,
    test_images: Annotated[
        Path | None, typer.Option(help="Image folder for test labels kept apart from images.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "runs/evaluate"
    ),
    verbose: Annotated[bool, typer.Option(help="Show ultralytics' own logs.")] = False,
) -> None:
    """Train a YOLO detector per arm at one budget, test it on real images, print the table."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .evaluate.arms import run_comparison
    from .evaluate.detector import TrainOptions, require_eval
    from .evaluate.report import arms_table, seeds_table, write_seeds_report

    require_eval()
    try:
        seed_list = [int(k) for k in seeds.split(",")] if seeds else [seed]
    except ValueError:
        raise typer.BadParameter(f"expected seeds like 0,1,2, got {seeds!r}",
                                 param_hint="--seeds") from None
    arm_list = [a.strip() for a in arms.split(",")] if arms else None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as bar:
        def progress_for(arm: str):
            task = bar.add_task(f"{arm:<15}", total=None, info="")

            def update(done: int, total: int, text: str) -> None:
                bar.update(task, completed=done, total=total, info=text)

            return update

        per_seed = {}
        for k in seed_list:
            opts = TrainOptions(
                model=model, weights=str(weights) if weights else None, imgsz=imgsz,
                batch=batch, multi_scale=multi_scale, workers=workers, cache=cache, seed=k,
                device=device,
            )
            per_seed[k] = run_comparison(
                out / f"seed_{k}" if seeds else out, test, train=train, train_real=train_real,
                classes=classes, arms=arm_list, mix=mix, budget=budget, epochs=epochs,
                opts=opts, label_set=label_set, test_images=test_images,
                progress_for=progress_for, verbose=verbose,
            )
    for k, results in per_seed.items():
        if seeds:
            sys.stdout.write(f"\nseed {k}\n")
        sys.stdout.write(arms_table(results, markdown=False) + "\n")
    where = f"{out}/seed_K" if seeds else str(out)
    if seeds:
        sys.stdout.write("\nover seeds " + ", ".join(map(str, per_seed)) + "\n"
                         + seeds_table(per_seed, markdown=False) + "\n")
        write_seeds_report(out, per_seed)
        console.print(f"summary: {out / 'seeds.md'}, {out / 'seeds.json'}", highlight=False)
    console.print(f"report: {where}/report.md, {where}/report.json; predictions: "
                  f"{where}/<arm>/predictions.json", highlight=False)


def score_cmd(
    predictions: Annotated[Path, typer.Argument(help="Predictions JSON: COCO results, or a "
                                                "list of {file_name, category, bbox, score}.")],
    test: Annotated[list[str], typer.Option("--test", help=_TEST_HELP)],
    test_images: Annotated[
        Path | None, typer.Option(help="Image folder for test labels kept apart from images.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the scores as JSON here.")
    ] = None,
) -> None:
    """Score predictions on a real test set (pycocotools): mAP@0.5, mAP@0.5:0.95, per class."""
    from .evaluate.coco_eval import score
    from .evaluate.testsets import load_testset

    ts = load_testset(test, images=test_images)
    sc = score(ts, predictions)
    sys.stdout.write(sc.table() + "\n")
    if json_out is not None:
        json_out.write_text(json.dumps(sc.to_dict(), indent=1))


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``score`` to ``app``."""
    app.command("evaluate")(evaluate)
    app.command("score")(score_cmd)
