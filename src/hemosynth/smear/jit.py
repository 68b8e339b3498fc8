"""The decorator of hemosynth's compiled kernels: the ahead-of-time library where it is built,
numba's JIT otherwise.

:func:`kernel` stands where ``numba.njit`` stood and takes its options. When this module is
first imported, it loads the library of :mod:`hemosynth.smear.aot` if one is built for this
key: each kernel is then its entry point in the library, and numba is never imported. Otherwise
each kernel is ``numba.njit(**options)`` of the function, as before (compiled on first use and
cached on disk). :func:`ensure_library` builds the library where it is missing and switches
the process to it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from . import aot

#: the library's entry points by ``module.function``, or None (numba's JIT)
_ENTRIES = aot.load()


def ahead_of_time() -> bool:
    """Whether this process runs the kernels from the ahead-of-time library."""
    return _ENTRIES is not None


def kernel(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``, or the function's entry point in the ahead-of-time library.

    A function the library has no entry point for is one inlined into the others
    (``inline="always"``): in a process that runs the library it stays the plain function,
    which nothing calls.
    """

    def decorate(fn: Callable) -> Callable:
        if _ENTRIES is not None:
            return _ENTRIES.get(f"{fn.__module__.rsplit('.', 1)[1]}.{fn.__name__}", fn)
        import numba

        return numba.njit(**options)(fn)

    return decorate


def ensure_library() -> str | None:
    """Build the ahead-of-time library if it is missing (:func:`~hemosynth.smear.aot.ensure_built`,
    about 20 s, once) and run the kernels from it in this process from now on (a library
    built by another process since this one started is used as it is).

    The kernel modules already imported get the library's entry points in place of their
    numba functions (Python code calls them through the module's namespace; numba is then no
    longer asked to compile them). Returns None, or the reason the build failed (the kernels
    then stay numba's).
    """
    global _ENTRIES
    if _ENTRIES is not None:
        return None
    problem = aot.ensure_built()  # None where it is built, switched off or failed before
    entries = aot.load() if problem is None else None
    if entries is not None:
        _ENTRIES = entries
        for name, fn in entries.items():
            short, attr = name.split(".")
            module = sys.modules.get(f"{__package__}.{short}")
            if module is not None:
                setattr(module, attr, fn)
    return problem
