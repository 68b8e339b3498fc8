"""Rendering a planned smear: background, every sprite in plan order, then optics.

Rendering holds no randomness of its own: the per-smear look (stain, background unevenness,
optics) is in the plan's ``appearance``, and the noise fields come from the plan's
``render_seed`` (see :mod:`hemosynth.smear.canvas`). Sprites are premultiplied (see
:mod:`hemosynth.smear.sprite`); each is re-stained from the pool's stain to the smear's before
it is pasted (stain harmonisation, done on the source sprites while preparing them, see
:class:`hemosynth.smear.plan.SourceSprites`).

Blenders (:data:`BLENDERS`) shape a source sprite's alpha edge (before it is rotated and
rescaled) and composite the transformed sprite onto the canvas. A shape must never widen the
alpha's support, and a composite must only change pixels where the sprite's alpha is > 0, so
the annotation box stays the exact extent of the pasted pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..config import DEFAULT_UM_PER_PX, RenderConfig
from .appearance import default_appearance
from .canvas import apply_optics, make_field
from .jit import kernel
from .kernels import SpritePack, composite_pack, visibility_pack
from .sprite import alpha_extent, premultiply, unpremultiply
from .stain import StainProfile


def paste_window(
    x0: int, y0: int, w: int, h: int, width: int, height: int
) -> tuple[slice, slice, slice, slice] | None:
    """Canvas and sprite slices of a ``w`` x ``h`` sprite pasted at ``(x0, y0)``, or None."""
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, width), min(y0 + h, height)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    return (
        slice(cy0, cy1),
        slice(cx0, cx1),
        slice(cy0 - y0, cy1 - y0),
        slice(cx0 - x0, cx1 - x0),
    )


def composite_over(canvas: np.ndarray, sprite_p: np.ndarray, x0: int, y0: int) -> None:
    """Premultiplied "over" compositing of ``sprite_p`` onto ``canvas`` (RGB uint8), in place."""
    h, w = sprite_p.shape[:2]
    win = paste_window(x0, y0, w, h, canvas.shape[1], canvas.shape[0])
    if win is None:
        return
    cr, cc, sr, sc = win
    s = sprite_p[sr, sc]
    dst = canvas[cr, cc]
    inv = (255 - s[:, :, 3:4]).astype(np.uint16)
    blended = (dst.astype(np.uint16) * inv + 127) // 255 + s[:, :, :3]
    np.minimum(blended, 255, out=blended)
    dst[...] = blended


def _feather(sprite_p: np.ndarray, radius: float = 1.5) -> np.ndarray:
    a = sprite_p[:, :, 3]
    support = (a > 0).astype(np.uint8)
    padded = cv2.copyMakeBorder(support, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return _ramp(np.ascontiguousarray(sprite_p), np.ascontiguousarray(dist), np.float32(radius))


@kernel(cache=True, nogil=True)
def _ramp(sprite_p, dist, radius):  # pragma: no cover - compiled
    """Every channel times ``clip(dist / radius, 0, 1)`` (float32, truncated after + 0.5);
    a pixel of the support never loses all its alpha (the box stays the pasted extent)."""
    h, w = dist.shape
    out = np.empty_like(sprite_p)
    half = np.float32(0.5)
    for y in range(h):
        for x in range(w):
            r = min(max(dist[y, x] / radius, np.float32(0.0)), np.float32(1.0))
            for c in range(4):
                out[y, x, c] = np.uint8(np.float32(sprite_p[y, x, c]) * r + half)
            if sprite_p[y, x, 3] > 0 and out[y, x, 3] == 0:
                out[y, x, 3] = 1
    return out


def _gaussian_edges(sprite_p: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Blur the alpha with a Gaussian, cut back to the original support (never widened)."""
    a = sprite_p[:, :, 3]
    support = a > 0
    pad = int(np.ceil(3 * sigma))
    padded = cv2.copyMakeBorder(a, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    blurred = cv2.GaussianBlur(padded.astype(np.float32), (0, 0), sigma)[pad:-pad, pad:-pad]
    new_a = np.where(support, np.clip(np.minimum(blurred, a), 1, 255), 0).astype(np.float32)
    ratio = new_a / np.maximum(a.astype(np.float32), 1.0)
    out = np.empty_like(sprite_p)
    out[:, :, :3] = np.clip(sprite_p[:, :, :3] * ratio[:, :, None] + 0.5, 0, 255)
    out[:, :, 3] = np.clip(new_a + 0.5, 0, 255)
    return out


def composite_poisson(canvas: np.ndarray, sprite_p: np.ndarray, x0: int, y0: int) -> None:
    """Seamless (Poisson) cloning of the sprite, then alpha-blended within its support.

    The sprite's colours are re-solved so that its gradients are kept and its border meets the
    canvas (OpenCV's ``seamlessClone``, normal mode); the result is blended with the sprite's
    alpha, so only pixels with alpha > 0 change. Sprites under 3 px fall back to "over".
    """
    h, w = sprite_p.shape[:2]
    win = paste_window(x0, y0, w, h, canvas.shape[1], canvas.shape[0])
    if win is None:
        return
    if h < 3 or w < 3:
        composite_over(canvas, sprite_p, x0, y0)
        return
    cr, cc, sr, sc = win
    pad = 2
    dst = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    r0, r1, c0, c1 = pad + sr.start, pad + sr.stop, pad + sc.start, pad + sc.stop
    dst[r0:r1, c0:c1] = canvas[cr, cc]
    dst = cv2.copyMakeBorder(dst[r0:r1, c0:c1], r0, dst.shape[0] - r1, c0, dst.shape[1] - c1,
                             cv2.BORDER_REPLICATE)
    straight = unpremultiply(sprite_p)[:, :, :3]
    src = cv2.copyMakeBorder(straight, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    mask = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    mask[pad:-pad, pad:-pad] = np.where(sprite_p[:, :, 3] > 0, 255, 0)
    ex0, ey0, ex1, ey1 = alpha_extent(mask)
    centre = (ex0 + (ex1 - ex0) // 2, ey0 + (ey1 - ey0) // 2)
    cloned = cv2.seamlessClone(src, dst, mask, centre, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    a = sprite_p[sr, sc, 3:4].astype(np.uint16)
    region = canvas[cr, cc]
    mixed = (region * (255 - a) + cloned[sr, sc] * a + 127) // 255
    region[...] = np.where(a > 0, mixed, region)


@dataclass(frozen=True)
class Blender:
    """An alpha-shaping step (may soften, never widen, the support) and a compositing step."""

    shape: object  # Callable[[ndarray], ndarray]
    composite: object  # Callable[[ndarray, ndarray, int, int], None]


#: blend name -> Blender
BLENDERS: dict[str, Blender] = {
    "alpha": Blender(shape=lambda s: s, composite=composite_over),
    "feather": Blender(shape=_feather, composite=composite_over),
    "gaussian": Blender(shape=_gaussian_edges, composite=composite_over),
    "poisson": Blender(shape=_feather, composite=composite_poisson),
}


def make_background(
    width: int, height: int, cfg: RenderConfig, rng: np.random.Generator,
    appearance: dict[str, Any] | None = None, um_per_px: float = DEFAULT_UM_PER_PX,
) -> np.ndarray:
    """The plasma field in the smear's stain, before any cell: RGB uint8 (height, width, 3).

    ``appearance`` is the plan's; without it the configured profile is used unvaried.
    """
    look = appearance if appearance else default_appearance(cfg)
    stain = StainProfile.from_dict(look["stain"])
    return make_field(width, height, stain, float(look["unevenness"]), um_per_px, rng)


def pack_sprites(plan, sprites: Sequence[np.ndarray]) -> SpritePack:
    """The plan's transformed sprites packed with their paste points, for the kernels."""
    return SpritePack.build(sprites, plan.boxes[:, :2].astype(np.int64))


def render(
    plan, sprites: Sequence[np.ndarray], cfg: RenderConfig, pack: SpritePack | None = None
) -> np.ndarray:
    """Draw a planned smear.

    Parameters
    ----------
    plan : SmearPlan
    sprites : sequence of ndarray
        The plan's transformed, re-stained, shaped, premultiplied sprites, in plan order
        (see :func:`hemosynth.smear.plan.prepare_sprites`).
    cfg : RenderConfig
    pack : SpritePack, optional
        ``sprites`` already packed (:func:`pack_sprites`), to share one pack with
        :func:`visibility`.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8
        The RGB image.
    """
    rng = np.random.default_rng(plan.render_seed)
    look = plan.appearance if plan.appearance else default_appearance(cfg)
    canvas = make_background(plan.width, plan.height, cfg, rng, look, plan.um_per_px)
    composite = BLENDERS[cfg.blend].composite
    if composite is composite_over:  # all sprites in one compiled loop, byte for byte the same
        composite_pack(canvas, pack if pack is not None else pack_sprites(plan, sprites))
    else:
        for i, s in enumerate(sprites):
            composite(canvas, s, int(plan.boxes[i, 0]), int(plan.boxes[i, 1]))
    return apply_optics(canvas, look["optics"], plan.um_per_px, rng)


def visibility(
    plan, sprites: Sequence[np.ndarray], masks: bool = False, pack: SpritePack | None = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None] | None]:
    """Visible fraction and visible area of every planned cell, from the alphas alone.

    A cell's visible weight at a pixel is its alpha times the transparency of every cell drawn
    above it; parts outside the field are invisible. Computed by
    :func:`hemosynth.smear.kernels.visibility_pack`.

    Parameters
    ----------
    plan : SmearPlan
    sprites : sequence of ndarray
        As for :func:`render`.
    masks : bool
        Also return the visible masks.
    pack : SpritePack, optional
        ``sprites`` already packed.

    Returns
    -------
    fraction : ndarray of shape (N,)
        Visible alpha mass over total alpha mass, in [0, 1].
    area : ndarray of shape (N,)
        Pixels where the cell's visible weight is >= 0.5.
    visible_masks : list of ndarray or None
        With ``masks``, each cell's boolean visible mask inside its clipped box.
    """
    pack = pack if pack is not None else pack_sprites(plan, sprites)
    return visibility_pack(pack, plan.width, plan.height, masks)


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernels of preparing a source sprite."""
    _feather(premultiply(np.full((3, 3, 4), 200, np.uint8)))
