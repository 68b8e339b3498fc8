"""Tests of hemosynth.formats.readers (VOC, YOLO, COCO annotation readers)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hemosynth.errors import FormatError
from hemosynth.formats.readers import detect_format, image_size, read_annotations, read_names

W, H = 64, 48
BOXES = np.array([[4.0, 6.0, 20.0, 30.0], [30.0, 10.0, 50.0, 40.0]])
LABELS = ["RBC", "WBC"]


def _image(path: Path, ext: str = ".jpg") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path.with_suffix(ext)), np.full((H, W, 3), 200, np.uint8))
    return path.with_suffix(ext)


def _voc(root: Path, stem: str, objects: list[tuple[str, tuple[int, int, int, int]]]) -> Path:
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, (a, b, c, d) in objects
    )
    xml = (
        f"<annotation><filename>{stem}.jpg</filename><size><width>{W}</width>"
        f"<height>{H}</height><depth>3</depth></size>{objs}</annotation>"
    )
    p = root / "Annotations" / f"{stem}.xml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(xml)
    _image(root / "JPEGImages" / stem)
    return p


def _yolo(root: Path, stem: str, lines: list[str], names=("RBC", "WBC")) -> Path:
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    _image(root / "images" / stem, ".png")
    p = root / "labels" / f"{stem}.txt"
    p.write_text("".join(line + "\n" for line in lines))
    return p


def _yolo_lines(boxes=BOXES, ids=(0, 1)) -> list[str]:
    out = []
    for c, (x0, y0, x1, y1) in zip(ids, boxes, strict=True):
        out.append(
            f"{c} {(x0 + x1) / 2 / W} {(y0 + y1) / 2 / H} {(x1 - x0) / W} {(y1 - y0) / H}"
        )
    return out


def _coco(root: Path, anns: list[dict]) -> Path:
    _image(root / "images" / "a")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "RBC"}, {"id": 2, "name": "WBC"}],
    }
    p = root / "ann.json"
    p.write_text(json.dumps(data))
    return p


def _coco_anns(boxes=BOXES, cats=(1, 2)) -> list[dict]:
    return [
        {"id": k + 1, "image_id": 1, "category_id": c,
         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
        for k, (c, b) in enumerate(zip(cats, boxes, strict=True))
    ]


@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco"])
def test_each_format_gives_the_same_boxes(tmp_path, fmt):
    if fmt == "voc":
        _voc(tmp_path, "a", [(n, (int(b[0]) + 1, int(b[1]) + 1, int(b[2]), int(b[3])))
                             for n, b in zip(LABELS, BOXES, strict=True)])
    elif fmt == "yolo":
        _yolo(tmp_path, "a", _yolo_lines())
    else:
        _coco(tmp_path, _coco_anns())
    assert detect_format(tmp_path) == fmt
    (a,) = read_annotations(tmp_path)
    assert (a.width, a.height) == (W, H)
    assert a.file.is_file() and a.stem == "a"
    assert a.labels == LABELS
    np.testing.assert_allclose(a.boxes, BOXES, atol=1e-6)
    assert a.boxes.dtype == np.float64


def test_yolo_data_yaml_and_explicit_names(tmp_path):
    _yolo(tmp_path, "a", _yolo_lines())
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "data.yaml").write_text("train: images\nnames: {0: red, 1: white}\n")
    (a,) = read_annotations(tmp_path / "data.yaml")
    assert a.labels == ["red", "white"]
    (a,) = read_annotations(tmp_path / "labels", names=["x", "y"])
    assert a.labels == ["x", "y"]
    assert read_names(tmp_path / "data.yaml") == ["red", "white"]


def test_yolo_images_elsewhere(tmp_path):
    _yolo(tmp_path / "lab", "a", _yolo_lines())
    (tmp_path / "lab" / "images" / "a.png").rename(tmp_path / "a.png")
    with pytest.raises(FormatError, match=r"a\.txt: no image named a"):
        read_annotations(tmp_path / "lab")
    (a,) = read_annotations(tmp_path / "lab", images=tmp_path)
    assert a.file == tmp_path / "a.png"


def test_yolo_polygon_line_becomes_its_box(tmp_path):
    _yolo(tmp_path, "a", ["1 0.1 0.2 0.5 0.2 0.3 0.75"])
    (a,) = read_annotations(tmp_path)
    np.testing.assert_allclose(a.boxes, [[0.1 * W, 0.2 * H, 0.5 * W, 0.75 * H]])


def test_duplicates_are_dropped_and_zero_size_boxes_too(tmp_path):
    lines = _yolo_lines()
    _yolo(tmp_path, "a", [*lines, lines[0], "0 0.5 0.5 0.0 0.1"])
    (a,) = read_annotations(tmp_path)
    assert len(a) == 2
    (a,) = read_annotations(tmp_path, dedupe=False)
    assert len(a) == 3


def test_boxes_partly_outside_are_clipped(tmp_path):
    _coco(tmp_path, _coco_anns(boxes=np.array([[-5.0, -5.0, 10.0, 10.0]]), cats=(1,)))
    (a,) = read_annotations(tmp_path / "ann.json")
    np.testing.assert_allclose(a.boxes, [[0, 0, 10, 10]])


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["0 0.5 0.5 0.1"], r"a\.txt:1: expected"),
        (["0 0.5 0.5 0.1 0.1", "7 0.5 0.5 0.1 0.1"], r"a\.txt:2: class id 7 out of range"),
        (["x 0.5 0.5 0.1 0.1"], r"a\.txt:1: bad YOLO line"),
        (["0 1.5 1.5 0.1 0.1"], r"a\.txt:1: box .* outside the 64x48 image"),
        (["0 0.5 0.5 -0.1 0.1"], r"a\.txt:1: box .* x1 < x0"),
    ],
)
def test_bad_yolo_lines_name_file_and_line(tmp_path, lines, match):
    _yolo(tmp_path, "a", lines)
    with pytest.raises(FormatError, match=match):
        read_annotations(tmp_path)


def test_bad_voc_and_coco(tmp_path):
    p = _voc(tmp_path / "v", "a", [("RBC", (100, 100, 120, 120))])
    with pytest.raises(FormatError, match=r"a\.xml: object 1 \(RBC\): box .* outside"):
        read_annotations(p)
    p.write_text("<annotation><object>")
    with pytest.raises(FormatError, match=r"a\.xml: malformed VOC XML"):
        read_annotations(tmp_path / "v")
    p = _coco(tmp_path / "c", [{"id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]}])
    with pytest.raises(FormatError, match=r"ann\.json: annotation id 9: category_id 5"):
        read_annotations(p)
    with pytest.raises(FormatError, match="not found"):
        read_annotations(tmp_path / "missing")
    (tmp_path / "e").mkdir()
    with pytest.raises(FormatError, match="cannot tell"):
        read_annotations(tmp_path / "e")
    _yolo(tmp_path / "y", "a", _yolo_lines())
    (tmp_path / "y" / "classes.txt").unlink()
    with pytest.raises(FormatError, match="no YOLO class names"):
        read_annotations(tmp_path / "y")


def test_voc_zero_size_box_dropped(tmp_path):
    _voc(tmp_path, "a", [("RBC", (10, 10, 10, 20)), ("WBC", (1, 1, 20, 20))])
    (a,) = read_annotations(tmp_path)
    assert a.labels == ["WBC"]
    np.testing.assert_allclose(a.boxes, [[0, 0, 20, 20]])


def test_image_size_from_headers(tmp_path):
    for ext in (".jpg", ".png", ".bmp"):
        assert image_size(_image(tmp_path / "x", ext)) == (W, H)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(FormatError, match=r"bad\.jpg: corrupt"):
        image_size(bad)


def test_stems_filter(tmp_path):
    _yolo(tmp_path, "a", _yolo_lines())
    _yolo(tmp_path, "b", _yolo_lines())
    assert [a.stem for a in read_annotations(tmp_path)] == ["a", "b"]
    assert [a.stem for a in read_annotations(tmp_path, stems=["b"])] == ["b"]


def test_shared_datasets(shared_data):
    from collections import Counter

    fields = read_annotations(shared_data / "pbc-fields")
    assert len(fields) == 500
    c = Counter(lab for a in fields for lab in a.labels)
    # README: 8,274 RBC and 529 WBC lines of which 31 + 5 are exact duplicates
    assert c == {"RBC": 8274 - 31, "WBC": 529 - 5, "Platelet": 367}
    bccd = read_annotations(shared_data / "bccd")
    c = Counter(lab for a in bccd for lab in a.labels)
    assert c == {"RBC": 4155 - 2, "WBC": 372, "Platelets": 361}  # 2 zero-size RBC boxes
    test = (shared_data / "bccd-relabel" / "test.txt").read_text().split()
    rel = read_annotations(
        shared_data / "bccd-relabel", images=shared_data / "bccd" / "JPEGImages", stems=test
    )
    assert len(rel) == 40
    assert Counter(lab for a in rel for lab in a.labels) == {
        "RBC": 926, "WBC": 43, "Platelets": 37
    }
