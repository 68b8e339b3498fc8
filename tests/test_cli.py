import json
import subprocess
import sys

import yaml


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hemosynth", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_generate_with_a_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "count": 2, "seed": 4,
        "canvas": {"width": 320, "height": 240, "um_per_px": 0.25},
        "counts": {"rbc": [100, 10]},
        "output": {"formats": ["yolo", "coco", "voc"], "label_sets": ["main", "sub"]},
    }))
    r = run("generate", "--config", str(cfg), "--out", str(tmp_path / "ds"), "--strategy", "lsh")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["status"] == "complete" and m["count"] == 2
    assert m["config"]["placement"]["strategy"] == "lsh"
    assert m["config"]["output"]["label_sets"] == ["main", "sub"]
    assert (tmp_path / "ds" / "voc" / "sub").is_dir()
    assert "wrote 2 smears" in r.stderr


def test_set_overrides_any_config_key(tmp_path):
    r = run("generate", "--out", str(tmp_path / "ds"), "-n", "1", "--width", "200", "--height",
            "160", "--set", "render.blur_um=0.2", "--set", "counts.rbc={mean: 30, sd: 0}",
            "--set", "output.formats=[coco]")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["config"]["render"]["blur_um"] == 0.2
    assert m["config"]["counts"]["rbc"] == {"mean": 30, "sd": 0}
    assert m["config"]["output"]["formats"] == ["coco"]
    for bad, culprit in (("render.blurr=1", "render.blurr: unknown key"),
                         ("render.blur_um", "expected KEY=VALUE"),
                         ("render.blur_um=9", "render.blur_um")):
        r = run("generate", "--out", str(tmp_path / "bad"), "--set", bad)
        assert r.returncode == 2 and culprit in r.stderr, (bad, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()


def test_bad_config_key_is_one_line_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("placement:\n  stratgy: grid\n")
    r = run("generate", "--config", str(cfg), "--out", str(tmp_path / "ds"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "placement.stratgy: unknown key" in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "ds").exists()


def test_bad_option_value_and_bad_pool(tmp_path):
    r = run("generate", "--out", str(tmp_path / "a"), "--strategy", "spiral")
    assert r.returncode == 2 and "placement.strategy" in r.stderr
    r = run("generate", "--out", str(tmp_path / "b"), "--pool", str(tmp_path / "nope"))
    assert r.returncode == 2 and "pool folder not found" in r.stderr


def test_config_defaults_round_trip(tmp_path):
    r = run("config")
    assert r.returncode == 0
    (tmp_path / "d.yaml").write_text(r.stdout)
    r2 = run("config", "--check", str(tmp_path / "d.yaml"))
    assert r2.returncode == 0 and "ok" in r2.stderr


# in a fresh process: what importing the package and the command line loads, and that every
# public name of the package resolves
_LIGHT = """
import sys
import hemosynth, hemosynth.cli, hemosynth.server
heavy = sorted(m for m in ("numpy", "numba", "cv2", "scipy", "yaml") if m in sys.modules)
print(",".join(heavy) or "none")
missing = [n for n in hemosynth.__all__ if not hasattr(hemosynth, n)]
print(",".join(missing) or "none")
"""


def test_the_package_and_the_command_line_import_without_the_heavy_libraries():
    """`import hemosynth` and the CLI's start load no numpy, numba or OpenCV (the package's
    names are imported on first use), so `generate` can start the fork server before them."""
    out = subprocess.run([sys.executable, "-c", _LIGHT], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["none", "none"]
