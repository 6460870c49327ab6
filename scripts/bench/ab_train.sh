#!/usr/bin/env bash
# A/B training speed of two xtask builds on one GPU, alternating: `xtask bench train` for each
# preset:arch in RUNS on each backend in BACKENDS at DTYPE, ROUNDS times, the builds taking
# turns (A B A B ...). Usage: scripts/bench/ab_train.sh XTASK_A XTASK_B OUT_DIR
# Appends one JSON line per run to $LOG (default OUT_DIR/ab.jsonl) with the build ("a" or "b")
# added; ROUNDS, BACKENDS, RUNS, DTYPE, BATCH, SEQ, STEPS and TIMEOUT (per run) may be set.
set -uo pipefail
a=$1 b=$2 out=$3
mkdir -p "$out"
log="${LOG:-$out/ab.jsonl}"
for backend in ${BACKENDS:-libtorch cuda}; do
  for run in ${RUNS:-micro-10m:hrm small-50m:hrm medium-100m:hrm micro-10m:flat}; do
    preset=${run%%:*} arch=${run##*:}
    for round in $(seq "${ROUNDS:-2}"); do
      for side in a b; do
        bin=$a; [ "$side" = b ] && bin=$b
        json="$out/$side-$backend-$preset-$arch-$round.json"
        timeout "${TIMEOUT:-240}" "$bin" bench train --device "$backend" --dtype "${DTYPE:-bf16}" --preset "$preset" \
          --arch "$arch" --batch "${BATCH:-32}" --seq "${SEQ:-512}" --steps "${STEPS:-20}" --warmup 3 \
          --out "$json" >"$out/$side-$backend-$preset-$arch-$round.log" 2>&1
        if [ -s "$json" ]; then
          python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['build']=sys.argv[2]; d['round']=int(sys.argv[3]); print(json.dumps(d))" "$json" "$side" "$round" >>"$log"
        else
          echo "{\"build\":\"$side\",\"device\":\"$backend\",\"preset\":\"$preset\",\"arch\":\"$arch\",\"round\":$round,\"failed\":true}" >>"$log"
        fi
      done
    done
  done
done
python3 - "$log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = sorted({(r.get("device"), r.get("preset"), r.get("arch")) for r in rows})
print(f"{'backend':9} {'preset':12} {'arch':5} {'A tokens/s':>24} {'B tokens/s':>24} {'B/A':>6}  final loss A / B")
for k in keys:
    side = lambda s: [r.get("tokens_per_s") for r in rows if (r.get("device"), r.get("preset"), r.get("arch")) == k and r["build"] == s and not r.get("failed")]
    a, b = side("a"), side("b")
    ratio = f"{(sum(b)/len(b))/(sum(a)/len(a)):.3f}" if a and b else "-"
    fmt = lambda v: ",".join(f"{x:,.0f}" for x in v) or "failed"
    loss = lambda s: next((r.get("final_loss") for r in rows if (r.get("device"), r.get("preset"), r.get("arch")) == k and r["build"] == s and not r.get("failed")), None)
    print(f"{k[0]:9} {k[1]:12} {k[2]:5} {fmt(a):>24} {fmt(b):>24} {ratio:>6}  {loss('a')} / {loss('b')}")
PY
