"""hemosynth: synthetic, automatically annotated peripheral blood smears.

The public API (no I/O happens at import)::

    from hemosynth import GenerationConfig, generate_dataset, open_pool, plan_smear
"""

__version__ = "0.1.0"

from .config import GenerationConfig, dump_config, load_config
from .dataset import (
    DensityWarning,
    generate_dataset,
    iter_records,
    make_smear,
    read_manifest,
)
from .errors import (
    ConfigError,
    DatasetError,
    FormatError,
    HemosynthError,
    PoolError,
)
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
