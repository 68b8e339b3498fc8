#!/bin/bash
# benchmarks/throughput.py on a lent GPU machine's 16 CPU cores (the GPU is not used).
#
# The machine has numpy, numba, OpenCV, PyYAML, typer and rich but not pycocotools, and cannot
# download: carry its cp312 wheel in .whl/ (see tstr_gpu.sh). Usage, from the repo root:
#   bash benchmarks/device/throughput.sh [SMEARS] [WORKERS] [OLD_WORKERS]
# (default 200, 2,4,8,16 and none). With OLD_WORKERS, the same benchmark then runs the code in
# .dev/old-src (an earlier commit's src/, copied there and carried) for a before/after.
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/pycocotools-*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import numpy, numba, cv2, hemosynth; print('numpy', numpy.__version__, 'numba', numba.__version__, 'cv2', cv2.__version__)" || exit 4
nproc; grep -m1 "model name" /proc/cpuinfo; free -g | head -2
python3 -c "from hemosynth.parallel import warm_up_kernels; warm_up_kernels()"  # compile once, cached
python3 benchmarks/throughput.py --smears ${1:-200} --workers ${2:-2,4,8,16} 2>&1 | tee $OUT/throughput.txt
if [ -n "$3" ] && [ -d .dev/old-src ]; then
  (cd .dev/old-src && find . -name __pycache__ -prune -exec rm -rf {} +)
  PYTHONPATH=/tmp/site:$PWD/.dev/old-src python3 -c "from hemosynth.parallel import warm_up_kernels; warm_up_kernels()"
  PYTHONPATH=/tmp/site:$PWD/.dev/old-src python3 benchmarks/throughput.py --smears ${1:-200} --workers $3 2>&1 | tee $OUT/throughput-old.txt
fi
