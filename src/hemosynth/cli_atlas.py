"""``hemosynth atlas``: a contact sheet of the built-in cell atlas, optionally beside real cells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``atlas`` command to ``app``."""

    @app.command("atlas")
    def atlas_cmd(
        sheet: Annotated[
            Path, typer.Option("--sheet", help="Contact sheet to write (PNG or JPG).")
        ] = Path("atlas-sheet.png"),
        compare: Annotated[
            Path | None,
            typer.Option(help="Folder-per-class image set (e.g. ../shared/data/pbc) whose "
                         "examples are shown beside the atlas for the classes both have."),
        ] = None,
        per_class: Annotated[int, typer.Option(help="Examples per class and side.")] = 8,
        pool: Annotated[
            str, typer.Option(help="Pool to show: 'atlas' (default) or a pool folder.")
        ] = "atlas",
        compare_um_per_px: Annotated[
            float, typer.Option(help="Scale of the --compare images (PBC: 7.5/74).")
        ] = 7.5 / 74.0,
    ) -> None:
        """Draw a labelled contact sheet: a row of varied cells per class."""
        import cv2
        import numpy as np
        from rich.console import Console

        from .errors import ConfigError
        from .pools.atlas import contact_sheet, real_examples
        from .pools.store import open_pool

        if per_class < 1:
            raise ConfigError(f"--per-class must be >= 1, got {per_class}")
        if compare is not None and not compare.is_dir():
            raise ConfigError(f"--compare {compare}: not a folder")
        real = real_examples(compare, per_class) if compare is not None else None
        img = contact_sheet(open_pool(pool), per_class=per_class, real=real,
                            real_um_per_px=compare_um_per_px)
        sheet.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(sheet), np.ascontiguousarray(img[:, :, ::-1])):
            raise ConfigError(f"--sheet {sheet}: cannot write (use a .png or .jpg name)")
        Console(stderr=True).print(f"wrote {sheet} ({img.shape[1]}x{img.shape[0]} px)")

