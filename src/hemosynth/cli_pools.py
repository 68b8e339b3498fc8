"""``hemosynth pools ...``: build a pool from real images, summarise it, draw a contact sheet."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)

pools_app = typer.Typer(
    name="pools", help="Build and inspect cell pools.", no_args_is_help=True,
    pretty_exceptions_enable=False, add_completion=False,
)


@pools_app.command("build")
def build_cmd(
    out: Annotated[Path, typer.Argument(help="Pool folder to write.")],
    crops: Annotated[
        list[Path] | None, typer.Option(help="Folder of single-cell crops, one folder per class.")
    ] = None,
    annotated: Annotated[
        list[Path] | None,
        typer.Option(help="Annotated smears: VOC folder/XML, YOLO folder/data.yaml, COCO JSON."),
    ] = None,
    sprites: Annotated[
        list[Path] | None, typer.Option(help="Folder of RGBA sprites, one folder per class.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="voc, yolo or coco.")] = None,
    names: Annotated[
        Path | None, typer.Option(help="YOLO class names file or data.yaml.")
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="Image folder of the annotated sources.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Class mapping YAML file.")
    ] = None,
    map_opt: Annotated[
        list[str] | None,
        typer.Option("--map", help="SOURCE=CLASS or SOURCE/PREFIX=CLASS (repeatable)."),
    ] = None,
    source_um: Annotated[
        float | None, typer.Option("--source-um-per-px", help="Scale of every source, if known.")
    ] = None,
    um_per_px: Annotated[
        float | None, typer.Option("--um-per-px", help="Scale of the pool (default: finest).")
    ] = None,
    rbc_um: Annotated[float, typer.Option(help="Red-cell diameter for calibration (um).")] = 7.5,
    exclude_like: Annotated[
        list[Path] | None,
        typer.Option("--exclude-like", help="Drop sprites whose source image matches one here."),
    ] = None,
    fill_from: Annotated[
        str | None, typer.Option("--fill-from", help="Fill missing classes from this pool (atlas).")
    ] = None,
    derived: Annotated[bool, typer.Option(help="Mine derived classes.")] = True,
    dedupe: Annotated[bool, typer.Option(help="Drop near-duplicate sprites.")] = True,
    max_per_class: Annotated[
        int | None, typer.Option(help="At most this many candidates per class and source.")
    ] = None,
    size_range: Annotated[
        list[str] | None,
        typer.Option("--size-range",
                     help="CLASS=MIN:MAX: keep only cells of CLASS whose equivalent diameter "
                          "is MIN-MAX um (repeatable), e.g. Platelet=1.5:4.5."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing pool.")] = False,
    report_json: Annotated[
        Path | None, typer.Option(help="Also write the build report as JSON here.")
    ] = None,
) -> None:
    """Build a pool from crops, annotated smears and/or sprite folders."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .errors import ConfigError
    from .pools.build import Source, build_pool, parse_size_ranges
    from .pools.mapping import ClassMapping, load_mapping, parse_map_options

    srcs = [Source(p, "crops", um_per_px=source_um) for p in crops or []]
    srcs += [Source(p, "annotated", um_per_px=source_um, fmt=fmt, names=names, images=images)
             for p in annotated or []]
    srcs += [Source(p, "sprites", um_per_px=source_um) for p in sprites or []]
    if not srcs:
        raise ConfigError("give at least one source: --crops, --annotated or --sprites")
    ranges = parse_size_ranges(size_range or [])
    cmap = load_mapping(mapping) if mapping else ClassMapping()
    if map_opt:
        cmap = cmap.merged(parse_map_options(map_opt))
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("images", total=None)
        report = build_pool(
            srcs, out, cmap, um_per_px=um_per_px, rbc_um=rbc_um,
            exclude_like=exclude_like or [], fill_from=fill_from, derived=derived,
            dedupe=dedupe, max_per_class=max_per_class, size_ranges=ranges, workers=workers,
            overwrite=overwrite,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    sys.stdout.write(report.to_text() + "\n")
    if report_json:
        report_json.write_text(json.dumps({
            "counts": dict(report.counts), "candidates": dict(report.candidates),
            "rejected": dict(report.rejected),
            "rejected_by_class": {k: dict(v) for k, v in report.rejected_by_class.items()},
            "unmapped": dict(report.unmapped), "derived": dict(report.derived),
            "filled": dict(report.filled), "um_per_px": report.um_per_px,
            "scales": {k: vars(v) for k, v in report.scales.items()},
        }, indent=1))


@pools_app.command("info")
def info_cmd(
    pool: Annotated[str, typer.Argument(help="Pool folder, or 'atlas'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Classes, counts, sizes, scale, sources and derived share of a pool."""
    from .pools.info import format_info, pool_info

    info = pool_info(pool)
    sys.stdout.write((json.dumps(info, indent=1) if as_json else format_info(info)) + "\n")


@pools_app.command("sheet")
def sheet_cmd(
    pool: Annotated[str, typer.Argument(help="Pool folder, or 'atlas'.")],
    out: Annotated[Path, typer.Argument(help="PNG file to write.")],
    per_class: Annotated[int, typer.Option(help="Sprites per class.")] = 10,
    tile: Annotated[int, typer.Option(help="Tile size in pixels.")] = 96,
    seed: Annotated[int, typer.Option(help="Which sprites are shown.")] = 0,
) -> None:
    """Write a contact sheet of sprites per class on a neutral background."""
    from .pools.info import contact_sheet

    contact_sheet(pool, out, per_class=per_class, tile=tile, rng=seed)
    console.print(f"wrote {out}")


@pools_app.command("subset")
def subset_cmd(
    pool: Annotated[str, typer.Argument(help="Pool folder to read.")],
    out: Annotated[Path, typer.Argument(help="Pool folder to write.")],
    per_class: Annotated[str | None, typer.Option(
        help="Most sprites kept per class: N for every class, or CLASS=N,... (others kept "
             "whole).")] = None,
    classes: Annotated[str | None, typer.Option(
        help="Comma-separated classes to keep (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Which sprites are kept.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a smaller pool: a sample per class and/or some classes only, provenance kept."""
    from .pools.subset import subset_pool

    names = [c.strip() for c in classes.split(",")] if classes else None
    caps: int | dict[str, int] | None = None
    if per_class:
        try:
            caps = int(per_class) if "=" not in per_class else {
                k.strip(): int(v) for k, v in (p.split("=", 1) for p in per_class.split(","))}
        except ValueError:
            raise typer.BadParameter(f"expected N or CLASS=N,..., got {per_class!r}",
                                     param_hint="--per-class") from None
    new = subset_pool(pool, out, per_class=caps, classes=names, seed=seed,
                      overwrite=overwrite)
    console.print(f"wrote {out}: {len(new)} sprites of {len(new.classes)} classes")


@pools_app.command("merge")
def merge_cmd(
    out: Annotated[Path, typer.Argument(help="Pool folder to write.")],
    sources: Annotated[list[str], typer.Option(
        "--from", help="A source: POOL (all its classes) or POOL@CLASS,CLASS (repeatable; "
                       "POOL is a folder or 'atlas').")],
    um_per_px: Annotated[float | None, typer.Option(
        help="Scale of the merged pool (default: the first source's).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Write one pool from several, each giving all its classes or those named."""
    from .pools.merge import merge_pools

    parsed = []
    for spec in sources:
        pool, _, classes = spec.rpartition("@") if "@" in spec else (spec, "", "")
        parsed.append((pool, [c.strip() for c in classes.split(",") if c.strip()] or None))
    new = merge_pools(out, parsed, um_per_px=um_per_px, overwrite=overwrite)
    console.print(f"wrote {out}: {len(new)} sprites of {len(new.classes)} classes")


def register(app: typer.Typer) -> None:
    """Add the ``pools`` sub-app to the main ``hemosynth`` app."""
    app.add_typer(pools_app, name="pools")
