import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

import hemosynth.fileio as fileio
from hemosynth.dataset import (
    DensityWarning,
    finalize_dataset,
    generate_dataset,
    iter_records,
    read_manifest,
    record_path,
)
from hemosynth.errors import ConfigError, DatasetError, PoolError
from hemosynth.pools.store import write_pool
from tests.helpers import disc_sprite, small_config, tiny_pool

POOL = tiny_pool()


def tree_digest(root):
    """Path -> SHA-256 of every file (symlinks by target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _cfg(**kw):
    return small_config(**{"count": 6, "counts.wbc.mean": 3.0, "output.formats":
                           ["yolo", "coco", "voc"], **kw})


def test_layout_and_manifest(tmp_path):
    cfg = _cfg()
    s = generate_dataset(cfg, tmp_path / "ds", pool=POOL)
    root = tmp_path / "ds"
    m = read_manifest(root)
    assert m["status"] == "complete" and m["count"] == 6 and m["seed"] == cfg.seed
    assert m["pool"]["fingerprint"] == POOL.fingerprint
    assert m["config"] == cfg.to_dict()
    assert len(m["smears"]) == 6
    assert sum(m["totals"]["placed"].values()) == sum(s.placed.values())
    assert len(list((root / "images").glob("*.jpg"))) == 6
    for ls in ("main", "sub", "main_rbc"):
        assert len(list((root / "yolo" / ls / "labels").glob("*.txt"))) == 6
        assert (root / "yolo" / ls / "data.yaml").is_file()
        assert (root / "coco" / f"{ls}.json").is_file()
        assert len(list((root / "voc" / ls).glob("*.xml"))) == 6
    recs = list(iter_records(root))
    assert [r["index"] for r in recs] == list(range(6))
    assert not list(root.rglob("*.tmp"))


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    cfg = _cfg()
    generate_dataset(cfg, tmp_path / "w1", workers=1, pool=POOL)
    generate_dataset(cfg, tmp_path / "w2", workers=2, pool=POOL)
    a, b = tree_digest(tmp_path / "w1"), tree_digest(tmp_path / "w2")
    assert a == b
    generate_dataset(cfg, tmp_path / "all", workers=0, pool=POOL)  # every usable core
    assert tree_digest(tmp_path / "all") == a
    generate_dataset(cfg.replace(seed=99), tmp_path / "s99", pool=POOL)
    c = tree_digest(tmp_path / "s99")
    assert a["images/smear_000000.jpg"] != c["images/smear_000000.jpg"]


def test_files_built_during_the_run_equal_those_built_from_the_records(tmp_path):
    """The dataset-wide files are assembled from records as workers return them (out of
    order); rebuilding them from the records on disk gives the same bytes."""
    cfg = _cfg(count=9)
    root = tmp_path / "ds"
    generate_dataset(cfg, root, workers=2, pool=POOL)
    built = tree_digest(root)
    for p in [root / "manifest.json", *root.glob("coco/*.json"), *root.glob("yolo/*/*.*")]:
        p.unlink()
    finalize_dataset(root, cfg, POOL, made=cfg.count)
    assert tree_digest(root) == built
    record_path(root, 4).unlink()
    with pytest.raises(DatasetError, match=r"smear_000004.json: missing record"):
        finalize_dataset(root, cfg, POOL)


def test_pool_folder_is_reopened_by_workers(tmp_path):
    sprites = [(disc_sprite(28), c, 0.25, {"kind": "test"}) for c in POOL.classes]
    pool = write_pool(tmp_path / "pool", sprites)
    cfg = _cfg(pool=str(tmp_path / "pool"))
    generate_dataset(cfg, tmp_path / "a", workers=1)
    generate_dataset(cfg, tmp_path / "b", workers=2)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert read_manifest(tmp_path / "a")["pool"]["fingerprint"] == pool.fingerprint


def test_dask_executor_gives_the_same_bytes(tmp_path):
    pytest.importorskip("dask.distributed")
    cfg = _cfg(count=4)
    generate_dataset(cfg, tmp_path / "local", pool=POOL)
    generate_dataset(cfg, tmp_path / "dask", workers=2, executor="dask", pool=POOL)
    assert tree_digest(tmp_path / "local") == tree_digest(tmp_path / "dask")


def test_resume_after_failure_is_byte_identical(tmp_path, monkeypatch):
    cfg = _cfg()
    generate_dataset(cfg, tmp_path / "full", pool=POOL)

    real = fileio.atomic_write_bytes
    calls = {"n": 0}

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] > 20:
            raise DatasetError(f"{path}: cannot write (No space left on device)")
        real(path, data)

    monkeypatch.setattr("hemosynth.dataset.atomic_write_bytes", flaky)
    monkeypatch.setattr("hemosynth.formats.yolo.atomic_write_text",
                        lambda p, t: flaky(p, t.encode()))
    with pytest.raises(DatasetError, match="No space left"):
        generate_dataset(cfg, tmp_path / "part", pool=POOL)
    m = read_manifest(tmp_path / "part")
    assert m["status"] == "incomplete"  # the folder says it is unfinished
    monkeypatch.undo()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        generate_dataset(cfg, tmp_path / "part", pool=POOL)
    s = generate_dataset(cfg, tmp_path / "part", pool=POOL, resume=True)
    assert 0 < s.made < 6
    assert tree_digest(tmp_path / "part") == tree_digest(tmp_path / "full")


def test_resume_after_kill_is_byte_identical(tmp_path):
    """Kill a real CLI run mid-way, resume it, compare with an uninterrupted run."""
    args = ["-n", "40", "--width", "320", "--height", "240", "--um-per-px", "0.25",
            "--seed", "3"]
    cli = [sys.executable, "-m", "hemosynth.cli", "generate"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([*cli, "--out", str(tmp_path / "full"), *args], check=True, env=env,
                   capture_output=True)
    proc = subprocess.Popen([*cli, "--out", str(tmp_path / "cut"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "cut" / "records"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(records.glob("*.json"))) < 3:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done = len(list(records.glob("*.json")))
    assert 0 < done < 40, "the run was not interrupted mid-way"
    assert read_manifest(tmp_path / "cut")["status"] == "incomplete"
    subprocess.run([*cli, "--out", str(tmp_path / "cut"), "--resume"], check=True, env=env,
                   capture_output=True)
    assert tree_digest(tmp_path / "cut") == tree_digest(tmp_path / "full")


def test_resume_removes_the_temporary_files_of_a_killed_run(tmp_path):
    cfg = _cfg(count=3)
    generate_dataset(cfg, tmp_path / "full", pool=POOL)
    generate_dataset(cfg.replace(count=3), tmp_path / "cut", pool=POOL)
    # as a kill between writing a temporary file and renaming it leaves the folder
    (tmp_path / "cut" / "records" / "smear_000002.json").unlink()
    stale = tmp_path / "cut" / "images" / ".smear_000002.jpg.4242.tmp"
    stale.write_bytes(b"half a jpeg")
    manifest = read_manifest(tmp_path / "cut")
    fileio.atomic_write_json(tmp_path / "cut" / "manifest.json",
                             {**manifest, "status": "incomplete"})
    generate_dataset(cfg, tmp_path / "cut", pool=POOL, resume=True)
    assert not stale.exists()
    assert tree_digest(tmp_path / "cut") == tree_digest(tmp_path / "full")


def test_resume_refuses_another_config_or_pool(tmp_path):
    cfg = _cfg(count=2)
    generate_dataset(cfg, tmp_path / "ds", pool=POOL)
    with pytest.raises(ConfigError, match="another config"):
        generate_dataset(cfg.replace(seed=1), tmp_path / "ds", pool=POOL, resume=True)
    with pytest.raises(PoolError, match="another pool"):
        generate_dataset(cfg, tmp_path / "ds", pool=tiny_pool(per_class=3), resume=True)
    with pytest.raises(DatasetError, match="nothing to resume"):
        generate_dataset(cfg, tmp_path / "empty", pool=POOL, resume=True)


def test_resume_refuses_a_dataset_begun_by_another_generator(tmp_path):
    """The same seed gives other files under another generator version: finishing such a
    dataset would mix two, so resume names the manifest and the versions instead."""
    from hemosynth.dataset import GENERATOR

    cfg = _cfg(count=2)
    root = tmp_path / "ds"
    generate_dataset(cfg, root, pool=POOL)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["generator"] == GENERATOR
    generate_dataset(cfg, root, pool=POOL, resume=True)  # the same generator: fine
    for old in ({"generator": GENERATOR - 1}, {}):  # an older one; none recorded (= 1)
        m = {k: v for k, v in manifest.items() if k != "generator"} | old
        (root / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(DatasetError, match=r"manifest.json: begun by generator 1 "):
            generate_dataset(cfg, root, pool=POOL, resume=True)


def test_overwrite_and_foreign_folders(tmp_path):
    cfg = _cfg(count=2)
    generate_dataset(cfg, tmp_path / "ds", pool=POOL)
    generate_dataset(cfg.replace(seed=5), tmp_path / "ds", pool=POOL, overwrite=True)
    assert read_manifest(tmp_path / "ds")["seed"] == 5
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="not empty"):
        generate_dataset(cfg, tmp_path / "mine", pool=POOL)
    with pytest.raises(DatasetError, match="refusing to delete"):
        generate_dataset(cfg, tmp_path / "mine", pool=POOL, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_pool_missing_a_class_is_named(tmp_path):
    from hemosynth.pools.store import MemoryPool

    pool = MemoryPool("partial", [(disc_sprite(30), "RBC", 0.25, {}),
                                  (disc_sprite(40), "Lymphocyte", 0.25, {})])
    with pytest.raises(PoolError, match="'Atypical lymphocyte'"):
        generate_dataset(_cfg(count=1), tmp_path / "ds", pool=pool)
    assert not (tmp_path / "ds").exists()
    # excluding what the pool lacks makes it usable
    cfg = _cfg(count=2, **{"subtypes.mode": "weights", "subtypes.weights": {"Lymphocyte": 1},
                          "counts.platelet.mean": 0.0, "counts.platelet.sd": 0.0})
    generate_dataset(cfg, tmp_path / "ok", pool=pool)
    recs = list(iter_records(tmp_path / "ok"))
    assert {c["class"] for r in recs for c in r["cells"]} <= {"RBC", "Lymphocyte"}


def test_impossible_density_is_refused_and_crowding_warned(tmp_path):
    with pytest.raises(ConfigError, match="counts.rbc: impossible density"):
        generate_dataset(_cfg(**{"counts.rbc.mean": 5000.0}), tmp_path / "a", pool=POOL)
    assert not (tmp_path / "a").exists()
    with pytest.warns(DensityWarning, match="could not be placed"):
        s = generate_dataset(_cfg(count=2, **{"counts.rbc.mean": 1000.0,
                                              "placement.max_attempts": 5}),
                             tmp_path / "b", pool=POOL)
    assert s.dropped.get("RBC", 0) > 0
    m = read_manifest(tmp_path / "b")
    assert m["totals"]["dropped"]["RBC"] == s.dropped["RBC"]
    assert sum(e["dropped"].get("RBC", 0) for e in m["smears"]) == s.dropped["RBC"]


def test_png_output_and_records_match_labels(tmp_path):
    cfg = _cfg(count=2, **{"output.image_format": "png"})
    generate_dataset(cfg, tmp_path / "ds", pool=POOL)
    import cv2

    im = cv2.imread(str(tmp_path / "ds" / "images" / "smear_000000.png"))
    assert im.shape == (240, 320, 3)
    rec = json.loads((tmp_path / "ds" / "records" / "smear_000000.json").read_text())
    lines = (tmp_path / "ds" / "yolo" / "main_rbc" / "labels" / "smear_000000.txt").read_text()
    assert len(lines.splitlines()) == len(rec["cells"])


def test_negative_workers_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        generate_dataset(_cfg(count=1), tmp_path / "ds", workers=-1, pool=POOL)
    assert not (tmp_path / "ds").exists()


def test_a_worker_sends_a_digest_not_the_record(tmp_path):
    """A worker returns what the assembly needs (counts, the manifest entry, the formats'
    parts), the same as digesting the record it wrote; the parts are text, not per-cell
    objects (cheap to pickle)."""
    from pathlib import Path

    from hemosynth.dataset import _Context, collectors, digest, read_record

    cfg = _cfg(count=2)
    root = Path(tmp_path)
    (root / "images").mkdir()
    made = _Context(cfg, POOL, root).produce(1)
    record = read_record(root, 1)
    assert made == digest(record, collectors(cfg))
    assert "cells" not in made and made["index"] == 1
    flat = [x for p in made["parts"] for x in (p if isinstance(p, tuple) else [p])]
    assert all(isinstance(x, (str, int, type(None))) for x in flat)
