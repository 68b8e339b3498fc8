#!/bin/bash
# benchmarks/tstr_bccd.py arms on a lent GPU machine (session 4: one H200, about 45 s an arm),
# one process per arm, results saved to $OUT/results.tgz after each.
#
# The machine has torch but neither ultralytics nor pycocotools, and cannot download: carry
# their wheels in .whl/ (ultralytics, ultralytics-thop, pycocotools for cp312), and copy the
# data it needs into .dev/ (ignored by git, named in the run's carry):
#   .dev/data/{bccd,bccd-relabel}       from ../shared/data
#   .dev/pool-s                         a pool small enough to travel (64 MiB in all):
#       hemosynth pools subset pools/pbc-v3 .dev/pool-s --classes "RBC,Platelet,<7 WBC classes>" \
#           --per-class "<each WBC class>=75"
#   .dev/shim                           copy of benchmarks/device/shim (polars: see there)
# Usage: bash benchmarks/device/tstr_gpu.sh "ARM ARM ..." [tstr_bccd.py options for all]
# An arm is a tstr_bccd.py arm (syn-pool, real, real+syn, syn-atlas) or strat:NAME (the
# placement comparison for one strategy), optionally followed by ~-separated options of its
# own, e.g. "real~--seed~1 real+syn~--mix~0.25".
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/.dev/shim
python3 -c "import hemosynth, ultralytics, pycocotools, torch; print('cuda', torch.cuda.is_available(), torch.__version__, ultralytics.__version__)" || exit 4
nproc; nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
R=/tmp/runs; mkdir -p $R
save() { (cd $R && tar czf $OUT/results.tgz $(find . \( -name result.json -o -name predictions.json -o -name report.json -o -name done.json \) -not -path "*/data/*") 2>/dev/null); }
ARMS=$1; shift
for a in $ARMS; do
  echo "=== $a at $(( $(date +%s) - T0 )) s"
  IFS='~' read -ra parts <<< "$a"; a=${parts[0]}; more=("${parts[@]:1}"); tag=$(IFS=_; echo "${more[*]}" | tr -d '-')
  if [[ $a == strat:* ]]; then sel=(--strategies ${a#strat:}); out=$R/strat$tag; else sel=(--arms $a); out=$R/tstr$tag; fi
  python3 benchmarks/tstr_bccd.py --data .dev/data --pool .dev/pool-s "${sel[@]}" --device 0 --workers 12 --gen-workers 14 --out $out "${more[@]}" "$@" >> $OUT/log.txt 2>&1
  grep -E "mAP@0.5 |generated|budget" $OUT/log.txt | tail -3
  save
done
echo "=== end at $(( $(date +%s) - T0 )) s"
