"""Tests of background removal (pools.segment) and its scoring (pools.segeval)."""

from __future__ import annotations

import numpy as np
import pytest

from hemosynth.pools.segeval import evaluate_wbc_masks, score_masks, summarize
from hemosynth.pools.segment import (
    cutout,
    segment_blob,
    segment_cell,
    segment_stained,
    soft_alpha,
)
from tests.pools_fixtures import draw_crop


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lobes", [1, 3])
def test_white_cell_is_isolated_from_touching_red_cells(seed, lobes):
    rgb, truth = draw_crop(np.random.default_rng(seed), kind="wbc", lobes=lobes)
    seg = segment_cell(rgb)
    iou, bf = score_masks(seg.mask, truth)
    assert iou > 0.85, iou
    assert bf > 0.7
    assert seg.nucleus.any() and not (seg.nucleus & ~seg.mask).any()
    assert not seg.touches_border()


@pytest.mark.parametrize(
    ("kind", "fn", "min_iou"),
    # the platelet mask is grown by a pixel on purpose (pale rim), so a 6 px disc scores lower
    [("rbc", segment_blob, 0.75), ("platelet", segment_stained, 0.55)],
)
def test_anucleate_cells(kind, fn, min_iou):
    rgb, truth = draw_crop(np.random.default_rng(1), kind=kind)
    seg = fn(rgb)
    assert score_masks(seg.mask, truth)[0] > min_iou
    assert (seg.mask & truth).sum() >= 0.95 * truth.sum()


def _synthetic_nucleus(seed=0):
    from hemosynth.pools.segment import _prepare

    rgb, truth = draw_crop(np.random.default_rng(seed), kind="wbc")
    _, _, _, _, lab = _prepare(rgb, None)
    nucleus = np.zeros(truth.shape, bool)
    nucleus[68:93, 70:95] = True
    return rgb, truth, lab, nucleus


def test_pseudo_labels_put_the_ring_inside_and_the_background_outside():
    from hemosynth.pools.segment import _nucleus_distance, _plasma_lab, _pseudo_labels

    _, truth, lab, nucleus = _synthetic_nucleus()
    r_nuc = max(np.sqrt(nucleus.sum() / np.pi), 3.0)
    cell, plasma, other = _pseudo_labels(lab, nucleus, _nucleus_distance(nucleus), r_nuc,
                                         _plasma_lab(lab))
    assert cell.any() and plasma.any() and other.any()
    assert not (cell & (plasma | other)).any() and not (plasma & other).any()
    assert not (cell & nucleus).any()
    assert (cell & truth).sum() >= 0.9 * cell.sum()
    assert ((plasma | other) & ~truth).sum() >= 0.95 * (plasma | other).sum()


def test_cell_probability_is_bounded_and_zero_far_from_the_nucleus():
    import cv2

    from hemosynth.pools.segment import MAX_REACH, _cell_probability, _nucleus_distance

    _, truth, lab, nucleus = _synthetic_nucleus()
    p = _cell_probability(lab, nucleus, nucleus, _nucleus_distance(nucleus))
    assert p.shape == truth.shape and p.dtype == np.float32
    assert (p >= 0).all() and (p <= 1).all()
    r_nuc = np.sqrt(nucleus.sum() / np.pi)
    dn = cv2.distanceTransform((~nucleus).astype(np.uint8), cv2.DIST_L2, 3) / r_nuc
    assert (p[dn >= MAX_REACH] == 0).all()
    assert p[truth & ~nucleus].mean() > 0.5 > p[~truth].mean()


def test_segment_cell_is_deterministic():
    """The per-crop classifier and GrabCut give the same mask every time, whatever ran before."""
    import cv2

    rgb, _ = draw_crop(np.random.default_rng(3), kind="wbc", lobes=3)
    first = segment_cell(rgb).mask
    segment_cell(draw_crop(np.random.default_rng(4), kind="wbc")[0])
    cv2.setRNGSeed(123)
    assert (segment_cell(rgb).mask == first).all()


def test_uniform_crop_gives_an_empty_mask():
    rgb = np.full((64, 64, 3), 230, np.uint8)
    assert segment_cell(rgb).area == 0
    assert segment_stained(rgb).area == 0


def test_soft_alpha_ramps_over_the_edge():
    m = np.zeros((41, 41), bool)
    m[10:31, 10:31] = True
    a = soft_alpha(m, feather=3)
    assert a[20, 20] == 255 and a[0, 0] == 0
    assert 0 < a[10, 20] < 255 and a[9, 20] < a[10, 20] < a[12, 20]
    assert ((a >= 128) == m).all()  # the 50% level is the mask's edge
    assert ((soft_alpha(m, 0) > 0) == m).all()


def test_cutout_keeps_the_alpha():
    rgb, _ = draw_crop(np.random.default_rng(0))
    seg = segment_cell(rgb)
    rgba, (x0, y0, x1, y1) = cutout(rgb, seg, pad=2)
    assert rgba.shape == (y1 - y0, x1 - x0, 4)
    assert (rgba[..., 3] == seg.alpha[y0:y1, x0:x1]).all()
    assert rgba[0, 0, 3] == 0


def test_score_masks():
    a = np.zeros((50, 50), bool)
    a[10:30, 10:30] = True
    assert score_masks(a, a) == (1.0, 1.0)
    b = np.roll(a, 10, axis=1)
    iou, bf = score_masks(a, b)
    assert iou == pytest.approx(200 / 600)
    assert 0 < bf < 1
    assert score_masks(np.zeros_like(a), a) == (0.0, 0.0)


def test_wbc_masks_score_above_targets(shared_data):
    """Mean IoU on a fixed subset of each wbc-masks dataset (the benchmark runs all)."""
    root = shared_data / "wbc-masks"
    means = {}
    for ds, step in (("Dataset 1", 10), ("Dataset 2", 5)):
        import itertools

        from hemosynth.pools import segeval

        items = list(itertools.islice(segeval.iter_wbc_masks(root / ds), 0, None, step))
        scores = [score_masks(segment_cell(rgb, cls=c).mask, t) for _, c, rgb, t in items]
        means[ds] = float(np.mean([s[0] for s in scores]))
    # regression guards only (nothing in the segmenter is fitted on wbc-masks): the whole
    # datasets score about 0.94 (Dataset 1) and 0.91 (Dataset 2, the target 0.90)
    assert means["Dataset 1"] >= 0.85, means
    assert means["Dataset 2"] >= 0.80, means


def test_evaluate_and_summarize_api(tmp_path):
    import cv2

    ds = tmp_path / "Dataset 9"
    ds.mkdir()
    rgb, truth = draw_crop(np.random.default_rng(3))
    cv2.imwrite(str(ds / "001.bmp"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(ds / "001.png"), truth.astype(np.uint8) * 128)
    (tmp_path / "Class Labels of Dataset 9.csv").write_text("image ID,class\r\n1,2\r\n")
    scores = evaluate_wbc_masks(ds)
    assert scores[0].cls == "Lymphocyte" and scores[0].iou > 0.85
    s = summarize(scores)
    assert s["all"][0] == 1 and "Lymphocyte" in s


def _lymphocyte_in_red_cells(rng):
    """A small lymphocyte (dark nucleus, thin blue rim) with six red cells touching its rim."""
    h = w = 200
    img = np.empty((h, w, 3), np.float32)
    img[:] = (238, 226, 212)
    yy, xx = np.mgrid[0:h, 0:w]
    c = (100, 100)
    reds = []
    for k in range(6):
        ang = k * np.pi / 3 + 0.3
        cy, cx = c[0] + 46 * np.sin(ang), c[1] + 46 * np.cos(ang)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 25**2
        img[disc] = (205, 140, 150)
        reds.append(disc)
    r = np.hypot(yy - c[0], xx - c[1])
    cell = r <= 22
    img[cell] = (172, 170, 214)
    img[r <= 19] = (88, 52, 140)
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), cell, reds


def test_a_lymphocyte_keeps_the_touching_red_cells_out():
    """Red cells touching a thin rim fall in the sure-cytoplasm ring; told the class, the
    segmenter takes their colour for background (segment.THIN_RIM) and leaks less into them."""
    rgb, truth, reds = _lymphocyte_in_red_cells(np.random.default_rng(0))
    told = segment_cell(rgb, cls="Lymphocyte").mask
    blind = segment_cell(rgb).mask
    assert score_masks(told, truth)[0] >= 0.8
    leak_told = [int((told & d & ~truth).sum()) for d in reds]
    leak_blind = [int((blind & d & ~truth).sum()) for d in reds]
    assert max(leak_told) <= 0.01 * reds[0].sum()
    assert sum(leak_told) < 0.7 * sum(leak_blind)
