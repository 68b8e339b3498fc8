"""The compiled render kernels against their plain numpy definitions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemosynth.smear.canvas import apply_optics
from hemosynth.smear.kernels import (
    SpritePack,
    SpriteViews,
    composite_pack,
    field_extents,
    noise_table,
    normal_table,
    optics_pass,
    visibility_pack,
)
from hemosynth.smear.render import composite_over, paste_window
from hemosynth.smear.sprite import alpha_extent, premultiply


def _random_sprites(rng, n, width, height, views=False):
    """``n`` random premultiplied sprites and paste points; with ``views``, crops of frames
    laid one after the other in one buffer (as the batch transform returns them), some of
    them the same crop twice."""
    sprites, xy = [], []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
        rgba[..., 3][rng.random((h, w)) < 0.3] = 0  # holes of alpha 0
        rgba[..., 3][rng.random((h, w)) < 0.2] = 255
        sprites.append(premultiply(rgba))
        xy.append((int(rng.integers(-w, width + 1)), int(rng.integers(-h, height + 1))))
    if views and n:
        pads = rng.integers(0, 4, (n, 4))  # margins of each frame around its sprite
        frames = [np.pad(s, ((p[0], p[1]), (p[2], p[3]), (0, 0)))
                  for s, p in zip(sprites, pads, strict=True)]
        buf = np.concatenate([f.reshape(-1) for f in frames])
        views, offsets, strides, o = [], [], [], 0
        for f, p in zip(frames, pads, strict=True):
            fh, fw = f.shape[:2]
            views.append(buf[o : o + f.size].reshape(fh, fw, 4)[p[0] : fh - p[1], p[2] : fw - p[3]])
            offsets.append(o + 4 * (p[0] * fw + p[2]))
            strides.append(4 * fw)
            o += f.size
        idx = np.arange(n)
        share = rng.random(n) < 0.2  # cells sharing another's pixels
        idx[share] = rng.integers(0, n, int(share.sum()))
        shapes = [v.shape[:2] for v in views]
        sprites = SpriteViews(buf, offsets, strides, shapes).take(idx)
        for i, k in enumerate(idx):  # the views it makes are those cut above
            assert np.array_equal(sprites[i], views[k]) and not sprites[i].flags.writeable
    return sprites, np.array(xy).reshape(n, 2)


def visibility_reference(sprites, xy, width, height):
    """The numpy definition (one float32 transparency map, painted from the top cell down)."""
    n = len(sprites)
    frac, area = np.zeros(n), np.zeros(n, np.int64)
    masks = [None] * n
    trans = np.ones((height, width), np.float32)
    for i in range(n - 1, -1, -1):
        a = sprites[i][:, :, 3].astype(np.float32) / 255.0
        total = float(a.sum())
        win = paste_window(int(xy[i, 0]), int(xy[i, 1]), a.shape[1], a.shape[0], width, height)
        if win is None or total == 0:
            continue
        cr, cc, sr, sc = win
        t = trans[cr, cc]
        contrib = a[sr, sc] * t
        frac[i] = float(contrib.sum(dtype=np.float64)) / total
        masks[i] = contrib >= 0.5
        area[i] = int(masks[i].sum())
        t *= 1.0 - a[sr, sc]
    return frac, area, masks


#: the field of the kernel tests below
WIDTH, HEIGHT = 50, 40


@st.composite
def sprite_cases(draw, least: int = 0):
    """``(rng, sprites, xy, views)``: up to 25 random sprites on the test field (see
    :func:`_random_sprites`), and the generator that drew them, for more draws."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    views = draw(st.booleans())
    sprites, xy = _random_sprites(rng, draw(st.integers(least, 25)), WIDTH, HEIGHT, views)
    return rng, sprites, xy, views


@settings(max_examples=40, deadline=None)
@given(case=sprite_cases())
def test_composite_pack_is_sequential_over_byte_for_byte(case):
    rng, sprites, xy, _ = case
    canvas = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    expect = canvas.copy()
    for s, (x0, y0) in zip(sprites, xy, strict=True):
        composite_over(expect, s, int(x0), int(y0))
    composite_pack(canvas, SpritePack.build(sprites, xy))
    assert np.array_equal(canvas, expect)


@settings(max_examples=40, deadline=None)
@given(case=sprite_cases(least=1))
def test_visibility_pack_matches_the_numpy_definition(case):
    _, sprites, xy, views = case
    width, height = WIDTH, HEIGHT
    pack = SpritePack.build(sprites, xy)
    assert (pack.buf is sprites.buf) if views else (pack.buf.base is None)
    frac, area, masks = visibility_pack(pack, width, height, masks=True)
    ref_frac, ref_area, ref_masks = visibility_reference(sprites, xy, width, height)
    assert np.allclose(frac, ref_frac, rtol=0, atol=1e-6)
    assert np.array_equal(area, ref_area)
    plain = visibility_pack(pack, width, height)  # without masks: the same numbers, no masks
    assert np.array_equal(plain[0], frac) and np.array_equal(plain[1], area) and plain[2] is None
    for m, r in zip(masks, ref_masks, strict=True):
        assert (m is None) == (r is None)
        assert m is None or np.array_equal(m, r)


@settings(max_examples=40, deadline=None)
@given(case=sprite_cases(least=1), band=st.sampled_from([1, 2, 3, 7, 16]))
def test_visibility_in_bands_of_rows_is_bit_for_bit_one_pass(case, band):
    _, sprites, xy, _ = case
    pack = SpritePack.build(sprites, xy)
    whole = visibility_pack(pack, WIDTH, HEIGHT, masks=True, band=HEIGHT)
    banded = visibility_pack(pack, WIDTH, HEIGHT, masks=True, band=band)
    assert whole[0].tobytes() == banded[0].tobytes()
    assert np.array_equal(whole[1], banded[1])
    for m, r in zip(whole[2], banded[2], strict=True):
        assert (m is None) == (r is None)
        assert m is None or np.array_equal(m, r)


@settings(max_examples=40, deadline=None)
@given(case=sprite_cases())
def test_field_extents_are_the_alpha_extent_of_each_pasted_window(case):
    _, sprites, xy, _ = case
    width, height, n = WIDTH, HEIGHT, len(sprites)
    got = field_extents(SpritePack.build(sprites, xy), width, height)
    assert got.shape == (n, 4)
    for i, s in enumerate(sprites):
        x0, y0 = int(xy[i, 0]), int(xy[i, 1])
        win = paste_window(x0, y0, s.shape[1], s.shape[0], width, height)
        ext = alpha_extent(s[win[2], win[3], 3]) if win is not None else None
        if ext is None:
            assert not got[i].any()
        else:
            ox, oy = win[1].start, win[0].start
            assert tuple(got[i]) == (ox + ext[0], oy + ext[1], ox + ext[2], oy + ext[3])


def test_normal_table_is_a_standard_normal():
    t = normal_table()
    assert t.shape == (256,)
    assert abs(t.mean()) < 1e-9 and abs(t.std() - 1.0) < 1e-9
    assert np.all(np.diff(t) > 0) and t[0] == -t[-1]
    # quantiles: half the mass within the middle 128 entries' range, as for a normal
    assert abs(t[191] - 0.674) < 0.03


def test_noise_table_rounds_the_scaled_quantiles():
    tab = noise_table(3.0)
    assert tab.shape == (256, 256) and tab.dtype == np.int16
    assert not tab[0].any()  # black has no shot noise
    assert np.array_equal(tab[255], np.floor(3.0 * normal_table() + 0.5))


def _flat(value, h=300, w=400):
    return np.full((h, w, 3), value, np.uint8)


@pytest.mark.parametrize("level", [60, 200])
def test_noise_sd_scales_with_the_root_of_brightness_and_keeps_the_mean(level):
    img = _flat(level)
    out = optics_pass(img, None, np.zeros((2, 2), np.float32), 0.0, (0.5, 0.5), 3.0, 7)
    d = out.astype(float) - level
    lum = level / 255.0  # grey: luminance equals the level
    assert d.std() == pytest.approx(3.0 * np.sqrt(lum), rel=0.05)
    assert abs(d.mean()) < 0.05
    # one draw per pixel, the same on the three channels
    assert np.array_equal(d[..., 0], d[..., 1]) and np.array_equal(d[..., 0], d[..., 2])
    # the seed decides the noise
    again = optics_pass(img, None, np.zeros((2, 2), np.float32), 0.0, (0.5, 0.5), 3.0, 7)
    other = optics_pass(img, None, np.zeros((2, 2), np.float32), 0.0, (0.5, 0.5), 3.0, 8)
    assert np.array_equal(out, again) and not np.array_equal(out, other)


def test_vignetting_gain_is_one_at_the_centre_and_falls_to_the_far_corner():
    img = _flat(200, 201, 301)
    out = optics_pass(img, None, np.zeros((2, 2), np.float32), 0.2, (0.5, 0.5), 0.0, 0)
    assert out[100, 150, 0] == 200
    assert abs(int(out[0, 0, 0]) - 200 * 0.8) <= 1
    # off-centre: the gain falls toward the farther corner
    off = optics_pass(img, None, np.zeros((2, 2), np.float32), 0.2, (0.2, 0.5), 0.0, 0)
    assert off[100, 60, 0] == 200 and off[100, 300, 0] < off[100, 0, 0]


def test_defocus_weight_follows_the_focus_map():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)
    soft = np.full_like(img, 128)
    sharp_map = np.full((3, 4), -1.0, np.float32)  # weight 0.5 + 0.5 * -1 = 0: the sharp image
    assert np.array_equal(optics_pass(img, soft, sharp_map, 0.0, (0.5, 0.5), 0.0, 0), img)
    soft_map = np.full((3, 4), 1.0, np.float32)  # weight 1: the blurred image
    assert np.array_equal(optics_pass(img, soft, soft_map, 0.0, (0.5, 0.5), 0.0, 0), soft)
    half = optics_pass(img, soft, np.zeros((3, 4), np.float32), 0.0, (0.5, 0.5), 0.0, 0)
    expect = np.floor((img.astype(np.float32) + 128) / 2 + 0.5)
    assert np.abs(half - expect).max() <= 1


def test_apply_optics_is_reproducible_from_the_generator():
    img = _flat(180, 120, 160)
    opt = {"defocus_um": 0.1, "vignetting": 0.1, "vignette_centre": [0.4, 0.6], "noise_sd": 2.0}
    a = apply_optics(img, opt, 0.1, np.random.default_rng(5))
    b = apply_optics(img, opt, 0.1, np.random.default_rng(5))
    c = apply_optics(img, opt, 0.1, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(img, _flat(180, 120, 160))  # the input is left alone


def test_restain_kernel_matches_the_numpy_formulas():
    """harmonise = unpremultiply, OD per level, OD map, back to RGB, premultiply again."""
    from hemosynth.smear.canvas import _transfer_luts, harmonise
    from hemosynth.smear.sprite import unpremultiply
    from hemosynth.smear.stain import get_profile, od_to_rgb

    rng = np.random.default_rng(4)
    rgba = rng.integers(0, 256, (40, 50, 4)).astype(np.uint8)
    rgba[..., 3][rng.random((40, 50)) < 0.3] = 0
    sprite = premultiply(rgba)
    src, dst = get_profile("pbc"), get_profile("bccd")
    out = harmonise(sprite, src, dst)
    lut, mat = _transfer_luts(src, dst)
    straight = unpremultiply(sprite)
    od = np.stack([lut[c][straight[:, :, c]] for c in range(3)], axis=-1)
    rgb = np.clip(od_to_rgb(od @ mat, dst.illuminant), 0, 255)
    a = sprite[:, :, 3:4].astype(np.float32)
    expect = np.clip(rgb * (a / 255.0) + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(out[:, :, 3], sprite[:, :, 3])
    assert np.abs(out[:, :, :3].astype(int) - expect).max() <= 1
    assert not out[sprite[:, :, 3] == 0].any()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 40), w=st.integers(1, 40))
def test_source_preparation_kernels_match_their_numpy_formulas(seed, h, w):
    """premultiply and the feather blender's ramp, compiled, against their numpy definitions."""
    import cv2

    from hemosynth.smear.render import BLENDERS

    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    rgba[..., 3][rng.random((h, w)) < 0.3] = 0
    a16 = rgba[:, :, 3:4].astype(np.uint16)
    want = rgba.copy()
    want[:, :, :3] = ((rgba[:, :, :3].astype(np.uint16) * a16 + 127) // 255).astype(np.uint8)
    got = premultiply(rgba)
    assert np.array_equal(got, want)
    assert np.array_equal(premultiply(rgba[:, ::-1]), want[:, ::-1])  # a strided view
    alpha = got[:, :, 3]
    padded = cv2.copyMakeBorder((alpha > 0).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT,
                                value=0)
    ramp = np.clip(cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1] / 1.5, 0, 1)
    feathered = (got.astype(np.float32) * ramp[:, :, None] + 0.5).astype(np.uint8)
    feathered[(alpha > 0) & (feathered[:, :, 3] == 0), 3] = 1
    assert np.array_equal(BLENDERS["feather"].shape(got), feathered)


_M64 = (1 << 64) - 1


def _splitmix_bytes(seed, count):
    """``count`` bytes of the splitmix64 stream from ``seed``, eight a draw, low byte first."""
    state, out = seed, []
    while len(out) < count:
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
        out.extend((z >> (8 * b)) & 0xFF for b in range(8))
    return out


def _linear_axis_reference(n_out, n_in):
    s = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i = s.astype(np.int64)
    last = i >= n_in - 1
    i[last] = n_in - 2 if n_in > 1 else 0
    s[last] = n_in - 1
    return i, (s - i).astype(np.float32)


def optics_reference(img, blurred, focus, amount, centre, noise_sd, seed):
    """The optics pass written out in numpy and plain Python, row by row: the float32 weights,
    the rounding to 1/256, the mix, the luminance, the byte stream and the noise table."""
    h, w = img.shape[:2]
    cx, cy = centre[0] * w, centre[1] * h
    far = max(cx**2, (w - cx) ** 2) + max(cy**2, (h - cy) ** 2)
    f32 = np.float32
    xi, xf = _linear_axis_reference(w, focus.shape[1])
    yi, yf = _linear_axis_reference(h, focus.shape[0])
    c1 = np.minimum(xi + 1, focus.shape[1] - 1)
    frow = focus[:, xi] + (focus[:, c1] - focus[:, xi]) * xf  # float32 (gh, w)
    gx = (amount * (np.arange(w) + 0.5 - cx) ** 2 / far).astype(f32)
    table = noise_table(noise_sd).reshape(-1).astype(np.int64) if noise_sd > 0 else None
    stream = iter(_splitmix_bytes(seed & (2**63 - 1), h * ((w + 7) // 8) * 8))
    out = np.empty_like(img)
    for y in range(h):
        gy = f32(1.0 - amount * (y + 0.5 - cy) ** 2 / far)
        g = np.clip(gy - gx, f32(0), f32(1))
        if blurred is not None:
            r1 = min(yi[y] + 1, focus.shape[0] - 1)
            f = frow[yi[y]] + (frow[r1] - frow[yi[y]]) * yf[y]
            wt = np.clip(f32(0.5) + f32(0.5) * f, f32(0), f32(1))
            mix = (wt * g * f32(256) + f32(0.5)).astype(np.int64)
            soft = blurred[y].astype(np.int64)
        else:
            mix, soft = np.zeros(w, np.int64), 0
        keep = (g * f32(256) + f32(0.5)).astype(np.int64) - mix
        row = (img[y].astype(np.int64) * keep[:, None] + soft * mix[:, None] + 128) >> 8
        if table is not None:
            rand = [next(stream) for _ in range((w + 7) // 8 * 8)][:w]
            lum = (row[:, 0] * 4899 + row[:, 1] * 9617 + row[:, 2] * 1868 + 8192) >> 14
            row = np.clip(row + table[(lum << 8) | np.array(rand)][:, None], 0, 255)
        out[y] = row
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), h=st.integers(1, 23), w=st.integers(1, 29),
       blur=st.booleans(), amount=st.floats(0, 0.99), cx=st.floats(0, 1), cy=st.floats(0, 1),
       noise_sd=st.sampled_from([0.0, 0.7, 2.0, 9.0]), gh=st.integers(1, 4),
       gw=st.integers(1, 4))
def test_optics_pass_matches_its_reference(seed, h, w, blur, amount, cx, cy, noise_sd, gh, gw):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    blurred = rng.integers(0, 256, (h, w, 3)).astype(np.uint8) if blur else None
    focus = (rng.standard_normal((gh, gw)) * 1.5).astype(np.float32)
    got = optics_pass(img, blurred, focus, amount, (cx, cy), noise_sd, seed)
    assert np.array_equal(got, optics_reference(img, blurred, focus, amount, (cx, cy),
                                                noise_sd, seed))
