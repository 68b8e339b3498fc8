"""Executors: run the production of a dataset's smears on processes or a Dask cluster.

An executor is a function ``run(cfg, pool, root, indices, workers, scheduler=None)`` yielding
one summary per smear as it completes. Every smear is made from ``(seed, index)`` alone, so the
output does not depend on the executor, the worker count or the order.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .config import GenerationConfig
from .pools.store import MemoryPool, Pool, PoolStore
from .server import mp_context, start_server, usable_cores
from .smear.counts import Census

_WORKER: dict[str, Any] = {}


def _pool_spec(pool: Pool) -> Any:
    """What a worker needs to reopen ``pool``: a folder path, or the pool itself."""
    if isinstance(pool, PoolStore):
        return ("path", str(pool.path))
    from .pools.atlas import default_pool

    if isinstance(pool, MemoryPool) and pool is default_pool():
        return ("atlas", None)
    return ("object", pool)


def _open_spec(spec: Any) -> Pool:
    kind, value = spec
    if kind == "path":
        return PoolStore(Path(value))
    if kind == "atlas":
        from .pools.atlas import default_pool

        return default_pool()
    return value


def _context(cfg: GenerationConfig, spec: Any, root: str):
    from .dataset import _Context

    key = (cfg, root)
    ctx = _WORKER.get("ctx")
    if ctx is None or _WORKER.get("key") != key:
        import cv2

        cv2.setNumThreads(1)
        ctx = _Context(cfg, _open_spec(spec), Path(root))
        _WORKER.update(ctx=ctx, key=key)
    return ctx


def _produce_batch(cfg: GenerationConfig, spec: Any, root: str, indices: list[int],
                   counts: list[Any] | None = None):
    ctx = _context(cfg, spec, root)
    if counts is not None:  # drawn by the caller's census
        for i, c in zip(indices, counts, strict=True):
            ctx.census.give(i, c)
    return [ctx.produce(i) for i in indices]


def _init_worker(cfg: GenerationConfig, spec: Any, root: str) -> None:
    """Process-pool initializer: keep freed memory, open the pool and build the context once
    per worker, then exempt what exists so far from garbage collection (see
    :func:`settle_garbage_collector`)."""
    retain_freed_memory()
    _context(cfg, spec, root)
    settle_garbage_collector()


def settle_garbage_collector(collect: bool = True) -> None:
    """Move every object that exists now (modules, kernels, the pool) out of the garbage
    collector's reach (``gc.freeze``), after a last collection unless ``collect`` is False.

    A smear creates thousands of small objects (records, label lines), so the collector runs
    often, and now and then scans every object in the process, about 120,000 after the
    imports: about 3 ms a smear, 0.3 ms after the freeze. For processes that make smears (the
    workers, the ``generate`` command), not for a library caller's own process. The fork
    server skips the collection: after its imports it finds about 10 objects to free and costs
    20-40 ms, which every worker would wait for.
    """
    import gc

    if collect:
        gc.collect()
    gc.freeze()


def _produce_one(index: int, counts: Any = None) -> dict[str, Any]:
    ctx = _WORKER["ctx"]
    if counts is not None:  # drawn by the parent's census (see _Feeder)
        ctx.census.give(index, counts)
    return ctx.produce(index)


#: glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64 bits
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX = -1, -3, 32 * 1024 * 1024


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in this process for reuse.

    A smear allocates about 100 MB of frame-sized arrays (canvas, blurred copy, transmittance,
    output). By default glibc maps each with ``mmap`` and unmaps it when freed, so every smear
    faults about 12,000 fresh pages in: some 30 ms of system time, 15% of a smear. With the
    mmap threshold at its maximum (32 MB, above every frame-sized array) and no trimming, the
    heap grows to its peak once and is reused; the peak itself does not change.

    Called in each local worker process and by the ``generate`` command; a program that
    makes smears in its own process may call it too. It lasts for the life of the process.

    Returns
    -------
    bool
        False where the C library is not glibc (macOS, musl): nothing changed.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def warm_up_kernels(build: bool = True) -> None:
    """Load the compiled kernels in this process, and build the ahead-of-time library if it
    is missing.

    Where the ahead-of-time library (:mod:`hemosynth.smear.aot`) was loaded, this only runs
    each kernel once on tiny inputs (about a millisecond). Otherwise numba compiles the kernels,
    or loads them from its disk cache, before worker processes start: the first compilation (a
    few seconds) happens once and writes the cache. Cached kernels load without numba's full
    set-up (:func:`~hemosynth.smear.jitload.lean_cache_loads`): about 0.13 s on the development
    machine, against 0.24 s, or 0.45-0.65 s with the probe for scipy's BLAS that numba's full
    set-up makes. With ``build``, the library is built first where it is missing (once, about
    20 s; :func:`build_kernel_library`).
    """
    from .smear import gridjit, jit, kernels, render, sprite, warp

    if build:
        build_kernel_library()
    if jit.ahead_of_time():
        loading = contextlib.nullcontext()  # nothing to load, and numba is not imported
    else:
        from .smear.jitload import lean_cache_loads

        loading = lean_cache_loads([gridjit, kernels, render, sprite, warp])
    with loading:
        for m in (gridjit, kernels, warp, render):
            m.warm_up()


def build_kernel_library() -> None:
    """Build the ahead-of-time library of the kernels if it is missing, and use it in this
    process (:func:`hemosynth.smear.jit.ensure_library`); a build that fails is a
    :class:`~hemosynth.smear.aot.KernelBuildWarning`, and numba's JIT runs the kernels."""
    from .smear import aot, jit

    problem = jit.ensure_library()
    if problem is not None:
        warnings.warn(f"the ahead-of-time kernels could not be built ({problem}); numba "
                      "compiles them in each process instead (HEMOSYNTH_AOT=0 skips the "
                      "attempt)", aot.KernelBuildWarning, stacklevel=2)


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def run_local(
    cfg: GenerationConfig, pool: Pool, root: Path, indices: list[int], workers: int,
    scheduler: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Make the smears in this process (workers=1) or in a pool of ``workers`` processes;
    yields each smear's :func:`~hemosynth.dataset.digest` as it is done.

    While the fork server starts (it imports hemosynth and loads the compiled kernels: about
    0.5 s before the first worker exists), this process makes smears itself, from the end of
    ``indices`` (see :class:`_Feeder`).
    """
    if not indices:
        return
    workers = min(workers, len(indices))  # no more processes than smears to make
    if workers == 1:
        from .dataset import _Context

        warm_up_kernels()  # before the first smear (the library, or numba's cache, lean)
        ctx = _Context(cfg, pool, root)
        for i in indices:
            yield ctx.produce(i)
        return
    spec = _pool_spec(pool)
    mpc = mp_context()
    helping = mpc.get_start_method() == "forkserver"
    if not helping:  # the fork server loads the kernels itself
        warm_up_kernels()
    # the config and the pool go to each worker once (initializer); tasks are single smears,
    # so that the workers finish together
    with ProcessPoolExecutor(max_workers=workers, mp_context=mpc, initializer=_init_worker,
                             initargs=(cfg, spec, str(root))) as ex:
        feeder = _Feeder(ex, indices, Census(cfg, set(pool.classes)))
        try:
            if helping:
                yield from feeder.help(cfg, pool, root)
            pending = feeder.futures()
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield f.result()
        except BaseException:
            feeder.cancel()
            raise


class _Feeder:
    """Submits the smears to an executor from a thread, so that this process can make some
    while the first submission waits for the workers to start.

    Each smear goes with its counts, drawn here by ``census`` (the thread's own) in the order
    the smears are submitted: the workers then do not each draw the census themselves.

    The first ``submit`` of a fork-server pool returns only once the server has started and
    forked a worker. Meanwhile :meth:`help` makes smears here, taken from the end of the list
    (the thread takes them from the front), one at a time, and stops as soon as the workers
    are there. It does not start when they are there within :data:`GRACE` seconds (a server
    already running), so that it never competes with them for long.
    """

    #: seconds to wait for the workers before helping
    GRACE = 0.05

    def __init__(self, ex: ProcessPoolExecutor, indices: list[int], census: Census):
        import threading
        from collections import deque

        self.ex = ex
        self.census = census  # the thread's alone: it sends each smear's counts with it
        self.todo = deque(indices)
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.submitted: list[Any] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._feed, name="hemosynth-feeder", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        try:
            while True:
                with self.lock:
                    if not self.todo:
                        break
                    i = self.todo.popleft()
                counts = self.census.counts(i)
                self.submitted.append(self.ex.submit(_produce_one, i, counts))
                self.up.set()
        except BaseException as e:  # a broken pool, a shut-down executor
            self.error = e
        finally:
            self.up.set()

    def help(self, cfg: GenerationConfig, pool: Pool, root: Path) -> Iterator[dict[str, Any]]:
        """Make smears in this process until the workers are up; yields their digests."""
        if self.up.wait(self.GRACE):
            return
        from .dataset import _Context

        warm_up_kernels(build=False)  # (generate_dataset built the library, if it could)
        ctx = None
        while not self.up.is_set():
            with self.lock:
                if not self.todo:
                    return
                i = self.todo.pop()
            ctx = ctx if ctx is not None else _Context(cfg, pool, root)
            yield ctx.produce(i)

    def futures(self) -> set:
        """Every submitted smear's future, once the thread has submitted all the rest."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return set(self.submitted)

    def cancel(self) -> None:
        """Stop submitting and cancel what has not started."""
        with self.lock:
            self.todo.clear()
        self.thread.join()
        for f in self.submitted:
            f.cancel()


def run_dask(
    cfg: GenerationConfig, pool: Pool, root: Path, indices: list[int], workers: int,
    scheduler: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Make the smears on a dask.distributed cluster (a local one unless ``scheduler``);
    yields each smear's :func:`~hemosynth.dataset.digest`."""
    if not indices:
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - depends on the environment
        from .errors import ConfigError

        raise ConfigError(
            "executor: dask needs the dask extra (pip install 'hemosynth[dask]')"
        ) from None
    spec = _pool_spec(pool)
    warm_up_kernels()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
    try:
        batches = _batches(indices, 4)
        n = len(batches)
        census = Census(cfg, set(pool.classes))  # each batch goes with its smears' counts
        counts = [[census.counts(i) for i in b] for b in batches]
        futures = client.map(
            _produce_batch, [cfg] * n, [spec] * n, [str(root)] * n, batches, counts,
            pure=False,
        )
        for fut in as_completed(futures):
            yield from fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: executor name -> function
EXECUTORS = {"local": run_local, "dask": run_dask}

__all__ = ["EXECUTORS", "mp_context", "retain_freed_memory", "run_dask", "run_local",
           "start_server", "usable_cores"]  # the last two from .server, as before
