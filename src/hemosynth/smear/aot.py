"""hemosynth's kernels compiled ahead of time into one extension module.

Importing numba and loading the kernels from its disk cache is most of a process's start: about
0.35 of the 0.5 s before a worker process makes its first smear on the development machine
(numba's import about 0.2 s, the kernels about 0.13 s). numba's ``pycc`` compiles the same
functions, with the same LLVM, options and CPU, into a plain extension module: importing it takes
about a millisecond and needs numpy only, not numba. The smears are the same, byte for byte (the
tests hold a dataset made with it to one made with numba's JIT).

The library is built once per key: the kernels' source (the modules :data:`KERNEL_MODULES`,
:mod:`~hemosynth.smear.jit` and this one), Python, numpy, numba and llvmlite, the ``NUMBA_*``
settings and the CPU (it is compiled for this CPU, as numba's JIT compiles). The build
(:func:`ensure_built`, about 20 s on the development machine, once) runs in a child process that
compiles every kernel afresh with numba, after exercising each on tiny inputs so that every one
has its one signature, and exports each with that signature. The entry points check their
arguments' types before they call the machine code (:func:`guarded`), which trusts them.

Where: ``$HEMOSYNTH_AOT_DIR``, or ``__pycache__/aot`` beside these modules (where numba caches
them) when that is writable, or ``~/.cache/hemosynth/kernels``; one folder per key, written
whole and renamed into place; the newest :data:`KEEP_BUILT` keys' libraries are kept.
``HEMOSYNTH_AOT=0`` switches it off. Only on Linux (elsewhere, and where a build fails, for
example without a C compiler, numba's JIT runs the kernels as before; a failed build leaves a
note, ``<key>.failed``, and is not retried for its key while the note is there).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

#: the modules whose kernels the library holds (in ``hemosynth.smear``)
KERNEL_MODULES = ("gridjit", "kernels", "render", "sprite", "warp")
#: the extension module's name
LIB_NAME = "hemosynth_kernels"
#: the list of entry points and their argument types, beside the library
ENTRIES_FILE = "entries.json"
#: the note a failed build leaves, beside the key's folder
FAILED_SUFFIX = ".failed"
#: seconds a build may take before it counts as failed
BUILD_TIMEOUT = 900
#: how many keys' libraries are kept (the newest; this one included)
KEEP_BUILT = 4

_HERE = Path(__file__).resolve().parent


class KernelBuildWarning(UserWarning):
    """The ahead-of-time library could not be built; numba's JIT runs the kernels."""


def enabled() -> bool:
    """Whether the library may be used: on little-endian Linux, unless ``HEMOSYNTH_AOT=0``."""
    return (os.environ.get("HEMOSYNTH_AOT", "1") != "0" and sys.platform.startswith("linux")
            and sys.byteorder == "little")


def library_dir() -> Path:
    """The folder of the built libraries, one sub-folder per key (see the module docstring)."""
    env = os.environ.get("HEMOSYNTH_AOT_DIR")
    if env:
        return Path(env)
    beside = _HERE / "__pycache__"
    if os.access(beside if beside.is_dir() else _HERE, os.W_OK):
        return beside / "aot"
    return Path.home() / ".cache" / "hemosynth" / "kernels"


def _cpu() -> str:
    """This CPU's model and instruction-set flags (the first processor of /proc/cpuinfo)."""
    keep = ("vendor_id", "model name", "flags", "features", "cpu implementer", "cpu part")
    lines = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                if line.lower().startswith(keep):
                    lines.append(line.strip())
    except OSError:
        return "unknown"
    return "\n".join(lines)


def needs_build() -> bool:
    """Whether :func:`ensure_built` would build: the library is switched on, and neither built
    nor failed for this key (cheap: nothing is imported)."""
    if not enabled():
        return False
    key = library_key()
    if key is None:
        return False
    root = library_dir()
    return not (root / key).is_dir() and not (root / f"{key}{FAILED_SUFFIX}").exists()


def library_key() -> str | None:
    """Short hash of everything the library's machine code depends on; None without numba."""
    return _key(tuple(sorted((k, v) for k, v in os.environ.items()
                             if k.startswith("NUMBA_") and k != "NUMBA_CACHE_DIR")))


@lru_cache(maxsize=4)
def _key(numba_settings: tuple[tuple[str, str], ...]) -> str | None:
    """:func:`library_key` with these ``NUMBA_*`` settings, computed once a process (the
    sources, the packages and the CPU do not change while it runs; the key is asked for by
    every step that decides whether to build, load or use the library)."""
    h = hashlib.sha256()
    for name in (*KERNEL_MODULES, "jit", "aot"):
        h.update((_HERE / f"{name}.py").read_bytes())
    h.update(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    for pkg in ("numpy", "numba", "llvmlite"):  # found, not imported (cheap, and numba's
        # import is what the library saves): a package installed again has a new time
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            return None
        st = os.stat(spec.origin)
        h.update(f"|{spec.origin}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(repr(list(numba_settings)).encode())
    h.update(_cpu().encode())
    return h.hexdigest()[:16]


# -- entry points ------------------------------------------------------------------------------

_SCALARS = {  # numba's scalar argument types and what Python passes for them
    "int64": "(type({a}) is int or type({a}) is _i64)",
    "float64": "(type({a}) is float or type({a}) is _f64)",
    "float32": "type({a}) is _f32",
    "bool": "(type({a}) is bool or type({a}) is _b)",
}


def _describe(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else "A"
        return f"{value.dtype}[{value.ndim}d, {layout}]"
    return type(value).__name__


def _spec_text(spec: list) -> str:
    return ", ".join(s if isinstance(s, str) else f"{s[0]}[{s[1]}d, C]" for s in spec)


def guarded(name: str, fn: Callable, spec: list) -> Callable:
    """``fn``, an entry point of the library, behind a check of its arguments' types.

    The machine code trusts its arguments as numba's JIT would have typed them; an array of
    another type or layout would be read wrongly. ``spec`` gives each argument: a scalar type
    name (``int64``, ``float64``, ``float32``, ``bool``) or ``[dtype, ndim]`` for a C-contiguous
    array. A call that does not match is a TypeError naming the kernel; a matching one costs a
    few hundred nanoseconds more than the bare call.
    """
    import numpy as np

    args = [f"a{i}" for i in range(len(spec))]
    ns: dict[str, Any] = {"_f": fn, "_nd": np.ndarray, "_i64": np.int64, "_f64": np.float64,
                          "_f32": np.float32, "_b": np.bool_}
    checks = []
    for i, s in enumerate(spec):
        a = args[i]
        if isinstance(s, str):
            checks.append(_SCALARS[s].format(a=a))
        else:
            ns[f"_d{i}"] = np.dtype(s[0])
            checks.append(f"(isinstance({a}, _nd) and {a}.dtype == _d{i} and {a}.ndim == {s[1]}"
                          f" and {a}.flags.c_contiguous)")

    def mismatch(*values):
        raise TypeError(
            f"compiled kernel {name} takes ({_spec_text(spec)}), got "
            f"({', '.join(_describe(v) for v in values)}); HEMOSYNTH_AOT=0 compiles with numba "
            "instead")

    ns["_mismatch"] = mismatch
    params = ", ".join(args)
    src = (f"def {name.replace('.', '__')}({params}):\n"
           f"    if not ({' and '.join(checks) or 'True'}):\n"
           f"        _mismatch({params})\n"
           f"    return _f({params})\n")
    exec(compile(src, f"<hemosynth kernel {name}>", "exec"), ns)
    out = ns[name.replace(".", "__")]
    out.__doc__ = getattr(fn, "__doc__", None)
    return out


def load() -> dict[str, Callable] | None:
    """The library's entry points by ``module.function`` (e.g. ``kernels._optics``), each
    :func:`guarded`; None where the library is switched off, not built, or does not load (a
    folder that does not load is removed, so that the next :func:`ensure_built` builds it
    again)."""
    if not enabled():
        return None
    try:
        key = library_key()
    except OSError:
        return None
    if key is None:
        return None
    folder = library_dir() / key
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    path = folder / f"{LIB_NAME}{suffix}"
    if not path.is_file():
        return None
    try:
        entries = json.loads((folder / ENTRIES_FILE).read_text())
        spec = importlib.util.spec_from_file_location(LIB_NAME, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {name: guarded(name, getattr(module, e["export"]), e["args"])
                for name, e in entries.items()}
    except Exception:  # a damaged library: numba's JIT instead, and a rebuild
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return None


# -- building ----------------------------------------------------------------------------------

def ensure_built() -> str | None:
    """Build the library for this key unless it is built, switched off, or failed before.

    Runs the build in a child process (about 20 s, once) while holding a lock, so that
    concurrent callers build it once. Returns None, or the reason a build failed (which is
    also written beside the key's folder, so that it is not retried).
    """
    if not needs_build():
        return None
    key = library_key()
    root = library_dir()
    folder = root / key
    failed = root / f"{key}{FAILED_SUFFIX}"
    import fcntl
    import subprocess
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if folder.is_dir() or failed.exists():  # built while this process waited
                return None
            with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=root) as tmp:
                out = Path(tmp) / "lib"
                env = {**os.environ, "HEMOSYNTH_AOT": "0",
                       "NUMBA_CACHE_DIR": str(Path(tmp) / "nc")}
                try:
                    proc = subprocess.run([sys.executable, "-m", __name__, str(out)], env=env,
                                          capture_output=True, text=True,
                                          timeout=BUILD_TIMEOUT)
                    lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                             if ln.strip()]
                    reason = (None if proc.returncode == 0 else lines[-1].strip() if lines
                              else f"exit status {proc.returncode}")
                except subprocess.TimeoutExpired:
                    reason = f"the build took over {BUILD_TIMEOUT} s"
                if reason is not None:
                    failed.write_text(reason + "\n")
                    return f"{reason}; delete {failed} to try again"
                os.replace(out, folder)
            _prune(root, keep=folder)
    except OSError as e:  # the folder cannot be written: nothing is noted, numba's JIT runs
        return f"{root}: {e.strerror or e}"
    return None


def _prune(root: Path, keep: Path, newest: int = KEEP_BUILT) -> None:
    """Remove the libraries of other keys (earlier sources or versions) but the ``newest``
    few, ``keep`` counted among them."""
    import shutil

    others = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p != keep), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in others[newest - 1:]:
        shutil.rmtree(p, ignore_errors=True)


def _numba_type(t) -> str | list:
    """The :func:`guarded` spec of one numba argument type."""
    from numba.core import types

    if isinstance(t, types.Array) and t.layout == "C":
        return [str(t.dtype) if t.dtype != types.boolean else "bool", t.ndim]
    name = {types.int64: "int64", types.float64: "float64", types.float32: "float32",
            types.boolean: "bool"}.get(t)
    if name is None:
        raise TypeError(f"argument type {t} has no entry-point check")
    return name


def _exercise() -> None:
    """Call every kernel that Python calls, on tiny inputs (each module's warm-up, and the
    two small ones called outside it), so that each is compiled with its signature."""
    from . import gridjit, kernels, render, sprite, warp

    gridjit.warm_up()
    kernels.warm_up()
    warp.warm_up()
    render.warm_up()
    import numpy as np

    sprite.affine_frame(3, 3, 30.0, True, 1.5, (1.0, 1.0, 1.5))
    warp.inverse_map(np.eye(2, 3))


def build(dest: Path) -> None:
    """Compile the library into the new folder ``dest`` (in a process where numba's JIT runs
    the kernels and its disk cache is empty, see :func:`ensure_built`)."""
    import importlib
    import warnings

    from numba.core.dispatcher import Dispatcher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's pending deprecation
        from numba.pycc import CC

    # first what the C part of the build needs (before ~15 s of compiling the kernels)
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.is_file():
        raise RuntimeError(f"Python's C headers are missing ({header}; e.g. the python3-dev "
                           "package)")
    try:  # it checks that a C compiler works
        cc = CC(LIB_NAME)
    except RuntimeError:
        raise RuntimeError("no working C compiler (numba's pycc needs one)") from None
    cc.output_dir = str(dest)
    cc.target_cpu = "host"
    _exercise()
    entries: dict[str, dict] = {}
    for short in KERNEL_MODULES:
        module = importlib.import_module(f"{__package__}.{short}")
        for name, d in vars(module).items():
            if not isinstance(d, Dispatcher) or d.py_func.__module__ != module.__name__:
                continue
            if d.targetoptions.get("inline") == "always":
                continue  # inlined into its callers: never called on its own
            sigs = d.nopython_signatures
            if len(sigs) != 1:
                raise RuntimeError(f"kernel {short}.{name} has {len(sigs)} signatures after the "
                                   "warm-up; the library needs exactly one")
            sig = sigs[0]
            export = f"{short}__{name}"
            params = ", ".join(f"a{i}" for i in range(len(sig.args)))
            # a thin entry that calls the kernel: the kernel keeps its own options (error
            # model, fastmath) and is compiled into the entry as numba's JIT compiles it
            ns = {"_kernel": d}
            exec(f"def entry({params}):\n    return _kernel({params})\n", ns)
            cc.export(export, sig)(ns["entry"])
            entries[f"{short}.{name}"] = {"export": export,
                                          "args": [_numba_type(t) for t in sig.args]}
    dest.mkdir(parents=True)
    cc.compile()
    (dest / ENTRIES_FILE).write_text(json.dumps(entries, indent=1))


if __name__ == "__main__":  # the build's child process: python -m hemosynth.smear.aot DEST
    try:
        build(Path(sys.argv[1]))
    except Exception as e:  # one line for the parent's warning (its last line of stderr)
        import traceback

        traceback.print_exc()
        print(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        sys.exit(1)
