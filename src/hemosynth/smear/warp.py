"""Every cell's sprite of a smear flipped, rotated and rescaled in one compiled call.

:func:`transform_many` is the batch form of
:func:`~hemosynth.smear.sprite.transform_premultiplied`: the same maps and frames
(:func:`~hemosynth.smear.sprite.affine_frame`: both compute them with
:func:`~hemosynth.smear.sprite.frame_geometry`), the same crop to the alpha's extent, with its
own bilinear resampling instead of a ``cv2.warpAffine`` call per sprite (still used on a
big-endian machine). A smear has about 620 sprites; the per-call costs of OpenCV and Python, the
crop and the copy were about a third of the transform's time.

The sources are read one at a time: each is spread into 64-bit pixels (and re-stained, when
``factors`` are given) in a small buffer that stays in the cache while every cell drawn from it
is resampled. All frames are written into one buffer of 32-bit pixels, and the sprites handed
back are views of it (:class:`~hemosynth.smear.kernels.SpriteViews`): cropping and packing
them for the render kernels copy nothing.

The resampling is defined by :func:`resample_reference` (plain numpy; the tests hold the kernel
to it byte for byte). It is OpenCV's fixed-point bilinear arithmetic on a sub-pixel grid of 1/16
instead of 1/32, so that the four channels of a pixel are weighted in one 64-bit product
(16-bit lanes). On smooth sprites it differs from ``warpAffine`` by 0.2 grey levels on average
(up to 9 on steep alpha edges, a sixteenth of a pixel). Pixels outside the frame's disc (see
``affine_frame``) are transparent by construction and are not computed. The pixel words assume
a little-endian machine (x86-64, Arm).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from .jit import kernel
from .kernels import SpriteViews, restain_pixel, restain_premultiplied
from .sprite import centre_pixel, frame_geometry, shrink_first, transform_premultiplied

_U = np.uint64
#: the sub-pixel grid of the sample positions and of the bilinear weights (16: weights in
#: 1/256, so that the four channels of a pixel are weighted in one 64-bit product)
SUB = 16
_LANES = _U(0x00FF00FF00FF00FF)
#: the largest sprite side :func:`transform_many` takes (its positions, in 1/1024 pixel, and
#: source words fit 32 bits)
MAX_SIDE = 30000


@kernel(cache=True, nogil=True)
def _inverse(m0, m1, m2, m3, m4, m5):  # pragma: no cover - compiled
    det = m0 * m4 - m1 * m3
    ia, ib, id_, ie = m4 / det, -m1 / det, -m3 / det, m0 / det
    return ia, ib, -(ia * m2 + ib * m5), id_, ie, -(id_ * m2 + ie * m5)


def inverse_map(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2 x 3 affine map ``m`` (output pixel -> source pixel), float64 (6,)."""
    return np.array(_inverse(*(float(v) for v in np.ravel(m))))


def _fixed_axes(inv: np.ndarray, ow: int, oh: int):
    """The fixed-point sample positions, in 1/16 pixel: ``X = (X0[y] + AX[x]) >> 6`` (and
    likewise ``Y``), with ``AX[x] = rint(inv[0] * x * 1024)`` and
    ``X0[y] = rint((inv[1] * y + inv[2]) * 1024) + 32``: the position in 1/1024 pixel, rounded
    to 1/16 (OpenCV's ``warpAffine`` arithmetic, on a grid of 1/16 instead of 1/32)."""
    x, y = np.arange(ow, dtype=np.float64), np.arange(oh, dtype=np.float64)
    ax = np.rint(inv[0] * x * 1024.0).astype(np.int64)
    ay = np.rint(inv[3] * x * 1024.0).astype(np.int64)
    x0 = np.rint((inv[1] * y + inv[2]) * 1024.0).astype(np.int64) + 32
    y0 = np.rint((inv[4] * y + inv[5]) * 1024.0).astype(np.int64) + 32
    return ax, ay, x0, y0


def resample_reference(src: np.ndarray, inv: np.ndarray, ow: int, oh: int) -> np.ndarray:
    """The definition of the resampling: every pixel of an ``oh`` x ``ow`` frame (numpy).

    Output pixel ``(x, y)`` samples the source at ``inv @ (x, y, 1)`` (:func:`_fixed_axes`);
    its four neighbours are weighted by products of the 1/16 fractions (weights sum to 256),
    pixels outside the source count as transparent, and each premultiplied channel's sum is
    rounded (``(sum + 128) >> 8``).

    Parameters
    ----------
    src : ndarray of shape (h, w, 4), uint8
    inv : ndarray of shape (6,)
        :func:`inverse_map` of the transform.

    Returns
    -------
    ndarray of shape (oh, ow, 4), uint8
    """
    h, w = src.shape[:2]
    pad = np.zeros((h + 2, w + 2, 4), np.uint32)
    pad[1:-1, 1:-1] = src
    ax, ay, x0, y0 = _fixed_axes(inv, ow, oh)
    sx = (x0[:, None] + ax[None, :]) >> 6
    sy = (y0[:, None] + ay[None, :]) >> 6
    xi, yi = sx >> 4, sy >> 4
    fx, fy = (sx & 15)[..., None], (sy & 15)[..., None]
    ok = (xi >= -1) & (xi <= w - 1) & (yi >= -1) & (yi <= h - 1)
    xi, yi = np.where(ok, xi + 1, 0), np.where(ok, yi + 1, 0)
    v = (pad[yi, xi] * ((SUB - fx) * (SUB - fy)) + pad[yi, xi + 1] * (fx * (SUB - fy))
         + pad[yi + 1, xi] * ((SUB - fx) * fy) + pad[yi + 1, xi + 1] * (fx * fy))
    out = ((v + 128) >> 8).astype(np.uint8)
    out[~ok] = 0
    return out


@kernel(cache=True, nogil=True)
def _frames(hw, angles, flips, scales, bounds):  # pragma: no cover - compiled
    """:func:`~hemosynth.smear.sprite.affine_frame` of every cell (``bounds[i, 2] < 0``: no
    bound; without a bound the disc covers the whole frame): inverse maps, frames, discs."""
    n = hw.shape[0]
    inv = np.zeros((n, 6))
    frames = np.zeros((n, 2), np.int64)
    discs = np.zeros((n, 3))
    for i in range(n):
        m0, m1, m2, m3, m4, m5, ow, oh, dx, dy, dr, _ = frame_geometry(
            hw[i, 0], hw[i, 1], angles[i], flips[i], scales[i], bounds[i, 0], bounds[i, 1],
            bounds[i, 2])
        inv[i, 0], inv[i, 1], inv[i, 2], inv[i, 3], inv[i, 4], inv[i, 5] = _inverse(
            m0, m1, m2, m3, m4, m5)
        frames[i, 0], frames[i, 1] = ow, oh
        discs[i, 0], discs[i, 1], discs[i, 2] = dx, dy, dr
    return inv, frames, discs


@kernel(inline="always")
def _spread_one(raw, o, h, w, stain, factors, out):  # pragma: no cover - compiled
    """Source of ``h`` x ``w`` RGBA bytes at ``raw[o:]`` into ``out``: padded with a
    transparent pixel all round, each pixel a 64-bit word with one channel per 16-bit lane;
    with ``stain``, each pixel re-stained by ``factors`` first (as
    :func:`~hemosynth.smear.kernels.restain_premultiplied`)."""
    pw = w + 2
    for x in range(pw):
        out[x] = 0
        out[(h + 1) * pw + x] = 0
    for y in range(h):
        t = (y + 1) * pw
        out[t] = 0
        out[t + w + 1] = 0
        p = o + y * w * 4
        for x in range(w):
            q = _U(p + 4 * x)
            r, g, b, a = raw[q], raw[q + _U(1)], raw[q + _U(2)], raw[q + _U(3)]
            if stain and a != 0:
                r, g, b = restain_pixel(r, g, b, a, factors)
            out[t + 1 + x] = (_U(r) | (_U(g) << _U(16)) | (_U(b) << _U(32)) | (_U(a) << _U(48)))


@kernel(inline="always")
def _inside(bx, by, w, h):  # pragma: no cover - compiled
    """Whether the sample at fixed-point ``(bx, by)`` (1/1024 pixel, as in :func:`_resample`)
    has its four neighbours in the source padded by one pixel."""
    xi, yi = ((bx >> 6) >> 4), ((by >> 6) >> 4)
    return xi >= -1 and xi <= w - 1 and yi >= -1 and yi <= h - 1


@kernel(cache=True, nogil=True)
def _resample(raw, roff, shw, stain, factors, order, starts, inv, frames, discs, out, ooff, ext):
    # pragma: no cover - compiled
    """Resample every cell into its frame of ``out`` (32-bit RGBA words, every word written)
    and find each frame's alpha extent. Source by source: each is spread (and re-stained)
    once into a small buffer that stays in the cache while its cells
    (``order[starts[k]:starts[k + 1]]``) are resampled from it."""
    top, big = 0, 0
    for i in range(frames.shape[0]):
        top = max(top, frames[i, 0])
    for k in range(shw.shape[0]):
        big = max(big, (shw[k, 0] + 2) * (shw[k, 1] + 2))
    ax = np.empty(top, np.int32)
    ay = np.empty(top, np.int32)
    taps = np.empty(top, np.int32)  # a row's source words and packed weights (_resample_cell)
    weights = np.empty(top, np.int32)
    src = np.empty(big, np.uint64)
    for k in range(shw.shape[0]):
        if starts[k] == starts[k + 1]:
            continue
        h, w = shw[k, 0], shw[k, 1]
        _spread_one(raw, roff[k], h, w, stain[k], factors, src)
        pw = w + 2
        base = pw + 1  # the word of source pixel (0, 0)
        for c in range(starts[k], starts[k + 1]):
            i = order[c]
            _resample_cell(src, base, pw, h, w, inv, frames, discs, out, ooff, ext, ax, ay,
                           taps, weights, i)


@kernel(inline="always")
def _resample_cell(src, base, pw, h, w, inv, frames, discs, out, ooff, ext, ax, ay, taps,
                   weights, i):
    """Resample cell ``i`` from the spread source ``src`` (see :func:`_resample`). Each row
    in two loops: the sample positions (which vectorises; in 32 bits, as AVX2 has no 64-bit
    multiply), then the bilinear sums. Indices are unsigned where they cannot be negative, so
    that numba adds no wraparound checks."""
    # pragma: no cover - compiled
    ow, oh = frames[i, 0], frames[i, 1]
    cx, cy, r = discs[i, 0], discs[i, 1], discs[i, 2]
    for x in range(ow):
        ax[x] = np.int32(np.rint(inv[i, 0] * x * 1024.0))
        ay[x] = np.int32(np.rint(inv[i, 3] * x * 1024.0))
    o = ooff[i]
    x0, y0, x1, y1 = ow, oh, 0, 0
    for y in range(oh):
        row = o + y * ow
        dy = y - cy
        rem = r * r - dy * dy
        urow = _U(row)
        if rem < 0.0:
            for x in range(ow):
                out[urow + _U(x)] = 0
            continue
        half = np.sqrt(rem)
        xa = max(0, int(np.floor(cx - half)))
        xb = min(ow, int(np.ceil(cx + half)) + 1)
        for x in range(xa):
            out[urow + _U(x)] = 0
        for x in range(xb, ow):
            out[urow + _U(x)] = 0
        bx = np.int64(np.rint((inv[i, 1] * y + inv[i, 2]) * 1024.0)) + 32
        by = np.int64(np.rint((inv[i, 4] * y + inv[i, 5]) * 1024.0)) + 32
        # the samples inside the source (padding included) form one run of x, as sx and
        # sy are monotonic in x: zeros before and after it, no checks within it
        lo, hi = xa, xb - 1
        while lo <= hi and not _inside(bx + ax[lo], by + ay[lo], w, h):
            out[row + lo] = 0
            lo += 1
        while hi >= lo and not _inside(bx + ax[hi], by + ay[hi], w, h):
            out[row + hi] = 0
            hi -= 1
        bx32, by32 = np.int32(bx), np.int32(by)
        base32, pw32 = np.int32(base), np.int32(pw)
        for kk in range(hi + 1 - lo):  # each sample's top-left source word and its fractions
            k = _U(kk)
            sx = (bx32 + ax[_U(lo) + k]) >> np.int32(6)
            sy = (by32 + ay[_U(lo) + k]) >> np.int32(6)
            taps[k] = base32 + (sy >> np.int32(4)) * pw32 + (sx >> np.int32(4))
            weights[k] = ((sx & np.int32(15)) << np.int32(8)) | (sy & np.int32(15))
        orow = _U(row + lo)
        for kk in range(hi + 1 - lo):
            k = _U(kk)
            p = _U(taps[k])
            q = p + _U(pw)
            wk = _U(weights[k])
            fx, fy = wk >> _U(8), wk & _U(255)
            gx, gy = _U(16) - fx, _U(16) - fy
            v = ((src[p] * gx + src[p + _U(1)] * fx) * gy
                 + (src[q] * gx + src[q + _U(1)] * fx) * fy + _U(0x0080008000800080))
            v = (v >> _U(8)) & _LANES
            v = (v | (v >> _U(8))) & _U(0x0000FFFF0000FFFF)
            out[orow + k] = np.uint32((v | (v >> _U(16))) & _U(0xFFFFFFFF))
        # the row's first and last pixel of alpha > 0
        first, last = lo, hi
        while first <= hi and out[urow + _U(first)] >> np.uint32(24) == 0:
            first += 1
        while last >= first and out[urow + _U(last)] >> np.uint32(24) == 0:
            last -= 1
        if first > last:
            last = -1
        if last >= 0:
            x0, x1 = min(x0, first), max(x1, last + 1)
            y0 = min(y0, y)
            y1 = y + 1
    ext[i, 0], ext[i, 1], ext[i, 2], ext[i, 3] = x0, y0, x1, y1


def transform_many(
    sources: Sequence[np.ndarray],
    which: Sequence[int],
    angles: Sequence[float],
    flips: Sequence[bool],
    scales: Sequence[float],
    bounds: Sequence[tuple[float, float, float] | None] | None = None,
    factors: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Transform many premultiplied sprites at once, optionally re-staining them first.

    Parameters
    ----------
    sources : sequence of ndarray of shape (h, w, 4), uint8
        The distinct premultiplied sources.
    which : sequence of int
        For each cell, the index of its source in ``sources``.
    angles, flips, scales : sequences
        Each cell's transform, as for :func:`~hemosynth.smear.sprite.transform_sprite`.
    bounds : sequence, optional
        Each source's :func:`~hemosynth.smear.sprite.alpha_circle` (or None): limits the
        resampling to where the source can reach.
    factors : ndarray of shape (3, 3, 256), float32, optional
        Re-stain every source first, exactly as
        :func:`~hemosynth.smear.kernels.restain_premultiplied` with these factors would (done
        while each source is read, so the re-stained copy is never stored).

    Returns
    -------
    list of ndarray of shape (h, w, 4), uint8
        Each cell's sprite cropped to its alpha > 0 extent (at least 1 x 1), as
        :func:`~hemosynth.smear.sprite.transform_premultiplied` crops: read-only views (rows
        as far apart as the frame is wide) into one buffer of every frame, as a
        :class:`~hemosynth.smear.kernels.SpriteViews`, which
        :meth:`~hemosynth.smear.kernels.SpritePack.build` packs without a copy (a plain list
        on a big-endian machine).
    """
    n = len(which)
    if n == 0:
        return []
    if sys.byteorder != "little":  # pragma: no cover - the pixel words assume little-endian
        if factors is not None:
            sources = [restain_premultiplied(s, factors) for s in sources]
        return [transform_premultiplied(sources[k], float(a), bool(f), float(s),
                                        bounds[k] if bounds is not None else None)
                for k, a, f, s in zip(which, angles, flips, scales, strict=True)]
    srcs = [np.ascontiguousarray(s) for s in sources]
    stain = np.full(len(srcs), factors is not None)
    table = (np.ascontiguousarray(factors, np.float32) if factors is not None
             else np.ones((3, 3, 256), np.float32))
    src_of = np.asarray(which, np.int64).copy()
    flips_ = np.asarray(flips, bool).copy()
    scales_ = np.asarray(scales, np.float64).copy()
    bnd = np.full((len(srcs), 3), -1.0)
    if bounds is not None:
        for k, b in enumerate(bounds):
            if b is not None:
                bnd[k] = b
    cell_bounds = bnd[src_of]
    for i in np.flatnonzero(scales_ < 0.5):  # strong shrinks: area-average the source first
        k = src_of[i]  # (re-stained first: the averaged source is not re-stained again)
        first = restain_premultiplied(srcs[k], table) if stain[k] else srcs[k]
        s, flips_[i], scales_[i] = shrink_first(first, bool(flips_[i]), float(scales_[i]))
        srcs.append(np.ascontiguousarray(s))
        stain = np.append(stain, False)
        src_of[i] = len(srcs) - 1
        cell_bounds[i] = -1.0
    shw = np.array([s.shape[:2] for s in srcs], np.int64).reshape(-1, 2)
    if shw.max() > MAX_SIDE:  # the kernel's sample positions and source words are 32-bit
        raise ValueError(f"a sprite of {shw.max()} px: sprites are at most {MAX_SIDE} px a side")
    roff = np.zeros(len(srcs), np.int64)
    roff[1:] = np.cumsum(shw[:, 0] * shw[:, 1] * 4)[:-1]
    raw = np.concatenate([s.reshape(-1) for s in srcs])
    inv, frames, discs = _frames(shw[src_of], np.asarray(angles, np.float64), flips_, scales_,
                                 cell_bounds)
    sizes = frames[:, 0] * frames[:, 1]
    ooff = np.zeros(n, np.int64)
    ooff[1:] = np.cumsum(sizes)[:-1]
    words = np.empty(int(sizes.sum()) + n, np.uint32)  # every frame, then n spare words
    ext = np.zeros((n, 4), np.int64)
    order = np.argsort(src_of, kind="stable")
    starts = np.searchsorted(src_of[order], np.arange(len(srcs) + 1))
    _resample(raw, roff, shw, stain, table, order, starts, inv, frames, discs, words, ooff, ext)

    def centre(i: int) -> np.ndarray:  # the centre pixel of cell i's (re-stained) source
        src = srcs[src_of[i]]
        if stain[src_of[i]]:
            h, w = src.shape[:2]
            src = restain_premultiplied(src[h // 2 : h // 2 + 1, w // 2 : w // 2 + 1], table)
        return centre_pixel(src)

    return _views(words, ooff, frames, ext, centre)


def _views(words, ooff, frames, ext, centre) -> SpriteViews:
    """Each resampled frame cut to its alpha's extent: read-only views into ``words``, whose
    last ``len(ooff)`` words are free for the centre pixels (``centre(i)``) of sprites shrunk
    below a pixel."""
    n = len(ooff)
    pixels = words.view(np.uint8)  # little-endian: R, G, B, A
    x0, y0, x1, y1 = ext.T
    ow = frames[:, 0]
    offsets = 4 * (ooff + y0 * ow + x0)
    strides = 4 * ow
    shapes = np.stack([y1 - y0, x1 - x0], axis=1)
    for i in np.flatnonzero((x1 <= x0) | (y1 <= y0)).tolist():  # shrunk below one pixel:
        o = 4 * (words.size - n + i)  # keep the centre pixel
        pixels[o : o + 4] = centre(i).reshape(4)
        offsets[i], strides[i], shapes[i] = o, 4, (1, 1)
    return SpriteViews(pixels, offsets, strides, shapes)


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernels on a tiny input."""
    s = np.full((3, 3, 4), 200, np.uint8)
    transform_many([s], [0, 0], [30.0, 0.0], [True, False], [1.5, 0.3], [(1.0, 1.0, 1.5)],
                   np.ones((3, 3, 256), np.float32))
