"""Sprite transforms: flip, rotate, rescale, premultiply and crop to the alpha's extent.

Transformed sprites are *premultiplied* RGBA uint8 (colour already multiplied by alpha), cropped
so that the first and last rows and columns hold alpha > 0. The annotation box of a pasted
cell is exactly the transformed sprite's extent at its paste point.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .jit import kernel


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA uint8 -> premultiplied RGBA uint8: each colour ``(c * a + 127) // 255``."""
    h, w = rgba.shape[:2]
    return _premultiply(np.ascontiguousarray(rgba).reshape(h * w * 4)).reshape(h, w, 4)


@kernel(cache=True, nogil=True)
def _premultiply(px):  # pragma: no cover - compiled
    out = np.empty_like(px)
    for k in range(0, px.shape[0], 4):
        a = np.uint32(px[k + 3])
        for c in range(3):
            out[k + c] = np.uint8((np.uint32(px[k + c]) * a + np.uint32(127)) // np.uint32(255))
        out[k + 3] = px[k + 3]
    return out


def unpremultiply(rgba_p: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA uint8 -> straight RGBA uint8 (colour 0 where alpha is 0)."""
    a = rgba_p[:, :, 3:4].astype(np.float32)
    rgb = rgba_p[:, :, :3].astype(np.float32) * 255.0 / np.maximum(a, 1.0)
    out = np.empty_like(rgba_p)
    out[:, :, :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[:, :, 3] = rgba_p[:, :, 3]
    return out


def alpha_extent(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the pixels with alpha > 0 (x1, y1 exclusive), None if none."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def transform_sprite(rgba: np.ndarray, angle: float, flip: bool, scale: float) -> np.ndarray:
    """Flip, rotate by ``angle`` degrees (counter-clockwise) and rescale by ``scale``.

    Parameters
    ----------
    rgba : ndarray of shape (H, W, 4), uint8
        Straight (not premultiplied) sprite.
    angle : float
        Degrees.
    flip : bool
        Mirror left-right before rotating.
    scale : float
        Size factor (output pixels per input pixel).

    Returns
    -------
    ndarray of shape (h, w, 4), uint8
        Premultiplied sprite cropped to its alpha > 0 extent (at least 1 x 1).
    """
    return transform_premultiplied(premultiply(rgba), angle, flip, scale)


def alpha_circle(alpha: np.ndarray) -> tuple[float, float, float]:
    """``(cx, cy, r)``: a circle around the centres of the pixels with alpha > 0 (the smallest,
    as OpenCV finds it); ``(w / 2, h / 2, half the diagonal)`` if there are none."""
    pts = cv2.findNonZero(alpha)
    if pts is None:
        h, w = alpha.shape[:2]
        return w / 2, h / 2, math.hypot(w, h) / 2
    (cx, cy), r = cv2.minEnclosingCircle(pts)
    return float(cx), float(cy), float(r)


def shrink_first(src: np.ndarray, flip: bool, scale: float) -> tuple[np.ndarray, bool, float]:
    """Area-average a source that is to shrink below half its size (avoids aliasing): returns
    the source, flip and scale that remain to apply (unchanged for ``scale >= 0.5``)."""
    if scale >= 0.5:
        return src, flip, scale
    if flip:
        src, flip = src[:, ::-1], False
    h, w = src.shape[:2]
    nw, nh = max(1, round(w * scale * 2)), max(1, round(h * scale * 2))
    src = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
    return src, flip, scale * w / nw


@kernel(cache=True, nogil=True)
def frame_geometry(h, w, angle, flip, scale, cx, cy, r):  # pragma: no cover - compiled
    """The numbers of :func:`affine_frame` (``r < 0``: no bound), compiled so that
    :func:`hemosynth.smear.warp.transform_many` computes a smear's frames with the very same
    operations.

    Returns
    -------
    (m0, m1, m2, m3, m4, m5, ow, oh, dx, dy, dr, bounded)
        The map's rows, the frame, and the disc (meaningful where ``bounded``).
    """
    t = math.radians(angle)
    a, b = scale * math.cos(t), scale * math.sin(t)  # OpenCV's getRotationMatrix2D
    ow = math.ceil(w * abs(a) + h * abs(b)) + 2
    oh = math.ceil(w * abs(b) + h * abs(a)) + 2
    tx = (1 - a) * w / 2 - b * h / 2 + ow / 2 - w / 2
    ty = b * w / 2 + (1 - a) * h / 2 + oh / 2 - h / 2
    if flip:  # mirror the source (x -> w - 1 - x) before the map
        m0, m1, m2 = -a, b, a * (w - 1) + tx
        m3, m4, m5 = b, a, -b * (w - 1) + ty
    else:
        m0, m1, m2 = a, b, tx
        m3, m4, m5 = -b, a, ty
    dx, dy, dr, bounded = ow / 2, oh / 2, float(ow + oh), False
    if r >= 0.0:
        # an output pixel can only be opaque within sqrt(2) source pixels of an opaque centre
        ox = m0 * cx + m1 * cy + m2
        oy = m3 * cx + m4 * cy + m5
        reach = (r + 1.5) * scale + 1.0
        x0, y0 = max(0, math.floor(ox - reach)), max(0, math.floor(oy - reach))
        x1, y1 = min(ow, math.ceil(ox + reach) + 1), min(oh, math.ceil(oy + reach) + 1)
        if x1 > x0 and y1 > y0:
            m2 -= x0
            m5 -= y0
            ow, oh = x1 - x0, y1 - y0
            dx, dy, dr, bounded = ox - x0, oy - y0, reach, True
    return m0, m1, m2, m3, m4, m5, ow, oh, dx, dy, dr, bounded


def affine_frame(
    h: int, w: int, angle: float, flip: bool, scale: float,
    bound: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, int, int, tuple[float, float, float] | None]:
    """The map of a transform from source pixels to output pixels, and the output frame.

    Parameters
    ----------
    h, w : int
        Source size.
    angle, flip, scale
        As for :func:`transform_sprite`.
    bound : (cx, cy, r), optional
        The source's :func:`alpha_circle`: the frame is cut to the square that it can reach.

    Returns
    -------
    m : ndarray of shape (2, 3)
        Output ``(x, y) = m @ (sx, sy, 1)`` for source pixel ``(sx, sy)`` (OpenCV's
        ``getRotationMatrix2D`` convention, centred in the frame; ``flip`` mirrors first).
    ow, oh : int
        Output frame size.
    disc : (x, y, r) or None
        With ``bound``: outside this disc of the frame every output pixel is transparent
        (an output pixel can only be opaque within sqrt(2) source pixels of an opaque centre).
    """
    cx, cy, r = bound if bound is not None else (0.0, 0.0, -1.0)
    *m, ow, oh, dx, dy, dr, bounded = frame_geometry(
        int(h), int(w), float(angle), bool(flip), float(scale), float(cx), float(cy), float(r)
    )
    return np.array(m).reshape(2, 3), int(ow), int(oh), (dx, dy, dr) if bounded else None


def transform_premultiplied(
    src: np.ndarray, angle: float, flip: bool, scale: float,
    bound: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """:func:`transform_sprite` for a sprite that is already premultiplied (OpenCV's
    ``warpAffine``, one sprite at a time; :func:`hemosynth.smear.warp.transform_many` does a
    smear's sprites in one compiled call).

    ``bound``, the source's :func:`alpha_circle`, only saves work: the resampling is limited to
    the square that the circle (grown by the bilinear footprint) can reach.
    """
    if scale < 0.5:
        bound = None
    src, flip, scale = shrink_first(src, flip, scale)
    h, w = src.shape[:2]
    m, ow, oh, _ = affine_frame(h, w, angle, flip, scale, bound)
    out = cv2.warpAffine(
        src, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    x0, y0, bw, bh = cv2.boundingRect(out[:, :, 3])  # the extent of alpha > 0
    if bw == 0:  # a sprite shrunk below one pixel: keep its centre pixel
        return centre_pixel(src)
    return out[y0 : y0 + bh, x0 : x0 + bw].copy()


def centre_pixel(src: np.ndarray) -> np.ndarray:
    """What a sprite shrunk below one pixel becomes: its centre pixel, alpha at least 1."""
    h, w = src.shape[:2]
    out = np.zeros((1, 1, 4), np.uint8)
    out[0, 0] = src[h // 2, w // 2]
    out[0, 0, 3] = max(1, out[0, 0, 3])
    return out
