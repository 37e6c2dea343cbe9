#!/usr/bin/env bash
# CPU-scale reproduction of the paper's two tables on the classification preset
# (docs/RESULTS.md). Usage: benchmarks/reproduce_tables.sh [OUT_DIR] [SEEDS]
# Budget: the preset's population (8) with STEPS steps of BATCHES batches (defaults 8 x 25, a
# reduction of the preset's 16 x 40 so that 15 runs fit on two shared cores); one worker, one
# run at a time. Table 2 reuses table 1's PBT-NAS runs (same seeds, same budget) through
# symlinks; finished runs are reused when the script is started again.
set -euo pipefail
OUT=${1:-results}
SEEDS=${2:-3}
STEPS=${STEPS:-8}
BATCHES=${BATCHES:-25}
PBTNAS=${PBTNAS:-pbtnas}
BUDGET=(--steps "$STEPS" --set "task.batches_per_step=$BATCHES" --workers 1)
$PBTNAS compare classification --algorithms pbtnas,random,mutation --seeds "$SEEDS" "${BUDGET[@]}" \
    --out "$OUT/baselines"
mkdir -p "$OUT/ablations/runs"
for ((s = 0; s < SEEDS; s++)); do
    ln -sfn "../../baselines/runs/pbtnas-s$s" "$OUT/ablations/runs/pbtnas-s$s"
done
$PBTNAS compare classification --algorithms pbtnas,sp-1-0,sp-0-1,no-mixing --seeds "$SEEDS" "${BUDGET[@]}" \
    --out "$OUT/ablations"
# Table 1 again at the preset's full budget (16 steps x 40 batches); set FULL=0 to skip.
if [ "${FULL:-1}" != "0" ]; then
    $PBTNAS compare classification --algorithms pbtnas,random,mutation --seeds "$SEEDS" --workers 1 \
        --out "$OUT/full"
fi
