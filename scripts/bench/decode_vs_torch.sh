#!/usr/bin/env bash
# Cached greedy decoding on one GPU, hrm and its PyTorch twin in the same call: for each preset
# in PRESETS and batch in BATCHES, `xtask bench decode --arch hrm --cached-only` on each backend
# in BACKENDS, then scripts/reference/hrm_decode.py on the very weights and prompt ids that
# xtask wrote (--export), eager and with CUDA graphs. Usage:
#   scripts/bench/decode_vs_torch.sh XTASK OUT_DIR
# Writes OUT_DIR/gpu-decode.jsonl, one row per (preset, backend, batch): preset, model,
# backend, batch, decode_tokens_per_s, prefill_tokens_per_s, torch_tokens_per_s (the better of
# PyTorch's two), torch_eager_tokens_per_s, torch_graphs_tokens_per_s, ratio_vs_torch.
# DTYPE (bf16), PROMPT (128), TOKENS (256) and TIMEOUT (per run) may be set; EVERY_SEGMENT=1 runs
# hrm without the early exit (no halting read inside a token), PyTorch's graphs mode's way.
set -uo pipefail
xtask=$1 out=$2
mkdir -p "$out"
here=$(cd "$(dirname "$0")/../reference" && pwd)
for preset in ${PRESETS:-micro-10m}; do
  for batch in ${BATCHES:-1 8 32}; do
    for backend in ${BACKENDS:-libtorch cuda}; do
      tag="$preset-$backend-b$batch"
      timeout "${TIMEOUT:-240}" "$xtask" bench decode --device "$backend" --dtype "${DTYPE:-bf16}" --preset "$preset" \
        --arch hrm --cached-only ${EVERY_SEGMENT:+--every-segment} --batch "$batch" --prompt "${PROMPT:-128}" --tokens "${TOKENS:-256}" \
        --export "$out/export-$preset" --out "$out/$tag.json" >"$out/$tag.log" 2>&1 || echo "$tag: xtask failed"
    done
    timeout "${TIMEOUT:-240}" python3 "$here/hrm_decode.py" "$out/export-$preset" --batch "$batch" \
      --prompt "${PROMPT:-128}" --tokens "${TOKENS:-256}" --mode both --dtype "${DTYPE:-bf16}" \
      --json "$out/$preset-torch-b$batch.json" $([ "$batch" = 1 ] && echo --check) >"$out/$preset-torch-b$batch.log" 2>&1 \
      || echo "$preset batch $batch: torch failed"
  done
done
python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*-b*.json"))):
    name = os.path.basename(path)[:-5]
    if "-torch-" in name:
        continue
    report = json.load(open(path))
    preset, backend, batch = report["preset"], name.split("-")[-2], report["batch"]
    torch_path = os.path.join(out, f"{preset}-torch-b{batch}.json")
    torch = {r["mode"]: r["decode_tokens_per_s"] for r in json.load(open(torch_path))} if os.path.exists(torch_path) else {}
    best = max(torch.values()) if torch else None
    for r in report["rows"]:
        rows.append({
            "preset": preset, "model": r["model"], "backend": backend, "dtype": report["dtype"], "batch": batch,
            "decode_tokens_per_s": r["decode_tokens_per_s"], "prefill_tokens_per_s": r["prefill_tokens_per_s"],
            "torch_tokens_per_s": best, "torch_eager_tokens_per_s": torch.get("eager"),
            "torch_graphs_tokens_per_s": torch.get("graphs"),
            "ratio_vs_torch": r["decode_tokens_per_s"] / best if best else None, "git_rev": report["git_rev"],
        })
with open(os.path.join(out, "gpu-decode.jsonl"), "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
print(f"{'preset':11} {'backend':9} {'batch':>5} {'hrm decode':>11} {'torch eager':>12} {'torch graphs':>13} {'ratio':>6}")
for r in rows:
    fmt = lambda v: f"{v:,.1f}" if v else "-"
    print(f"{r['preset']:11} {r['backend']:9} {r['batch']:>5} {fmt(r['decode_tokens_per_s']):>11} "
          f"{fmt(r['torch_eager_tokens_per_s']):>12} {fmt(r['torch_graphs_tokens_per_s']):>13} "
          f"{(r['ratio_vs_torch'] or 0):>6.2f}")
PY
