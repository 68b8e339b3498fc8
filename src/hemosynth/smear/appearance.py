"""Per-smear appearance parameters (stain, background, optics), drawn while planning.

:func:`draw_appearance` turns the render settings into one smear's concrete look and returns
it as a plain, JSON-ready dict stored in the plan (and in every smear's record), so the
renderer stays free of randomness except for the noise fields it draws from the plan's
``render_seed``.

Every value is drawn, in a fixed order, whether or not its effect is switched on; a switched
off effect is then set to zero. Changing one option therefore never changes the draws of the
others.

The dict holds::

    {"stain": {...},            the smear's stain profile (StainProfile.to_dict)
     "source_stain": {...},     the profile the pool's sprites are in
     "harmonise": bool,         re-stain sprites from source_stain to stain
     "unevenness": float,       optical-density amplitude of the plasma background
     "optics": {"blur_um": float, "defocus_um": float, "vignetting": float,
                "vignette_centre": [x, y], "noise_sd": float}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import GenerationConfig, RenderConfig
from .stain import StainProfile, get_profile, vary_profile


def smear_profile(cfg: RenderConfig) -> StainProfile:
    """The configured stain profile, with ``background_rgb`` applied when it is set."""
    prof = get_profile(cfg.stain_profile)
    if cfg.background_rgb is not None:
        prof = StainProfile(prof.name, tuple(float(v) for v in cfg.background_rgb),
                            prof.rbc, prof.nucleus, prof.blue)
    return prof


def draw_appearance(cfg: GenerationConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one smear's appearance.

    Parameters
    ----------
    cfg : GenerationConfig
        Uses ``cfg.render``.
    rng : numpy.random.Generator
        The smear's appearance stream.

    Returns
    -------
    dict
        See the module docstring.
    """
    rc = cfg.render
    stain = vary_profile(smear_profile(rc), rng, rc.stain_variation)
    unevenness = rc.background_unevenness * float(rng.uniform(0.5, 1.0))
    defocus = rc.defocus_um * float(rng.uniform(0.3, 1.0))
    vignetting = rc.vignetting * float(rng.uniform(0.5, 1.0))
    centre = [round(float(v), 4) for v in rng.uniform(0.35, 0.65, 2)]
    noise = rc.noise_sd * float(rng.uniform(0.6, 1.0))
    on = rc.optics
    return {
        "stain": stain.to_dict(),
        "source_stain": get_profile(rc.source_stain).to_dict(),
        "harmonise": bool(rc.harmonise),
        "unevenness": round(unevenness, 5),
        "optics": {
            "blur_um": rc.blur_um if on else 0.0,
            "defocus_um": round(defocus, 5) if on else 0.0,
            "vignetting": round(vignetting, 5) if on else 0.0,
            "vignette_centre": centre,
            "noise_sd": round(noise, 5) if on else 0.0,
        },
    }


def default_appearance(cfg: RenderConfig) -> dict[str, Any]:
    """The appearance without any per-smear variation (for plans made without one)."""
    prof = smear_profile(cfg)
    on = cfg.optics
    return {
        "stain": prof.to_dict(),
        "source_stain": get_profile(cfg.source_stain).to_dict(),
        "harmonise": bool(cfg.harmonise),
        "unevenness": cfg.background_unevenness,
        "optics": {
            "blur_um": cfg.blur_um if on else 0.0,
            "defocus_um": cfg.defocus_um if on else 0.0,
            "vignetting": cfg.vignetting if on else 0.0,
            "vignette_centre": [0.5, 0.5],
            "noise_sd": cfg.noise_sd if on else 0.0,
        },
    }
