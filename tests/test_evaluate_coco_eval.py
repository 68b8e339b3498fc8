"""Scoring: properties checked against pycocotools itself."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from hemosynth.errors import FormatError
from hemosynth.evaluate.coco_eval import load_predictions, score
from hemosynth.evaluate.testsets import Annotated, TestSet


def make_testset(boxes_per_image, categories=("RBC", "WBC"), evaluated=None) -> TestSet:
    """boxes_per_image: list of lists of (label, x0, y0, x1, y1)."""
    images = []
    for k, items in enumerate(boxes_per_image):
        b = np.asarray([it[1:] for it in items], float).reshape(-1, 4)
        images.append(Annotated(Path(f"/x/img_{k}.jpg"), 640, 480, b, [it[0] for it in items]))
    ids = list(range(1, len(images) + 1))
    ev = {c: ids for c in categories}
    ev.update(evaluated or {})
    return TestSet(list(categories), images, ev)


def random_testset(rng: np.random.Generator, n_images=5) -> TestSet:
    out = []
    for _ in range(n_images):
        items = []
        for _ in range(int(rng.integers(1, 8))):
            x, y = rng.uniform(0, 500), rng.uniform(0, 350)
            w, h = rng.uniform(20, 120, size=2)
            items.append((str(rng.choice(["RBC", "WBC"])), x, y, min(x + w, 640), min(y + h, 480)))
        out.append(items)
    return make_testset(out)


def perfect(ts: TestSet, plain: bool = False) -> list[dict]:
    gt = ts.coco()
    if plain:
        return [{"file_name": gt["images"][a["image_id"] - 1]["file_name"],
                 "category": ts.categories[a["category_id"] - 1], "bbox": a["bbox"], "score": 0.9}
                for a in gt["annotations"]]
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.9} for a in gt["annotations"]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfect_predictions_score_one(seed):
    ts = random_testset(np.random.default_rng(seed))
    sc = score(ts, perfect(ts))
    assert sc.map50 == pytest.approx(1.0)
    assert sc.map50_95 == pytest.approx(1.0)
    for c in sc.included:
        assert sc.per_class[c]["ap50"] == pytest.approx(1.0)


@pytest.mark.parametrize("shift", [0, 5, 10, 20, 30, 40])
def test_shifted_box_lowers_ap_by_iou(shift):
    # one 100x100 box shifted by `shift` px: IoU = (100 - s) / (100 + s); AP at threshold t is
    # 1 when IoU >= t else 0, so AP@.5:.95 is the share of the 10 thresholds at or below IoU
    ts = make_testset([[("RBC", 100, 100, 200, 200)]], categories=("RBC",))
    pred = [{"image_id": 1, "category_id": 1, "bbox": [100 + shift, 100, 100, 100], "score": 1}]
    sc = score(ts, pred)
    iou = (100 - shift) / (100 + shift)
    thresholds = np.linspace(0.5, 0.95, 10)
    assert sc.per_class["RBC"]["ap50"] == pytest.approx(1.0 if iou >= 0.5 else 0.0)
    assert sc.map50_95 == pytest.approx(np.mean(iou >= thresholds - 1e-9))


def test_shift_lowers_ap_monotonically():
    rng = np.random.default_rng(3)
    ts = random_testset(rng, 8)
    prev = 1.0
    for s in (0, 4, 8, 16, 32):
        preds = perfect(ts)
        for p in preds:
            p["bbox"] = [p["bbox"][0] + s, *p["bbox"][1:]]
        m = score(ts, preds).map50_95
        assert m <= prev + 1e-9
        prev = m
    assert prev < 0.5


def test_plain_and_coco_results_agree():
    rng = np.random.default_rng(5)
    ts = random_testset(rng, 6)
    coco = perfect(ts)
    for p in coco:  # degrade: jitter boxes, random scores, one false positive per image
        p["bbox"] = [v + float(rng.normal(0, 6)) for v in p["bbox"]]
        p["score"] = float(rng.uniform())
    coco += [{"image_id": i, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.5}
             for i in range(1, 7)]
    gt = ts.coco()
    plain = [{"file_name": gt["images"][p["image_id"] - 1]["file_name"],
              "category": ts.categories[p["category_id"] - 1], "bbox": p["bbox"],
              "score": p["score"]} for p in coco]
    a, b = score(ts, coco), score(ts, plain)
    assert a.to_dict() == b.to_dict()
    assert 0 < a.map50 < 1


def test_single_class_matches_pycocotools_summary():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(7)
    ts = make_testset([[("RBC", x, 50, x + 60, 110) for x in range(0, 500, 70)]
                       for _ in range(4)], categories=("RBC",))
    preds = perfect(ts)
    for p in preds:
        p["bbox"] = [v + float(rng.normal(0, 8)) for v in p["bbox"]]
        p["score"] = float(rng.uniform())
    ours = score(ts, preds)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ts.coco()
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(preds), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ours.map50_95 == pytest.approx(ev.stats[0])
    assert ours.map50 == pytest.approx(ev.stats[1])


def test_absent_class_left_out_of_mean():
    ts = make_testset([[("RBC", 0, 0, 50, 50)], [("RBC", 100, 100, 150, 150)]],
                      categories=("RBC", "WBC", "Platelets"))
    preds = [*perfect(ts), {"image_id": 1, "category_id": 2, "bbox": [200, 200, 50, 50],
                             "score": 0.99}]
    sc = score(ts, preds)
    assert sc.absent == ["WBC", "Platelets"]
    assert sc.included == ["RBC"]
    assert sc.map50 == pytest.approx(1.0)
    assert sc.per_class["WBC"]["ap50"] is None
    assert "left out of the mean" in sc.table()
    assert json.loads(json.dumps(sc.to_dict()))["per_class"]["WBC"]["ap50"] is None


def test_class_scored_only_on_its_images():
    # RBC is annotated on image 1 only: an RBC prediction on image 2 is no false positive
    ts = make_testset([[("RBC", 0, 0, 50, 50), ("WBC", 100, 100, 300, 300)],
                       [("WBC", 100, 100, 300, 300)]],
                      evaluated={"RBC": [1]})
    extra = {"image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "score": 0.99}
    assert score(ts, [*perfect(ts), extra]).per_class["RBC"]["ap50"] == pytest.approx(1.0)
    ts.evaluated["RBC"] = [1, 2]
    assert score(ts, [*perfect(ts), extra]).per_class["RBC"]["ap50"] < 1.0


def test_unknown_classes_and_images_are_reported_not_scored():
    ts = make_testset([[("RBC", 0, 0, 50, 50)]], categories=("RBC",))
    preds = [*perfect(ts, plain=True),
             {"file_name": "img_0.jpg", "category": "Nucleated RBC", "bbox": [0, 0, 9, 9],
              "score": 1},
             {"file_name": "other.jpg", "category": "RBC", "bbox": [0, 0, 9, 9], "score": 1}]
    sc = score(ts, preds)
    assert sc.map50 == pytest.approx(1.0)
    assert sc.ignored == {"unknown_class": {"Nucleated RBC": 1}, "unknown_image": 1}


def test_no_predictions_score_zero(tmp_path):
    ts = make_testset([[("RBC", 0, 0, 50, 50)]], categories=("RBC",))
    f = tmp_path / "p.json"
    f.write_text("[]")
    assert score(ts, f).map50 == 0.0


@pytest.mark.parametrize("bad", [[{"bbox": [0, 0, 1, 1], "score": 1}],
                                 [{"image_id": 1, "category_id": 1, "bbox": [0, 0], "score": 1}],
                                 {"not": "a list"}])
def test_malformed_predictions_raise(bad):
    ts = make_testset([[("RBC", 0, 0, 50, 50)]], categories=("RBC",))
    with pytest.raises(FormatError):
        load_predictions(bad, ts)
