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
    return sorted((tmp_path / "cache" / "prepared").rglob("*.npy"))


def test_a_later_process_reads_what_an_earlier_one_prepared(pool_dir, tmp_path, monkeypatch):
    first = PoolStore(pool_dir)
    made = [first.derived("test:kind", i, _shape, persist=True) for i in range(4)]
    assert len(_files(tmp_path)) == 4
    assert all(p.parts[-4] == code_key() for p in _files(tmp_path))
    later = PoolStore(pool_dir)  # as a new worker opens it

    def no_decoding(sprite_id):
        raise AssertionError("decoded although the prepared sprite is cached")

    monkeypatch.setattr(later, "load", no_decoding)
    for i in range(4):
        got = later.derived("test:kind", i, _shape, persist=True)
        assert np.array_equal(got, made[i]) and got.dtype == made[i].dtype
        assert not got.flags.writeable
    assert not list((tmp_path / "cache").rglob(".*.npy"))  # no private files left behind


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


def test_a_dataset_is_the_same_bytes_from_a_cold_and_a_warm_cache(pool_dir, tmp_path):
    cfg = small_config(count=2)
    generate_dataset(cfg, tmp_path / "cold", pool=PoolStore(pool_dir))
    assert _files(tmp_path)  # the generator's sprites were cached
    generate_dataset(cfg, tmp_path / "warm", pool=PoolStore(pool_dir))
    for p in sorted((tmp_path / "cold").rglob("*")):
        q = tmp_path / "warm" / p.relative_to(tmp_path / "cold")
        assert p.is_dir() or p.is_symlink() or p.read_bytes() == q.read_bytes(), p


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
