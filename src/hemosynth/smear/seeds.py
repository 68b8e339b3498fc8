"""Per-smear random streams derived from (seed, index).

Each smear draws from independent streams so that, for example, changing the placement
strategy does not change which cells a smear holds.
"""

from __future__ import annotations

import numpy as np

STREAM_COUNTS = 0
STREAM_PLACEMENT = 1
STREAM_RENDER = 2
STREAM_APPEARANCE = 3
STREAM_CELLS = 4


def smear_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of smear ``index``'s ``stream`` under master ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))
