"""The kernels' ahead-of-time library (hemosynth.smear.aot, hemosynth.smear.jit).

The suite itself runs with the library (conftest.py builds it first, unless HEMOSYNTH_AOT=0);
these tests compare it with numba's JIT in fresh processes, and check its entry points' type
checks, its key, and what happens when it cannot be built or is damaged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pytest

from hemosynth.smear import aot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def library() -> Path:
    """The built library's folder (conftest.py built it); fails where a C compiler exists but
    the library is missing."""
    if not aot.enabled():
        pytest.skip("the library is switched off (HEMOSYNTH_AOT=0) or this is not Linux")
    if aot.needs_build() and not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the library cannot be built here")
    assert aot.ensure_built() is None
    folder = aot.library_dir() / aot.library_key()
    assert folder.is_dir()
    return folder


def _run(code: str, *args: str, **env: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# a small dataset from the default pool (the atlas: every kernel runs, re-staining and optics
# included), with K workers; prints whether the library ran it and whether numba was imported
_MAKE = """
import sys
from hemosynth.config import GenerationConfig
from hemosynth.dataset import generate_dataset
from hemosynth.smear import jit
cfg = GenerationConfig.from_dict({"count": 3, "seed": 11,
                                  "canvas": {"width": 640, "height": 480}})
generate_dataset(cfg, sys.argv[1], workers=int(sys.argv[2]))
print(jit.ahead_of_time(), "numba" in sys.modules)
"""


def test_the_library_makes_the_same_dataset_as_numba_without_importing_numba(library, tmp_path):
    assert _run(_MAKE, str(tmp_path / "jit"), "1", HEMOSYNTH_AOT="0") == ["False", "True"]
    assert _run(_MAKE, str(tmp_path / "aot"), "1") == ["True", "False"]
    assert _run(_MAKE, str(tmp_path / "aot2"), "2") == ["True", "False"]  # the workers too
    jit = _digest(tmp_path / "jit")
    assert len(jit) > 10
    assert _digest(tmp_path / "aot") == jit
    assert _digest(tmp_path / "aot2") == jit


# a process that started without the library (an empty folder) makes a smear with numba, then
# finds the library (built by another process) and runs its kernels from it from then on
_SWITCH = """
import hashlib, shutil, sys
from hemosynth.dataset import make_smear
from hemosynth.smear import jit, kernels
from tests.helpers import small_config, tiny_pool
cfg, pool = small_config(count=1), tiny_pool()
before = hashlib.sha256(make_smear(cfg, pool, 0)[0].tobytes()).hexdigest()
print(jit.ahead_of_time())
shutil.copytree(sys.argv[1], sys.argv[2])
print(jit.ensure_library(), jit.ahead_of_time(), type(kernels._optics).__name__)
after = hashlib.sha256(make_smear(cfg, pool, 0)[0].tobytes()).hexdigest()
print(before == after)
"""


def test_a_process_takes_up_a_library_built_after_it_started(library, tmp_path):
    out = _run(_SWITCH, str(library), str(tmp_path / library.name),
               HEMOSYNTH_AOT_DIR=str(tmp_path))
    assert out == ["False", "None", "True", "function", "True"]


# builds with a C compiler that does not exist, twice; prints the warnings' categories and
# whether the kernels still run (from numba)
_NO_COMPILER = """
import warnings
from hemosynth.parallel import build_kernel_library, warm_up_kernels
from hemosynth.smear import jit
with warnings.catch_warnings(record=True) as first:
    warnings.simplefilter("always")
    build_kernel_library()
with warnings.catch_warnings(record=True) as second:
    warnings.simplefilter("always")
    build_kernel_library()
warm_up_kernels()
print(len(first), len(second), jit.ahead_of_time())
print(str(first[0].message))
"""


def test_a_build_without_a_compiler_warns_once_and_numba_runs_the_kernels(tmp_path):
    if not aot.enabled():
        pytest.skip("the library is switched off (HEMOSYNTH_AOT=0) or this is not Linux")
    out = _run(_NO_COMPILER, HEMOSYNTH_AOT_DIR=str(tmp_path), CC="/nonexistent/cc")
    assert out[:3] == ["1", "0", "False"]
    assert "no working C compiler" in " ".join(out[3:]) and "to try again" in " ".join(out[3:])
    notes = list(tmp_path.glob("*" + aot.FAILED_SUFFIX))
    assert len(notes) == 1 and "no working C compiler" in notes[0].read_text()


def test_a_build_without_pythons_headers_stops_at_once_and_says_so(tmp_path):
    code = ("import sysconfig, sys\n"
            "real = sysconfig.get_paths\n"
            "sysconfig.get_paths = lambda *a, **k: {**real(*a, **k), 'include': sys.argv[1]}\n"
            "from hemosynth.smear import aot\n"
            "try:\n"
            "    aot.build(__import__('pathlib').Path(sys.argv[1]) / 'lib')\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    out = " ".join(_run(code, str(tmp_path), HEMOSYNTH_AOT="0"))
    assert "Python's C headers are missing" in out and "Python.h" in out
    assert not (tmp_path / "lib").exists()


def test_a_damaged_library_is_removed_so_that_it_is_built_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HEMOSYNTH_AOT_DIR", str(tmp_path))
    monkeypatch.delenv("HEMOSYNTH_AOT", raising=False)
    if not aot.enabled():
        pytest.skip("not Linux")
    folder = tmp_path / aot.library_key()
    folder.mkdir()
    (folder / f"{aot.LIB_NAME}{sysconfig.get_config_var('EXT_SUFFIX')}").write_bytes(b"junk")
    (folder / aot.ENTRIES_FILE).write_text("{}")
    assert not aot.needs_build()
    assert aot.load() is None
    assert not folder.exists()
    assert aot.needs_build()


def test_an_unwritable_folder_is_a_reason_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HEMOSYNTH_AOT_DIR", str(blocker / "aot"))
    monkeypatch.delenv("HEMOSYNTH_AOT", raising=False)
    if not aot.enabled():
        pytest.skip("not Linux")
    reason = aot.ensure_built()
    assert reason is not None and str(blocker / "aot") in reason


def test_only_the_newest_libraries_are_kept(tmp_path):
    for k in range(6):
        d = tmp_path / f"key{k}"
        d.mkdir()
        os.utime(d, (1000 + k, 1000 + k))
    (tmp_path / ".key9-tmp").mkdir()  # a build in progress
    (tmp_path / "key0.failed").write_text("no compiler")
    aot._prune(tmp_path, keep=tmp_path / "key1", newest=3)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".key9-tmp", "key0.failed", "key1", "key4", "key5"]


def test_the_key_follows_numbas_settings_and_the_switch_turns_it_all_off(monkeypatch):
    key = aot.library_key()
    assert key == aot.library_key() and len(key) == 16
    monkeypatch.setenv("NUMBA_OPT", "1")  # other machine code
    assert aot.library_key() != key
    monkeypatch.setenv("HEMOSYNTH_AOT", "0")
    assert not aot.enabled() and not aot.needs_build() and aot.load() is None
    assert aot.ensure_built() is None


def _entry(*args):
    return ("called", len(args))


SPEC = [["uint8", 3], ["float32", 2], "int64", "float64", "float32", "bool"]


def _good():
    return [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.float32), 3, 0.5,
            np.float32(1.0), True]


def test_an_entry_point_passes_the_types_it_was_built_for():
    f = aot.guarded("kernels._test", _entry, SPEC)
    assert f(*_good()) == ("called", 6)
    alt = _good()
    alt[2], alt[3], alt[5] = np.int64(3), np.float64(0.5), np.bool_(False)
    assert f(*alt) == ("called", 6)


@pytest.mark.parametrize("index, bad", [
    (0, np.zeros((2, 2, 3), np.int32)),  # another dtype
    (0, np.zeros((2, 6), np.uint8)),  # another number of dimensions
    (0, np.zeros((2, 4, 3), np.uint8)[:, ::2]),  # not contiguous
    (0, [[0]]),  # not an array
    (2, 3.0),  # a float for an integer
    (2, True),  # a bool for an integer
    (2, np.int32(3)),  # another integer type (numba would compile another version)
    (3, 1),  # an integer for a float
    (4, 1.0),  # float64 for float32
    (5, 1),  # an integer for a bool
])
def test_an_entry_point_refuses_other_types_with_the_kernels_name(index, bad):
    f = aot.guarded("kernels._test", _entry, SPEC)
    args = _good()
    args[index] = bad
    with pytest.raises(TypeError, match=r"kernels\._test takes \(uint8\[3d, C\]"):
        f(*args)


def test_every_kernel_that_python_calls_is_in_the_library(library):
    import json

    entries = json.loads((library / aot.ENTRIES_FILE).read_text())
    for name in ("kernels._composite", "kernels._visibility", "kernels._optics",
                 "kernels._restain", "kernels._field_extents", "warp._resample", "warp._frames",
                 "warp._inverse", "sprite.frame_geometry", "sprite._premultiply",
                 "render._ramp", "gridjit.place_cells", "gridjit.first_fit",
                 "gridjit.register"):
        assert name in entries
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = aot.load()
    assert loaded is not None and set(loaded) == set(entries)
