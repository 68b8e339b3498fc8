#!/bin/bash
# Before/after on a lent machine's CPU cores, alternating: benchmarks/throughput.py for src/ and
# then for each .dev/old-src*/ tree (an earlier commit's src/, carried; see throughput.sh), ROUNDS
# times over, each run a fresh `--reps 1` measurement (floors and generation), so that a drift
# of the machine hits both trees alike. The GPU is not used.
#   [SINGLE=0] [STARTS=N] bash benchmarks/device/alternate.sh [SMEARS] [WORKERS] [ROUNDS]
# (default 200, 2,16 and 2). Output: $OUT/<tree>-<round>.txt, one throughput table each.
# SINGLE=0 skips the 1-worker run and floor (throughput.py --no-single); STARTS=N first times
# the wait for the first worker (benchmarks/worker_start.py --reps N) for each tree, twice
# alternately, into $OUT/start-<tree>-<i>.txt.
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/pycocotools-*.whl || exit 3
python3 -c "import setuptools" 2>/dev/null || python3 -m pip install -q --no-index --no-deps \
    --no-compile --no-cache-dir --target /tmp/site .whl/setuptools-*.whl  # for numba's pycc
nproc; grep -m1 "model name" /proc/cpuinfo
# what building the kernels' ahead-of-time library needs (session 12): a C compiler, Python.h
(command -v cc gcc; gcc --version | head -1) 2>&1
python3 -c "import sysconfig, os; p = sysconfig.get_paths()['include']; print(p, os.path.exists(p + '/Python.h'))"
trees="src $(ls -d .dev/old-src*/ 2>/dev/null | tr '\n' ' ')"
for t in $trees; do  # compile each tree's kernels once (numba caches them beside the source)
  (cd $t && find . -name __pycache__ -prune -exec rm -rf {} +)
  PYTHONPATH=/tmp/site:$PWD/$t python3 -W always -c "from hemosynth.parallel import warm_up_kernels; warm_up_kernels()" || exit 4
  PYTHONPATH=/tmp/site:$PWD/$t python3 -c "import sys, hemosynth.dataset as d; from hemosynth.smear import jit; print('$t', 'ahead of time:', jit.ahead_of_time(), 'numba imported:', 'numba' in sys.modules)" 2>&1
done
if [ "${STARTS:-0}" -gt 0 ]; then
  for i in 1 2; do
    for t in $trees; do
      name=$(basename $t); echo "== worker start $i: $name"
      PYTHONPATH=/tmp/site:$PWD/$t python3 benchmarks/worker_start.py --reps $STARTS 2>&1 \
          | tee $OUT/start-$name-$i.txt
    done
  done
fi
single=$([ "${SINGLE:-1}" = 0 ] && echo --no-single)
for r in $(seq 1 ${3:-2}); do
  for t in $trees; do
    name=$(basename $t); echo "== round $r: $name"
    PYTHONPATH=/tmp/site:$PWD/$t python3 benchmarks/throughput.py --smears ${1:-200} \
        --workers ${2:-2,16} $single 2>&1 | tee $OUT/$name-$r.txt
  done
done
