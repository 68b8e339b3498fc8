import json

import numpy as np
import pytest

from hemosynth.errors import PoolError
from hemosynth.pools.store import PoolStore, open_pool, write_pool
from tests.helpers import disc_sprite, tiny_pool


def _sprites(n=3, classes=("RBC", "Lymphocyte")):
    out = []
    for c in classes:
        for k in range(n):
            out.append((disc_sprite(20 + k), c, 0.3, {"kind": "real", "file": f"{c}{k}.jpg"}))
    return out


def test_round_trip(tmp_path):
    sprites = _sprites()
    pool = write_pool(tmp_path / "p", sprites, name="demo")
    again = open_pool(tmp_path / "p")
    assert again.name == "demo"
    assert again.classes == ("RBC", "Lymphocyte")
    assert len(again.ids("RBC")) == 3 and len(again.ids("Basophil")) == 0
    for sid, (rgba, cls, um, prov) in enumerate(sprites):
        assert np.array_equal(again.load(sid), rgba)
        rec = again.records[sid]
        assert rec.cls == cls and rec.um_per_px == um and rec.provenance == prov
    assert pool.fingerprint == again.fingerprint


def test_loading_is_lazy_and_bounded(tmp_path):
    write_pool(tmp_path / "p", _sprites(n=20))
    pool = PoolStore(tmp_path / "p", cache_bytes=3 * 24 * 24 * 4)
    assert len(pool._cache) == 0  # opening reads only the manifest
    for sid in range(len(pool)):
        pool.load(sid)
    assert pool._cache_bytes <= 3 * 24 * 24 * 4 + 30 * 30 * 4
    assert len(pool._cache) <= 4


def test_fingerprint_changes_with_a_sprite(tmp_path):
    a = write_pool(tmp_path / "a", _sprites())
    s = _sprites()
    s[0] = (disc_sprite(25), *s[0][1:])
    b = write_pool(tmp_path / "b", s)
    assert a.fingerprint != b.fingerprint


def test_empty_pool_is_refused(tmp_path):
    with pytest.raises(PoolError, match="empty"):
        write_pool(tmp_path / "p", [])
    assert not (tmp_path / "p").exists()
    assert list(tmp_path.iterdir()) == []  # no half-written folder left


def test_invalid_sprite_leaves_no_pool(tmp_path):
    bad = [*_sprites(), (np.zeros((5, 5, 4), np.uint8), "RBC", 0.3, {})]
    with pytest.raises(PoolError, match="transparent"):
        write_pool(tmp_path / "p", bad)
    assert list(tmp_path.iterdir()) == []


def test_missing_class_named(tmp_path):
    pool = write_pool(tmp_path / "p", _sprites())
    with pytest.raises(PoolError, match="'Basophil'"):
        pool.require(["RBC", "Basophil"])


def test_corrupt_sprite_named(tmp_path):
    write_pool(tmp_path / "p", _sprites())
    f = tmp_path / "p" / "sprites" / "rbc" / "000001.png"
    f.write_bytes(b"not a png")
    pool = PoolStore(tmp_path / "p", verify=False)
    with pytest.raises(PoolError, match="000001.png: corrupt"):
        pool.load(1)
    pool = PoolStore(tmp_path / "p")
    with pytest.raises(PoolError, match="000001.png: sprite does not match"):
        pool.load(1)


def test_manifest_must_match_files(tmp_path):
    write_pool(tmp_path / "p", _sprites())
    (tmp_path / "p" / "sprites" / "rbc" / "000002.png").unlink()
    with pytest.raises(PoolError, match="000002.png: sprite listed in the manifest is missing"):
        open_pool(tmp_path / "p")
    write_pool(tmp_path / "q", _sprites())
    (tmp_path / "q" / "sprites" / "rbc" / "extra.png").write_bytes(b"x")
    with pytest.raises(PoolError, match="extra.png: sprite file is not listed"):
        open_pool(tmp_path / "q")


def test_sprite_files_found_in_one_walk_as_before(tmp_path):
    """Listed files outside sprites/ and links to files count; an extra file deep down or
    through a link to a file is reported, the first in path order."""
    import json
    import shutil

    write_pool(tmp_path / "p", _sprites())
    root = tmp_path / "p"
    manifest = json.loads((root / "pool.json").read_text())
    first = root / manifest["sprites"][0]["file"]
    (root / "elsewhere").mkdir()
    shutil.move(first, root / "elsewhere" / "a.png")
    manifest["sprites"][0]["file"] = "elsewhere/a.png"
    second = root / manifest["sprites"][1]["file"]
    (root / "keep").mkdir()
    shutil.move(second, root / "keep" / "b.png")
    second.symlink_to(root / "keep" / "b.png")  # the listed name is a link to the file
    (root / "pool.json").write_text(json.dumps(manifest))
    assert len(open_pool(root)) == len(manifest["sprites"])
    (root / "sprites" / "z" / "deep").mkdir(parents=True)
    (root / "sprites" / "z" / "deep" / "x.png").write_bytes(b"x")
    (root / "sprites" / "z" / "y.png").symlink_to(root / "keep" / "b.png")
    with pytest.raises(PoolError, match=r"sprites/z/deep/x\.png: sprite file is not listed"):
        open_pool(root)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.update(format="other"), "not a hemosynth pool"),
        (lambda m: m.update(sprites=[]), "empty"),
        (lambda m: m["sprites"][0].update({"class": "Myelocyte"}), "unknown class 'Myelocyte'"),
        (lambda m: m["sprites"][0].pop("um_per_px"), "missing or bad field"),
        (lambda m: m["sprites"][0].update(um_per_px=-1), "um_per_px must be positive"),
    ],
)
def test_bad_manifest(tmp_path, mutate, message):
    write_pool(tmp_path / "p", _sprites(n=1))
    mf = tmp_path / "p" / "pool.json"
    m = json.loads(mf.read_text())
    mutate(m)
    mf.write_text(json.dumps(m))
    with pytest.raises(PoolError, match=message):
        open_pool(tmp_path / "p")


def test_not_a_pool(tmp_path):
    with pytest.raises(PoolError, match="not found"):
        open_pool(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    with pytest.raises(PoolError, match="manifest not found"):
        open_pool(tmp_path / "x")


def test_size_mismatch(tmp_path):
    write_pool(tmp_path / "p", _sprites(n=1))
    mf = tmp_path / "p" / "pool.json"
    m = json.loads(mf.read_text())
    m["sprites"][0]["size"] = [3, 3]
    mf.write_text(json.dumps(m))
    with pytest.raises(PoolError, match="differs from the manifest"):
        open_pool(tmp_path / "p").load(0)


def test_default_pool_has_every_class():
    from hemosynth.taxonomy import POOL_CLASSES

    pool = open_pool("atlas")
    assert pool.classes == POOL_CLASSES


def test_subset_keeps_a_sample_per_class_with_provenance(tmp_path):
    from hemosynth.pools.subset import subset_pool

    src = write_pool(tmp_path / "p", _sprites(n=6))
    sub = subset_pool(tmp_path / "p", tmp_path / "s", per_class=4, classes=["Lymphocyte"], seed=3)
    assert sub.classes == ("Lymphocyte",) and len(sub) == 4
    # every kept sprite is a source sprite, pixels and provenance unchanged, no repeats
    by_file = {r.provenance["file"]: i for i, r in enumerate(src.records)}
    kept = [by_file[r.provenance["file"]] for r in sub.records]
    assert len(set(kept)) == 4 and kept == sorted(kept)
    for i, k in enumerate(kept):
        assert np.array_equal(sub.load(i), src.load(k))
    again = subset_pool(tmp_path / "p", tmp_path / "t", per_class=4, classes=["Lymphocyte"],
                        seed=3)
    assert [r.provenance for r in again.records] == [r.provenance for r in sub.records]


def test_subset_refuses_a_missing_class_and_writes_nothing(tmp_path):
    from hemosynth.pools.subset import subset_pool

    write_pool(tmp_path / "p", _sprites())
    with pytest.raises(PoolError, match="Basophil"):
        subset_pool(tmp_path / "p", tmp_path / "s", classes=["Basophil"])
    with pytest.raises(PoolError, match="per_class"):
        subset_pool(tmp_path / "p", tmp_path / "s", per_class=0)
    assert not (tmp_path / "s").exists()


def test_subset_caps_named_classes_and_keeps_the_rest_whole(tmp_path):
    from hemosynth.pools.subset import subset_pool

    write_pool(tmp_path / "p", _sprites(n=5))
    sub = subset_pool(tmp_path / "p", tmp_path / "s", per_class={"Lymphocyte": 2})
    assert len(sub.ids("RBC")) == 5 and len(sub.ids("Lymphocyte")) == 2


def test_merge_takes_named_classes_rescaled_to_one_scale(tmp_path):
    from hemosynth.pools.merge import merge_pools

    write_pool(tmp_path / "a", _sprites(n=2))  # 0.3 um/px
    b = [(disc_sprite(30), "Platelet", 0.15, {"kind": "real", "file": "p.jpg"}),
         (disc_sprite(30), "Lymphocyte", 0.15, {"kind": "real", "file": "l.jpg"})]
    write_pool(tmp_path / "b", b)
    m = merge_pools(tmp_path / "m", [(tmp_path / "a", ["RBC"]), (tmp_path / "b", ["Platelet"])])
    assert set(m.classes) == {"RBC", "Platelet"} and len(m) == 3
    plt = m.records[m.ids("Platelet")[0]]
    assert plt.um_per_px == 0.3 and plt.provenance["merged_from"] == "b"
    assert plt.provenance["file"] == "p.jpg"
    assert m.load(m.ids("Platelet")[0]).shape[0] == 17  # a 34 px sprite at 0.15 -> 17 at 0.3
    with pytest.raises(PoolError, match="Basophil"):
        merge_pools(tmp_path / "x", [(tmp_path / "a", ["Basophil"])])
    assert not (tmp_path / "x").exists()


def test_derived_arrays_are_made_once_kept_read_only_and_not_pickled():
    import pickle

    pool = tiny_pool()
    calls = []

    def make(rgba):
        calls.append(1)
        return rgba[:, :, 3].copy()

    a = pool.derived("alpha", 0, make)
    b = pool.derived("alpha", 0, make)
    assert a is b and len(calls) == 1 and not a.flags.writeable
    assert np.array_equal(a, pool.load(0)[:, :, 3])
    pool.derived("other", 0, make)
    assert len(calls) == 2  # another kind is another entry
    again = pickle.loads(pickle.dumps(pool))
    assert "_derived" not in again.__dict__
    pool.DERIVED_BYTES = a.nbytes  # a tiny budget keeps only the newest entry
    pool.derived("alpha", 1, make)
    assert len(pool.__dict__["_derived"]) == 1
