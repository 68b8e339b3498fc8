#!/bin/bash
# benchmarks/throughput.py on a lent GPU machine's 16 CPU cores (the GPU is not used).
#
# The machine has numpy, numba, OpenCV, PyYAML, typer and rich but not pycocotools, and cannot
# download: carry its cp312 wheel in .whl/ (see tstr_gpu.sh). Usage, from the repo root:
#   bash benchmarks/device/throughput.sh [SMEARS] [WORKERS] [OLD_WORKERS]
# (default 200, 2,4,8,16 and none; REPS=N in the environment repeats each measurement N times,
# default 1). With OLD_WORKERS, the same benchmark then runs the code in
# each .dev/old-src*/ folder (an earlier commit's src/, e.g. `git archive COMMIT src | tar -x
# -C .dev/old-src-COMMIT --strip-components=1`, carried) for a before/after on one machine.
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/pycocotools-*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import numpy, numba, cv2, hemosynth; print('numpy', numpy.__version__, 'numba', numba.__version__, 'cv2', cv2.__version__)" || exit 4
nproc; grep -m1 "model name" /proc/cpuinfo; free -g | head -2
python3 -c "from hemosynth.parallel import warm_up_kernels; warm_up_kernels()"  # compile once, cached
python3 benchmarks/throughput.py --smears ${1:-200} --workers ${2:-2,4,8,16} --reps ${REPS:-1} 2>&1 | tee $OUT/throughput.txt
[ -n "$3" ] || exit 0
for old in .dev/old-src*/; do
  [ -d "$old" ] || continue
  name=$(basename $old)
  (cd $old && find . -name __pycache__ -prune -exec rm -rf {} +)
  echo "== $name"
  PYTHONPATH=/tmp/site:$PWD/$old python3 -c "from hemosynth.parallel import warm_up_kernels; warm_up_kernels()"
  PYTHONPATH=/tmp/site:$PWD/$old python3 benchmarks/throughput.py --smears ${1:-200} --workers $3 --reps ${REPS:-1} 2>&1 | tee $OUT/throughput-$name.txt
done
