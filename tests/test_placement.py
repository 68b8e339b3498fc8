import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemosynth.config import PlacementConfig
from hemosynth.smear.placement import (
    STRATEGIES,
    BlocksPlacer,
    LSHPlacer,
    audit,
    cover_violations,
    iou,
    iou_matrix,
    make_placer,
)


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    m = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    assert m[0, 0] == pytest.approx(1 / 3) and m[0, 1] == 0


def _fill(strategy, sizes, threshold, seed, w=400, h=300, **cfg):
    """Place ``(w, h, inside)`` or ``(w, h, inside, cover)`` cells in order."""
    pc = PlacementConfig(strategy=strategy, max_attempts=30, **cfg)
    placer = make_placer(w, h, threshold, pc, np.random.default_rng(seed), typical_size=30)
    placed = [placer.place(*cell) for cell in sizes]
    return placer, placed


size_lists = st.lists(
    st.tuples(st.integers(1, 90), st.integers(1, 90), st.booleans()), min_size=1, max_size=160
)


@given(size_lists, st.floats(0.0, 0.5), st.integers(0, 2**32 - 1))
@settings(max_examples=80, deadline=None)
def test_grid_never_exceeds_the_bound(sizes, threshold, seed):
    placer, _ = _fill("grid", sizes, threshold, seed)
    assert audit(np.array(placer.boxes).reshape(-1, 4), threshold) == 0


#: (w, h, inside, cover): cells with and without a cover limit
covered_lists = st.lists(
    st.tuples(st.integers(1, 90), st.integers(1, 90), st.booleans(),
              st.sampled_from([1.0, 1.0, 0.5, 0.2])),
    min_size=1, max_size=120,
)


@given(covered_lists, st.floats(0.0, 0.5), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_grid_decides_exactly_like_brute_force(cells, threshold, seed):
    """Same proposals, exact decisions: grid and brute place every cell identically, and
    neither breaks T or a cover limit."""
    g, gp = _fill("grid", cells, threshold, seed)
    b, bp = _fill("brute", cells, threshold, seed)
    assert gp == bp
    assert g.stats.checks <= b.stats.checks
    assert audit(np.array(g.boxes).reshape(-1, 4), threshold, np.array(g.covers)) == 0


def test_a_small_box_inside_a_big_one_passes_iou_but_not_its_cover():
    big, small = (0, 0, 100, 100), (40, 40, 70, 70)  # IoU 0.09: under T = 0.1
    assert iou(big, small) < 0.1
    assert cover_violations(np.array([small]), np.array([big]), 0.5, np.array([1.0])).all()
    assert not cover_violations(np.array([small]), np.array([big]), 1.0, np.array([1.0])).any()
    # the limit binds the later, bigger cell too
    assert cover_violations(np.array([big]), np.array([small]), 1.0, np.array([0.5])).all()
    for strategy in ("grid", "brute", "lsh"):
        pc = PlacementConfig(strategy=strategy, max_attempts=200, lsh_warmup=0)
        placer = make_placer(100, 100, 0.1, pc, np.random.default_rng(0), typical_size=30)
        assert placer.place(30, 30, True, cover=0.5) is not None
        # a 100 x 100 box on a 100 x 100 field must cover the small one wholly
        assert placer.place(100, 100, True) is None, strategy
        assert placer.place(100, 100, True, cover=1.0) is None
    free = make_placer(100, 100, 0.1, PlacementConfig(strategy="grid"),
                       np.random.default_rng(0), typical_size=30)
    free.place(30, 30, True)
    assert free.place(100, 100, True) is not None  # IoU 0.09 alone lets it through


def test_grid_checks_far_fewer_pairs_than_brute_force():
    sizes = [(30, 30, False)] * 150
    g, _ = _fill("grid", sizes, 0.05, 3, w=1200, h=900)
    b, _ = _fill("brute", sizes, 0.05, 3, w=1200, h=900)
    assert g.stats.checks * 10 < b.stats.checks


def test_inside_cells_stay_inside_and_others_may_be_cut():
    _, placed = _fill("grid", [(50, 40, True)] * 60 + [(50, 40, False)] * 200, 0.3, 1)
    for (x0, y0), _ in zip(placed[:60], range(60), strict=False):
        assert 0 <= x0 <= 400 - 50 and 0 <= y0 <= 300 - 40
    outside = [p for p in placed[60:] if p and (p[0] < 0 or p[1] < 0)]
    assert outside  # some border cells are cut
    for p in placed[60:]:
        if p:
            cx, cy = p[0] + 25, p[1] + 20
            assert 0 <= cx <= 400 and 0 <= cy <= 300


def test_attempts_are_bounded_and_drops_returned():
    placer, placed = _fill("grid", [(100, 100, True)] * 40, 0.0, 2, w=300, h=300)
    assert placed.count(None) > 20
    assert placer.stats.attempts <= 40 * 30
    placer, placed = _fill("grid", [(500, 10, True)], 0.0, 2, w=300, h=300)
    assert placed == [None]


def test_naive_strategies_check_nothing():
    for name in ("random", "blocks"):
        placer, placed = _fill(name, [(60, 60, False)] * 100, 0.0, 5)
        assert None not in placed
        assert placer.stats.checks == 0
    # dense naive placement overlaps
    assert audit(np.array(placer.boxes), 0.0) > 0


def test_blocks_spread_centres_over_the_blocks():
    pc = PlacementConfig(strategy="blocks", blocks=(4, 3))
    placer = BlocksPlacer(400, 300, 0.1, pc, np.random.default_rng(0))
    hits = np.zeros((3, 4), int)
    for _ in range(1200):
        x0, y0 = placer.place(2, 2, inside=False)
        hits[min(2, int((y0 + 1) // 100)), min(3, int((x0 + 1) // 100))] += 1
    assert hits.min() > 60  # every block gets its share (expected 100)


# --- the paper's LSH engine against a straightforward reference ------------------------------

def reference_lsh_candidates(normals, points, query, warmup, k, distance):
    """Textbook random-binary-projection LSH, written with plain loops."""
    if len(points) < warmup:
        return []

    def key(p):
        bits = []
        for n in normals:
            dot = n[0] * p[0] + n[1] * p[1]
            bits.append(1 if dot > 0 else 0)
        return tuple(bits)

    qk = key(query)
    bucket = [i for i, p in enumerate(points) if key(p) == qk]
    if k and len(bucket) > k:
        def d(i):
            p = points[i]
            if distance == "cosine":
                num = p[0] * query[0] + p[1] * query[1]
                den = np.hypot(*p) * np.hypot(*query)
                return 1 - num / den if den else 1.0
            return np.hypot(p[0] - query[0], p[1] - query[1])
        bucket = sorted(bucket, key=lambda i: (d(i), bucket.index(i)))[:k]
    return sorted(bucket)


@pytest.mark.parametrize("k", [0, 3, 10])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_lsh_matches_reference(k, distance):
    pc = PlacementConfig(strategy="lsh", lsh_projections=6, lsh_nearest=k, lsh_warmup=5,
                         lsh_distance=distance, max_attempts=1)
    rng = np.random.default_rng(11)
    placer = LSHPlacer(500, 400, 1.0, pc, rng)  # T = 1: every proposal is accepted
    pts = []
    for _ in range(120):
        q = rng.uniform(0, 500, 2)
        box = (q[0] - 5, q[1] - 5, q[0] + 5, q[1] + 5)
        got = sorted(placer.neighbours(box))
        want = reference_lsh_candidates(placer.normals, pts, q, 5, k, distance)
        assert got == want
        placer.boxes.append(box)
        placer.register(len(placer.boxes) - 1, box)
        pts.append(q)


def test_lsh_first_cells_skip_the_query_and_it_misses_overlaps():
    sizes = [(40, 40, False)] * 400
    placer, _ = _fill("lsh", sizes, 0.05, 4, w=800, h=600, lsh_warmup=60)
    assert audit(np.array(placer.boxes[:60]), 0.05) > 0  # unchecked warm-up cells overlap
    g, _ = _fill("grid", sizes, 0.05, 4, w=800, h=600)
    assert audit(np.array(placer.boxes), 0.05) > audit(np.array(g.boxes), 0.05) == 0


def test_registry():
    assert set(STRATEGIES) == {"grid", "lsh", "brute", "random", "blocks"}


@given(st.lists(st.tuples(st.integers(1, 500), st.integers(1, 400), st.booleans()), min_size=1,
                max_size=40))
def test_centre_ranges_are_centre_range_for_each_box(cells):
    placer = make_placer(400, 300, 0.2, PlacementConfig(strategy="grid"),
                         np.random.default_rng(0), typical_size=30)
    sizes = np.array([(w, h) for w, h, _ in cells], float)
    inside = np.array([i for _, _, i in cells], bool)
    lo, extent, ok = placer.centre_ranges(sizes, inside)
    for k, (w, h, ins) in enumerate(cells):
        one = placer.centre_range(float(w), float(h), ins)
        assert ok[k] == (one is not None)
        if one is None:
            assert not lo[k].any() and not extent[k].any()
        else:
            (lx, ly), (hx, hy) = one
            assert tuple(lo[k]) == (lx, ly) and tuple(extent[k]) == (hx - lx, hy - ly)
