"""The procedural atlas: deterministic, cached on disk, reused, invalidated by version."""

import threading

import numpy as np
import pytest

from hemosynth.pools import atlas
from hemosynth.pools.store import PoolStore, open_pool
from hemosynth.taxonomy import POOL_CLASSES


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HEMOSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(atlas, "SPRITES_PER_CLASS", 2)
    atlas.default_pool.cache_clear()
    yield tmp_path / "cache"
    atlas.default_pool.cache_clear()


def test_default_pool_is_the_cached_procedural_atlas(cache):
    pool = open_pool("atlas")
    assert isinstance(pool, PoolStore)
    assert pool.path.parent == cache
    assert pool.path.name.startswith(f"atlas-v{atlas.ATLAS_VERSION}-")
    assert pool.classes == POOL_CLASSES
    assert all(len(pool.ids(c)) == 2 for c in POOL_CLASSES)
    assert {r.provenance["kind"] for r in pool.records} == {"procedural"}


def test_cache_is_reused(cache, monkeypatch):
    first = atlas.default_pool()
    stamp = (first.path / "pool.json").stat().st_mtime_ns
    atlas.default_pool.cache_clear()

    def fail(*a, **k):
        raise AssertionError("the atlas was drawn again")

    monkeypatch.setattr(atlas, "write_pool", fail)
    again = atlas.default_pool()
    assert again.path == first.path
    assert (again.path / "pool.json").stat().st_mtime_ns == stamp
    assert again.fingerprint == first.fingerprint


def test_version_change_invalidates_the_cache(cache, monkeypatch):
    old = atlas.default_pool()
    atlas.default_pool.cache_clear()
    monkeypatch.setattr(atlas, "ATLAS_VERSION", atlas.ATLAS_VERSION + 1)
    new = atlas.default_pool()
    assert new.path != old.path
    assert new.path.name.startswith(f"atlas-v{atlas.ATLAS_VERSION}-")
    assert {r.provenance["atlas_version"] for r in new.records} == {atlas.ATLAS_VERSION}
    assert old.path.is_dir()  # the old one is left alone, never reused


def test_atlas_is_deterministic(tmp_path):
    a = atlas.build_atlas(tmp_path / "a", per_class=1)
    b = atlas.build_atlas(tmp_path / "b", per_class=1)
    assert a.fingerprint == b.fingerprint
    for i in range(len(a)):
        assert np.array_equal(a.load(i), b.load(i))


def test_two_builders_at_once_share_one_atlas(tmp_path):
    path = tmp_path / "atlas"
    out = [None, None]

    def build(k):
        out[k] = atlas.build_atlas(path, per_class=1)

    threads = [threading.Thread(target=build, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out[0].fingerprint == out[1].fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["atlas"]


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HEMOSYNTH_CACHE", str(blocker))
    monkeypatch.setattr(atlas, "SPRITES_PER_CLASS", 1)
    atlas.default_pool.cache_clear()
    try:
        pool = atlas.default_pool()
        assert not isinstance(pool, PoolStore) and pool.classes == POOL_CLASSES
    finally:
        atlas.default_pool.cache_clear()


def test_contact_sheet_with_real_examples(tmp_path):
    import cv2
    from typer.testing import CliRunner

    from hemosynth.cli import app

    real = tmp_path / "real"
    for name in ("lymphocyte", "erythroblast", "ig"):
        (real / name).mkdir(parents=True)
        cv2.imwrite(str(real / name / "a.jpg"), np.full((120, 120, 3), 200, np.uint8))
    examples = atlas.real_examples(real, 3)
    assert set(examples) == {"Lymphocyte", "Nucleated RBC"}
    pool = atlas.memory_atlas(per_class=2)
    sheet = atlas.contact_sheet(pool, per_class=2, tile_px=40, real=examples)
    assert sheet.shape == (24 + 18 * 40, 190 + 2 * 40 + 8 + 1 * 40, 3)

    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(app, ["atlas", "--sheet", str(out), "--per-class", "2",
                                   "--compare", str(real), "--pool", str(
                                       atlas.build_atlas(tmp_path / "p", per_class=2).path)])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(out)) is not None


def test_contact_sheet_against_pbc(shared_data, tmp_path):
    examples = atlas.real_examples(shared_data / "pbc", 2)
    assert {"Basophil", "Eosinophil", "Nucleated RBC", "Lymphocyte", "Monocyte",
            "Segmented neutrophil", "Platelet"} <= set(examples)
    sheet = atlas.contact_sheet(atlas.memory_atlas(per_class=2), per_class=2, tile_px=60,
                                real=examples)
    assert sheet.shape[0] == 24 + 18 * 60
