"""Per-smear appearance parameters (stain, optics), drawn while planning.

The simple renderer uses none yet; this is the hook where stain and optics variation is drawn,
so that the renderer stays free of randomness.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import GenerationConfig


def draw_appearance(cfg: GenerationConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the smear's appearance parameters (currently none)."""
    return {}
