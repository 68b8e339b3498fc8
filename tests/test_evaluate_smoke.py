"""Smoke test of the whole train-on-synthetic / test-on-real path: real ultralytics training
(one tiny epoch per arm, CPU), real prediction, real pycocotools scoring. It asserts that the
outputs exist and are well formed, not a score. No network: sockets are refused."""

from __future__ import annotations

import json
import socket
import sys
import warnings

import pytest

from hemosynth import DensityWarning, generate_dataset, load_config

pytest.importorskip("ultralytics", reason="needs the eval extra")
pytestmark = [pytest.mark.eval, pytest.mark.slow]


def _tiny(root, seed, **extra):
    cfg = load_config(None, **{
        "count": 4, "seed": seed, "canvas.width": 160, "canvas.height": 120,
        "canvas.um_per_px": 0.2,  # small cells: a robust fit in a tiny field
        "counts.scale_with_area": False, "counts.rbc": {"mean": 3.0, "sd": 0.0},
        "counts.wbc": {"mean": 1.0, "sd": 0.0}, "counts.platelet": {"mean": 1.0, "sd": 0.0},
        "output.label_sets": ["main+rbc"], "output.formats": ["yolo", "coco", "voc"],
        **extra,
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DensityWarning)
        generate_dataset(cfg, root)
    return root


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    attempts = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network disabled in the smoke test")

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo-config"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_evaluate_and_score_cli(tmp_path, no_network):
    from typer.testing import CliRunner

    from hemosynth.cli import app

    syn = _tiny(tmp_path / "syn", seed=1)
    real = _tiny(tmp_path / "real", seed=2)  # stands in for real data, in VOC form
    # and a real test set, in YOLO form, that never has a nucleated RBC (a class absent from it)
    test = _tiny(tmp_path / "test", seed=3, **{"subtypes.exclude": ["Nucleated RBC"]})
    out = tmp_path / "eval"
    args = [
        "evaluate", "--train", str(syn), "--train-real", str(real / "voc" / "main_rbc"),
        "--test", str(test / "yolo" / "main_rbc"),
        "--classes", "RBC=RBC,WBC=WBC,Platelet=Platelet",
        "--budget", "8", "--epochs", "1", "--imgsz", "64", "--batch", "4", "--workers", "0",
        "--out", str(out),
    ]
    runner = CliRunner()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert no_network == []

    report = json.loads((out / "report.json").read_text())
    assert set(report["arms"]) == {"synthetic", "real", "real+synthetic"}
    assert (out / "report.md").read_text().startswith("| arm |")
    for arm, folder in [("synthetic", "synthetic"), ("real", "real"),
                        ("real+synthetic", "real_synthetic")]:
        r = json.loads((out / folder / "result.json").read_text())
        assert r["arm"] == arm
        assert r["budget"]["images_seen"] == 8 and r["budget"]["epochs"] == 1
        s = r["scores"]
        assert set(s["per_class"]) == {"RBC", "WBC", "Platelet", "Nucleated RBC"}
        assert "Nucleated RBC" in s["absent"]
        for c in s["included"]:
            assert 0.0 <= s["per_class"][c]["ap50"] <= 1.0
            assert 0.0 <= s["per_class"][c]["ap50_95"] <= s["per_class"][c]["ap50"] + 1e-9
        assert set(r["unlearned"]) <= set(s["included"])  # one epoch: likely all of them
        assert (out / folder / "train" / "weights" / "last.pt").is_file()
        preds = json.loads((out / folder / "predictions.json").read_text())
        assert isinstance(preds, list)
        for p in preds:
            assert set(p) == {"image_id", "category_id", "bbox", "score"}
            assert 1 <= p["image_id"] <= 4 and 1 <= p["category_id"] <= 4
            assert len(p["bbox"]) == 4 and p["bbox"][2] >= 0 and 0 <= p["score"] <= 1
    mixed = json.loads((out / "real_synthetic" / "result.json").read_text())["budget"]
    assert mixed["real_per_epoch"] == 4 and mixed["synthetic_per_epoch"] == 4
    assert "mAP" not in res.stdout or "synthetic" in res.stdout

    # a second run reuses every kept arm (no training)
    before = (out / "real" / "result.json").read_text()
    res2 = runner.invoke(app, args)
    assert res2.exit_code == 0, res2.output
    assert (out / "real" / "result.json").read_text() == before

    # an arm whose result was lost after training: the kept model is reused, not retrained
    weights = out / "synthetic" / "train" / "weights" / "last.pt"
    stamp = weights.stat().st_mtime_ns
    (out / "synthetic" / "result.json").unlink()
    (out / "synthetic" / "train" / "train_done.json").unlink()
    res_resume = runner.invoke(app, [*args, "--arms", "synthetic"])
    assert res_resume.exit_code == 0, res_resume.output + repr(res_resume.exception)
    assert weights.stat().st_mtime_ns == stamp
    assert json.loads((out / "synthetic" / "result.json").read_text())["arm"] == "synthetic"
    assert set(json.loads((out / "report.json").read_text())["arms"]) == {
        "synthetic", "real", "real+synthetic"}  # kept arms stay in the report

    # any tool's predictions: score the kept COCO results, and a plain-form copy of them
    res3 = runner.invoke(app, ["score", str(out / "real" / "predictions.json"),
                               "--test", str(test / "yolo" / "main_rbc"),
                               "--json", str(tmp_path / "s.json")])
    assert res3.exit_code == 0, res3.output
    assert "mAP" in res3.stdout
    scored = json.loads((tmp_path / "s.json").read_text())
    assert scored["map50"] == json.loads(before)["scores"]["map50"]
    assert no_network == []


def test_missing_eval_extra_names_it(monkeypatch):
    from hemosynth.evaluate.detector import EvalDependencyError, require_eval

    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(EvalDependencyError, match="'eval' extra"):
        require_eval()


def test_core_imports_without_the_eval_extra():
    import subprocess

    code = ("import sys, hemosynth.cli, hemosynth.evaluate, hemosynth.evaluate.arms; "
            "print('ultralytics' in sys.modules or 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Stop(Exception):
    pass


def test_interrupted_training_resumes(tmp_path, no_network):
    from hemosynth.evaluate import detector
    from hemosynth.evaluate.detector import TrainOptions, train_detector

    ds = _tiny(tmp_path / "syn", seed=4)
    opts = TrainOptions(imgsz=64, batch=4, epochs=2, workers=0, cache="none")
    run = tmp_path / "run"
    real_cb = detector._progress_callbacks

    def interrupt_after_first_epoch(model, progress):
        real_cb(model, progress)

        def stop(trainer):
            raise _Stop

        model.add_callback("on_fit_epoch_end", stop)

    detector._progress_callbacks = interrupt_after_first_epoch
    try:
        with pytest.raises(_Stop):
            train_detector(ds / "yolo" / "main_rbc" / "data.yaml", run, opts,
                           progress=lambda *a: None)
    finally:
        detector._progress_callbacks = real_cb
    assert (run / "weights" / "last.pt").is_file()
    assert not (run / "train_done.json").exists()
    assert not detector._finished(run / "weights" / "last.pt")

    seen = []
    weights = train_detector(ds / "yolo" / "main_rbc" / "data.yaml", run, opts,
                             progress=lambda d, t, s: seen.append(s))
    assert weights == (run / "weights" / "last.pt").resolve()
    assert detector._finished(weights)
    assert seen and all(s == "epoch 2/2" for s in seen)  # only the second epoch ran again
    assert json.loads((run / "train_done.json").read_text())["options"]["epochs"] == 2
    assert no_network == []


def test_a_class_never_detected_with_confidence_is_flagged():
    from hemosynth.evaluate.arms import unlearned_classes
    from hemosynth.evaluate.report import arms_table

    cats = ["RBC", "WBC", "Platelets"]
    preds = [{"category_id": 1, "score": 0.9}, {"category_id": 2, "score": 0.06},
             {"category_id": 3, "score": 0.049}, {"category_id": 3, "score": 0.001}]
    assert unlearned_classes(preds, cats, cats) == ["Platelets"]
    assert unlearned_classes(preds, cats, ["RBC", "WBC"]) == []
    assert unlearned_classes([], cats, cats) == cats
    result = {"scores": {"map50": 0.6, "map50_95": 0.4, "absent": [],
                         "per_class": {c: {"ap50": 0.5} for c in cats}},
              "budget": {"images_seen": 8, "epochs": 1}, "train_seconds": 60,
              "unlearned": ["Platelets"]}
    table = arms_table({"real+syn": result, "real": {**result, "unlearned": []}})
    assert "real+syn: no detection of Platelets scored 0.05" in table
    assert "real: no detection" not in table


def test_seeds_summary_gives_mean_and_sd_per_arm():
    from hemosynth.evaluate.report import seeds_summary, seeds_table

    def result(m, plt, unlearned=()):
        return {"scores": {"map50": m, "map50_95": m / 2, "absent": ["NRBC"],
                           "per_class": {"WBC": {"ap50": 0.9}, "Platelets": {"ap50": plt},
                                         "NRBC": {"ap50": None}}},
                "unlearned": list(unlearned)}

    per_seed = {0: {"real": result(0.8, 0.6)},
                1: {"real": result(0.9, 0.0, ["Platelets"])},
                2: {"real": result(0.85, 0.3)}}
    s = seeds_summary(per_seed)["real"]
    assert s["seeds"] == [0, 1, 2]
    assert abs(s["map50"]["mean"] - 0.85) < 1e-12 and abs(s["map50"]["sd"] - 0.05) < 1e-12
    assert abs(s["per_class"]["Platelets"]["mean"] - 0.3) < 1e-12
    assert "NRBC" not in s["per_class"]  # absent from the test set
    assert s["unlearned"] == {1: ["Platelets"]}
    table = seeds_table(per_seed)
    assert "0.850 +- 0.050" in table and "real, seed 1: Platelets not learned" in table
    one = seeds_summary({0: {"real": result(0.8, 0.6)}})["real"]
    assert one["map50"]["sd"] is None


def test_evaluate_with_seeds_repeats_arms_and_summarises(tmp_path, no_network):
    from typer.testing import CliRunner

    from hemosynth.cli import app

    real = _tiny(tmp_path / "real", seed=2)
    test = _tiny(tmp_path / "test", seed=3)
    out = tmp_path / "eval"
    res = CliRunner().invoke(app, [
        "evaluate", "--train-real", str(real / "voc" / "main_rbc"),
        "--test", str(test / "yolo" / "main_rbc"), "--seeds", "0,1",
        "--budget", "8", "--epochs", "1", "--imgsz", "64", "--batch", "4", "--workers", "0",
        "--out", str(out),
    ])
    assert res.exit_code == 0, res.output + repr(res.exception)
    for k in (0, 1):
        r = json.loads((out / f"seed_{k}" / "real" / "result.json").read_text())
        assert r["options"]["seed"] == k
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["real"]["seeds"] == [0, 1] and len(summary["real"]["map50"]["values"]) == 2
    assert (out / "seeds.md").read_text().startswith("| arm | seeds |")
    assert "over seeds 0, 1" in res.stdout
    assert no_network == []
