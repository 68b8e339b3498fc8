"""Per-cell stain strength (render.cell_strength) and annotation box margins (output.box_margin)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemosynth.dataset import generate_dataset, iter_records, widen_box
from hemosynth.errors import ConfigError
from hemosynth.smear.canvas import scale_density
from hemosynth.smear.plan import plan_smear, prepare_sprites
from hemosynth.smear.sprite import premultiply, unpremultiply
from tests.helpers import disc_sprite, small_config, tiny_pool

POOL = tiny_pool()
BG = np.array([230.0, 225.0, 215.0])


def _cfg(**kw):
    return small_config(**{"counts.platelet.mean": 6.0, "counts.platelet.sd": 0.0,
                           "counts.scale_with_area": False, "counts.rbc.mean": 20.0, **kw})


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 0.99), st.tuples(*[st.integers(20, 250)] * 3))
def test_weaker_stain_moves_every_colour_towards_the_plasma(factor, rgb):
    sprite = premultiply(disc_sprite(15, rgb))
    out = scale_density(sprite, factor, BG)
    assert np.array_equal(out[..., 3], sprite[..., 3])  # alpha, so the box, unchanged
    solid = sprite[..., 3] == 255
    before = unpremultiply(sprite)[solid][:, :3].astype(float)
    after = unpremultiply(out)[solid][:, :3].astype(float)
    assert np.all(np.abs(after - BG) <= np.abs(before - BG) + 1)
    # the optical density over the plasma shrinks by the factor (to the grey level)
    assert np.all(np.abs(after - BG * (np.maximum(before, 1) / BG) ** factor) <= 1.01)


def test_strength_one_is_the_sprite_itself():
    s = premultiply(disc_sprite(9, (90, 60, 160)))
    assert scale_density(s, 1.0, BG) is s


def test_cell_strength_touches_only_the_named_type():
    base, sprites0 = plan_smear(_cfg(), POOL, 0, keep_sprites=True)
    cfg = _cfg(**{"render.cell_strength": {"Platelet": [0.4, 0.6]}})
    plan, sprites = plan_smear(cfg, POOL, 0, keep_sprites=True)
    assert plan.classes == base.classes and np.array_equal(plan.boxes, base.boxes)
    is_plt = np.array(["latelet" in c for c in plan.classes])
    assert is_plt.sum() >= 3
    assert np.all((plan.strengths[is_plt] >= 0.4) & (plan.strengths[is_plt] <= 0.6))
    assert np.all(plan.strengths[~is_plt] == 1.0)
    again = prepare_sprites(plan, POOL, cfg)  # re-rendering from the plan gives the same cells
    assert all(np.array_equal(a, b) for a, b in zip(again, sprites, strict=True))
    for k, (a, b) in enumerate(zip(sprites0, sprites, strict=True)):
        if is_plt[k]:
            assert not np.array_equal(a, b) and np.array_equal(a[..., 3], b[..., 3])
        else:
            assert np.array_equal(a, b)


def test_box_margin_widens_only_the_named_type_and_keeps_the_tight_box(tmp_path):
    generate_dataset(_cfg(), tmp_path / "a", pool=POOL)
    cfg = _cfg(**{"output.box_margin": {"Platelet": 0.25}})
    generate_dataset(cfg, tmp_path / "b", pool=POOL)
    n = 0
    for ra, rb in zip(iter_records(tmp_path / "a"), iter_records(tmp_path / "b"), strict=True):
        for ca, cb in zip(ra["cells"], rb["cells"], strict=True):
            if "latelet" in ca["class"]:
                n += 1
                assert cb["tight_box"] == ca["box"]
                assert cb["box"] == widen_box(ca["box"], 0.25, rb["width"], rb["height"])
            else:
                assert cb["box"] == ca["box"] and "tight_box" not in cb
    assert n >= 3
    coco = json.loads((tmp_path / "b" / "coco" / "main.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    widths = [a["bbox"][2] for a in coco["annotations"] if names[a["category_id"]] == "Platelet"]
    coco_a = json.loads((tmp_path / "a" / "coco" / "main.json").read_text())
    widths_a = [a["bbox"][2] for a in coco_a["annotations"]
                if names[a["category_id"]] == "Platelet"]
    assert sum(widths) > sum(widths_a)  # the written labels carry the wider boxes


@given(st.tuples(st.integers(0, 300), st.integers(0, 200), st.integers(1, 60),
                 st.integers(1, 60)), st.floats(0, 1))
def test_widened_box_contains_the_box_and_stays_in_the_field(b, margin):
    x0, y0, w, h = b
    box = [x0, y0, min(x0 + w, 320), min(y0 + h, 240)]
    out = widen_box(box, margin, 320, 240)
    assert out[0] <= box[0] and out[1] <= box[1] and out[2] >= box[2] and out[3] >= box[3]
    assert out[0] >= 0 and out[1] >= 0 and out[2] <= 320 and out[3] <= 240
    assert out[2] - out[0] <= (box[2] - box[0]) * (1 + 2 * margin) + 2


@pytest.mark.parametrize("key,value,match", [
    ("render.cell_strength", {"Platelets": [0.5, 0.9]}, "cell_strength: unknown main type"),
    ("render.cell_strength", {"Platelet": [0.9, 0.5]}, "cell_strength.Platelet"),
    ("output.box_margin", {"WBC": 2.0}, "box_margin.WBC"),
    ("output.box_margin", {"Neutrophil": 0.1}, "box_margin: unknown main type"),
])
def test_bad_settings_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=match):
        small_config(**{key: value})
