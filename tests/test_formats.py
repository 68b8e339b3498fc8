import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from hemosynth.dataset import generate_dataset, make_smear
from hemosynth.errors import FormatError
from hemosynth.formats.coco import coco_dict, window_rle
from hemosynth.formats.voc import voc_xml
from hemosynth.formats.yolo import parse_yolo, yolo_lines
from hemosynth.taxonomy import LABEL_SETS, label_set
from tests.helpers import small_config, tiny_pool

POOL = tiny_pool()


def _record(**changes):
    cfg = small_config(**{"counts.wbc.mean": 4.0, "counts.platelet.mean": 4.0, **changes})
    _, rec = make_smear(cfg, POOL, 0)
    return rec


@pytest.mark.parametrize("name", sorted(LABEL_SETS))
def test_yolo_round_trip(name):
    rec = _record()
    ls = label_set(name)
    rows = parse_yolo(yolo_lines(rec, ls), rec["width"], rec["height"], len(ls.names))
    want = [(ls.class_id(c["class"]), *c["box"]) for c in rec["cells"]
            if ls.class_id(c["class"]) is not None]
    assert len(rows) == len(want)
    np.testing.assert_allclose(rows, np.array(want, float).reshape(-1, 5), atol=0.01)


def test_yolo_parse_errors_name_the_line():
    with pytest.raises(FormatError, match=r"a.txt:2: class id 9"):
        parse_yolo("0 0.5 0.5 0.1 0.1\n9 0.5 0.5 0.1 0.1\n", 100, 100, 3, "a.txt")
    with pytest.raises(FormatError, match=r"a.txt:1: bad YOLO line"):
        parse_yolo("0 0.5 0.5\n", 100, 100, 3, "a.txt")
    with pytest.raises(FormatError, match=r"a.txt:1: box"):
        parse_yolo("0 1.5 0.5 0.1 0.1\n", 100, 100, 3, "a.txt")


def test_coco_loads_in_pycocotools_with_masks(tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    rec = _record(**{"output.coco_masks": True})
    ls = label_set("main+rbc")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco_dict([rec], ls)))
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(anns) == sum(1 for c in rec["cells"] if c["box"][2] > c["box"][0])
    for ann, cell in zip(anns, rec["cells"], strict=True):
        x0, y0, x1, y1 = cell["box"]
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert coco.loadCats(ann["category_id"])[0]["name"] == ls.names[ls.class_id(cell["class"])]
        m = coco.annToMask(ann)
        assert m.sum() == ann["area"] == cell["area"]
        if m.any():
            ys, xs = np.nonzero(m)
            # the visible mask lies inside the box
            assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
        assert mask_utils.area(ann["segmentation"]) == ann["area"]


def test_window_rle_matches_pycocotools_encode():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(5, 40, 2)
        full_h, full_w = 60, 70
        win = rng.random((h, w)) > 0.5
        x0, y0 = rng.integers(0, full_w - w), rng.integers(0, full_h - h)
        full = np.zeros((full_h, full_w), np.uint8)
        full[y0:y0 + h, x0:x0 + w] = win
        ours = window_rle(win, int(x0), int(y0), full_w, full_h)
        ref = mask_utils.encode(np.asfortranarray(full))
        assert ours["counts"] == ref["counts"].decode()


def test_voc_xml_is_one_based_inclusive():
    rec = _record()
    ls = label_set("main+rbc")
    root = ET.fromstring(voc_xml(rec, ls))
    objs = root.findall("object")
    cells = [c for c in rec["cells"] if ls.class_id(c["class"]) is not None]
    assert len(objs) == len(cells)
    for o, c in zip(objs, cells, strict=True):
        bb = o.find("bndbox")
        x0, y0, x1, y1 = c["box"]
        assert int(bb.find("xmin").text) == x0 + 1 and int(bb.find("xmax").text) == x1
        assert int(bb.find("ymin").text) == y0 + 1 and int(bb.find("ymax").text) == y1
        assert o.find("name").text == ls.names[ls.class_id(c["class"])]


def test_min_visible_filters_labels():
    rec = _record()
    ls = label_set("main+rbc")
    all_lines = yolo_lines(rec, ls).splitlines()
    some = yolo_lines(rec, ls, min_visible=0.999).splitlines()
    assert len(some) == sum(1 for c in rec["cells"] if c["visible"] >= 0.999)
    assert len(some) <= len(all_lines)


def test_yolo_dataset_passes_ultralytics_checker(tmp_path):
    pytest.importorskip("ultralytics")
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    cfg = small_config(**{"count": 3, "counts.wbc.mean": 4.0, "output.formats": ["yolo"]})
    generate_dataset(cfg, tmp_path / "ds", pool=POOL)
    for ls in LABEL_SETS.values():
        folder = tmp_path / "ds" / "yolo" / ls.slug
        data = check_det_dataset(str(folder / "data.yaml"))
        assert data["nc"] == len(ls.names)
        for i in range(3):
            im = folder / "images" / f"smear_{i:06d}.jpg"
            lb = folder / "labels" / f"smear_{i:06d}.txt"
            out = verify_image_label((str(im), str(lb), "", False, len(ls.names), 0, 0, False))
            nc, msg = out[8], out[9]
            assert nc == 0, msg  # not corrupt
            n_lines = len(lb.read_text().splitlines())
            assert len(out[1]) == n_lines


@pytest.mark.parametrize("masks", [True, False])
@pytest.mark.parametrize("name", ["main", "main+rbc"])
def test_coco_built_smear_by_smear_is_the_dict_written_at_once(tmp_path, name, masks):
    """The parts made per smear (annotation text written directly, or by json.dumps with a
    mask) and joined with their ids give the bytes of the whole dict dumped at once."""
    from hemosynth.fileio import atomic_write_json
    from hemosynth.formats import WRITERS, finalize

    cfg = small_config(**{"counts.wbc.mean": 4.0, "counts.platelet.mean": 4.0,
                          "output.coco_masks": masks, "output.box_margin": {"WBC": 0.1}})
    records = [make_smear(cfg, POOL, i)[1] for i in range(3)]
    empty = dict(records[1], cells=[])  # a smear with nothing to label, in the middle
    records = [records[0], {**empty, "index": 1}, {**records[2], "index": 2}]
    odd = [dict(records[2]["cells"][-1], visible=1, area=3.0),  # not the usual int, float
           dict(records[2]["cells"][-1], visible=True)]  # json writes true, not True
    records[2] = {**records[2], "cells": [*records[2]["cells"], *odd]}
    ls = label_set(name)
    finalize(WRITERS["coco"], tmp_path, records, ls, cfg)
    atomic_write_json(tmp_path / "want.json", coco_dict(records, ls), indent=None)
    got = (tmp_path / "coco" / f"{ls.slug}.json").read_bytes()
    assert got == (tmp_path / "want.json").read_bytes()
    assert [a["id"] for a in json.loads(got)["annotations"]] == list(
        range(1, len(json.loads(got)["annotations"]) + 1))


def test_coco_annotations_wait_on_disk_not_in_memory_and_a_bad_folder_is_named(tmp_path):
    """The assembly's COCO collector keeps the annotations' text in a temporary file in the
    folder it is given (what grows with the dataset), and says which folder it cannot use."""
    from hemosynth.errors import DatasetError
    from hemosynth.formats import WRITERS

    cfg = small_config()
    records = [make_smear(cfg, POOL, i)[1] for i in range(2)]
    ls = label_set("main+rbc")
    c = WRITERS["coco"].collector(ls, cfg)
    c.spool_in(tmp_path)
    for rec in records:
        c.add(rec)
    held = sum(len(v) for v in vars(c).values() if isinstance(v, (str, list)))
    assert held == len(records)  # the image entries only
    c.write(tmp_path)
    c.close()
    n = len(json.loads((tmp_path / "coco" / f"{ls.slug}.json").read_text())["annotations"])
    assert n > 20
    bad = WRITERS["coco"].collector(ls, cfg)
    bad.spool_in(tmp_path / "missing")
    with pytest.raises(DatasetError, match="missing: cannot write a temporary file"):
        bad.add(records[0])
