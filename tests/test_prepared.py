"""The disk cache of prepared sprites (hemosynth.pools.prepared) behind Pool.derived."""

import numpy as np
import pytest

from hemosynth.dataset import generate_dataset
from hemosynth.errors import PoolError
from hemosynth.pools.prepared import code_key
from hemosynth.pools.store import PoolStore, write_pool
from tests.helpers import small_config, tiny_pool


def _shape(rgba):
    return np.ascontiguousarray(rgba[::-1]) // 2  # any derivation


@pytest.fixture
def pool_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HEMOSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HEMOSYNTH_PREPARED_CACHE", raising=False)
    mem = tiny_pool()
    write_pool(tmp_path / "pool", [(mem.load(i), r.cls, r.um_per_px, r.provenance)
                                   for i, r in enumerate(mem.records)])
    return tmp_path / "pool"


def _files(tmp_path):
    """The prepared sprites' own files (<id>.npy)."""
    return sorted(p for p in (tmp_path / "cache" / "prepared").rglob("*.npy") if p.stem.isdigit())


def _without_decoding(pool_dir, monkeypatch):
    """The pool opened anew (as a new worker opens it), failing if it decodes a sprite."""
    later = PoolStore(pool_dir)

    def no_decoding(sprite_id):
        raise AssertionError("decoded although the prepared sprite is cached")

    monkeypatch.setattr(later, "load", no_decoding)
    return later


def _assert_same_array(got, want):
    assert np.array_equal(got, want) and got.dtype == want.dtype and got.shape == want.shape
    assert not got.flags.writeable


def test_a_later_process_reads_what_an_earlier_one_prepared(pool_dir, tmp_path, monkeypatch):
    first = PoolStore(pool_dir)
    made = [first.derived("test:kind", i, _shape, persist=True) for i in range(4)]
    assert len(_files(tmp_path)) == 4
    assert all(p.parts[-4] == code_key() for p in _files(tmp_path))
    later = _without_decoding(pool_dir, monkeypatch)
    for i in range(4):
        _assert_same_array(later.derived("test:kind", i, _shape, persist=True), made[i])
    assert not list((tmp_path / "cache").rglob(".*"))  # no private files left behind


def test_without_persist_or_when_switched_off_nothing_is_written(pool_dir, tmp_path,
                                                                  monkeypatch):
    PoolStore(pool_dir).derived("test:kind", 0, _shape)
    assert _files(tmp_path) == []
    monkeypatch.setenv("HEMOSYNTH_PREPARED_CACHE", "0")
    PoolStore(pool_dir).derived("test:kind", 0, _shape, persist=True)
    assert _files(tmp_path) == []


def test_a_changed_sprite_file_is_still_caught_with_a_warm_cache(pool_dir):
    PoolStore(pool_dir).derived("test:kind", 0, _shape, persist=True)
    sprite = pool_dir / PoolStore(pool_dir).records[0].file
    sprite.write_bytes(sprite.read_bytes() + b"x")
    with pytest.raises(PoolError, match="SHA-256"):
        PoolStore(pool_dir).derived("test:kind", 0, _shape, persist=True)


def test_an_unwritable_cache_is_skipped(pool_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HEMOSYNTH_CACHE", str(blocker))
    got = PoolStore(pool_dir).derived("test:kind", 1, _shape, persist=True)
    assert np.array_equal(got, _shape(PoolStore(pool_dir).load(1)))


@pytest.mark.parametrize("arr", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([1.5, -2.0, 3.25]),
    np.zeros((0, 4), np.int32),
    np.array(7, np.int64),
    np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3)),  # numpy's own path
])
def test_a_cached_file_reads_back_as_np_load_reads_it(tmp_path, arr):
    from hemosynth.pools.prepared import load_prepared, save_prepared

    save_prepared(tmp_path, "kind:x", 3, arr)
    got = load_prepared(tmp_path, "kind:x", 3)
    want = np.load(tmp_path / "kind-x" / "3.npy")
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    assert not got.flags.writeable


def test_a_truncated_or_foreign_cached_file_is_a_miss(tmp_path):
    from hemosynth.pools.prepared import load_prepared, save_prepared

    save_prepared(tmp_path, "k", 1, np.arange(100, dtype=np.uint8))
    path = tmp_path / "k" / "1.npy"
    path.write_bytes(path.read_bytes()[:-10])  # cut short (a full disk, a killed writer)
    assert load_prepared(tmp_path, "k", 1) is None
    path.write_bytes(b"not an npy file")
    assert load_prepared(tmp_path, "k", 1) is None
    assert load_prepared(tmp_path, "k", 2) is None  # missing


def _pack_files(tmp_path):
    return sorted((tmp_path / "cache" / "prepared").rglob("*.pack"))


def test_packed_sprites_read_back_equal_and_the_files_are_gone(pool_dir, tmp_path, monkeypatch):
    first = PoolStore(pool_dir)
    made = [first.derived("test:kind", i, _shape, persist=True) for i in range(4)]
    bounds = [first.derived("test:bound", i, lambda a: np.array([1.5, a.shape[0], -2.0]),
                            persist=True) for i in range(4)]
    assert first.pack_prepared() == 8
    assert [p.name for p in _pack_files(tmp_path)] == ["test-bound.pack", "test-kind.pack"]
    assert _files(tmp_path) == []  # gathered into the packs
    later = _without_decoding(pool_dir, monkeypatch)
    for i in range(4):
        _assert_same_array(later.derived("test:kind", i, _shape, persist=True), made[i])
        _assert_same_array(later.derived("test:bound", i, _shape, persist=True), bounds[i])
    assert not list((tmp_path / "cache").rglob(".*"))  # no private files left behind


def test_a_pack_grows_only_by_a_share_and_keeps_what_it_held(pool_dir, tmp_path):
    from hemosynth.pools.prepared import load_prepared, pack_prepared, save_prepared

    folder = tmp_path / "f"
    arrays = {i: np.full((i + 1, 2, 4), i, np.uint8) for i in range(24)}
    for i in range(16):
        save_prepared(folder, "k", i, arrays[i])
    assert pack_prepared(folder) == 16
    save_prepared(folder, "k", 16, arrays[16])
    assert pack_prepared(folder) == 0  # 1 new file is under an eighth of the 16 packed
    for i in range(17, 24):
        save_prepared(folder, "k", i, arrays[i])
    save_prepared(folder, "k", 99, np.zeros(3, np.float32))  # another dtype: stays a file
    assert pack_prepared(folder) == 8
    assert sorted(p.name for p in (folder / "k").iterdir()) == ["99.npy"]
    for i, a in arrays.items():
        got = load_prepared(folder, "k", i)
        assert got.dtype == np.uint8 and np.array_equal(got, a)
    assert np.array_equal(load_prepared(folder, "k", 99), np.zeros(3, np.float32))
    assert load_prepared(folder, "k", 100) is None


def test_a_cut_short_pack_is_ignored(pool_dir, tmp_path):
    first = PoolStore(pool_dir)
    made = [first.derived("test:kind", i, _shape, persist=True) for i in range(3)]
    first.pack_prepared()
    (pack,) = _pack_files(tmp_path)
    pack.write_bytes(pack.read_bytes()[:-5])  # a full disk, a killed writer
    from hemosynth.pools import prepared

    prepared._forget_pack(pack)
    later = PoolStore(pool_dir)
    for i in range(3):  # prepared again from the sprite
        assert np.array_equal(later.derived("test:kind", i, _shape, persist=True), made[i])
    assert len(_files(tmp_path)) == 3


def test_a_generated_dataset_packs_what_it_prepared(pool_dir, tmp_path):
    cfg = small_config(count=2)
    generate_dataset(cfg, tmp_path / "cold", pool=PoolStore(pool_dir))
    assert _pack_files(tmp_path) and _files(tmp_path) == []
    generate_dataset(cfg, tmp_path / "warm", pool=PoolStore(pool_dir))
    for p in sorted((tmp_path / "cold").rglob("*")):
        q = tmp_path / "warm" / p.relative_to(tmp_path / "cold")
        assert p.is_dir() or p.read_bytes() == q.read_bytes(), p


def test_packed_sprites_files_are_checked_by_size_and_time_not_hashed_again(pool_dir,
                                                                           monkeypatch):
    first = PoolStore(pool_dir)
    made = [first.derived("test:kind", i, _shape, persist=True) for i in range(3)]
    first.pack_prepared()  # hashes the packed sprites' files once and records them
    later = PoolStore(pool_dir)

    def no_hashing(sprite_id):
        raise AssertionError("hashed a sprite file that is on record and unchanged")

    monkeypatch.setattr(later, "_read", no_hashing)
    for i in range(3):
        assert np.array_equal(later.derived("test:kind", i, _shape, persist=True), made[i])


def test_a_sprite_changed_in_place_is_caught_after_packing(pool_dir):
    import os

    first = PoolStore(pool_dir)
    first.derived("test:kind", 0, _shape, persist=True)
    first.pack_prepared()
    sprite = pool_dir / first.records[0].file
    raw = bytearray(sprite.read_bytes())
    raw[-1] ^= 0xFF  # the same size, other bytes
    st = sprite.stat()
    sprite.write_bytes(bytes(raw))
    os.utime(sprite, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write
    with pytest.raises(PoolError, match="SHA-256"):
        PoolStore(pool_dir).derived("test:kind", 0, _shape, persist=True)


def test_a_sprite_already_changed_when_packing_is_not_put_on_record(pool_dir):
    from hemosynth.pools.prepared import load_verified

    first = PoolStore(pool_dir)
    for i in range(2):
        first.derived("test:kind", i, _shape, persist=True)
    sprite = pool_dir / first.records[1].file
    sprite.write_bytes(sprite.read_bytes() + b"x")
    first.pack_prepared()
    assert set(load_verified(first._prepared_folder())) == {0}
    with pytest.raises(PoolError, match="SHA-256"):
        PoolStore(pool_dir).derived("test:kind", 1, _shape, persist=True)


def test_a_file_gone_while_packing_leaves_no_pack_and_the_files(tmp_path, monkeypatch):
    from hemosynth.pools import prepared

    folder = tmp_path / "f"
    for i in range(3):
        prepared.save_prepared(folder, "k", i, np.full((2, 2, 4), i, np.uint8))
    reads = []
    load = prepared._load_file

    def second_read_of_1_fails(path):  # another process packed (and deleted) it meanwhile
        reads.append(path.name)
        return None if reads.count("1.npy") == 2 else load(path)

    monkeypatch.setattr(prepared, "_load_file", second_read_of_1_fails)
    assert prepared.pack_prepared(folder) == 0
    assert sorted(p.name for p in folder.rglob("*")) == ["0.npy", "1.npy", "2.npy", "k"]
    monkeypatch.setattr(prepared, "_load_file", load)
    assert prepared.pack_prepared(folder) == 3
    assert np.array_equal(prepared.load_prepared(folder, "k", 1), np.full((2, 2, 4), 1, np.uint8))
