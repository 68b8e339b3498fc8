"""Test-set loading, class maps and arm planning (no training)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hemosynth import DensityWarning, generate_dataset, load_config
from hemosynth.errors import ConfigError
from hemosynth.evaluate.arms import ARMS, arm_entries, plan_budget
from hemosynth.evaluate.testsets import (
    bccd_dev_specs,
    load_testset,
    parse_class_map,
    read_annotations,
    split_spec,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "ds"
    cfg = load_config(None, **{
        "count": 4, "seed": 3, "canvas.width": 200, "canvas.height": 150, "canvas.um_per_px": 0.2,
        "counts.scale_with_area": False, "counts.rbc": {"mean": 4.0, "sd": 0.0},
        "counts.wbc": {"mean": 1.0, "sd": 0.0}, "counts.platelet": {"mean": 2.0, "sd": 0.0},
        "output.label_sets": ["main+rbc"], "output.formats": ["yolo", "coco", "voc"],
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DensityWarning)  # a crowded tiny field is fine here
        generate_dataset(cfg, root)
    return root


def test_formats_give_the_same_test_set(tiny):
    coco = load_testset(str(tiny / "coco" / "main_rbc.json"))
    yolo = load_testset(str(tiny / "yolo" / "main_rbc"))
    hemo = load_testset(str(tiny))
    assert coco.categories == ["RBC", "WBC", "Platelet", "Nucleated RBC"]
    assert coco.counts() == hemo.counts()
    assert {k: v for k, v in coco.counts().items() if v} == {
        k: v for k, v in yolo.counts().items() if v}
    for a, b in zip(coco.images, yolo.images, strict=True):
        assert a.file.name == b.file.name
        np.testing.assert_allclose(np.sort(a.boxes, axis=0), np.sort(b.boxes, axis=0), atol=0.01)


def test_declared_but_empty_classes_are_absent(tiny):
    ts = load_testset(str(tiny / "coco" / "main_rbc.json"))
    assert ts.counts()["Nucleated RBC"] == 0 or "Nucleated RBC" not in ts.absent()
    assert set(ts.absent()) == {c for c, n in ts.counts().items() if n == 0}


def test_sources_contribute_chosen_classes(tiny):
    coco = str(tiny / "coco" / "main_rbc.json")
    ts = load_testset([f"{coco}@RBC", f"{tiny / 'yolo' / 'main_rbc'}@WBC"])
    assert ts.categories == ["RBC", "WBC"]
    assert {lab for im in ts.images for lab in im.labels} <= {"RBC", "WBC"}
    with pytest.raises(ConfigError, match="comes from both"):
        load_testset([f"{coco}@RBC", f"{coco}@RBC"])


def test_split_spec():
    assert split_spec("a/b.txt@RBC,WBC") == (split_spec("a/b.txt")[0], ["RBC", "WBC"])
    assert split_spec("we@ird/path.json")[1] is None


def test_class_maps():
    m = parse_class_map("RBC=RBC, Platelet=Platelets\nWBC=WBC", test_names=["RBC", "WBC",
                                                                           "Platelets"])
    assert m("Platelet") == "Platelets" and m("Nucleated RBC") is None
    auto = parse_class_map(None, ["RBC", "WBC", "Platelet", "Nucleated RBC"],
                           ["RBC", "WBC", "Platelets"])
    assert auto.pairs == {"RBC": "RBC", "WBC": "WBC", "Platelet": "Platelets"}
    many = parse_class_map({"Lymphocyte": "WBC", "Monocyte": "WBC"}, test_names=["WBC"])
    assert many.targets == ["WBC"]
    with pytest.raises(ConfigError, match="not in the test set"):
        parse_class_map("RBC=Erythrocyte", test_names=["RBC"])
    with pytest.raises(ConfigError, match="TRAIN=TEST"):
        parse_class_map("RBC", test_names=["RBC"])


@pytest.mark.parametrize("n_real,mix", [(292, 0.5), (10, 0.25), (7, 0.8)])
def test_arms_share_the_budget(n_real, mix):
    budget = plan_budget(8000, ARMS, n_real, 50, mix)
    real = [f"r{i}" for i in range(n_real)]
    syn = [f"s{i}" for i in range(50)]
    lengths = set()
    for arm in ARMS:
        e = arm_entries(arm, budget, real, syn, mix)
        lengths.add(len(e))
        if arm != "synthetic":  # every real image is seen in every epoch
            assert {a for s, a in e if s == "real"} == set(real)
    assert lengths == {budget.epoch_images}
    mixed = arm_entries("real+synthetic", budget, real, syn, mix)
    share = sum(s == "synthetic" for s, _ in mixed) / len(mixed)
    assert share == pytest.approx(mix, abs=1 / len(mixed) + 1e-9)
    assert abs(budget.images_seen - 8000) <= budget.epoch_images / 2


def test_plan_budget_errors_and_fixed_epochs():
    assert plan_budget(1000, ["synthetic"], 0, 100, epochs=5).epoch_images == 200
    with pytest.raises(ConfigError):
        plan_budget(0, ["real"], 10, 0)
    with pytest.raises(ConfigError):
        plan_budget(100, ["real"], 10, 0, mix=1.0)
    with pytest.raises(ConfigError, match="needs --train-real"):
        arm_entries("real", plan_budget(10, ["real"], 0, 5), [], ["s"])


def test_bccd_development_set(shared_data):
    dev = load_testset(bccd_dev_specs(shared_data))
    assert len(dev.images) == 72
    assert dev.counts() == {"WBC": 71, "Platelets": 69, "RBC": 926}
    assert len(dev.evaluated["RBC"]) == 40
    assert len(dev.evaluated["WBC"]) == len(dev.evaluated["Platelets"]) == 72
    assert all(im.width == 640 and im.height == 480 for im in dev.images)
    voc = load_testset(str(shared_data / "bccd" / "ImageSets" / "Main" / "test.txt"))
    assert voc.counts() == {"WBC": 71, "RBC": 805, "Platelets": 69}
    assert [im.file.name for im in voc.images] == [im.file.name for im in dev.images]


def test_bccd_trainval_drops_zero_size_boxes(shared_data):
    tv = read_annotations(shared_data / "bccd" / "ImageSets" / "Main" / "trainval.txt")
    assert len(tv) == 292
    boxes = np.concatenate([a.boxes for a in tv])
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    test_stems = set((shared_data / "bccd" / "ImageSets" / "Main" / "test.txt").read_text().split())
    assert not test_stems & {a.file.stem for a in tv}


def test_bccd_relabel_borrows_images(shared_data):
    ts = load_testset([str(shared_data / "bccd-relabel" / "test.txt")],
                      images=shared_data / "bccd" / "JPEGImages")
    assert len(ts.images) == 40
    assert ts.counts() == {"RBC": 926, "WBC": 43, "Platelets": 37}


def test_hemosynth_dataset_with_yolo_only(tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy, symlinks=True)
    shutil.rmtree(copy / "coco")
    a = read_annotations(tiny, label_set="main+rbc")
    b = read_annotations(copy)
    assert [x.file.name for x in a] == [x.file.name for x in b]
    assert sum(len(x.labels) for x in a) == sum(len(x.labels) for x in b)
    assert b.names == ["RBC", "WBC", "Platelet", "Nucleated RBC"]
