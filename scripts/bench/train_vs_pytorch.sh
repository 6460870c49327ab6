#!/usr/bin/env bash
# Side-by-side training speed on one GPU in one call: `xtask bench train` (ours) and
# scripts/reference/hrm_train_bench.py (PyTorch eager f32, eager bf16, torch.compile bf16)
# for the same model and batch. Usage: scripts/bench/train_vs_pytorch.sh XTASK OUT_DIR
# (XTASK: a release xtask built with --features cuda). Appends JSON lines to OUT_DIR/train.jsonl.
# Env: RUNS (preset:arch list), DTYPES (ours: bf16 f32), BACKENDS (ours: cuda, and libtorch for
# burn's LibTorch backend: xtask built with --features tch, run against this Python's torch
# libraries), OPTIMIZERS (ours: flat, and burn for burn's per-parameter AdamW), MODES (PyTorch's:
# eager-f32 eager-bf16 compile-bf16, and the like-for-like pure-bf16 autocast), BATCH, SEQ, STEPS;
# ACT=1 benches the trainer's ACT step on both sides (--act; the preset's halt_max_steps).
set -uo pipefail
xtask=$1
out=$2
mkdir -p "$out"
log="$out/train.jsonl"
batch=${BATCH:-32}
seq=${SEQ:-512}
steps=${STEPS:-20}
# burn's LibTorch backend links the libtorch of the Python environment that runs the reference.
torch_lib=$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)

# preset: d_model heads h_layers l_layers halt_max_steps
declare -A shape=([micro-10m]="256 4 3 3 4" [small-50m]="512 8 4 4 6" [medium-100m]="768 12 6 6 8")
act=${ACT:+--act}
for run in ${RUNS:-"micro-10m:hrm micro-10m:flat small-50m:hrm"}; do
  preset=${run%%:*}
  arch=${run##*:}
  read -r d heads hl ll halt <<<"${shape[$preset]}"
  for backend in ${BACKENDS:-cuda}; do
    for dtype in ${DTYPES:-bf16 f32}; do
      for optimizer in ${OPTIMIZERS:-flat}; do
        LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout 300 "$xtask" bench train \
          --device "$backend" --dtype "$dtype" --preset "$preset" --arch "$arch" --batch "$batch" --seq "$seq" \
          --steps "$steps" --warmup 3 --optimizer "$optimizer" $act \
          --out "$out/ours-$backend-$preset-$arch-$dtype-$optimizer.json" | tail -1 >>"$log" \
          || echo "{\"implementation\":\"hrm\",\"device\":\"$backend\",\"preset\":\"$preset\",\"arch\":\"$arch\",\"dtype\":\"$dtype\",\"optimizer\":\"$optimizer\",\"failed\":true}" >>"$log"
      done
    done
  done
  for mode in ${MODES:-eager-f32 eager-bf16 compile-bf16}; do
    timeout 300 python scripts/reference/hrm_train_bench.py --arch "$arch" --d-model "$d" --heads "$heads" \
      --h-layers "$hl" --l-layers "$ll" --layers $((hl + ll)) --vocab 32100 --batch "$batch" --seq "$seq" \
      --steps "$steps" --warmup 3 --mode "$mode" --tag "$preset" $act --halt-max-steps "$halt" 2>"$out/torch-$preset-$arch-$mode.err" | tail -1 >>"$log" \
      || echo "{\"impl\":\"pytorch\",\"preset\":\"$preset\",\"arch\":\"$arch\",\"mode\":\"$mode\",\"failed\":true}" >>"$log"
  done
done
cat "$log"
