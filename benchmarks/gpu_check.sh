#!/usr/bin/env bash
# GPU readiness check: run every CUDA path of pbtnas once, briefly, and print what it measured.
#
#   benchmarks/gpu_check.sh [OUT_DIR]            # on a machine with a CUDA GPU: under 10 minutes
#   DEVICE=cpu benchmarks/gpu_check.sh [OUT_DIR] # dry run at tiny sizes on CPU (checks the script only)
#
# Stages (each under its own time limit; a failed stage is reported and the others still run):
#   1. speed    gan-cifar10 shapes (G 256, D 128, latent 120, batch 64, n_critic 5) on synthetic
#               CIFAR-10: D-iterations/s, FLOPs per iteration and peak GPU memory of one member
#               (benchmarks/gan_speed.py --device cuda --flops)
#   2. gan      `pbtnas run gan-cifar10 --device cuda`: 4 members x 2 steps on synthetic CIFAR-10
#               written in the standard python format, 2 local worker processes sharing the GPU
#   3. ray      the same run on Ray with --gpus-per-member 0.5 (two members per GPU)
#   4. rl       `pbtnas run rl-quadruped-pixels --device cuda` with MUJOCO_GL=egl: 4 members (2 at
#               a time), one short step from 84x84 pixels (frames/s, updates/s)
# For stages 2-4 it prints the wall time, D-iterations/s (or frames/s) per member step from the
# run's journal, the final metric, and the peak GPU memory used on the device (nvidia-smi,
# sampled every 0.5 s; all processes) next to the memory in use before the stage. On a machine
# with several GPUs, Ray may place its members on another GPU than the one sampled.
#
# Environment: DEVICE (cuda | cuda:N | cpu), PYTHON (default: .venv/bin/python if present, else
# python), MUJOCO_GL (default egl), STAGES (default "speed gan ray rl"), KEEP=1 keeps OUT_DIR.
# Exit status: 0 if every stage passed, 1 if one failed, 2 if no CUDA device is visible.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${DEVICE:-cuda}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
STAGES=${STAGES:-"speed gan ray rl"}
export MUJOCO_GL=${MUJOCO_GL:-egl}
export PYTHONUNBUFFERED=1
PBTNAS=("$PYTHON" -m pbtnas)
cd "$ROOT" || exit 2

say() { printf '[gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# -- 0. is there a GPU? (fail fast, before anything is written or started) ----------------------
if [ "$DEVICE" = cpu ]; then
    say "DEVICE=cpu: dry run at tiny sizes on CPU; it checks this script and the code paths, not a GPU"
    GPUS_PER_MEMBER=0
else
    if ! "$PYTHON" - "$DEVICE" <<'EOF'
import sys
try:
    import torch
except ImportError as exc:
    sys.exit(f"gpu_check: cannot import torch ({exc})")
device = sys.argv[1]
if not torch.cuda.is_available():
    import os
    sys.exit(f"gpu_check: no CUDA device is visible to torch {torch.__version__} (built for CUDA "
             f"{torch.version.cuda or 'none: a CPU-only build'}; CUDA_VISIBLE_DEVICES="
             f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}). Run this on a machine with an NVIDIA GPU "
             "and a CUDA build of torch, or DEVICE=cpu for a dry run.")
index = torch.device(device).index or 0
if index >= torch.cuda.device_count():
    sys.exit(f"gpu_check: {device} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
p = torch.cuda.get_device_properties(index)
print(f"[gpu_check] {device}: {p.name}, {p.total_memory / 2**30:.1f} GiB, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s) visible")
EOF
    then
        exit 2
    fi
    GPUS_PER_MEMBER=0.5
fi

OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/pbtnas-gpu-check.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PBTNAS_CACHE="$OUT/cache"           # the FD-clf classifier of the synthetic data lives here

# -- sizes: the paper's gan-cifar10 shapes on a GPU, tiny ones for the CPU dry run --------------
if [ "$DEVICE" = cpu ]; then
    PER_FILE=100
    SPEED=(--widths 8 --disc-widths 8 --batch-size 8 --iters 4 --members 1)
    GAN=(--set task.width=8 --set task.disc_width=8 --set task.batch_size=8 --set task.batches_per_step=4
         --set task.eval_samples=64 --set task.final_samples=128 --set task.classifier_width=8)
    RL=(--set task.hidden_dim=32 --set task.encoder_channels=8 --set task.batch_size=16
        --set task.frames_per_step=400 --set task.seed_frames=200 --set task.episode_frames=200
        --set task.buffer_capacity=1000)
    LIMIT_SPEED=300 LIMIT_GAN=300 LIMIT_RAY=400 LIMIT_RL=400
else
    PER_FILE=2000
    SPEED=(--widths 256 --disc-widths 128 --batch-size 64 --iters 50 --members 2)
    GAN=(--set task.batches_per_step=200 --set task.eval_samples=1000 --set task.final_samples=2000)
    RL=(--set task.frames_per_step=3000 --set task.seed_frames=1000 --set task.buffer_capacity=10000)
    LIMIT_SPEED=100 LIMIT_GAN=140 LIMIT_RAY=160 LIMIT_RL=180   # 580 s at most in all
fi
# Common to both: the classifier is trained for one epoch on the synthetic data (a speed check
# needs no good FD-clf), one episode per evaluation.
GAN+=(--set task.classifier_epochs=1 --set task.data_root="$OUT/data" --population 4 --steps 2 --quiet)
RL+=(--set task.eval_episodes=1 --set task.final_eval_episodes=1 --population 4 --steps 1 --quiet)

# -- synthetic CIFAR-10 in its standard python format --------------------------------------------
"$PYTHON" - "$OUT/data" "$PER_FILE" <<'EOF' || { say "FAILED: could not write synthetic CIFAR-10"; exit 1; }
import os, pickle, sys
import numpy as np
folder = os.path.join(sys.argv[1], "cifar-10-batches-py")
os.makedirs(folder, exist_ok=True)
n, rng = int(sys.argv[2]), np.random.default_rng(0)
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    # Smooth random images (low-frequency noise, upsampled) rather than white noise.
    small = rng.integers(0, 256, size=(n, 3, 8, 8)).astype(np.uint8)
    data = small.repeat(4, axis=2).repeat(4, axis=3).reshape(n, 3072)
    batch = {b"data": data, b"labels": [int(v) for v in rng.integers(0, 10, size=n)], b"batch_label": b"synthetic"}
    with open(os.path.join(folder, name), "wb") as fh:
        pickle.dump(batch, fh, protocol=2)
print(f"[gpu_check] synthetic CIFAR-10: {5 * n} training and {n} test images in {folder}")
EOF

# -- GPU memory sampling ---------------------------------------------------------------------------
SMI=$(command -v nvidia-smi || true)
GPU_INDEX=0
case "$DEVICE" in cuda:*) GPU_INDEX=${DEVICE#cuda:} ;; esac
SAMPLER=""
start_sampler() {  # $1: log file
    [ -n "$SMI" ] && [ "$DEVICE" != cpu ] || return 0
    "$SMI" --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU_INDEX" -lms 500 > "$1" 2>/dev/null &
    SAMPLER=$!
}
stop_sampler() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
    SAMPLER=""
}
memory_before() {
    [ -n "$SMI" ] && [ "$DEVICE" != cpu ] || { echo "n/a"; return; }
    "$SMI" --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU_INDEX" 2>/dev/null | head -1
}
peak_memory() {  # $1: log file, $2: memory in use before the stage
    if [ -z "$SMI" ] || [ "$DEVICE" = cpu ]; then echo "GPU memory: n/a (no nvidia-smi or CPU dry run)"; return; fi
    local peak
    peak=$(sort -n "$1" 2>/dev/null | tail -1)
    echo "GPU memory (nvidia-smi, all processes): peak ${peak:-?} MiB, ${2} MiB in use before the stage"
}

# -- run summary from the journal -----------------------------------------------------------------
summarise() {  # $1: run dir, $2: wall seconds
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
import numpy as np
run, wall = sys.argv[1], float(sys.argv[2])
events = [json.loads(line) for line in open(f"{run}/journal.jsonl")]
steps = [e for e in events if e.get("event") == "member_trained"]
summary = json.load(open(f"{run}/summary.json"))
config = {}
try:
    import yaml
    config = yaml.safe_load(open(f"{run}/config.yaml"))
except Exception:
    pass
task = config.get("task", {})
failed = [e for e in steps if e.get("error")]
secs = np.array([e["seconds"] for e in steps if not e.get("error")] or [np.nan])
line = (f"{len(steps)} member steps ({len(failed)} failed), {np.mean(secs):.1f} s per member step "
        f"(train + evaluate, min {np.min(secs):.1f}, max {np.max(secs):.1f}), wall {wall:.0f} s")
if task.get("name") == "gan" and "batches_per_step" in task:
    rate = task["batches_per_step"] / secs
    line += f"; {np.mean(rate):.2f} D-iterations/s per member step including its evaluation"
fps = [e["metrics"]["fps"] for e in steps if isinstance(e.get("metrics"), dict) and "fps" in e["metrics"]]
ups = [e["metrics"]["updates_per_s"] for e in steps if isinstance(e.get("metrics"), dict) and "updates_per_s" in e["metrics"]]
if fps:
    line += f"; {np.mean(fps):.0f} frames/s and {np.mean(ups):.1f} updates/s per member"
line += f"; final {summary.get('final_metric_name')} = {summary.get('final_metric')}"
print("[gpu_check]   " + line)
for e in failed:
    print("[gpu_check]   failed member step:", e["error"])
EOF
}

FAILED=()
run_stage() {  # $1: name, $2: time limit (s), rest: command
    local name=$1 limit=$2
    shift 2
    say "stage $name (limit ${limit}s): $*"
    local before t0 rc
    before=$(memory_before)
    start_sampler "$OUT/$name.mem"
    t0=$(date +%s)
    timeout --kill-after=20 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    WALL=$(( $(date +%s) - t0 ))
    stop_sampler
    if [ $rc -ne 0 ]; then
        FAILED+=("$name")
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "stage $name: FAILED, over its ${limit}s limit"
        else say "stage $name: FAILED (exit $rc)"; fi
        tail -n 15 "$OUT/$name.log" | sed "s/^/[gpu_check]   | /"
        return 1
    fi
    say "stage $name: ok in ${WALL}s"
    peak_memory "$OUT/$name.mem" "$before" | sed "s/^/[gpu_check]   /"
    return 0
}

for stage in $STAGES; do
    case $stage in
    speed)
        run_stage speed "$LIMIT_SPEED" "$PYTHON" benchmarks/gan_speed.py --device "$DEVICE" --dataset cifar10 \
            --data-root "$OUT/data" --latent-dim 120 --n-critic 5 --flops "${SPEED[@]}" \
            && grep -E "D-iters/s" "$OUT/speed.log" | sed "s/^/[gpu_check]   /" ;;
    gan)
        run_stage gan "$LIMIT_GAN" "${PBTNAS[@]}" run gan-cifar10 --device "$DEVICE" --workers 2 "${GAN[@]}" \
            --out "$OUT/runs/gan" && summarise "$OUT/runs/gan" "$WALL" ;;
    ray)
        if ! "$PYTHON" -c "import ray" 2>/dev/null; then
            FAILED+=(ray); say "stage ray: FAILED, ray is not installed (pip install -e '.[ray]')"; continue
        fi
        # A Ray actor sees only the GPU Ray gave it, always as cuda:0 (so DEVICE=cuda:N becomes cuda).
        run_stage ray "$LIMIT_RAY" "${PBTNAS[@]}" run gan-cifar10 --device "${DEVICE%%:*}" --backend ray \
            --gpus-per-member "$GPUS_PER_MEMBER" --cpus-per-member 1 "${GAN[@]}" --out "$OUT/runs/ray" \
            && summarise "$OUT/runs/ray" "$WALL" ;;
    rl)
        run_stage rl "$LIMIT_RL" "${PBTNAS[@]}" run rl-quadruped-pixels --device "$DEVICE" --workers 2 "${RL[@]}" \
            --out "$OUT/runs/rl" && summarise "$OUT/runs/rl" "$WALL" ;;
    *) say "unknown stage $stage (known: speed gan ray rl)"; FAILED+=("$stage") ;;
    esac
done

if [ ${#FAILED[@]} -gt 0 ]; then
    say "FAILED stages: ${FAILED[*]} (logs in $OUT)"
    exit 1
fi
if [ "${KEEP:-0}" = 1 ] || [ -n "${1:-}" ]; then
    say "all stages passed (logs and runs in $OUT)"
else
    rm -rf "$OUT"
    say "all stages passed (temporary folder removed; pass OUT_DIR or KEEP=1 to keep the logs)"
fi
exit 0
