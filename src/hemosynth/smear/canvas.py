"""The smear's field: plasma background, stain harmonisation of sprites, and optics.

Everything here is deterministic given the smear's appearance (drawn while planning, see
:mod:`hemosynth.smear.appearance`) and a generator seeded with the plan's ``render_seed``.
The random fields are drawn in a fixed order (background, defocus map, sensor noise) whether
or not an effect is switched on, so switching one effect off leaves the others unchanged.

Functions
---------
make_field
    Plasma background with low-frequency unevenness, in the smear's stain.
harmonise
    Re-stain a premultiplied sprite from the pool's stain to the smear's (the same map for
    every cell, so cells of one pool look like one slide).
apply_optics
    Field-wide blur, spatially varying slight defocus, illumination fall-off and sensor noise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from .kernels import optics_pass, restain_factors, restain_premultiplied
from .sprite import unpremultiply
from .stain import StainProfile, rgb_to_od, stain_transfer

#: size of the background's low-frequency structure, in micrometres
UNEVENNESS_SCALE_UM = 40.0
#: size of the defocus map's structure, in micrometres
DEFOCUS_SCALE_UM = 80.0


def _low_grid(width: int, height: int, cell_px: float, rng: np.random.Generator) -> np.ndarray:
    """The normal draws behind :func:`low_frequency_field`: one every ``cell_px`` pixels."""
    gh = max(2, int(np.ceil(height / cell_px)) + 1)
    gw = max(2, int(np.ceil(width / cell_px)) + 1)
    return rng.standard_normal((gh, gw)).astype(np.float32)


def low_frequency_field(
    width: int, height: int, cell_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth noise of shape (height, width), float32, about zero mean and unit sd.

    A grid of normal draws every ``cell_px`` pixels, interpolated bicubically.
    """
    return cv2.resize(_low_grid(width, height, cell_px, rng), (width, height),
                      interpolation=cv2.INTER_CUBIC)


#: the background's colour is computed at 1/LOW_RES of the image's size and then
#: interpolated: it varies over hundreds of pixels, and this saves most of its cost
LOW_RES = 8


def _small(width: int, height: int) -> tuple[int, int]:
    return max(2, -(-width // LOW_RES)), max(2, -(-height // LOW_RES))


def make_field(
    width: int, height: int, stain: StainProfile, unevenness: float, um_per_px: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The plasma background in ``stain``: RGB uint8 of shape (height, width, 3).

    The plasma's thickness varies smoothly over the field (features of about
    :data:`UNEVENNESS_SCALE_UM`); ``unevenness`` is the optical-density amplitude of that
    variation, coloured like a faint eosin wash. Always draws one low-frequency grid. The
    colour is computed on a grid 1/:data:`LOW_RES` of the size and interpolated.
    """
    grid = _low_grid(width, height, UNEVENNESS_SCALE_UM / um_per_px, rng)
    bg = stain.illuminant
    if unevenness <= 0:
        return np.broadcast_to(np.clip(bg + 0.5, 0, 255).astype(np.uint8),
                               (height, width, 3)).copy()
    sw, sh = _small(width, height)
    field = cv2.resize(grid, (sw, sh), interpolation=cv2.INTER_CUBIC)
    tint = stain.basis[0].astype(np.float64)
    tint = tint / float(np.abs(tint).max())
    # bg * 10 ** -(field * unevenness * tint), a channel at a time in float32
    # (exp(-ln 10 * od)): about 6x faster than the float64 broadcast it replaced
    rate = (-np.log(10.0) * unevenness * tint).astype(np.float32)
    small = np.empty((sh, sw, 3), np.uint8)
    for c in range(3):
        v = np.exp(field * rate[c])
        v *= np.float32(bg[c])
        v += np.float32(0.5)
        np.clip(v, 0, 255, out=v)
        small[:, :, c] = v  # truncates: rounded by the + 0.5
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=16)
def _transfer_luts(src: StainProfile, dst: StainProfile) -> tuple[np.ndarray, np.ndarray]:
    """OD per uint8 level under ``src`` (3, 256) and the OD map to ``dst`` as one matrix
    (``od @ P @ D + od @ R`` of :func:`~hemosynth.smear.stain.stain_transfer`)."""
    levels = np.maximum(np.arange(256, dtype=np.float32), 0.5)
    od = np.stack([rgb_to_od(levels, src.illuminant[c]) for c in range(3)])
    p, d, r = stain_transfer(src, dst)
    return od, (p @ d + r).astype(np.float32)


@lru_cache(maxsize=16)
def harmonise_factors(src: StainProfile, dst: StainProfile) -> np.ndarray:
    """The per-level factors (:func:`~hemosynth.smear.kernels.restain_factors`) of the map
    from ``src`` to ``dst`` that :func:`harmonise` applies: float32 of shape (3, 3, 256)."""
    lut, mat = _transfer_luts(src, dst)
    return restain_factors(lut, mat, dst.illuminant)


def harmonise(sprite_p: np.ndarray, src: StainProfile, dst: StainProfile) -> np.ndarray:
    """Re-stain a premultiplied RGBA sprite from ``src`` to ``dst``; alpha unchanged.

    Parameters
    ----------
    sprite_p : ndarray of shape (h, w, 4), uint8
        Premultiplied sprite (as prepared for pasting).
    src, dst : StainProfile

    Returns
    -------
    ndarray of shape (h, w, 4), uint8
        Premultiplied; pixels with alpha 0 stay 0.
    """
    if src == dst:
        return sprite_p
    return restain_premultiplied(sprite_p, harmonise_factors(src, dst))


def _with_colour(sprite_p: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """``sprite_p`` with its straight colour replaced by ``rgb`` (float, 0-255), premultiplied
    again by the unchanged alpha."""
    a = sprite_p[:, :, 3:4].astype(np.float32)
    out = np.empty_like(sprite_p)
    out[:, :, :3] = np.clip(rgb * (a / 255.0) + 0.5, 0, 255).astype(np.uint8)
    out[:, :, 3] = sprite_p[:, :, 3]
    return out


def scale_density(sprite_p: np.ndarray, factor: float, background: np.ndarray) -> np.ndarray:
    """Scale a premultiplied sprite's optical density over ``background`` by ``factor``.

    Each straight colour ``c`` becomes ``background * (c / background) ** factor`` per channel:
    below 1 the cell is paler and less saturated, and its edges softer, with its hue kept;
    above 1 it is darker. Alpha is unchanged, so the box stays the pasted extent.

    Parameters
    ----------
    sprite_p : ndarray of shape (h, w, 4), uint8
        Premultiplied sprite.
    factor : float
        > 0; 1 returns the sprite itself.
    background : array-like of shape (3,)
        The plasma's RGB (the smear stain's background).

    Returns
    -------
    ndarray of shape (h, w, 4), uint8
    """
    if factor == 1.0:
        return sprite_p
    bg = np.maximum(np.asarray(background, np.float64), 1.0)
    levels = np.arange(256, dtype=np.float64)[:, None]
    lut = np.clip(bg * (np.maximum(levels, 1.0) / bg) ** factor + 0.5, 0, 255).astype(np.uint8)
    straight = unpremultiply(sprite_p)
    rgb = np.stack([lut[straight[:, :, c], c] for c in range(3)], axis=-1).astype(np.float32)
    return _with_colour(sprite_p, rgb)


def apply_optics(
    img: np.ndarray, optics: dict[str, Any], um_per_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Blur, defocus varying over the field, illumination fall-off and sensor noise, in order.

    Parameters
    ----------
    img : ndarray of shape (H, W, 3), uint8
    optics : dict
        ``blur_um`` (blur sigma of the whole field, um; absent = 0), ``defocus_um`` (largest
        extra blur sigma, um), ``vignetting`` (relative brightness
        lost at the far corner), ``vignette_centre`` ([x, y] as fractions of the field),
        ``noise_sd`` (grey levels at full brightness; shot-noise-like, scales with the square
        root of the local brightness). Zero switches an effect off.
    um_per_px : float
    rng : numpy.random.Generator
        Draws the defocus map, then the noise's seed, always (see the module docstring).

    Notes
    -----
    The defocus mix, fall-off and noise are one compiled pass
    (:func:`hemosynth.smear.kernels.optics_pass`): each pixel moves toward the image blurred
    at the full defocus by the local weight, is multiplied by the illumination gain and rounded,
    and gets one luminance noise draw.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    h, w = img.shape[:2]
    focus_grid = _low_grid(w, h, DEFOCUS_SCALE_UM / um_per_px, rng)
    noise_seed = int(rng.integers(2**63))
    out = img
    base = float(optics.get("blur_um", 0.0)) / um_per_px
    if base > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), base)
    sigma = float(optics.get("defocus_um", 0.0)) / um_per_px
    blurred = cv2.GaussianBlur(out, (0, 0), sigma) if sigma > 0.2 else None
    vig = float(optics.get("vignetting", 0.0))
    sd = float(optics.get("noise_sd", 0.0))
    if blurred is None and vig <= 0 and sd <= 0:
        return out if out is not img else img.copy()
    return optics_pass(out, blurred, focus_grid, max(vig, 0.0),
                       optics.get("vignette_centre", (0.5, 0.5)), max(sd, 0.0), noise_seed)
