"""Compiled (numba) loops of rendering: pasting many sprites, visibility, and the optics pass.

A smear has hundreds of small sprites and five million pixels; in numpy each sprite costs a
handful of temporary arrays, and each optical effect a pass over the frame. These kernels do
the same arithmetic in one compiled loop each. Their plain numpy counterparts stay in
:mod:`hemosynth.smear.render` (:func:`~hemosynth.smear.render.composite_over`,
:func:`~hemosynth.smear.render.visibility_reference`) and the tests hold the two equal.

Sprites travel as a :class:`SpritePack`: one flat uint8 buffer of premultiplied RGBA pixels
with each sprite's offset, height, width and row stride, and its paste point; the sprites of
the batch transform are packed as they lie (:class:`SpriteViews`), others are copied.

The kernels are compiled on first use and cached on disk (``cache=True``); :func:`warm_up`
compiles or loads them before worker processes start, so that each worker only loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from .jit import kernel

_U = np.uint64


class SpriteViews(Sequence):
    """Sprites that are views into one flat buffer, which also says where they are.

    A view is made when it is asked for: the kernels read the buffer itself, so a smear's
    ~600 sprites cost nothing as arrays unless something looks at one.

    Parameters
    ----------
    buf : ndarray of shape (S,), uint8
    offsets, strides : ndarray of shape (N,), int64
        Index in ``buf`` of each sprite's first byte, and its row stride in bytes (pixels are
        4 bytes apart).
    shapes : ndarray of shape (N, 2), int64
        ``(h, w)`` of each sprite.
    """

    def __init__(self, buf: np.ndarray, offsets: np.ndarray, strides: np.ndarray,
                 shapes: np.ndarray):
        self.buf = buf
        self.offsets = np.asarray(offsets, np.int64).reshape(-1)
        self.strides = np.asarray(strides, np.int64).reshape(-1)
        self.shapes = np.asarray(shapes, np.int64).reshape(-1, 2)
        if not len(self.offsets) == len(self.strides) == len(self.shapes):
            raise ValueError("offsets, strides and shapes differ in length")

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):
        """Sprite ``i``, a read-only (h, w, 4) view of ``buf``; a slice gives a SpriteViews."""
        if isinstance(i, slice):
            return self.take(range(len(self))[i])
        h, w = (int(v) for v in self.shapes[i])
        v = np.ndarray((h, w, 4), np.uint8, self.buf, int(self.offsets[i]),
                       (int(self.strides[i]), 4, 1))
        v.flags.writeable = False
        return v

    def take(self, indices: Sequence[int]) -> SpriteViews:
        """The sprites at ``indices``, in that order."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        return SpriteViews(self.buf, self.offsets[idx], self.strides[idx], self.shapes[idx])


@dataclass(frozen=True)
class SpritePack:
    """Sprites packed for the kernels.

    Attributes
    ----------
    buf : ndarray of shape (S,), uint8
        A flat buffer holding every sprite's premultiplied RGBA pixels.
    offsets : ndarray of shape (N,), int64
        Index in ``buf`` of each sprite's first byte.
    shapes : ndarray of shape (N, 2), int64
        ``(h, w)`` of each sprite.
    xy : ndarray of shape (N, 2), int64
        Paste point (top-left corner) of each sprite on the canvas.
    strides : ndarray of shape (N,), int64
        Bytes from one row of each sprite to the next in ``buf`` (``4 * w`` for a sprite
        stored row after row; more for a crop of a larger frame).
    """

    buf: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    xy: np.ndarray
    strides: np.ndarray

    @classmethod
    def build(cls, sprites: Sequence[np.ndarray], xy: np.ndarray) -> SpritePack:
        """Pack ``sprites`` (each (h, w, 4) uint8) pasted at ``xy`` (N, 2) top-left corners.

        A :class:`SpriteViews` (as :func:`hemosynth.smear.warp.transform_many` returns the
        sprites) is packed without a copy; other sprites are copied into a new buffer, row
        after row.
        """
        n = len(sprites)
        xy = np.asarray(xy, np.int64).reshape(n, 2)
        if isinstance(sprites, SpriteViews):
            return cls(sprites.buf, sprites.offsets, sprites.shapes.copy(), xy, sprites.strides)
        shapes = np.zeros((n, 2), np.int64)
        for i, s in enumerate(sprites):
            shapes[i] = s.shape[:2]
        sizes = shapes[:, 0] * shapes[:, 1] * 4
        offsets = np.zeros(n, np.int64)
        if n:
            offsets[1:] = np.cumsum(sizes)[:-1]
            buf = np.concatenate([s.reshape(-1) for s in sprites])
        else:
            buf = np.zeros(0, np.uint8)
        return cls(buf, offsets, shapes, xy, shapes[:, 1] * 4)

    def __len__(self) -> int:
        return len(self.offsets)


@kernel(cache=True, nogil=True)
def _composite(canvas, buf, offsets, shapes, xy, strides):  # pragma: no cover - compiled
    height, width = canvas.shape[0], canvas.shape[1]
    flat = canvas.reshape(height * width * 3)
    # a sprite row's transparency and colour laid out as the canvas row is (3 bytes a pixel),
    # so that the blend is one loop over bytes in 16-bit arithmetic that vectorises
    inv3 = np.empty(3 * width, np.uint16)
    src3 = np.empty(3 * width, np.uint16)
    for i in range(offsets.shape[0]):
        h, w = shapes[i, 0], shapes[i, 1]
        x0, y0 = xy[i, 0], xy[i, 1]
        cx0, cx1 = max(x0, 0), min(x0 + w, width)
        cy0, cy1 = max(y0, 0), min(y0 + h, height)
        m = _U(max(cx1 - cx0, 0))
        for y in range(cy0, cy1):
            # unsigned indices: numba then skips its negative-index wraparound on every access
            p = _U(offsets[i] + (y - y0) * strides[i] + (cx0 - x0) * 4)
            q = _U((y * width + cx0) * 3)
            for j in range(m):
                s = p + _U(4) * _U(j)
                k = _U(3) * _U(j)
                inv = np.uint16(255) - np.uint16(buf[s + _U(3)])
                inv3[k] = inv
                inv3[k + _U(1)] = inv
                inv3[k + _U(2)] = inv
                src3[k] = buf[s]
                src3[k + _U(1)] = buf[s + _U(1)]
                src3[k + _U(2)] = buf[s + _U(2)]
            # dst * (255 - a) / 255 rounded, plus the premultiplied colour, at most 255: without
            # branches (a = 255 gives the colour, a = 0 the canvas, exactly); every step fits
            # 16 bits (dst * inv + 127 <= 65152)
            for j in range(_U(3) * m):
                v = np.uint16(np.uint16(flat[q + _U(j)]) * inv3[j] + np.uint16(127))
                v = np.uint16(np.uint16(v + np.uint16(1) + (v >> np.uint16(8))) >> np.uint16(8))
                flat[q + _U(j)] = np.uint8(min(np.uint16(v + src3[j]), np.uint16(255)))


def composite_pack(canvas: np.ndarray, pack: SpritePack) -> None:
    """Paste every sprite of ``pack`` in order onto ``canvas`` (RGB uint8), in place.

    The same premultiplied "over" as :func:`hemosynth.smear.render.composite_over`, byte for
    byte.
    """
    if len(pack):
        _composite(canvas, pack.buf, pack.offsets, pack.shapes, pack.xy, pack.strides)


@kernel(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _sum64(values, m):  # pragma: no cover - compiled
    """The float64 sum of ``values[:m]``, in partial sums that vectorise (``reassoc``): not
    in pixel order, but always in the same order, so the result is reproducible."""
    s = 0.0
    for j in range(m):
        s += np.float64(values[j])
    return s


#: rows of the field that :func:`_visibility` treats at a time (its transparencies, float32,
#: then stay in the cache: 64 rows of 2592 pixels are 0.66 MB)
VISIBILITY_BAND = 64


@kernel(cache=True, nogil=True)
def _visibility(buf, offsets, shapes, xy, strides, height, width, masks, moff, band):
    # pragma: no cover - compiled
    # masks: a flag per sprite pixel (each sprite's from moff), or empty when none are wanted.
    # The field is done in bands of rows, top to bottom, each with every sprite in reverse
    # order: a pixel meets the sprites that cover it in the same order as in one pass over the
    # field, and a sprite's rows come in the same order, so every product and every sum is the
    # same as in one pass (the transparencies of a band stay in the cache)
    want = masks.shape[0] > 0
    n = offsets.shape[0]
    frac = np.zeros(n)
    area = np.zeros(n, np.int64)
    seen = np.zeros(n)
    count = np.zeros(n, np.int64)
    inner = np.zeros(n, np.int64)
    mass = np.zeros(n, np.int64)  # the alpha sum of a sprite not wholly inside the field
    skip = np.zeros(n, np.bool_)
    for i in range(n):
        h, w = shapes[i, 0], shapes[i, 1]
        x0, y0 = xy[i, 0], xy[i, 1]
        cx0, cx1 = max(x0, 0), min(x0 + w, width)
        cy0, cy1 = max(y0, 0), min(y0 + h, height)
        if cx0 >= cx1 or cy0 >= cy1:
            skip[i] = True
            continue
        if cx1 - cx0 < w or cy1 - cy0 < h:
            o, rs = offsets[i], strides[i]
            for r in range(h):
                for k in range(w):
                    mass[i] += np.int64(buf[_U(o + r * rs + 4 * k + 3)])
            skip[i] = mass[i] == 0
    one = np.float32(1.0)
    half = np.float32(0.5)
    d255 = np.float32(255.0)
    trans = np.empty(band * width, np.float32)
    contrib = np.empty(width, np.float32)
    for b0 in range(0, height, band):
        b1 = min(b0 + band, height)
        trans[: (b1 - b0) * width] = one
        for i in range(n - 1, -1, -1):
            if skip[i]:
                continue
            h, w = shapes[i, 0], shapes[i, 1]
            x0, y0 = xy[i, 0], xy[i, 1]
            ry0, ry1 = max(y0, b0), min(y0 + h, b1)
            if ry0 >= ry1:
                continue
            cx0, cx1 = max(x0, 0), min(x0 + w, width)
            o = offsets[i]
            rs = strides[i]
            m = cx1 - cx0
            s = seen[i]
            c = count[i]
            t_in = inner[i]
            for y in range(ry0, ry1):
                # unsigned: no wraparound checks; the alpha byte of the row's first pixel in
                # buf, its flag in masks and its place in trans
                p = _U(o + (y - y0) * rs + (cx0 - x0) * 4 + 3)
                k = _U(moff[i] + (y - y0) * w + (cx0 - x0))
                q = _U((y - b0) * width + cx0)
                # without branches (alpha 0 gives 0 and keeps t, alpha 255 gives t and leaves
                # 0, exactly), then the sums in pixel order
                for j in range(m):
                    a8 = buf[p + _U(4 * j)]
                    t_in += np.int64(a8)
                    a = np.float32(a8) / d255
                    t = trans[q + _U(j)]
                    contrib[j] = a * t
                    trans[q + _U(j)] = t * (one - a)
                s += _sum64(contrib, m)
                if want:
                    for j in range(m):
                        if contrib[j] >= half:
                            c += 1
                            masks[k + _U(j)] = 1
                else:
                    for j in range(m):
                        c += np.int64(contrib[j] >= half)
            seen[i] = s
            count[i] = c
            inner[i] = t_in
    for i in range(n):
        total = mass[i] if mass[i] > 0 else inner[i]
        if skip[i] or total == 0:
            continue
        frac[i] = seen[i] / (total / 255.0)
        area[i] = count[i]
    return frac, area


@kernel(cache=True, nogil=True)
def _field_extents(buf, offsets, shapes, xy, strides, height, width):
    # pragma: no cover - compiled
    n = offsets.shape[0]
    out = np.zeros((n, 4), np.int64)
    for i in range(n):
        h, w = shapes[i, 0], shapes[i, 1]
        x0, y0 = xy[i, 0], xy[i, 1]
        cx0, cx1 = max(x0, 0), min(x0 + w, width)
        cy0, cy1 = max(y0, 0), min(y0 + h, height)
        ex0, ey0, ex1, ey1 = width, height, 0, 0  # none found: ex1 <= ex0
        for y in range(cy0, cy1):
            p = _U(offsets[i] + (y - y0) * strides[i] + (cx0 - x0) * 4 + 3)
            for x in range(cx0, cx1):
                if buf[p + _U(4 * (x - cx0))] != 0:
                    ex0, ex1 = min(ex0, x), max(ex1, x + 1)
                    ey0, ey1 = min(ey0, y), y + 1
        if ex0 < ex1:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = ex0, ey0, ex1, ey1
    return out


def field_extents(pack: SpritePack, width: int, height: int) -> np.ndarray:
    """Each packed sprite's alpha > 0 extent inside a ``width`` x ``height`` field, in field
    pixels: int64 (N, 4) ``x0, y0, x1, y1`` (ends exclusive); all 0 for a sprite with nothing
    inside the field."""
    return _field_extents(pack.buf, pack.offsets, pack.shapes, pack.xy, pack.strides,
                          int(height), int(width))


def visibility_pack(
    pack: SpritePack, width: int, height: int, masks: bool = False,
    band: int = VISIBILITY_BAND,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None] | None]:
    """Visible fraction, visible area and (optionally) visible masks of every packed sprite.

    The kernel of :func:`hemosynth.smear.render.visibility` (see there for the definitions);
    the per-pixel arithmetic is the same float32 as the reference, the sums are float64. The
    field is done ``band`` rows at a time (the results do not depend on it, bit for bit).

    Returns
    -------
    fraction : ndarray of shape (N,)
    area : ndarray of shape (N,), int64
    visible_masks : list of ndarray or None
        With ``masks``, each sprite's boolean visible mask inside its clipped window (None for
        a sprite wholly outside the field).
    """
    n = len(pack)
    if n == 0:
        return np.zeros(0), np.zeros(0, np.int64), [] if masks else None
    sizes = pack.shapes[:, 0] * pack.shapes[:, 1]
    moff = np.zeros(n, np.int64)  # each sprite's first flag in flat, row after row
    moff[1:] = np.cumsum(sizes)[:-1]
    flat = np.zeros(int(sizes.sum()) if masks else 0, np.uint8)
    frac, area = _visibility(pack.buf, pack.offsets, pack.shapes, pack.xy, pack.strides,
                             int(height), int(width), flat, moff, max(int(band), 1))
    if not masks:
        return frac, area, None
    out: list[np.ndarray | None] = []
    for i in range(n):
        h, w = (int(v) for v in pack.shapes[i])
        x0, y0 = (int(v) for v in pack.xy[i])
        cx0, cx1 = max(x0, 0), min(x0 + w, width)
        cy0, cy1 = max(y0, 0), min(y0 + h, height)
        o, rs = int(pack.offsets[i]), int(pack.strides[i])
        alpha = np.lib.stride_tricks.as_strided(pack.buf[o + 3 :], (h, w), (rs, 4))
        if cx0 >= cx1 or cy0 >= cy1 or not alpha.any():
            out.append(None)
            continue
        m = flat[moff[i] : moff[i] + h * w].reshape(h, w)
        out.append(m[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(bool))
    return frac, area, out


# -- stain harmonisation ------------------------------------------------------------------------


@kernel(inline="always")
def restain_pixel(r, g, b, a, factors):  # pragma: no cover - compiled
    """One premultiplied pixel (alpha ``a`` > 0) re-stained by ``factors``
    (:func:`restain_factors`): its colour unpremultiplied to straight uint8 levels, mapped, and
    premultiplied again (float32 arithmetic). Returns the three new colour bytes."""
    half = np.float32(0.5)
    unit = np.float32(255.0) / np.float32(a)
    # unsigned indices: numba then skips its negative-index wraparound on the nine reads
    l0 = _U(min(int(np.float32(r) * unit + half), 255))
    l1 = _U(min(int(np.float32(g) * unit + half), 255))
    l2 = _U(min(int(np.float32(b) * unit + half), 255))
    cover = np.float32(a) / np.float32(255.0)
    k0, k1, k2 = _U(0), _U(1), _U(2)
    v0 = min(factors[k0, k0, l0] * factors[k1, k0, l1] * factors[k2, k0, l2], np.float32(255.0))
    v1 = min(factors[k0, k1, l0] * factors[k1, k1, l1] * factors[k2, k1, l2], np.float32(255.0))
    v2 = min(factors[k0, k2, l0] * factors[k1, k2, l1] * factors[k2, k2, l2], np.float32(255.0))
    return (np.uint8(min(int(v0 * cover + half), 255)), np.uint8(min(int(v1 * cover + half), 255)),
            np.uint8(min(int(v2 * cover + half), 255)))


@kernel(cache=True, nogil=True)
def _restain(sprite, factors):  # pragma: no cover - compiled
    h, w = sprite.shape[0], sprite.shape[1]
    n = h * w
    src = sprite.reshape(n * 4)
    out = np.zeros(n * 4, np.uint8)
    for k in range(n):
        p = _U(4 * k)  # unsigned: no wraparound checks
        a = src[p + _U(3)]
        out[p + _U(3)] = a
        if a == 0:
            continue
        out[p], out[p + _U(1)], out[p + _U(2)] = restain_pixel(
            src[p], src[p + _U(1)], src[p + _U(2)], a, factors)
    return out.reshape(h, w, 4)


def restain_factors(
    lut: np.ndarray, mat: np.ndarray, illuminant: np.ndarray
) -> np.ndarray:
    """The per-level factors of a linear optical-density map, float32 of shape (3, 3, 256).

    With ``od_in[k] = lut[k, level_k]`` and ``od_out = od_in @ mat``, the output colour
    ``illuminant[c] * 10 ** -od_out[c]`` is the product over ``k`` of
    ``factors[k, c, level_k]`` (the illuminant folded into ``k = 0``): three table reads per
    channel instead of a matrix product and a power.
    """
    lut = np.asarray(lut, np.float64)
    mat = np.asarray(mat, np.float64)
    f = np.power(10.0, -lut[:, None, :] * mat[:, :, None])  # [k, c, level]
    f[0] *= np.asarray(illuminant, np.float64)[:, None]
    return f.astype(np.float32)


def restain_premultiplied(sprite_p: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Map a premultiplied sprite's straight colours through a linear optical-density map.

    Parameters
    ----------
    sprite_p : ndarray of shape (h, w, 4), uint8
    factors : ndarray of shape (3, 3, 256), float32
        The map as :func:`restain_factors` gives it.

    Returns
    -------
    ndarray of shape (h, w, 4), uint8
        Premultiplied again by the unchanged alpha; pixels of alpha 0 stay 0.
    """
    return _restain(np.ascontiguousarray(sprite_p), factors)


# -- optics -------------------------------------------------------------------------------------

#: sensor noise is drawn 8 bits at a time: the standard normal's quantiles at (i + 0.5) / 256,
#: rescaled to unit variance (a normal draw to 1/256 of probability, within +-2.9 sd)
NOISE_BITS = 8


@lru_cache(maxsize=1)
def normal_table() -> np.ndarray:
    """Unit-variance quantiles of the normal at ``(i + 0.5) / 256``: float64 of shape (256,)."""
    n = 1 << NOISE_BITS
    inv = NormalDist().inv_cdf
    q = np.array([inv((i + 0.5) / n) for i in range(n)])
    return q / np.sqrt(np.mean(q * q))


def noise_table(noise_sd: float) -> np.ndarray:
    """Noise in grey levels by luminance and random byte, int16 of shape (256, 256).

    Entry ``[lum, b]`` is ``round(noise_sd * sqrt(lum / 255) * q[b])``, ``q`` the
    :func:`normal_table`: shot-noise-like, its sd growing with the square root of brightness.
    """
    amp = noise_sd * np.sqrt(np.arange(256) / 255.0)
    return np.floor(amp[:, None] * normal_table()[None, :] + 0.5).astype(np.int16)


@kernel(inline="always")
def _splitmix(state):  # pragma: no cover - compiled
    state = state + _U(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return state, z ^ (z >> _U(31))


@kernel(cache=True, nogil=True)
def _linear_axis(n_out, n_in):  # pragma: no cover - compiled
    """Source index and weight of a bilinear upsampling axis (half-pixel centres, clamped)."""
    idx = np.zeros(n_out, np.int64)
    frac = np.zeros(n_out, np.float32)
    scale = n_in / n_out
    for k in range(n_out):
        s = (k + 0.5) * scale - 0.5
        if s < 0.0:
            s = 0.0
        i = int(s)
        if i >= n_in - 1:
            i = n_in - 2 if n_in > 1 else 0
            s = float(n_in - 1)
        idx[k] = i
        frac[k] = s - i
    return idx, frac


@kernel(cache=True, nogil=True)
def _optics(img, blurred, focus, gain_amount, cx, cy, far, noise, seed):
    # pragma: no cover - compiled
    height, width = img.shape[0], img.shape[1]
    n = 3 * width
    src = img.reshape(height, n)
    out = np.empty((height, n), np.uint8)
    fh, fw = focus.shape[0], focus.shape[1]
    use_focus = blurred.shape[0] == height
    use_noise = noise.shape[0] == 256
    soft = blurred.reshape(blurred.shape[0], 3 * blurred.shape[1])
    half = np.float32(0.5)
    one = np.float32(1.0)
    # the focus grid interpolated along x once per grid row; along y per image row
    xi, xf = _linear_axis(width, fw)
    yi, yf = _linear_axis(height, fh)
    frow = np.empty((fh, width), np.float32)
    for r in range(fh):
        for x in range(width):
            c0 = xi[x]
            c1 = min(c0 + 1, fw - 1)
            frow[r, x] = focus[r, c0] + (focus[r, c1] - focus[r, c0]) * xf[x]
    # gain = 1 - amount * (dx^2 + dy^2) / far = (1 - amount * dy^2 / far) - gx, kept in [0, 1]
    gx = np.empty(width, np.float32)
    for x in range(width):
        gx[x] = gain_amount * (x + 0.5 - cx) * (x + 0.5 - cx) / far
    # per pixel, then per channel: weights of the sharp and the blurred pixel, times the gain,
    # in 1/256 (keep + mix <= 256, so every sum below fits 16 bits)
    k1 = np.empty(width, np.uint16)
    m1 = np.zeros(width, np.uint16)
    keep = np.empty(n, np.uint16)
    mix = np.zeros(n, np.uint16)
    words = np.zeros(width // 8 + 1, np.uint64)  # 8 random bytes a word, low byte first
    bytes_ = words.view(np.uint8)  # (little-endian, as numba's targets are)
    idx = np.zeros(width, np.int32)
    noise3 = np.zeros(n, np.int16)
    table = noise.reshape(noise.size)
    state = _U(seed)
    for y in range(height):
        gy = np.float32(1.0 - gain_amount * (y + 0.5 - cy) * (y + 0.5 - cy) / far)
        r0, fy = yi[y], yf[y]
        r1 = min(r0 + 1, fh - 1)
        if use_focus:
            for x in range(width):
                g = min(max(gy - gx[x], np.float32(0.0)), one)
                f = frow[r0, x] + (frow[r1, x] - frow[r0, x]) * fy
                w = min(max(half + half * f, np.float32(0.0)), one)
                m = np.uint32(w * g * np.float32(256.0) + half)
                k1[x] = np.uint16(np.uint32(g * np.float32(256.0) + half) - m)
                m1[x] = np.uint16(m)
        else:
            for x in range(width):
                g = min(max(gy - gx[x], np.float32(0.0)), one)
                k1[x] = np.uint16(np.uint32(g * np.float32(256.0) + half))
        for x in range(width):
            kx = k1[x]
            mx = m1[x]
            j = 3 * x
            keep[j] = keep[j + 1] = keep[j + 2] = kx
            mix[j] = mix[j + 1] = mix[j + 2] = mx
        row = src[y]
        dst = out[y]
        srow = soft[y] if use_focus else row
        # (sharp * keep + blurred * mix) / 256, rounded: at most 255 * 256 + 128, so 16-bit
        # arithmetic (16 lanes a vector) gives the exact result
        for j in range(n):
            v = np.uint16(np.uint16(np.uint16(row[j]) * keep[j])
                          + np.uint16(np.uint16(srow[j]) * mix[j]) + np.uint16(128))
            dst[j] = np.uint8(v >> np.uint16(8))
        if use_noise:
            for x in range(0, width, 8):
                state, bits = _splitmix(state)
                words[x >> 3] = bits
            # in three simple loops (the first and last vectorise): the table index from the
            # luminance (as OpenCV's RGB2GRAY computes it) and the random byte, the noise of
            # each pixel repeated on its channels, the saturating add; all in 32 bits or less
            for x in range(width):
                lum = (np.int32(dst[3 * x]) * np.int32(4899)
                       + np.int32(dst[3 * x + 1]) * np.int32(9617)
                       + np.int32(dst[3 * x + 2]) * np.int32(1868) + np.int32(8192)) >> np.int32(14)
                idx[x] = (lum << np.int32(8)) | np.int32(bytes_[x])
            for x in range(width):
                d = table[idx[x]]
                noise3[3 * x] = d
                noise3[3 * x + 1] = d
                noise3[3 * x + 2] = d
            for j in range(n):
                v = np.int16(np.int16(dst[j]) + noise3[j])
                dst[j] = np.uint8(min(max(v, np.int16(0)), np.int16(255)))
    return out.reshape(height, width, 3)


def optics_pass(
    img: np.ndarray, blurred: np.ndarray | None, focus_grid: np.ndarray, vignetting: float,
    centre: Sequence[float], noise_sd: float, seed: int,
) -> np.ndarray:
    """Defocus mix, illumination fall-off and sensor noise in one pass over ``img``.

    Parameters
    ----------
    img : ndarray of shape (H, W, 3), uint8
    blurred : ndarray of shape (H, W, 3), uint8, or None
        ``img`` at the largest defocus; each pixel mixes toward it by the weight
        ``clip(0.5 + 0.5 * focus, 0, 1)``, ``focus`` being ``focus_grid`` interpolated
        bilinearly over the field. None: no defocus.
    focus_grid : ndarray of shape (gh, gw), float32
    vignetting : float
        Gain ``1 - vignetting * r**2 / r_far**2``, r the distance to ``centre`` (fractions of
        the field) and r_far that of the farthest corner.
    centre : (float, float)
    noise_sd : float
        Luminance noise in grey levels at full brightness, scaled by the square root of the
        pixel's luminance; one normal draw per pixel (:func:`noise_table`), added to all three
        channels.
    seed : int
        Seed of the noise (drawn by the caller from its generator).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    h, w = img.shape[:2]
    cx, cy = float(centre[0]) * w, float(centre[1]) * h
    far = max(cx**2, (w - cx) ** 2) + max(cy**2, (h - cy) ** 2)
    blur = blurred if blurred is not None else np.zeros((0, 0, 3), np.uint8)
    noise = noise_table(noise_sd) if noise_sd > 0 else np.zeros((0, 0), np.int16)
    return _optics(np.ascontiguousarray(img), blur, np.ascontiguousarray(focus_grid, np.float32),
                   float(vignetting), cx, cy, float(far), noise, int(seed) & (2**63 - 1))


def warm_up() -> None:
    """Compile (or load from the disk cache) every kernel on tiny inputs."""
    canvas = np.zeros((4, 4, 3), np.uint8)
    sprite = np.full((2, 2, 4), 128, np.uint8)
    pack = SpritePack.build([sprite], np.array([[1, 1]]))
    composite_pack(canvas, pack)
    visibility_pack(pack, 4, 4)
    field_extents(pack, 4, 4)
    restain_premultiplied(sprite, restain_factors(np.zeros((3, 256)), np.eye(3), np.ones(3)))
    optics_pass(canvas, canvas, np.zeros((2, 2), np.float32), 0.1, (0.5, 0.5), 1.0, 0)
