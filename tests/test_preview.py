"""Annotated previews of generated and real datasets."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from hemosynth.cli import app
from hemosynth.dataset import DensityWarning, generate_dataset
from hemosynth.errors import ConfigError, DatasetError
from hemosynth.fileio import read_image
from hemosynth.preview import (
    CLASS_COLOURS,
    class_colour,
    draw_boxes,
    preview,
    real_items,
)
from hemosynth.taxonomy import SUBTYPES

from .helpers import small_config, tiny_pool


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prev") / "ds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DensityWarning)
        generate_dataset(small_config(count=3), root, pool=tiny_pool())
    return root


def voc_set(root: Path) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    objs = [("RBC", 10, 10, 50, 50), ("WBC", 100, 60, 180, 140), ("Platelets", 200, 20, 215, 35)]
    xml = ["<annotation><filename>img1.jpg</filename><size><width>320</width>"
           "<height>240</height><depth>3</depth></size>"]
    for name, *b in objs:
        xml.append(f"<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>")
    xml.append("</annotation>")
    (root / "Annotations" / "img1.xml").write_text("".join(xml))
    cv2.imwrite(str(root / "JPEGImages" / "img1.jpg"), np.full((240, 320, 3), 235, np.uint8))
    return root


def test_colours_are_distinct_and_stable():
    names = ["RBC", "WBC", "Nucleated RBC", *SUBTYPES]
    assert len({CLASS_COLOURS[n] for n in names}) == len(set(names))
    assert class_colour("Something else") == class_colour("Something else")


def test_draw_boxes_uses_the_class_colour():
    img = np.zeros((50, 50, 3), np.uint8)
    out = draw_boxes(img, np.array([[10, 10, 30, 30]]), ["WBC"], thickness=1)
    assert tuple(out[10, 20]) == CLASS_COLOURS["WBC"]
    assert img.max() == 0  # the input is not modified


@pytest.mark.parametrize("label_set", ["main", "sub", "main+rbc"])
def test_generated_previews(generated, tmp_path, label_set):
    res = preview(generated, tmp_path, label_set, n=2)
    assert len(res["images"]) == 2
    sheet = read_image(res["contact_sheet"])
    assert sheet.shape[1] > 2 * 480  # two thumbnails and the legend
    for p in res["images"]:
        assert p.stat().st_size > 0


def test_real_previews_map_classes(tmp_path):
    real = voc_set(tmp_path / "voc")
    items = list(real_items(real, "main+rbc", 5))
    assert items[0].names == ["RBC", "WBC", "Platelet"]
    assert next(iter(real_items(real, "main", 5))).names == ["WBC", "Platelet"]
    assert next(iter(real_items(real, "sub", 5))).names == ["WBC", "Platelet"]
    res = preview(real, tmp_path / "out", "main+rbc", n=3)
    assert res["contact_sheet"].stat().st_size > 0


def test_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="unknown label set"):
        list(real_items(voc_set(tmp_path / "v"), "nope", 1))
    with pytest.raises(DatasetError, match="--n"):
        preview(tmp_path / "v", tmp_path / "o", n=0)


def test_cli_preview(generated, tmp_path):
    res = CliRunner().invoke(app, ["preview", str(generated), "--label-set", "sub", "--n", "1",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "contact_sheet.jpg").is_file()


def test_preview_bccd(shared_data, tmp_path):
    res = preview(shared_data / "bccd", tmp_path, "main+rbc", n=2, split="test")
    assert len(res["images"]) == 2
