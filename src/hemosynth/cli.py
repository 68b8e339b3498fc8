"""The ``hemosynth`` command line: a thin layer over the library.

Each command parses its options, calls library functions and prints a summary. Errors raised on
purpose (:class:`~hemosynth.errors.HemosynthError`) are printed on one line, without a
traceback, and exit with status 2.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import HemosynthError

app = typer.Typer(
    name="hemosynth",
    help="Synthetic, automatically annotated peripheral blood smears.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write.")] = Path(
        "hemosynth-dataset"
    ),
    count: Annotated[int | None, typer.Option("--count", "-n", help="Number of smears.")] = None,
    seed: Annotated[int | None, typer.Option(help="Master seed.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config file.")
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="Pool folder, or 'atlas' for the built-in pool.")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Placement: grid, lsh, brute, random, blocks.")
    ] = None,
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", "-f", help="Annotation format (repeatable): yolo, coco, voc."),
    ] = None,
    label_set: Annotated[
        list[str] | None,
        typer.Option("--label-set", help="Label set (repeatable): main, sub, main+rbc."),
    ] = None,
    image_format: Annotated[str | None, typer.Option(help="jpg or png.")] = None,
    width: Annotated[int | None, typer.Option(help="Image width in pixels.")] = None,
    height: Annotated[int | None, typer.Option(help="Image height in pixels.")] = None,
    um_per_px: Annotated[float | None, typer.Option(help="Output scale, um per pixel.")] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes (0 = every usable core).")
    ] = 1,
    executor: Annotated[str, typer.Option(help="local or dask.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running dask scheduler.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted dataset.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any config key (repeatable): KEY=VALUE, the value in YAML, "
                     "e.g. --set render.blur_um=0.1 --set counts.wbc.mean=2."),
    ] = None,
) -> None:
    """Generate an annotated synthetic smear dataset."""
    from .server import start_server, usable_cores
    from .smear.aot import needs_build

    # a multi-worker run's fork server first: its start (it imports hemosynth and loads the
    # kernels, ~0.25 s) then overlaps this process's own imports and set-up below (the count
    # is not known yet when it comes from a config file); on the first run, once the kernels'
    # library is built below
    if not needs_build():
        start_server(min(workers or usable_cores(), count if count is not None else 2), executor)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .config import load_config, parse_settings
    from .dataset import DensityWarning, generate_dataset, load_dataset_config

    if resume and config is None and (out / "manifest.json").exists():
        cfg = load_dataset_config(out)
    else:
        cfg = load_config(config)
    overrides = {
        "count": count,
        "seed": seed,
        "pool": pool,
        "placement.strategy": strategy,
        "output.formats": fmt or None,
        "output.label_sets": label_set or None,
        "output.image_format": image_format,
        "canvas.width": width,
        "canvas.height": height,
        "canvas.um_per_px": um_per_px,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides.update(parse_settings(set_ or []))
    if overrides:
        cfg = cfg.replace(**overrides)
    from .parallel import retain_freed_memory, settle_garbage_collector, warm_up_kernels

    # a multi-worker run's fork server (started above) loads the kernels for its workers, in
    # the background, while this process loads its own: it makes smears itself while the
    # server starts (or all of them with one worker, or hands the kernels to dask)
    with console.status("loading the compiled kernels (the first run compiles them, ~30 s)"):
        warm_up_kernels()
    retain_freed_memory()  # this process makes the smears itself when --workers is 1
    settle_garbage_collector()
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as bar:
        task = bar.add_task("smears", total=cfg.count)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DensityWarning)
            summary = generate_dataset(
                cfg, out, workers=workers, executor=executor, resume=resume,
                overwrite=overwrite, scheduler=scheduler,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    for w in caught:
        console.print(f"[yellow]warning:[/yellow] {w.message}")
    placed = sum(summary.placed.values())
    dropped = sum(summary.dropped.values())
    console.print(
        f"wrote {summary.count} smears to {summary.root} ({summary.made} made now); "
        f"{placed} cells placed, {dropped} dropped"
    )


@app.command("config")
def config_cmd(
    defaults: Annotated[bool, typer.Option(help="Print the default config as YAML.")] = True,
    check: Annotated[Path | None, typer.Option(help="Validate a YAML config file.")] = None,
) -> None:
    """Print the default config (every key), or validate a config file."""
    from .config import dump_config, load_config

    if check is not None:
        load_config(check)
        console.print(f"{check}: ok")
        return
    sys.stdout.write(dump_config(load_config()))


from .cli_eval import register as _reg_eval  # noqa: E402

_reg_eval(app)

from .cli_stats import register as _reg_stats  # noqa: E402

_reg_stats(app)

from .cli_atlas import register as _reg_atlas  # noqa: E402

_reg_atlas(app)

from .cli_pools import register as _reg_pools  # noqa: E402

_reg_pools(app)


def main() -> None:
    """Entry point of the ``hemosynth`` console script."""
    try:
        app()
    except HemosynthError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
