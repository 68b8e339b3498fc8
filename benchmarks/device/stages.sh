#!/bin/bash
# benchmarks/stages.py (where one smear's time goes, one process) on a lent GPU machine's CPU,
# for src/ and then for each .dev/old-src*/ tree (see throughput.sh), so that a kernel that is
# slow on that processor shows stage by stage. Usage, from the repo root:
#   bash benchmarks/device/stages.sh [SMEARS]        (default 16)
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/pycocotools-*.whl || exit 3
for tree in src .dev/old-src*/; do
  [ -d "$tree" ] || continue
  name=$(basename $tree)
  (cd $tree && find . -name __pycache__ -prune -exec rm -rf {} +)
  echo "== $name"
  PYTHONPATH=/tmp/site:$PWD/$tree python3 benchmarks/stages.py --smears ${1:-16} 2>&1 | tee $OUT/stages-$name.txt
done
