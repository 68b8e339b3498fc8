"""The batch sprite transform (hemosynth.smear.warp) against its numpy definition and OpenCV."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hemosynth.smear.warp as warp
from hemosynth.smear.kernels import (
    SpritePack,
    SpriteViews,
    restain_factors,
    restain_premultiplied,
)
from hemosynth.smear.sprite import (
    affine_frame,
    alpha_circle,
    alpha_extent,
    premultiply,
    shrink_first,
    transform_premultiplied,
)
from hemosynth.smear.warp import inverse_map, resample_reference, transform_many


def _blob(rng, h, w, smooth=False):
    """A premultiplied elliptic sprite: random texture, or a smooth colour ramp."""
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    d = (yy - cy) ** 2 / (h / 2) ** 2 + (xx - cx) ** 2 / (w / 2) ** 2
    rgba = np.zeros((h, w, 4), np.uint8)
    if smooth:
        rgba[..., 0] = 120 + 100 * xx / w
        rgba[..., 1] = 80 + 120 * yy / h
        rgba[..., 2] = 200
        rgba[..., 3] = np.clip((1 - d) * 600, 0, 255)
    else:
        inside = d < 1
        rgba[inside] = rng.integers(1, 256, (int(inside.sum()), 4))
    return premultiply(rgba)


def _by_definition(src, angle, flip, scale, bound):
    """What transform_many must give for one cell: the reference resampling of the frame of
    affine_frame, cut to the alpha's extent."""
    if scale < 0.5:
        bound = None
    src, flip, scale = shrink_first(src, flip, scale)
    m, ow, oh, _ = affine_frame(src.shape[0], src.shape[1], angle, flip, scale, bound)
    full = resample_reference(np.ascontiguousarray(src), inverse_map(m), ow, oh)
    ext = alpha_extent(full[:, :, 3])
    if ext is None:
        return None
    return full[ext[1] : ext[3], ext[0] : ext[2]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30))
def test_batch_equals_the_definition_cell_by_cell(seed, n):
    rng = np.random.default_rng(seed)
    srcs = [_blob(rng, int(rng.integers(2, 50)), int(rng.integers(2, 50))) for _ in range(4)]
    bounds = [alpha_circle(s[:, :, 3]) for s in srcs]
    which = rng.integers(0, 4, n)
    angles = rng.uniform(0, 360, n)
    flips = rng.random(n) < 0.5
    scales = rng.uniform(0.05, 2.5, n)
    got = transform_many(srcs, which, angles, flips, scales, bounds)
    assert len(got) == n
    for i in range(n):
        want = _by_definition(srcs[which[i]], float(angles[i]), bool(flips[i]),
                              float(scales[i]), bounds[which[i]])
        if want is None:  # shrunk below a pixel: the centre pixel, alpha at least 1
            assert got[i].shape == (1, 1, 4) and got[i][0, 0, 3] >= 1
            continue
        np.testing.assert_array_equal(got[i], want)
        assert not got[i].flags.writeable


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25))
def test_restaining_while_reading_equals_restaining_the_sources_first(seed, n):
    """``factors`` gives what re-staining every source first (restain_premultiplied) gives,
    strong shrinks (averaged from the re-stained source) and sub-pixel ones included."""
    rng = np.random.default_rng(seed)
    srcs = [_blob(rng, int(rng.integers(2, 40)), int(rng.integers(2, 40))) for _ in range(3)]
    bounds = [alpha_circle(s[:, :, 3]) for s in srcs]
    factors = restain_factors(rng.uniform(0, 1.5, (3, 256)), rng.uniform(-0.3, 1.2, (3, 3)),
                              rng.uniform(180, 255, 3))
    args = (rng.integers(0, 3, n), rng.uniform(0, 360, n), rng.random(n) < 0.5,
            rng.uniform(0.02, 2.0, n))
    got = transform_many(srcs, *args, bounds, factors)
    want = transform_many([restain_premultiplied(s, factors) for s in srcs], *args, bounds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    plain = transform_many(srcs, *args, bounds)
    assert any(not np.array_equal(g, p) for g, p in zip(got, plain, strict=True))  # it did


def test_frames_are_those_of_affine_frame():
    rng = np.random.default_rng(5)
    n = 300
    hw = rng.integers(1, 120, (n, 2))
    angles, flips, scales = rng.uniform(-30, 400, n), rng.random(n) < 0.5, rng.uniform(0.5, 3, n)
    bounds = np.where(rng.random((n, 1)) < 0.7,
                      np.c_[rng.uniform(0, 60, (n, 2)), rng.uniform(0, 50, n)], -1.0)
    inv, frames, discs = warp._frames(hw, angles, flips, scales, bounds)
    for i in range(n):
        b = tuple(bounds[i]) if bounds[i, 2] >= 0 else None
        m, ow, oh, disc = affine_frame(int(hw[i, 0]), int(hw[i, 1]), float(angles[i]),
                                       bool(flips[i]), float(scales[i]), b)
        assert (frames[i] == (ow, oh)).all()
        np.testing.assert_array_equal(inv[i], inverse_map(m))
        if disc is not None:
            np.testing.assert_array_equal(discs[i], disc)


def test_sprites_are_views_the_kernels_pack_without_a_copy():
    rng = np.random.default_rng(9)
    srcs = [_blob(rng, 30, 40), _blob(rng, 25, 20)]
    got = transform_many(srcs, rng.integers(0, 2, 50), rng.uniform(0, 360, 50),
                         rng.random(50) < 0.5, rng.uniform(0.6, 2, 50),
                         [alpha_circle(s[:, :, 3]) for s in srcs])
    pack = SpritePack.build(got, np.zeros((50, 2), np.int64))
    assert isinstance(got, SpriteViews) and pack.buf is got.buf  # no copy
    for i, g in enumerate(got):
        h, w = g.shape[:2]
        o, rs = int(pack.offsets[i]), int(pack.strides[i])
        rows = [pack.buf[o + r * rs : o + r * rs + 4 * w].reshape(w, 4) for r in range(h)]
        np.testing.assert_array_equal(np.stack(rows), g)


@pytest.mark.parametrize("flip", [False, True])
def test_close_to_opencv_on_smooth_sprites(flip):
    """The same map as OpenCV's warpAffine: on smooth content the two differ by the rounding
    of their sub-pixel grids (1/16 against 1/32) only."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        src = _blob(rng, int(rng.integers(20, 90)), int(rng.integers(20, 90)), smooth=True)
        angle, scale = float(rng.uniform(0, 360)), float(rng.uniform(0.6, 2.0))
        m, ow, oh, _ = affine_frame(src.shape[0], src.shape[1], angle, flip, scale)
        ours = resample_reference(src, inverse_map(m), ow, oh).astype(int)
        cv = cv2.warpAffine(src, m, (ow, oh), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(int)
        assert np.abs(ours - cv).max() <= 12  # the steep alpha edge, a sixteenth of a pixel
        assert np.abs(ours - cv).mean() < 0.5
        # the cropped sprites have the same extent within a pixel
        a = transform_many([src], [0], [angle], [flip], [scale])[0]
        b = transform_premultiplied(src, angle, flip, scale)
        assert abs(a.shape[0] - b.shape[0]) <= 1 and abs(a.shape[1] - b.shape[1]) <= 1


def test_a_sprite_too_large_for_the_kernel_is_refused():
    big = np.zeros((warp.MAX_SIDE + 1, 2, 4), np.uint8)
    with pytest.raises(ValueError, match=f"{warp.MAX_SIDE + 1} px"):
        warp.transform_many([big], [0], [10.0], [False], [1.0])
