"""Loads the compiled kernels when imported: the fork server of the local worker processes
imports this module (see :func:`hemosynth.parallel.mp_context`), so that every worker it forks
starts with the kernels in memory instead of loading them from the disk cache itself.

Import it only for that effect. The kernels load without numba's full set-up
(:func:`~hemosynth.parallel.warm_up_kernels`). Then every object the server holds is moved
out of the garbage collector's reach (:func:`~hemosynth.parallel.settle_garbage_collector`,
without a last collection), as Python's documentation of ``gc.freeze`` advises before
forking: the workers' own collections then neither scan those objects (about 45 ms a worker)
nor write to their pages, which would copy them into every worker.
"""

from ..parallel import settle_garbage_collector, warm_up_kernels

warm_up_kernels(build=False)
settle_garbage_collector(collect=False)
