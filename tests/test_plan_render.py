import numpy as np
import pytest

from hemosynth.smear.plan import DRAW_BAND, LAYER, plan_smear, prepare_sprites
from hemosynth.smear.render import BLENDERS, make_background, paste_window, render, visibility
from hemosynth.smear.sprite import alpha_extent, premultiply, transform_sprite, unpremultiply
from hemosynth.taxonomy import MAIN_OF
from tests.helpers import disc_sprite, small_config, tiny_pool

POOL = tiny_pool()


def test_transform_is_deterministic_and_tight():
    s = disc_sprite(31, ellipse=0.6)
    a = transform_sprite(s, 33.0, True, 1.7)
    b = transform_sprite(s, 33.0, True, 1.7)
    assert np.array_equal(a, b)
    assert alpha_extent(a[:, :, 3]) == (0, 0, a.shape[1], a.shape[0])
    # scale: the disc's long axis ~31 px becomes ~53 px
    assert max(a.shape[:2]) == pytest.approx(31 * 1.7, abs=4)
    tiny = transform_sprite(s, 10.0, False, 0.01)
    assert tiny.shape[:2] >= (1, 1) and tiny[:, :, 3].any()


def test_premultiply_round_trip():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)
    rgba[:, :, 3] = 255
    assert np.array_equal(unpremultiply(premultiply(rgba)), rgba)


@pytest.mark.parametrize("blend", sorted(BLENDERS))
def test_boxes_equal_the_pasted_alpha_extent(blend):
    cfg = small_config(**{"render.blend": blend})
    plan, sprites = plan_smear(cfg, POOL, 0, keep_sprites=True)
    assert len(plan) > 5
    clipped = plan.clipped_boxes()
    for i, s in enumerate(sprites):
        alpha = np.zeros((plan.height, plan.width), np.uint8)
        x0, y0 = int(plan.boxes[i, 0]), int(plan.boxes[i, 1])
        win = paste_window(x0, y0, s.shape[1], s.shape[0], plan.width, plan.height)
        assert win is not None
        cr, cc, sr, sc = win
        alpha[cr, cc] = s[sr, sc, 3]
        assert alpha_extent(alpha) == tuple(int(v) for v in clipped[i])
        # the unclipped box is the sprite's own size at its paste point
        assert (plan.boxes[i, 2] - plan.boxes[i, 0], plan.boxes[i, 3] - plan.boxes[i, 1]) == (
            s.shape[1], s.shape[0])


def test_render_changes_only_pixels_inside_boxes():
    cfg = small_config(**{"render.optics": False})  # blur and noise touch every pixel
    plan, sprites = plan_smear(cfg, POOL, 1, keep_sprites=True)
    img = render(plan, sprites, cfg.render)
    bg = make_background(plan.width, plan.height, cfg.render,
                         np.random.default_rng(plan.render_seed), plan.appearance,
                         plan.um_per_px)
    inside = np.zeros((plan.height, plan.width), bool)
    for x0, y0, x1, y1 in plan.clipped_boxes().astype(int):
        inside[y0:y1, x0:x1] = True
    changed = (img != bg).any(axis=2)
    assert changed.any()
    assert not (changed & ~inside).any()


def test_prepare_sprites_reproduces_planning():
    cfg = small_config()
    plan, sprites = plan_smear(cfg, POOL, 2, keep_sprites=True)
    again = prepare_sprites(plan, POOL, cfg)
    assert all(np.array_equal(a, b) for a, b in zip(sprites, again, strict=True))


def test_cells_of_interest_are_drawn_on_top():
    cfg = small_config(**{"counts.wbc.mean": 6.0, "counts.platelet.mean": 6.0})
    plan = plan_smear(cfg, POOL, 3)
    layers = [LAYER[MAIN_OF[c]] for c in plan.classes]
    assert layers == sorted(layers)


def test_a_layer_is_drawn_band_by_band_left_to_right():
    """Within a layer, cells are drawn in bands of DRAW_BAND rows (by the top of the pasted
    sprite), left to right in a band: the order that keeps compositing in the cache."""
    cfg = small_config(**{"counts.wbc.mean": 6.0, "counts.platelet.mean": 6.0})
    plan = plan_smear(cfg, POOL, 5)
    key = [(LAYER[MAIN_OF[c]], int(y) // DRAW_BAND, int(x))
           for c, (x, y) in zip(plan.classes, plan.boxes[:, :2].tolist(), strict=True)]
    assert key == sorted(key)
    assert len({k[1] for k in key}) > 1  # the field spans several bands


def test_visibility_of_top_cells_and_cut_cells():
    cfg = small_config(**{"placement.iou_threshold_range": [0.3, 0.3]})
    plan, sprites = plan_smear(cfg, POOL, 4, keep_sprites=True)
    frac, area, masks = visibility(plan, sprites, masks=True)
    assert ((frac >= 0) & (frac <= 1 + 1e-6)).all()
    top = len(plan) - 1
    b = plan.boxes[top]
    if b[0] >= 0 and b[1] >= 0 and b[2] <= plan.width and b[3] <= plan.height:
        assert frac[top] == pytest.approx(1.0)
    for i in range(len(plan)):
        cut = plan.boxes[i, 0] < 0 or plan.boxes[i, 2] > plan.width
        if cut:
            assert frac[i] < 1.0
        assert masks[i] is None or masks[i].sum() == area[i]


def test_same_seed_same_plan_other_seed_other_plan():
    cfg = small_config()
    a = plan_smear(cfg, POOL, 5)
    b = plan_smear(cfg, POOL, 5)
    c = plan_smear(cfg.replace(seed=8), POOL, 5)
    assert np.array_equal(a.boxes, b.boxes) and a.classes == b.classes
    assert not (a.boxes.shape == c.boxes.shape and np.array_equal(a.boxes, c.boxes))


def test_strategy_does_not_change_the_cells_asked_for():
    cfg = small_config()
    grid = plan_smear(cfg, POOL, 6)
    lsh = plan_smear(cfg.replace(**{"placement.strategy": "lsh"}), POOL, 6)
    assert grid.requested == lsh.requested


def test_grid_plans_respect_their_threshold():
    from hemosynth.smear.placement import audit

    cfg = small_config(**{"counts.rbc.mean": 60.0})
    for i in range(5):
        plan = plan_smear(cfg, POOL, i)
        assert audit(plan.boxes, plan.threshold) == 0


def test_max_cover_keeps_platelets_off_other_cells():
    from hemosynth.smear.placement import cover_violations

    def on_others(cfg):
        share, n = 0, 0
        for i in range(40):  # about one platelet a smear on this small field
            plan = plan_smear(cfg.replace(**{"counts.platelet": {"mean": 12.0, "sd": 0.0}}),
                              POOL, i)
            boxes = np.asarray(plan.boxes, float)
            for k, c in enumerate(plan.classes):
                if c in ("Platelet", "Giant platelet", "Activated platelet"):
                    others = np.delete(boxes, k, axis=0)
                    n += 1
                    share += bool(cover_violations(boxes[k:k + 1], others, 0.3,
                                                   np.ones(len(others))).any())
        return share / n

    free = on_others(small_config())
    limited = on_others(small_config(**{"placement.max_cover": {"Platelet": 0.3}}))
    assert free > 0.2  # a dense field: IoU alone lets many platelets sit on red cells
    assert limited == 0


def test_transform_bounded_by_the_alpha_circle_matches_the_full_transform():
    """The circle only limits where the resampling looks: same extent, within a grey level."""
    from hemosynth.smear.sprite import alpha_circle, transform_premultiplied

    rng = np.random.default_rng(2)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(6, 60, 2))
        rgba = np.zeros((h, w, 4), np.uint8)
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        blob = (yy - cy) ** 2 / (h / 2) ** 2 + (xx - cx) ** 2 / (w / 2) ** 2 < 1
        rgba[blob] = rng.integers(1, 256, (int(blob.sum()), 4))
        if not blob.any():
            continue
        s = premultiply(rgba)
        angle, flip, scale = rng.uniform(0, 360), bool(rng.random() < 0.5), rng.uniform(0.5, 2)
        full = transform_premultiplied(s, angle, flip, scale)
        bounded = transform_premultiplied(s, angle, flip, scale, alpha_circle(s[:, :, 3]))
        assert full.shape == bounded.shape
        assert np.abs(full.astype(int) - bounded).max() <= 1
