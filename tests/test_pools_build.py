"""Tests of pools build, mapping, scale, quality, derive, dedup, merge, info and the CLI."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from hemosynth.errors import ConfigError, FormatError, PoolError
from hemosynth.pools import dedup, derive, quality, scale
from hemosynth.pools.build import Source, build_pool
from hemosynth.pools.info import contact_sheet, format_info, pool_info
from hemosynth.pools.mapping import ClassMapping, load_mapping, parse_map_options
from hemosynth.pools.store import PoolStore
from tests.pools_fixtures import RBC_D, draw_crop, write_crops, write_field

LAYOUT = {
    "lymphocyte": ["LY_1.jpg", "LY_2.jpg"],
    "neutrophil": ["SNE_1.jpg", "BNE_1.jpg", "NEUTROPHIL_1.jpg"],
    "ig": ["MY_1.jpg"],
    "platelet": ["PLATELET_1.jpg"],
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    crops = write_crops(root / "crops", LAYOUT)
    field = write_field(root / "field")
    return crops, field


def test_mapping_defaults_prefixes_and_skips():
    m = ClassMapping()
    assert m.resolve("neutrophil", "SNE_123.jpg") == ("Segmented neutrophil", "neutrophil/SNE")
    assert m.resolve("neutrophil", "BNE_9.jpg")[0] == "Band cell"
    assert m.resolve("neutrophil", "NEUTROPHIL_9.jpg") == (None, "neutrophil/NEUTROPHIL")
    assert m.resolve("erythroblast")[0] == "Nucleated RBC"
    assert m.resolve("Platelets")[0] == "Platelet"
    assert m.resolve("WBC") == (None, "wbc")
    assert m.resolve("ig") == (None, "ig")
    user = parse_map_options(["ig=Atypical lymphocyte", "neutrophil/*=skip"])
    m2 = m.merged(user)
    assert m2.resolve("ig")[0] == "Atypical lymphocyte"
    assert m2.resolve("neutrophil", "X_1.jpg")[0] is None
    assert m2.resolve("neutrophil", "SNE_1.jpg")[0] == "Segmented neutrophil"
    with pytest.raises(ConfigError, match="'Blast' names no pool class"):
        parse_map_options(["ig=Blast"])
    with pytest.raises(ConfigError, match="expected SOURCE=CLASS"):
        parse_map_options(["ig"])


def test_mapping_file(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text("classes:\n  ig: null\n  wbc: Lymphocyte\n  neutrophil:\n    SNE: band cell\n")
    m = load_mapping(p)
    assert m.resolve("WBC")[0] == "Lymphocyte"
    assert m.resolve("neutrophil", "SNE_1.png")[0] == "Band cell"
    p.write_text("classes:\n  wbc: Leukocyte\n")
    with pytest.raises(ConfigError, match=r"map\.yaml: wbc: 'Leukocyte' names no pool class"):
        load_mapping(p)


def test_scale_from_boxes_and_images():
    boxes = np.array([[0, 10, 30, 40], [10, 10, 50, 50], [60, 60, 100, 96]], float)
    d = scale.diameters_from_boxes(boxes, 200, 200)
    assert d.tolist() == [40.0, 38.0]  # the first box touches the border
    rgb, _ = draw_crop(np.random.default_rng(0), size=220, kind="wbc", rbcs=5)
    d = scale.diameters_from_image(rgb)
    assert len(d) >= 2 and abs(np.median(d) - RBC_D) / RBC_D < 0.1
    est = scale.estimate_scale([40, 40, 42], "boxes")
    assert est.um_per_px == pytest.approx(7.5 / 40) and est.n == 3
    assert scale.estimate_scale([], "boxes") is None


def test_lobe_counting():
    for n in (1, 2, 3, 6):
        m = np.zeros((120, 120), np.uint8)
        for k in range(n):
            a = 2 * np.pi * k / n
            c = (60 + int(30 * np.cos(a) * (n > 1)), 60 + int(30 * np.sin(a) * (n > 1)))
            cv2.circle(m, c, 9, 1, -1)
        for k in range(n):  # thin chromatin bridges between lobes
            a0, a1 = 2 * np.pi * k / n, 2 * np.pi * (k + 1) / n
            if n > 1 and k < n - 1:
                cv2.line(m, (60 + int(30 * np.cos(a0)), 60 + int(30 * np.sin(a0))),
                         (60 + int(30 * np.cos(a1)), 60 + int(30 * np.sin(a1))), 1, 2)
        assert derive.count_lobes(m > 0) == n
    assert derive.derived_class("Segmented neutrophil", 6, 12) == "Hypersegmented neutrophil"
    assert derive.derived_class("Segmented neutrophil", 2, 12) == "Hyposegmented neutrophil"
    assert derive.derived_class("Segmented neutrophil", 3, 12) is None
    assert derive.derived_class("Platelet", 0, 8.0) == "Giant platelet"
    assert derive.derived_class("Platelet", 0, 3.0) is None


def test_phash_near_duplicates():
    rng = np.random.default_rng(0)
    a, _ = draw_crop(rng)
    b = cv2.resize(cv2.resize(a, (120, 120)), a.shape[1::-1])  # re-sampled copy
    c, _ = draw_crop(rng, kind="rbc")
    h = [dedup.phash(a), dedup.phash(b), dedup.phash(c)]
    assert dedup.near_duplicates(h).tolist() == [False, True, False]
    rgba = np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
    assert dedup.phash(rgba) == dedup.phash(a)


def test_quality_helpers():
    assert quality.box_touches_border((0, 5, 10, 10), 50, 50)
    assert not quality.box_touches_border((5, 5, 10, 10), 50, 50)
    out = quality.size_outliers(np.array([10, 11, 9, 10, 12, 100, 1.0]))
    assert out.tolist() == [False] * 5 + [True, True]
    blurred = cv2.GaussianBlur(draw_crop(np.random.default_rng(0))[0], (0, 0), 6)
    assert quality.sharpness(blurred) < quality.BLUR_THRESHOLD


def test_blur_filter_is_relative():
    """A smooth but sharp crop (one red cell on plasma, JPEG-like smoothing of the noise)
    passes; the absolute variance of the Laplacian called it blurred."""
    rbc = cv2.GaussianBlur(draw_crop(np.random.default_rng(2), kind="rbc")[0], (0, 0), 0.7)
    assert quality.laplacian_variance(rbc) < 12.0  # the old absolute threshold
    assert quality.sharpness(rbc) > quality.BLUR_THRESHOLD
    wbc = draw_crop(np.random.default_rng(2), kind="wbc")[0]
    assert quality.sharpness(wbc) > quality.BLUR_THRESHOLD
    assert quality.sharpness(cv2.GaussianBlur(wbc, (0, 0), 2.0)) < quality.BLUR_THRESHOLD


def test_build_from_crops_and_fields(sources, tmp_path):
    crops, field = sources
    bad = crops / "lymphocyte" / "LY_3.jpg"
    bad.write_bytes(b"not a jpeg")
    try:
        exclude = tmp_path / "test-set"
        exclude.mkdir()
        shutil.copy(crops / "lymphocyte" / "LY_1.jpg", exclude / "copy.jpg")
        report = build_pool(
            [Source(crops), Source(field)], tmp_path / "pool", exclude_like=[exclude],
        )
    finally:
        bad.unlink()
    pool = PoolStore(tmp_path / "pool")
    assert {"RBC", "Lymphocyte", "Segmented neutrophil", "Band cell", "Platelet"} <= set(
        pool.classes
    )
    assert report.rejected["unreadable"] == 1
    assert report.rejected["excluded-like"] == 1
    assert report.rejected["cut-by-border"] == 2  # one RBC per field image
    assert report.unmapped == {
        "crops: ig": 1, "crops: neutrophil/NEUTROPHIL": 1, "field: wbc": 2
    }
    # scale: fixture red cells are 40 px across
    for name in ("crops", "field"):
        s = report.scales[name]
        assert abs(s.rbc_diameter_px - RBC_D) / RBC_D < 0.1, (name, s)
    assert len({r.um_per_px for r in pool.records}) == 1
    for r in pool.records:
        p = r.provenance
        assert p["kind"] in ("real", "derived") and p["dataset"] in ("crops", "field")
        assert len(p["box"]) == 4 and p["file"]
    rgba = pool.load(int(pool.ids("Lymphocyte")[0]))
    assert rgba[0, 0, 3] == 0 and rgba[rgba.shape[0] // 2, rgba.shape[1] // 2, 3] == 255
    text = report.to_text()
    assert "unmapped" in text and "excluded-like" in text


def test_build_derived_and_fill_from_atlas(sources, tmp_path):
    crops, _ = sources
    report = build_pool([Source(crops, um_per_px=0.1)], tmp_path / "pool", fill_from="atlas")
    pool = PoolStore(tmp_path / "pool")
    assert len(pool.classes) == 18
    hypo = [pool.records[int(i)] for i in pool.ids("Hyposegmented neutrophil")]
    assert hypo and all(r.provenance["kind"] == "derived" and "rule" in r.provenance
                        for r in hypo)
    filled = [r for r in pool.records if "filled_from" in r.provenance]
    assert filled and sum(report.filled.values()) == len(filled)
    assert report.scales["crops"].method == "user"
    assert {r.um_per_px for r in pool.records} == {0.1}
    info = pool_info(pool)
    assert info["n"] == len(pool) and 0 < info["derived_share"] < 1
    assert "Hyposegmented neutrophil" in format_info(info)
    sheet = contact_sheet(pool, tmp_path / "sheet.png", per_class=3, tile=64)
    assert sheet.shape == (64 * 18, 200 + 3 * 64, 3)
    assert (tmp_path / "sheet.png").is_file()


def test_build_from_sprites(sources, tmp_path):
    crops, _ = sources
    build_pool([Source(crops, um_per_px=0.1)], tmp_path / "a", derived=False)
    src = tmp_path / "sprites"
    for cls_dir in (tmp_path / "a" / "sprites").iterdir():
        shutil.copytree(cls_dir, src / cls_dir.name)
    report = build_pool([Source(src, um_per_px=0.2)], tmp_path / "b", um_per_px=0.1)
    assert report.scales["sprites"].method == "user"
    a, b = PoolStore(tmp_path / "a"), PoolStore(tmp_path / "b")
    assert set(b.classes) == set(a.classes)
    # sprites at 0.2 um/px written at 0.1 um/px are twice as large
    ra, rb = a.records[int(a.ids("Lymphocyte")[0])], b.records[int(b.ids("Lymphocyte")[0])]
    assert rb.size[0] == pytest.approx(2 * ra.size[0], abs=2)


def test_bad_input_leaves_no_pool(tmp_path, sources):
    crops, _ = sources
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoolError, match="no class folders"):
        build_pool([tmp_path / "empty"], tmp_path / "p")
    (tmp_path / "empty" / "basophil").mkdir()
    with pytest.raises(PoolError, match="hold no images"):
        build_pool([tmp_path / "empty"], tmp_path / "p")
    with pytest.raises(PoolError, match="not found"):
        build_pool([tmp_path / "missing"], tmp_path / "p")
    only_ig = tmp_path / "ig"
    shutil.copytree(crops / "ig", only_ig / "ig")
    with pytest.raises(PoolError, match="no candidate cells"):
        build_pool([only_ig], tmp_path / "p", um_per_px=0.1)
    ann = tmp_path / "ann"
    write_field(ann, n=1)
    (ann / "labels" / "f0.txt").write_text("1 1.5 1.5 0.1 0.1\n")
    with pytest.raises(FormatError, match=r"f0\.txt:1: box .* outside"):
        build_pool([Source(ann, "annotated")], tmp_path / "p")
    assert not (tmp_path / "p").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.")]


def test_cli_build_info_sheet(sources, tmp_path):
    from typer.testing import CliRunner

    from hemosynth.cli import app

    crops, field = sources
    runner = CliRunner()
    r = runner.invoke(app, ["pools", "build", str(tmp_path / "pool"), "--crops", str(crops),
                            "--annotated", str(field), "--map", "ig=Lymphocyte",
                            "--report-json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert "crops: ig" not in rep["unmapped"]
    r = runner.invoke(app, ["pools", "info", str(tmp_path / "pool")])
    assert r.exit_code == 0 and "Lymphocyte" in r.output
    r = runner.invoke(app, ["pools", "info", str(tmp_path / "pool"), "--json"])
    assert json.loads(r.output)["n"] > 0
    r = runner.invoke(app, ["pools", "sheet", str(tmp_path / "pool"), str(tmp_path / "s.png")])
    assert r.exit_code == 0 and (tmp_path / "s.png").is_file()


def test_pbc_subset_builds_all_mapped_classes(shared_data, tmp_path):
    report = build_pool(
        [Source(shared_data / "pbc", "crops"), Source(shared_data / "pbc-fields", "annotated")],
        tmp_path / "pbc", max_per_class=4, workers=2,
    )
    pool = PoolStore(tmp_path / "pbc")
    mapped = {"Basophil", "Eosinophil", "Nucleated RBC", "Lymphocyte", "Monocyte",
              "Segmented neutrophil", "Band cell", "Platelet"}
    assert mapped <= set(pool.classes), report.to_text()
    # red cells: the shape filter keeps about a third of the field candidates, so take more
    rbc = build_pool([Source(shared_data / "pbc-fields", "annotated")], tmp_path / "rbc",
                     max_per_class=20, workers=2)
    assert {"RBC", "Platelet"} <= set(PoolStore(tmp_path / "rbc").classes), rbc.to_text()
    assert report.unmapped["pbc: ig"] == 300
    # README: an RBC is about 74 px across in PBC
    for name in ("pbc", "pbc-fields"):
        d = report.scales[name].rbc_diameter_px
        assert abs(d - 74) / 74 < 0.10, (name, d)


def test_bccd_scale_matches_the_readme(shared_data):
    from hemosynth.formats.readers import read_annotations

    diam = []
    for a in read_annotations(shared_data / "bccd"):
        rbc = [i for i, lab in enumerate(a.labels) if lab == "RBC"]
        diam += scale.diameters_from_boxes(a.boxes[rbc], a.width, a.height).tolist()
    est = scale.estimate_scale(diam, "boxes")
    assert abs(est.rbc_diameter_px - 102) / 102 < 0.10


def test_misshapen_red_cell_masks_are_rejected_platelets_only_when_merged():
    import cv2

    from hemosynth.pools.quality import check_candidate, ellipse_iou
    from hemosynth.pools.segment import Segmentation

    rng = np.random.default_rng(0)
    rgb = np.full((80, 80, 3), 235, np.uint8)
    rgb += rng.integers(0, 3, rgb.shape, dtype=np.uint8)
    disc = np.zeros((80, 80), np.uint8)
    cv2.circle(disc, (40, 40), 25, 1, -1)
    cut = disc.copy()
    cut[:, 52:] = 0  # a disc cut along a straight line (a watershed cut between neighbours)
    pair = disc.copy()
    cv2.circle(pair, (62, 40), 16, 1, -1)  # merged with a neighbour
    for m in (disc, cut, pair):
        rgb[m > 0] = (200, 120, 130)
    assert ellipse_iou(disc > 0) > 0.97
    verdicts = []
    for m in (disc, cut, pair):
        seg = Segmentation(m > 0, (m * 255).astype(np.uint8), np.zeros_like(m, bool), 0)
        verdicts.append(check_candidate(rgb, seg, nucleated=False, blur_threshold=0.0,
                                        regular=True))
    assert verdicts == [None, "misshapen", "misshapen"]
    # a platelet (regular=False) is irregular by nature: the cut disc passes
    seg = Segmentation(cut > 0, (cut * 255).astype(np.uint8), np.zeros_like(cut, bool), 0)
    assert check_candidate(rgb, seg, nucleated=False, blur_threshold=0.0) is None


def test_red_cells_with_stained_spots_are_rejected():
    """A platelet or granules on a red cell would be unlabelled platelet-like dots in smears."""
    from hemosynth.pools.quality import MAX_SPOT_SHARE, check_candidate, stained_spots
    from hemosynth.pools.segment import Segmentation

    rng = np.random.default_rng(1)
    rgb = np.full((80, 80, 3), 235, np.uint8)
    disc = np.zeros((80, 80), np.uint8)
    cv2.circle(disc, (40, 40), 25, 1, -1)
    rgb[disc > 0] = (200, 120, 130)
    rgb = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    seg = Segmentation(disc > 0, (disc * 255).astype(np.uint8), np.zeros_like(disc, bool), 0)
    assert stained_spots(rgb, disc > 0) == 0  # noise and the cell's own shading are no spots
    assert check_candidate(rgb, seg, nucleated=False, blur_threshold=0.0, regular=True) is None
    spotted = rgb.copy()
    for x, y in ((30, 35), (48, 44)):  # two small violet dots (about 3 px across)
        cv2.circle(spotted, (x, y), 2, (90, 50, 150), -1)
    n = stained_spots(spotted, disc > 0)
    assert 20 <= n <= 30 and n > MAX_SPOT_SHARE * seg.area
    assert check_candidate(spotted, seg, nucleated=False, blur_threshold=0.0,
                           regular=True) == "inclusions"
    # platelets are the stained spot themselves: the filter is for red cells only
    assert check_candidate(spotted, seg, nucleated=False, blur_threshold=0.0) is None
    # a violet dot outside the cell or on its soft rim does not count
    rim = rgb.copy()
    cv2.circle(rim, (40, 14), 2, (90, 50, 150), -1)
    assert stained_spots(rim, disc > 0) == 0


def _result(cls, source, diameter_um, k):
    from hemosynth.pools.build import _Result

    return _Result(source=source, cls=cls, reason=None, area_um2=np.pi * diameter_um ** 2 / 4,
                   sprite_hash=(k * 0x9E3779B97F4A7C15) & (2 ** 64 - 1))


def test_sizes_are_judged_per_source_and_by_user_range():
    """PBC's platelet crops (about 6.7 um) and its fields' platelet boxes (about 3 um) both
    survive the relative size test; a user range keeps only normal-sized platelets."""
    from hemosynth.pools.build import BuildReport, _filter

    rng = np.random.default_rng(0)
    results = [_result("Platelet", 0, d, k) for k, d in enumerate(rng.normal(6.7, 0.6, 20))]
    results += [_result("Platelet", 1, d, 100 + k) for k, d in enumerate(rng.normal(3, 0.3, 20))]
    results += [_result("Platelet", 1, 30.0, 999)]  # a far outlier of source 1
    report = BuildReport()
    kept = _filter(results, report, [], dedupe=False)
    assert len(kept) == 40 and report.rejected["size"] == 1
    report = BuildReport()
    kept = _filter(results, report, [], dedupe=False, size_ranges={"Platelet": (1.5, 4.5)})
    assert {r.source for r in kept} == {1} and len(kept) == 20
    assert report.rejected_by_class["Platelet"]["size"] == 21


def test_size_range_options():
    from hemosynth.pools.build import parse_size_ranges

    assert parse_size_ranges(["Platelet=1.5:4.5", "RBC=5:10"]) == {
        "Platelet": (1.5, 4.5), "RBC": (5.0, 10.0)}
    with pytest.raises(ConfigError, match="unknown class 'Blast'"):
        parse_size_ranges(["Blast=1:2"])
    with pytest.raises(ConfigError, match="expected CLASS=MIN:MAX"):
        parse_size_ranges(["Platelet=3"])
    with pytest.raises(ConfigError, match="need 0 <= min < max"):
        parse_size_ranges(["Platelet=4:2"])
    with pytest.raises(ConfigError, match="must be numbers"):
        parse_size_ranges(["Platelet=a:b"])


def test_white_cell_mask_without_cytoplasm_is_rejected():
    """A mask hardly larger than its nucleus (pale cytoplasm missed) would give the sprite the
    nucleus's box: the no-cytoplasm filter drops it; a cell with cytoplasm passes."""
    from hemosynth.pools.quality import MIN_CELL_TO_NUCLEUS, check_candidate
    from hemosynth.pools.segment import Segmentation

    rng = np.random.default_rng(0)
    rgb = np.full((100, 100, 3), 235, np.uint8)
    rgb += rng.integers(0, 3, rgb.shape, dtype=np.uint8)
    nucleus = np.zeros((100, 100), np.uint8)
    cv2.circle(nucleus, (50, 50), 14, 1, -1)
    cell = np.zeros((100, 100), np.uint8)
    cv2.circle(cell, (50, 50), 26, 1, -1)
    rgb[cell > 0] = (215, 200, 210)
    rgb[nucleus > 0] = (90, 50, 140)
    ratio = MIN_CELL_TO_NUCLEUS["Segmented neutrophil"]
    only_nucleus = Segmentation(nucleus > 0, nucleus * 255, nucleus > 0, 1)
    whole = Segmentation(cell > 0, cell * 255, nucleus > 0, 1)
    assert check_candidate(rgb, only_nucleus, True, 0.0, min_cell_ratio=ratio) == "no-cytoplasm"
    assert check_candidate(rgb, whole, True, 0.0, min_cell_ratio=ratio) is None
    assert check_candidate(rgb, only_nucleus, True, 0.0) is None  # no ratio: not checked
