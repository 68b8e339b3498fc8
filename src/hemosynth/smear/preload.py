"""Loads the compiled kernels when imported: the fork server of the local worker processes
imports this module (see :func:`hemosynth.parallel.mp_context`), so that every worker it forks
starts with the kernels in memory instead of loading them from the disk cache itself.

Import it only for that effect.
"""

from ..parallel import warm_up_kernels

warm_up_kernels()
