"""Loads the compiled kernels when imported: the fork server of the local worker processes
imports this module (see :func:`hemosynth.parallel.mp_context`), so that every worker it forks
starts with the kernels in memory instead of loading them from the disk cache itself.

Import it only for that effect. While the kernels load, numba's probe for scipy's BLAS is
answered "absent" (:func:`load_without_blas_probe`). Then every object the server holds is moved
out of the garbage collector's reach (:func:`~hemosynth.parallel.settle_garbage_collector`),
as Python's documentation of ``gc.freeze`` advises before forking: the workers' own collections
then neither scan those objects (about 45 ms a worker) nor write to their pages, which would
copy them into every worker.
"""

import sys

from ..parallel import settle_garbage_collector, warm_up_kernels

#: the module that numba imports to probe for BLAS when it first loads its array functions
BLAS_PROBE = "scipy.linalg.cython_blas"


def load_without_blas_probe() -> None:
    """:func:`~hemosynth.parallel.warm_up_kernels` with numba's BLAS probe answered "absent".

    numba imports ``scipy.linalg`` to look for BLAS the first time it loads its array
    functions: about 0.2 s of the fork server's start, which every worker waits for. No kernel
    of hemosynth uses BLAS; numba's only use of the answer is to compile ``np.correlate`` and
    ``np.convolve`` with a loop of its own instead of BLAS in this process. The probe's module
    is hidden for that moment only, and only if nothing has imported it yet: ``scipy.linalg``
    (and numba's ``np.dot``, which asks again when compiled) import normally afterwards.
    """
    if BLAS_PROBE in sys.modules:
        warm_up_kernels()
        return
    sys.modules[BLAS_PROBE] = None  # an import of it now fails at once, without scipy.linalg
    try:
        warm_up_kernels()
    finally:
        if sys.modules.get(BLAS_PROBE, 0) is None:
            del sys.modules[BLAS_PROBE]


load_without_blas_probe()
settle_garbage_collector()
