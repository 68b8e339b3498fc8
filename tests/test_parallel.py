"""Worker-process set-up: glibc's malloc keeps freed frame-sized arrays for reuse."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from hemosynth.parallel import retain_freed_memory, usable_cores

# 10 rounds of 5 frame-sized arrays alive at once (20 MB each, as the transmittance buffer of a
# 2592 x 1944 smear), allocated, written and freed, as a smear does; prints the minor page
# faults they cost
_FAULTS = """
import resource, sys
import numpy as np
from hemosynth.parallel import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def smear():
    frames = [np.ones(5_000_000, np.float32) for _ in range(5)]
    return sum(float(f[::4096].sum()) for f in frames)
smear()  # the first round may grow the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    smear()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


@glibc
def test_retained_memory_is_reused_without_page_faults():
    pages = 10 * 5 * 5_000_000 * 4 // 4096  # what 50 fresh arrays fault in
    kept = _faults("retain")
    assert kept < pages // 200  # the heap's pages are reused
    assert kept <= _faults("default")  # glibc's default re-faults part of them (here ~9%)


@glibc
def test_retain_reports_success_on_glibc():
    assert retain_freed_memory() is True


# starts the fork server early (0 workers: one per usable core), then runs two workers: prints
# whether the server was started and whether the workers were forked by that same server (not
# a second one)
_EARLY = """
import multiprocessing.forkserver as fs
import os, sys
from concurrent.futures import ProcessPoolExecutor
from hemosynth.parallel import mp_context, start_server
print(start_server(1), start_server(2, "dask"), start_server(0), start_server(2))
pid = fs._forkserver._forkserver_pid
with ProcessPoolExecutor(2, mp_context=mp_context()) as ex:
    parents = {ex.submit(os.getppid).result() for _ in range(4)}
print(parents == {pid})
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the fork server is a Linux start method")
def test_start_server_starts_the_fork_server_that_the_workers_come_from():
    out = subprocess.run([sys.executable, "-c", _EARLY], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out == ["False", "False", str(usable_cores() > 1), "True", "True"]


_SETTLE = """
import gc
import hemosynth.dataset
from hemosynth.parallel import settle_garbage_collector
before = len(gc.get_objects())
settle_garbage_collector()
print(before, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_settled_collector_no_longer_scans_the_imported_objects():
    before, frozen, tracked = (int(v) for v in subprocess.run(
        [sys.executable, "-c", _SETTLE], capture_output=True, text=True, check=True,
        timeout=300).stdout.split())
    assert before > 10_000  # numpy, numba, OpenCV and hemosynth
    assert frozen >= before // 2 and tracked < 1_000


# imports the fork server's preload module in a fresh process: prints whether the kernels were
# loaded, whether the imported objects were frozen for the forks, whether scipy.linalg was
# imported while the kernels loaded (numba's probe for BLAS, which only its full set-up makes),
# and whether scipy.linalg then imports and works
_PRELOAD = """
import gc, sys
import hemosynth.smear.preload
from hemosynth.smear import kernels, warp
print(all(len(f.overloads) > 0 for f in (kernels._optics, kernels._composite, warp._resample)))
print(gc.get_freeze_count() > 10_000)
print("scipy.linalg" in sys.modules)
import numpy as np
import scipy.linalg
print(float(scipy.linalg.solve(np.eye(2) * 2.0, np.ones(2))[0]))
"""


def test_fork_server_preload_loads_the_kernels_freezes_and_leaves_scipy_linalg_alone():
    """With numba's JIT (the library switched off)."""
    pytest.importorskip("scipy")
    out = subprocess.run([sys.executable, "-c", _PRELOAD], capture_output=True, text=True,
                         check=True, timeout=300,
                         env={**os.environ, "HEMOSYNTH_AOT": "0"}).stdout.split()
    assert out == ["True", "True", "False", "0.5"]


# the same with the kernels' library (the server's whole preload): prints whether it runs the
# kernels, whether the imported objects were frozen, and whether numba or YAML was imported
_PRELOAD_AOT = """
import gc, sys
import hemosynth.dataset, hemosynth.parallel, hemosynth.smear.preload
from hemosynth.smear import jit
print(jit.ahead_of_time(), gc.get_freeze_count() > 10_000, "numba" in sys.modules,
      "yaml" in sys.modules)
"""


def test_fork_server_preload_with_the_library_imports_neither_numba_nor_yaml():
    from hemosynth.smear import aot

    if aot.load() is None:
        pytest.skip("the kernels' library is not built here (see test_aot.py)")
    out = subprocess.run([sys.executable, "-c", _PRELOAD_AOT], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out == ["True", "True", "False", "False"]


# in a fresh process, loads the kernels as hemosynth does ("lean": warm_up_kernels) or leaves
# them to numba (loaded at their first call), makes a small smear and then compiles a new
# function (arrays, strings: numba's full set-up). Prints whether numba's linear algebra
# (imported only by its full set-up) was imported after the warm-up and after the smear, the
# smear's digest, and what the new function returns
_LOAD = """
import hashlib, sys
if sys.argv[1] == "lean":
    from hemosynth.parallel import warm_up_kernels
    warm_up_kernels()
    print("numba.np.linalg" in sys.modules)
from hemosynth.dataset import make_smear
from tests.helpers import small_config, tiny_pool
image, _ = make_smear(small_config(count=1), tiny_pool(), 0)
print("numba.np.linalg" in sys.modules)
print(hashlib.sha256(image.tobytes()).hexdigest())
import numba, numpy as np
@numba.njit
def f(n):
    return np.linalg.norm(np.arange(n) * 1.0), str(n)
norm, text = f(3)
print(round(float(norm), 4), text)
"""


def test_kernels_loaded_lean_make_the_same_smear_and_numba_still_compiles():
    root = str(Path(__file__).resolve().parents[1])

    env = {**os.environ, "PYTHONPATH": root, "HEMOSYNTH_AOT": "0"}  # numba's JIT

    def run(mode: str) -> list[str]:
        return subprocess.run([sys.executable, "-c", _LOAD, mode], capture_output=True,
                              text=True, check=True, timeout=600, cwd=root,
                              env=env).stdout.split()

    # numba's disk cache filled first, should it be cold: with the warm-up's signatures, then
    # with those a smear calls (a compilation sets numba up in full, as it should)
    subprocess.run([sys.executable, "-c", "from hemosynth.parallel import warm_up_kernels\n"
                    "warm_up_kernels()"], check=True, timeout=600, cwd=root, env=env)
    numba_way = run("numba")
    lean = run("lean")
    assert numba_way[0] == "True"  # numba's own loading sets it up in full
    # the warm-up loads every kernel a smear calls, each without the full set-up
    assert lean[:2] == ["False", "False"]
    assert lean[2] == numba_way[1]  # the same smear, byte for byte
    assert lean[3:] == numba_way[2:] == ["2.2361", "3"]


# with numba's JIT: prints whether the lean loading is in force, whether the given module's
# function and another's are switched inside the block, and whether both are restored after it
_LEAN_SCOPE = """
from numba.core.caching import Cache
from hemosynth.smear import kernels, sprite
from hemosynth.smear.jitload import lean_cache_loads
ours, other = kernels._optics._cache, sprite._premultiply._cache
with lean_cache_loads([kernels]) as lean:
    print(lean, ours.load_overload.__func__ is not Cache.load_overload,
          other.load_overload.__func__ is Cache.load_overload)
print(ours.load_overload.__func__ is Cache.load_overload, "load_overload" not in vars(ours))
"""


def test_lean_cache_loads_touches_only_the_given_modules_functions_and_restores_them():
    out = subprocess.run([sys.executable, "-c", _LEAN_SCOPE], capture_output=True, text=True,
                         check=True, timeout=300,
                         env={**os.environ, "HEMOSYNTH_AOT": "0"}).stdout.split()
    assert out == ["True"] * 5


# a fresh process (no fork server yet) makes 12 smears with 2 workers: prints the indices this
# process made itself while the server started, then whether the folder equals a 1-worker one
_HELP = """
import hashlib, sys, tempfile
from pathlib import Path
import hemosynth.dataset as ds
from tests.helpers import small_config, tiny_pool

made_here = []
produce = ds._Context.produce
def spy(self, index):
    made_here.append(index)
    return produce(self, index)
ds._Context.produce = spy  # the workers are forked from the server: they keep the original

def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}

if __name__ == "__main__":
    cfg, pool, tmp = small_config(count=12), tiny_pool(), Path(tempfile.mkdtemp())
    ds.generate_dataset(cfg, tmp / "two", workers=2, pool=pool)
    print(" ".join(map(str, made_here)) or "none")
    ds._Context.produce = produce
    ds.generate_dataset(cfg, tmp / "one", workers=1, pool=pool)
    print(digest(tmp / "two") == digest(tmp / "one"))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the fork server is a Linux start method")
def test_this_process_makes_smears_while_the_fork_server_starts(tmp_path):
    """While the server starts (~0.7 s), the calling process makes smears from the end of the
    list, one at a time, and stops once the workers are up; the dataset is the same."""
    script = tmp_path / "help.py"
    script.write_text(_HELP)
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=300, cwd=root,
                         env={**os.environ, "PYTHONPATH": root}).stdout.split("\n")
    here = [int(v) for v in out[0].split()]
    assert here and here == list(range(11, 11 - len(here), -1))  # from the end, in turn
    assert len(here) < 12  # the workers made the rest
    assert out[1] == "True"


# a fresh process starts the fork server as generate_dataset does, then prints what a worker
# sees of the numerical libraries' thread settings and whether its own environment is unchanged
_THREADS = """
import os
from concurrent.futures import ProcessPoolExecutor
from hemosynth.server import mp_context, start_server
if __name__ == "__main__":
    before = dict(os.environ)
    assert start_server(2)
    with ProcessPoolExecutor(1, mp_context=mp_context()) as ex:
        seen = ex.submit(os.getenv, "OPENBLAS_NUM_THREADS").result()
        omp = ex.submit(os.getenv, "OMP_NUM_THREADS").result()
    print(seen, omp, dict(os.environ) == before)
"""


@pytest.mark.parametrize("user, expect", [(None, "1"), ("3", "3")])
def test_the_fork_server_runs_one_thread_per_library_unless_the_user_says(user, expect):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS",
                                                            "OMP_NUM_THREADS")}
    if user is not None:
        env["OPENBLAS_NUM_THREADS"] = user
    out = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True,
                         check=True, timeout=300, env=env).stdout.split()
    assert out == [expect, "1", "True"]


@pytest.mark.parametrize("batch", [False, True])  # local workers; dask's batches
def test_a_worker_makes_a_smear_from_the_counts_sent_with_it_without_drawing_the_census(
        tmp_path, batch):
    from hemosynth.parallel import _WORKER, _context, _pool_spec, _produce_batch, _produce_one
    from hemosynth.smear.counts import Census
    from tests.helpers import small_config, tiny_pool

    cfg, pool = small_config(count=8), tiny_pool()
    census = Census(cfg, set(pool.classes))
    sent = census.counts(6)  # the parent's census draws 0..6
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _WORKER.clear()
    try:
        ctx = _context(cfg, _pool_spec(pool), str(tmp_path / "a"))
        if batch:
            (given,) = _produce_batch(cfg, _pool_spec(pool), str(tmp_path / "a"), [6], [sent])
        else:
            given = _produce_one(6, sent)
        assert ctx.census._cache == []  # nothing drawn in the worker
        _WORKER.clear()
        ctx = _context(cfg, _pool_spec(pool), str(tmp_path / "b"))
        drawn = _produce_one(6)  # the worker draws 0..6 itself
        assert len(ctx.census._cache) == 7
    finally:
        _WORKER.clear()
    assert given == drawn
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert len(files) >= 3  # the image, the record, labels
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
