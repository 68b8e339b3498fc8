"""The procedural cell renderers: sizes, determinism, defining features."""

import numpy as np
import pytest

from hemosynth.errors import ConfigError
from hemosynth.pools.procedural import RENDERERS, SIZE_UM, mask_diameter_um, render_cell
from hemosynth.smear.stain import PROFILES, rgb_to_od
from hemosynth.taxonomy import POOL_CLASSES

SCALES = (0.08, 7.5 / 74.0, 0.2)
PBC = PROFILES["pbc"]


def dense_fraction(rgba: np.ndarray) -> float:
    """Share of the cell's pixels dark enough to be nucleus (summed OD > 0.9)."""
    inside = rgba[:, :, 3] >= 128
    od = rgb_to_od(rgba[:, :, :3].astype(np.float32), PBC.illuminant).sum(axis=2)
    return float((od[inside] > 0.9).mean())


def test_every_class_has_a_renderer_and_a_size():
    assert set(RENDERERS) == set(POOL_CLASSES) == set(SIZE_UM)


@pytest.mark.parametrize("cls", POOL_CLASSES)
def test_sizes_in_the_class_range_at_several_scales(cls):
    lo, hi = SIZE_UM[cls]
    for um in SCALES:
        for seed in range(3):
            rgba = render_cell(cls, np.random.default_rng(seed), um)
            assert rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4
            d = mask_diameter_um(rgba, um)
            tol = 0.1 * lo + 1.5 * um  # irregular outlines and pixel rounding
            assert lo - tol <= d <= hi + tol, (cls, um, seed, d)


@pytest.mark.parametrize("cls", POOL_CLASSES)
def test_same_rng_same_sprite_other_rng_other_sprite(cls):
    a = render_cell(cls, np.random.default_rng(5), 0.1)
    b = render_cell(cls, np.random.default_rng(5), 0.1)
    c = render_cell(cls, np.random.default_rng(6), 0.1)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("cls", POOL_CLASSES)
def test_sprites_are_tight_and_clean(cls):
    rgba = render_cell(cls, 3, 0.1)
    alpha = rgba[:, :, 3]
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()
    assert not rgba[alpha == 0, :3].any()
    assert (alpha == 255).sum() > 0.5 * (alpha > 0).sum()


def test_nucleated_and_anucleate_classes():
    for cls in POOL_CLASSES:
        frac = np.mean([dense_fraction(render_cell(cls, s, 0.1)) for s in range(4)])
        if cls == "RBC":
            assert frac == 0.0
        elif "latelet" not in cls and cls != "Basket cell":  # platelet granules are dense too
            assert frac > 0.04, cls


def test_red_cells_mostly_have_a_central_pallor():
    with_pallor = 0
    for seed in range(20):
        rgba = render_cell("RBC", seed, 0.1)
        h, w = rgba.shape[:2]
        lum = rgba[:, :, :3].astype(float).sum(axis=2)
        centre = lum[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3].mean()
        yy, xx = np.mgrid[:h, :w]
        r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
        ring = lum[(r > 0.55) & (r < 0.8)].mean()
        with_pallor += centre > ring + 20
    assert 12 <= with_pallor <= 20


def test_lymphocyte_nucleus_fills_most_of_the_cell_and_monocyte_does_not():
    lym = np.mean([dense_fraction(render_cell("Lymphocyte", s, 0.1)) for s in range(5)])
    mono = np.mean([dense_fraction(render_cell("Monocyte", s, 0.1)) for s in range(5)])
    assert lym > 0.4 and mono < lym


def test_bad_arguments():
    with pytest.raises(ConfigError):
        render_cell("Megakaryocyte", 0, 0.1)
    with pytest.raises(ConfigError):
        render_cell("RBC", 0, 0.0)


def test_segmented_neutrophil_lobes_are_joined_only_by_thin_strands():
    """Opening away the strands (0.35 um disk) leaves at least three separate lobes."""
    import cv2

    um = 0.1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    separate = 0
    for seed in range(10):
        rgba = render_cell("Segmented neutrophil", seed, um)
        od = rgb_to_od(rgba[:, :, :3].astype(np.float32), PBC.illuminant).sum(axis=2)
        dense = ((od > 0.9) & (rgba[:, :, 3] >= 128)).astype(np.uint8)
        lobes = cv2.morphologyEx(dense, cv2.MORPH_OPEN, disk)
        _, _, stats, _ = cv2.connectedComponentsWithStats(lobes)
        separate += int((stats[1:, cv2.CC_STAT_AREA] * um**2 > 0.5).sum() >= 3)
    assert separate >= 8


def test_eosinophil_granules_are_red_not_mauve():
    """Cytoplasm (outside the nucleus) is red: R well above G and above B, as in PBC."""
    pix = []
    for seed in range(4):
        rgba = render_cell("Eosinophil", seed, 0.1)
        od = rgb_to_od(rgba[:, :, :3].astype(np.float32), PBC.illuminant).sum(axis=2)
        pix.append(rgba[(rgba[:, :, 3] == 255) & (od < 0.9), :3].astype(float))
    r, g, b = np.median(np.concatenate(pix), axis=0)
    assert r - g > 60 and r - b > 30


def test_platelet_matches_pbc_field_platelets():
    """Platelets are 2-4 um (PBC fields: median eq. diameter about 2.4 um granular body and
    rim, box about 3.2 um), purple in the centre and paler at the rim."""
    d = [mask_diameter_um(render_cell("Platelet", s, 0.1), 0.1) for s in range(20)]
    assert 2.6 <= np.median(d) <= 3.4 and min(d) >= 1.8 and max(d) <= 4.3
    rgba = render_cell("Platelet", 1, 0.05)
    h, w = rgba.shape[:2]
    lum = rgba[:, :, :3].astype(float).sum(axis=2)
    centre = lum[h // 2 - 3 : h // 2 + 4, w // 2 - 3 : w // 2 + 4].mean()
    inside = rgba[:, :, 3] == 255
    dist = cv2_distance(inside)
    rim = lum[inside & (dist <= 2)].mean()
    assert rim > centre + 60


def cv2_distance(mask: np.ndarray) -> np.ndarray:
    import cv2

    m = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(m, cv2.DIST_L2, 5)[1:-1, 1:-1]
