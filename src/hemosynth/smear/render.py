"""Rendering a planned smear: background, then every sprite composited in plan order.

Rendering holds no randomness of its own: the background noise comes from the plan's
``render_seed``. Sprites are premultiplied (see :mod:`hemosynth.smear.sprite`).

Blenders (:data:`BLENDERS`) shape a transformed sprite's alpha before it is pasted and composite
it onto the canvas. A blender must never widen the alpha's support, so the annotation box stays
the exact extent of the pasted pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import RenderConfig


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
    ramp = np.clip(dist / radius, 0, 1)[:, :, None]
    out = (sprite_p.astype(np.float32) * ramp + 0.5).astype(np.uint8)
    # never lose a pixel of the support: the box stays the pasted extent
    lost = (a > 0) & (out[:, :, 3] == 0)
    out[lost, 3] = 1
    return out


@dataclass(frozen=True)
class Blender:
    """An alpha-shaping step (may soften, never widen, the support) and a compositing step."""

    shape: object  # Callable[[ndarray], ndarray]
    composite: object  # Callable[[ndarray, ndarray, int, int], None]


#: blend name -> Blender
BLENDERS: dict[str, Blender] = {
    "alpha": Blender(shape=lambda s: s, composite=composite_over),
    "feather": Blender(shape=_feather, composite=composite_over),
}


def make_background(width: int, height: int, cfg: RenderConfig, rng: np.random.Generator):
    """A plasma-coloured field with low-frequency brightness unevenness (RGB uint8)."""
    base = np.asarray(cfg.background_rgb, np.float32)
    gh, gw = max(2, height // 256), max(2, width // 256)
    low = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    gain = 1.0 + cfg.background_unevenness * field
    img = base[None, None, :] * gain[:, :, None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render(
    plan, sprites: Sequence[np.ndarray], cfg: RenderConfig
) -> np.ndarray:
    """Draw a planned smear.

    Parameters
    ----------
    plan : SmearPlan
    sprites : sequence of ndarray
        The plan's transformed, shaped, premultiplied sprites, in plan order
        (see :func:`hemosynth.smear.plan.prepare_sprites`).
    cfg : RenderConfig

    Returns
    -------
    ndarray of shape (height, width, 3), uint8
        The RGB image.
    """
    rng = np.random.default_rng(plan.render_seed)
    canvas = make_background(plan.width, plan.height, cfg, rng)
    composite = BLENDERS[cfg.blend].composite
    for i, s in enumerate(sprites):
        composite(canvas, s, int(plan.boxes[i, 0]), int(plan.boxes[i, 1]))
    return canvas


def visibility(
    plan, sprites: Sequence[np.ndarray], masks: bool = False
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None] | None]:
    """Visible fraction and visible area of every planned cell, from the alphas alone.

    A cell's visible weight at a pixel is its alpha times the transparency of every cell drawn
    above it; parts outside the field are invisible.

    Returns
    -------
    fraction : ndarray of shape (N,)
        Visible alpha mass over total alpha mass, in [0, 1].
    area : ndarray of shape (N,)
        Pixels where the cell's visible weight is >= 0.5.
    visible_masks : list of ndarray or None
        With ``masks``, each cell's boolean visible mask inside its clipped box.
    """
    n = len(sprites)
    frac = np.zeros(n)
    area = np.zeros(n, np.int64)
    out_masks: list[np.ndarray | None] | None = [None] * n if masks else None
    trans = np.ones((plan.height, plan.width), np.float32)
    for i in range(n - 1, -1, -1):
        s = sprites[i]
        a = s[:, :, 3].astype(np.float32) / 255.0
        total = float(a.sum())
        x0, y0 = int(plan.boxes[i, 0]), int(plan.boxes[i, 1])
        win = paste_window(x0, y0, s.shape[1], s.shape[0], plan.width, plan.height)
        if win is None or total == 0:
            continue
        cr, cc, sr, sc = win
        t = trans[cr, cc]
        contrib = a[sr, sc] * t
        frac[i] = float(contrib.sum()) / total
        vis = contrib >= 0.5
        area[i] = int(vis.sum())
        if out_masks is not None:
            out_masks[i] = vis
        t *= 1.0 - a[sr, sc]
    return frac, area, out_masks
