"""Spatial statistics on hand-made layouts whose values are known."""

from __future__ import annotations

import numpy as np
import pytest

from hemosynth.stats.layout import GROUP_INDEX, make_layout
from hemosynth.stats.spatial import (
    box_coverage,
    box_pairs,
    l_function,
    max_iou,
    measure_layout,
    nearest_neighbour,
    pair_correlation,
    pair_iou,
    point_pairs,
    ripley_k,
    ripley_sums,
)
from hemosynth.taxonomy import POOL_CLASSES


def lattice(k: int, a: float) -> np.ndarray:
    """k x k points at spacing a, centred in a (k a) x (k a) field."""
    i, j = np.meshgrid(np.arange(k), np.arange(k))
    return np.column_stack(((i.ravel() + 0.5) * a, (j.ravel() + 0.5) * a))


def test_iou_of_two_boxes_is_known():
    boxes = np.array([[0, 0, 4, 4], [2, 0, 6, 4]], float)  # overlap 2x4 = 8, union 24
    assert pair_iou(boxes, np.array([0]), np.array([1]))[0] == pytest.approx(8 / 24)
    assert max_iou(boxes) == pytest.approx([1 / 3, 1 / 3])
    nested = np.array([[0, 0, 10, 10], [0, 0, 5, 10]], float)
    assert max_iou(nested) == pytest.approx([0.5, 0.5])


def test_touching_boxes_have_zero_iou_and_zero_gap():
    boxes = np.array([[0, 0, 2, 2], [2, 0, 4, 2], [5, 0, 6, 2]], float)
    assert max_iou(boxes) == pytest.approx([0, 0, 0])
    i, j, gap = box_pairs(boxes, 0.0)
    assert {tuple(sorted(p)) for p in zip(i.tolist(), j.tolist(), strict=True)} == {(0, 1)}
    i, j, gap = box_pairs(boxes, 1.0)
    assert len(i) == 2 and gap.max() == pytest.approx(1.0)


def test_box_pairs_and_point_pairs_match_brute_force():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(2, 12, (300, 2))
    boxes = np.column_stack((xy, xy + wh))
    i, j, _gap = box_pairs(boxes, 1.5)
    got = {tuple(sorted(p)) for p in zip(i.tolist(), j.tolist(), strict=True)}
    gx = np.maximum(0, np.maximum(boxes[None, :, 0] - boxes[:, None, 2],
                                  boxes[:, None, 0] - boxes[None, :, 2]))
    gy = np.maximum(0, np.maximum(boxes[None, :, 1] - boxes[:, None, 3],
                                  boxes[:, None, 1] - boxes[None, :, 3]))
    g = np.hypot(gx, gy)
    want = {(a, b) for a, b in zip(*np.nonzero(g <= 1.5), strict=True) if a < b}
    assert got == want
    i, j, _d = point_pairs(xy, 7.0)
    dd = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    want = {(a, b) for a, b in zip(*np.nonzero(dd <= 7.0), strict=True) if a < b}
    assert {tuple(sorted(p)) for p in zip(i.tolist(), j.tolist(), strict=True)} == want
    np.fill_diagonal(dd, np.inf)
    assert nearest_neighbour(xy, 3.0) == pytest.approx(dd.min(1))


def test_lattice_nearest_neighbour_is_the_spacing():
    nn = nearest_neighbour(lattice(12, 2.5), r_hint=1.0)  # hint too small: brute force
    assert nn == pytest.approx(np.full(144, 2.5))


def test_lattice_ripley_k_is_exact_with_translation_correction():
    k, a = 20, 1.0
    pts = lattice(k, a)
    edges = np.arange(0, 1.36, 0.15)
    sums = ripley_sums(pts, k * a, k * a, edges) * (k * a) ** 2
    kk = ripley_k(sums, len(pts) * (len(pts) - 1))
    r = edges[1:]
    # no pair is closer than a: K = 0 and L(r) - r = -r below the spacing
    assert kk[r < a] == pytest.approx(0.0)
    # between a and sqrt(2) a each point has its 4 lattice neighbours: with the translation
    # weights, sum_{i != j} e_ij = 4 k^2, so K = |W| 4 k^2 / (n (n - 1)) = 4 a^2 k^2 / (k^2 - 1)
    between = (r > a) & (r < np.sqrt(2) * a)
    assert between.any()
    assert kk[between] == pytest.approx(4 * a * a * k * k / (k * k - 1))
    assert l_function(kk[between]) == pytest.approx(2 * a / np.sqrt(np.pi) * k / np.sqrt(k * k - 1))


def test_poisson_points_have_l_close_to_r():
    rng = np.random.default_rng(11)
    w, h = 2.0, 1.0
    edges = np.linspace(0, 0.2, 9)
    total = np.zeros(len(edges) - 1)
    pairs = 0.0
    for _ in range(20):
        pts = rng.uniform(0, 1, (400, 2)) * [w, h]
        total += ripley_sums(pts, w, h, edges) * w * h
        pairs += 400 * 399
    ks = ripley_k(total, pairs)
    assert l_function(ks) - edges[1:] == pytest.approx(0, abs=0.004)
    g = pair_correlation(ks, edges)
    assert g == pytest.approx(1, abs=0.08)


def test_coverage_of_boxes():
    assert box_coverage(np.array([[0, 0, 10, 10]]), 20, 10) == pytest.approx(0.5)
    # overlaps count once; boxes cut by the border count only inside
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [15, 5, 30, 30]])
    assert box_coverage(boxes, 20, 10) == pytest.approx((150 + 25) / 200)
    assert box_coverage(np.empty((0, 4)), 20, 10) == 0.0


def test_measure_layout_on_a_hand_made_field():
    # a 20 x 10 um field at 0.5 um/px: two RBC boxes overlapping (IoU 1/3), a WBC touching one
    # of them, and a platelet far away
    boxes = [[0, 0, 8, 8], [4, 0, 12, 8], [12, 0, 24, 12], [34, 14, 38, 18]]
    lay = make_layout("hand", 40, 20, 0.5, boxes, ["RBC", "RBC", "Lymphocyte", "Platelet"],
                      pool_classes=True)
    edges = np.linspace(0, 4, 9)
    m = measure_layout(lay, edges, tol_um=0.5)
    assert m.max_iou == pytest.approx([1 / 3, 1 / 3, 0, 0])
    rbc, wbc = GROUP_INDEX["RBC"], GROUP_INDEX["WBC"]
    assert m.overlaps[:, rbc].tolist() == [True, True, False, False]
    assert m.touches[1, wbc] and m.touches[2, rbc] and not m.touches[3].any()
    assert not m.touches[0, wbc]
    assert m.width_um == pytest.approx([4, 4, 6, 2])
    assert m.nn_um[0] == pytest.approx(2.0)  # centres (2, 2) and (4, 2) um
    assert m.border.tolist() == [True, True, True, False]
    assert m.coverage == pytest.approx((12 * 8 + 12 * 12 - 0 + 16) / 800)
    assert POOL_CLASSES[int(lay.pool[3])] == "Platelet" and int(lay.pool[3]) >= 0  # subtype
