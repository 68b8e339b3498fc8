"""hemosynth: synthetic, automatically annotated peripheral blood smears.

The public API (no I/O happens at import)::

    from hemosynth import GenerationConfig, generate_dataset, open_pool, plan_smear
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it; imported on first use (PEP 562), so that
#: ``import hemosynth`` (and the command line's start) does not load numpy, numba and OpenCV
_EXPORTS = {
    **dict.fromkeys(["GenerationConfig", "dump_config", "load_config"], ".config"),
    **dict.fromkeys(["DensityWarning", "generate_dataset", "iter_records", "make_smear",
                     "read_manifest"], ".dataset"),
    **dict.fromkeys(["ConfigError", "DatasetError", "FormatError", "HemosynthError",
                     "PoolError"], ".errors"),
    **dict.fromkeys(["MemoryPool", "Pool", "PoolStore", "open_pool", "write_pool"],
                    ".pools.store"),
    "Census": ".smear.counts",
    **dict.fromkeys(["SmearPlan", "plan_smear", "prepare_sprites"], ".smear.plan"),
    **dict.fromkeys(["render", "visibility"], ".smear.render"),
    **dict.fromkeys(["LABEL_SETS", "MAIN_TYPES", "POOL_CLASSES", "SUBTYPES", "label_set"],
                    ".taxonomy"),
}


def __getattr__(name: str):
    """A public name, imported from its module the first time it is asked for."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from .config import GenerationConfig, dump_config, load_config
    from .dataset import (
        DensityWarning,
        generate_dataset,
        iter_records,
        make_smear,
        read_manifest,
    )
    from .errors import ConfigError, DatasetError, FormatError, HemosynthError, PoolError
    from .pools.store import MemoryPool, Pool, PoolStore, open_pool, write_pool
    from .smear.counts import Census
    from .smear.plan import SmearPlan, plan_smear, prepare_sprites
    from .smear.render import render, visibility
    from .taxonomy import LABEL_SETS, MAIN_TYPES, POOL_CLASSES, SUBTYPES, label_set

__all__ = [
    "LABEL_SETS",
    "MAIN_TYPES",
    "POOL_CLASSES",
    "SUBTYPES",
    "Census",
    "ConfigError",
    "DatasetError",
    "DensityWarning",
    "FormatError",
    "GenerationConfig",
    "HemosynthError",
    "MemoryPool",
    "Pool",
    "PoolError",
    "PoolStore",
    "SmearPlan",
    "__version__",
    "dump_config",
    "generate_dataset",
    "iter_records",
    "label_set",
    "load_config",
    "make_smear",
    "open_pool",
    "plan_smear",
    "prepare_sprites",
    "read_manifest",
    "render",
    "visibility",
    "write_pool",
]
