"""The stats report end to end: generated datasets, real sets, bad input, the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from hemosynth.cli import app
from hemosynth.dataset import DensityWarning, generate_dataset
from hemosynth.errors import ConfigError, DatasetError, FormatError
from hemosynth.stats import ClassMap, dataset_stats, load_generated, real_layouts
from hemosynth.stats.layout import estimate_um_per_px
from hemosynth.stats.report import r_edges_for

from .helpers import small_config, tiny_pool


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "ds"
    cfg = small_config(count=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DensityWarning)
        generate_dataset(cfg, root, pool=tiny_pool())
    return root


def write_yolo(root: Path, lines: dict[str, str], size=(320, 240)) -> Path:
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "classes.txt").write_text("RBC\nWBC\nPlatelets\n")
    for stem, text in lines.items():
        (root / "labels" / f"{stem}.txt").write_text(text)
        cv2.imwrite(str(root / "images" / f"{stem}.png"),
                    np.full((size[1], size[0], 3), 230, np.uint8))
    return root


def test_report_is_written_and_consistent(generated, tmp_path):
    out = tmp_path / "rep"
    rep = dataset_stats(generated, out)
    for name in ("stats.json", "report.md", "plots/instances.png", "plots/per_smear_counts.png",
                 "plots/overlap.png", "plots/spacing.png", "plots/sizes.png"):
        assert (out / name).stat().st_size > (1000 if name.endswith(".png") else 200), name
    md = (out / "report.md").read_text()
    assert "![spacing](plots/spacing.png)" in md
    data = json.loads((out / "stats.json").read_text())
    gen = data["generated"]
    man = json.loads((generated / "manifest.json").read_text())
    assert gen["fields"] == 6
    # instances agree with the manifest's placed totals
    placed = man["totals"]["placed"]
    assert gen["instances"]["main+rbc"]["RBC"] == placed.get("RBC", 0)
    assert sum(gen["instances"]["sub"].values()) == sum(
        v for c, v in placed.items() if c != "RBC")
    per = gen["per_smear"]["RBC"]
    assert sum(per["requested"]["hist"]) == 6
    assert per["dropped"]["total"] == man["totals"]["dropped"].get("RBC", 0)
    assert sum(per["configured_pmf"]) == pytest.approx(1, abs=1e-3)
    assert gen["spacing"]["ripley"]["all"]["L_minus_r"]
    assert rep["generated"]["cells"] == gen["cells"]


def test_workers_give_the_same_measures(generated):
    edges = r_edges_for([60.0])
    a = load_generated(generated, edges, workers=1)
    b = load_generated(generated, edges, workers=2)
    assert np.array_equal(a.nn_um, b.nn_um) and np.allclose(a.ripley, b.ripley)


def test_against_a_real_yolo_set(generated, tmp_path):
    real = write_yolo(tmp_path / "real", {
        "a": "0 0.2 0.2 0.1 0.133\n0 0.32 0.2 0.1 0.133\n1 0.6 0.6 0.2 0.25\n",
        "b": "0 0.5 0.5 0.1 0.133\n2 0.8 0.2 0.03 0.04\n",
    })
    rep = dataset_stats(generated, tmp_path / "rep", real, {"um_per_px": 0.25})
    assert rep["real"]["fields"] == 2 and rep["real"]["cells"] == 5
    figs = {(r["figure"], r["group"]) for r in rep["comparison"]}
    assert ("nn_um", "RBC") in figs and ("diameter_um", "RBC") in figs
    for r in rep["comparison"]:
        if r.get("ks") is not None:
            assert 0 <= r["ks"] <= 1
    assert "Missing boxes" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "plots" / "overlap.png").stat().st_size > 1000


def test_real_scale_is_estimated_from_red_cells(tmp_path):
    real = write_yolo(tmp_path / "real", {"a": "0 0.5 0.5 0.25 0.3333\n"})  # 80 x 80 px RBC
    _layouts, info = real_layouts(real)
    assert info["um_per_px"] == pytest.approx(7.5 / 80, rel=1e-3)
    with pytest.raises(ConfigError, match="no whole RBC box"):
        estimate_um_per_px([(np.array([[0, 0, 10, 10]]), [True], 100, 100)])


def test_missing_manifest_and_records(generated, tmp_path):
    with pytest.raises(DatasetError, match="manifest.json"):
        dataset_stats(tmp_path, None)
    broken = tmp_path / "broken"
    broken.mkdir()
    man = json.loads((generated / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DatasetError, match="records"):
        dataset_stats(broken, None)
    (broken / "records").mkdir()
    with pytest.raises(DatasetError, match=r"smear_000000\.json: missing record"):
        dataset_stats(broken, None)


def test_bad_real_input_names_file_and_line(generated, tmp_path):
    real = write_yolo(tmp_path / "real", {"a": "0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(FormatError, match=r"a\.txt:2: class id 7 out of range"):
        dataset_stats(generated, None, real)
    with pytest.raises(FormatError, match="not found"):
        dataset_stats(generated, None, tmp_path / "nowhere")
    (tmp_path / "nolabels").mkdir()
    with pytest.raises(FormatError):
        dataset_stats(generated, None, tmp_path / "nolabels", {"fmt": "yolo"})


def test_unknown_classes(tmp_path):
    real = write_yolo(tmp_path / "real", {"a": "0 0.5 0.5 0.1 0.1\n"})
    (real / "classes.txt").write_text("Debris\n")
    with pytest.raises(ConfigError, match=r"a\.txt: unknown class 'Debris'"):
        real_layouts(real, um_per_px=0.1)
    with pytest.raises(ConfigError, match="unknown class 'Foo'"):
        ClassMap(["Debris=Foo"])
    with pytest.raises(ConfigError, match="expected SOURCE=TARGET"):
        ClassMap(["Debris"])
    with pytest.raises(ConfigError, match="'Dust' does not occur"):
        real_layouts(real, class_map=ClassMap(["Debris=RBC", "Dust=ignore"]), um_per_px=0.1)
    layouts, info = real_layouts(real, class_map=ClassMap({"Debris": "RBC"}), um_per_px=0.1)
    assert info["map"] == {"Debris": "RBC"} and len(layouts[0]) == 1
    layouts, _ = real_layouts(real, class_map=ClassMap(["Debris=ignore"]), um_per_px=0.1)
    assert len(layouts[0]) == 0


def test_cli_stats(generated, tmp_path):
    res = CliRunner().invoke(app, ["stats", str(generated), "--out", str(tmp_path / "o"),
                                   "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "report.md").is_file()
    assert not (tmp_path / "o" / "plots").exists()


def test_real_bccd(shared_data, generated, tmp_path):
    bccd = shared_data / "bccd"
    rep = dataset_stats(generated, tmp_path / "voc", bccd, {"split": "test"}, plots=False)
    assert rep["real"]["fields"] == 72
    assert rep["real"]["instances_by_group"]["WBC"] == 71
    # the scale estimated from BCCD's red cells: about 7.5 um per 102 px
    assert rep["real"]["read"]["um_per_px"] == pytest.approx(7.5 / 102, rel=0.06)
    rep = dataset_stats(
        generated, tmp_path / "relabel", shared_data / "bccd-relabel",
        {"images": bccd / "JPEGImages", "split": "test", "um_per_px": 7.5 / 102}, plots=False,
    )
    assert rep["real"]["fields"] == 40
    assert rep["real"]["instances_by_group"]["RBC"] == 926
    rbc = next(r for r in rep["comparison"] if r["figure"] == "diameter_um" and r["group"] == "RBC")
    assert rbc["real_median"] == pytest.approx(7.5, rel=0.1)
