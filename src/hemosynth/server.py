"""The fork server of local worker processes: started as early as a program can.

This module imports nothing heavy (no numpy, numba or OpenCV), so that the ``generate`` command
can start the server before its own imports: the server's start (it imports hemosynth and
loads the compiled kernels, about 0.5 s) then overlaps them.
:mod:`hemosynth.parallel` runs the workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from contextlib import contextmanager

#: the fork server's (and so every worker's) thread pools of numerical libraries: one thread
#: each. A worker is one core's worth of work, and OpenBLAS otherwise starts a thread per core
#: when numpy is imported (a cost in the server's start that grows with the cores; the workers
#: never run a matrix product that large). A value the user set is kept.
SERVER_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mp_context(
    preload: tuple[str, ...] = ("hemosynth.dataset", "hemosynth.parallel",
                                "hemosynth.smear.preload"),
):
    """A multiprocessing context that is safe in a process whose libraries run threads.

    Forking a parent in which OpenCV's or BLAS's thread pools have run can deadlock the child
    on a lock held by a thread that does not exist there; ``forkserver`` forks workers from a
    clean server process (with ``preload`` imported once, the compiled kernels included),
    ``spawn`` where it is missing.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def start_server(workers: int, executor: str = "local") -> bool:
    """Start the fork server of a local multi-process run now, in the background.

    The server imports hemosynth and loads the compiled kernels (about 0.5 s) before it forks
    the first worker; started before this process's own set-up (such as the ``generate``
    command's set-up), the two overlap. ``workers`` as for
    :func:`~hemosynth.dataset.generate_dataset` (0: every usable core). Returns whether a
    server was started.
    """
    if workers == 0:
        workers = usable_cores()
    if executor != "local" or workers <= 1:
        return False
    ctx = mp_context()
    if ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    with _server_environment():
        forkserver.ensure_running()
    return True


@contextmanager
def _server_environment() -> Iterator[None]:
    """:data:`SERVER_THREADS` in this process's environment (where unset) while the fork
    server's process starts, which inherits it; then as it was."""
    added = [k for k in SERVER_THREADS if k not in os.environ]
    os.environ.update({k: SERVER_THREADS[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


__all__ = ["mp_context", "start_server", "usable_cores"]
