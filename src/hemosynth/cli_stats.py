"""``hemosynth stats`` and ``hemosynth preview``: dataset statistics and annotated previews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RealFormat = Annotated[
    str | None, typer.Option("--real-format", help="Real set format: voc, yolo or coco (guessed).")
]
RealImages = Annotated[
    Path | None,
    typer.Option("--real-images", help="Folder of the real images (YOLO needs their sizes)."),
]
RealNames = Annotated[
    Path | None, typer.Option("--real-names", help="YOLO class names file or data.yaml.")
]
RealSplit = Annotated[
    str | None,
    typer.Option("--real-split", help="Only these images: a list file, or a name such as "
                 "'test' (REAL/test.txt or REAL/ImageSets/Main/test.txt)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="Real class -> hemosynth class, e.g. Platelets=Platelet or "
                 "Debris=ignore (repeatable or comma-separated)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``stats`` and ``preview`` commands to ``app``."""

    @app.command()
    def stats(
        dataset: Annotated[Path, typer.Argument(help="A generated dataset folder.")],
        real: Annotated[
            Path | None, typer.Option("--real", help="A real annotated set (VOC, YOLO, COCO).")
        ] = None,
        real_format: RealFormat = None,
        real_images: RealImages = None,
        real_names: RealNames = None,
        real_split: RealSplit = None,
        real_um_per_px: Annotated[
            float | None,
            typer.Option("--real-um-per-px",
                         help="Scale of the real images (default: from their RBC boxes, 7.5 um)."),
        ] = None,
        mapping: MapOpt = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path(
            "hemosynth-stats"
        ),
        workers: Annotated[int, typer.Option("--workers", "-w", help="Processes.")] = 1,
        plots: Annotated[bool, typer.Option(help="Draw PNG plots (needs matplotlib).")] = True,
    ) -> None:
        """Statistics of a generated dataset (and a real set): JSON, plots, Markdown report."""
        from .cli import console
        from .stats.layout import ClassMap
        from .stats.report import dataset_stats

        real_options = None
        if real is not None:
            real_options = {
                "fmt": real_format, "names": str(real_names) if real_names else None,
                "images": real_images, "split": real_split,
                "class_map": ClassMap(mapping or None), "um_per_px": real_um_per_px,
            }
        elif mapping or real_split or real_images:
            console.print("[yellow]warning:[/yellow] --map/--real-* options need --real")
        report = dataset_stats(dataset, out, real, real_options, workers=workers, plots=plots)
        gen = report["generated"]
        console.print(
            f"{gen['fields']} smears, {gen['cells']} labelled cells; report in "
            f"{out / 'report.md'} (JSON: {out / 'stats.json'})"
        )
        for row in report.get("comparison", []):
            if row["figure"] in ("nn_um", "diameter_um", "max_iou") and row["group"] in (
                "RBC", "all"
            ):
                console.print(
                    f"  {row['figure']:12s} {row['group']:4s} generated {row['generated_median']}"
                    f" real {row['real_median']}  KS {row['ks']}  W {row['wasserstein']}"
                )

    @app.command()
    def preview(
        dataset: Annotated[
            Path, typer.Argument(help="A generated dataset folder, or real annotations.")
        ],
        label_set: Annotated[
            str, typer.Option("--label-set", help="main, sub or main+rbc.")
        ] = "main",
        n: Annotated[int, typer.Option("--n", "-n", help="Number of images.")] = 8,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
            "hemosynth-preview"
        ),
        real_format: RealFormat = None,
        real_images: RealImages = None,
        real_names: RealNames = None,
        real_split: RealSplit = None,
        mapping: MapOpt = None,
    ) -> None:
        """Images with boxes in class colours and a legend, plus a contact sheet."""
        from .cli import console
        from .preview import preview as run_preview
        from .stats.layout import ClassMap
        from .taxonomy import label_set as check_set

        check_set(label_set)
        res = run_preview(
            dataset, out, label_set, n, fmt=real_format,
            names=str(real_names) if real_names else None, images=real_images,
            split=real_split, class_map=ClassMap(mapping or None),
        )
        console.print(f"wrote {len(res['images'])} previews and {res['contact_sheet']}")


__all__ = ["register"]
