"""How long a local multi-process run waits for its first worker: the fork server's start.

In a fresh process that has imported hemosynth (as a program calling ``generate_dataset``
has), starts the fork server of the local workers (``start_server``, as ``generate_dataset``
does) and times until the first worker it forks
answers: the server's interpreter, its imports (numpy, numba, OpenCV, hemosynth) and the
loading of the compiled kernels, then one fork. On many cores this start is a large share of a
200-smear run (see docs/benchmarks.md). Each repetition is a fresh process; the kernels are
loaded and the bytecode written once first, untimed (``throughput.compile_bytecode``), so
that the timed runs read both from disk.

Usage::

    python benchmarks/worker_start.py [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from throughput import compile_bytecode

#: run in a fresh process: prints the seconds from the server's start to the first worker's
#: answer
_ONE = """
import time
from concurrent.futures import ProcessPoolExecutor
import os
import hemosynth.dataset
from hemosynth.parallel import mp_context
from hemosynth.server import start_server

if __name__ == "__main__":
    t0 = time.perf_counter()
    start_server(2)  # as generate_dataset starts it
    with ProcessPoolExecutor(1, mp_context=mp_context()) as ex:
        ex.submit(os.getpid).result()
        print(time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    compile_bytecode()
    runs = [float(subprocess.run([sys.executable, "-c", _ONE], check=True, text=True,
                                 capture_output=True).stdout)
            for _ in range(args.reps)]
    print(f"first worker ready after {statistics.median(runs):.3f} s (median of {args.reps}; "
          f"runs {', '.join(f'{r:.3f}' for r in runs)})")


if __name__ == "__main__":
    main()
