"""Loading hemosynth's compiled kernels from numba's disk cache quickly.

Before numba loads a cached function, it refreshes its target context: it imports and installs
every implementation it can compile (about 40 modules, from strings to linear algebra), which
is about half of the time to load hemosynth's kernels (0.24 s -> 0.13 s on the development
machine). Loading machine code from the cache needs only numba's runtime (NRT, for the arrays
the kernels allocate) and its builtin registry. :func:`lean_cache_loads` loads with those
alone; numba's full set-up still happens when anything is compiled (numba's compiler refreshes
both contexts before it compiles), so a cache miss, or a new signature, compiles as usual.

:func:`hemosynth.parallel.warm_up_kernels` loads hemosynth's kernels this way in every
process. numba's probe for scipy's BLAS (an import of ``scipy.linalg``, 0.2-0.35 s), which its
full set-up makes, then no longer happens while they load; it happens, as usual, at the
process's first compilation, if any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import MethodType, ModuleType


@contextmanager
def lean_cache_loads(modules: Iterable[ModuleType]) -> Iterator[bool]:
    """Within the block, the compiled functions defined in ``modules`` load from numba's disk
    cache after initialising only numba's runtime and builtin registry, not its full target
    context (see the module docstring).

    Only those functions' caches change, and only for the block: other code's numba functions,
    in this or other threads, load as numba loads them. Yields whether the lean loading is in
    force: False where this numba lacks what it replaces (``Cache.load_overload`` and its
    helpers), in which case numba loads as usual.
    """
    try:
        from numba.core.caching import Cache
        from numba.core.dispatcher import Dispatcher
        from numba.core.imputils import builtin_registry
        from numba.core.runtime import rtsys

        Cache.load_overload  # noqa: B018 - what the replacement stands for, and calls, must exist
        Cache._load_overload  # noqa: B018
        Cache._guard_against_spurious_io_errors  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover - another numba
        yield False
        return

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)  # the runtime the cached code calls into
        target_context.install_registry(builtin_registry)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # pragma: no cover - an I/O error numba swallows: not found, as numba

    caches = [f._cache for m in modules for f in vars(m).values()
              if isinstance(f, Dispatcher) and isinstance(getattr(f, "_cache", None), Cache)]
    for cache in caches:
        cache.load_overload = MethodType(load_overload, cache)
    try:
        yield True
    finally:
        for cache in caches:
            vars(cache).pop("load_overload", None)
