#!/usr/bin/env bash
# Seed 002's comparison: flat, HRM, TRM, MoEUT and MoEUT+ACT at one size on TinyStories, the
# same token budget for every model, on one device, one run after another. A model with ACT
# (halt_max_steps = k) trains one optimiser step per segment, so it gets k × STEPS steps to
# read about the same tokens (each log line says how many it read). Usage: scripts/bench/zoo_tinystories.sh HRM SIZE STEPS OUT_DIR [DEVICE]
# (HRM: an hrm binary; SIZE: 1m or 10m; DEVICE: cuda by default). Writes OUT_DIR/zoo-SIZE.jsonl,
# one line per model: parameters, steps, tokens read, validation bits/byte and loss (last
# evaluation, over the whole validation split), mean training tokens/s, seconds.
set -uo pipefail
hrm=$1
size=$2
steps=$3
out=$4
device=${5:-cuda}
mkdir -p "$out"
log="$out/zoo-$size.jsonl"
for model in ${MODELS:-flat hrm trm moeut moeut-act}; do
  run="$out/runs/$model-$size"
  rm -rf "$run"
  config="configs/train/tinystories-$model-$size.toml"
  segments=$(grep -Po '^halt_max_steps = \K[0-9]+' "$config" || echo 1)
  model_steps=$((steps * segments))
  start=$(date +%s.%N)
  timeout "${RUN_TIMEOUT:-600}" "$hrm" train --config "$config" --output "$run" \
    --device "$device" --quiet --set run.steps="$model_steps" --set run.eval_every="$model_steps" \
    --set run.checkpoint_every="$model_steps" --set run.eval_batches=1000 >"$out/$model-$size.log" 2>&1
  status=$?
  seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
  python3 - "$run" "$model" "$size" "$status" "$seconds" >>"$log" <<'PY'
import json, sys
run, model, size, status, seconds = sys.argv[1:]
row = {"model": model, "size": size, "exit": int(status), "seconds": float(seconds)}
try:
    lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
    steps = [l for l in lines if "tokens_per_s" in l]
    evals = [l for l in lines if "eval" in l]
    rates = [l["tokens_per_s"] for l in steps[1:]] or [l["tokens_per_s"] for l in steps]
    row.update(steps=steps[-1]["step"], tokens=steps[-1]["tokens"], train_loss=steps[-1]["lm_loss"],
               tokens_per_s=sum(rates) / len(rates), act_steps=steps[-1]["act_steps"])
    if evals:
        e = evals[-1]["eval"]
        row.update(val_loss=e["loss"], val_bits_per_byte=e["bits_per_byte"], val_tokens=e["tokens"])
    for line in open(f"{run}/train.log"):
        if "parameters" in line and "new run" in line:
            row["parameters"] = int(line.split(":")[-1].split()[0])
except Exception as e:  # a failed run still gets its line
    row["error"] = str(e)
print(json.dumps(row))
PY
  tail -1 "$log"
done
