#!/usr/bin/env bash
# One device call: the ignored GPU tests of hrm-core (whole-op gradients, cached decoding, GPU
# memory against nvidia-smi), then `hrm train` on cuda and libtorch with nvidia-smi polled beside it
# (its per-process peak against the run's metrics.jsonl). BIN: a folder of gzipped, stripped
# binaries named whole_op_gradients, decode, device_memory and hrm (built with --features tch,cuda,fusion).
set -o pipefail
. scripts/bench/device_env.sh
mkdir -p /tmp/b /tmp/mem
for f in "${BIN:-.dev/checks}"/*.gz; do gunzip -c "$f" > /tmp/b/$(basename "$f" .gz); done
chmod +x /tmp/b/*
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/gpu.txt
export RUST_BACKTRACE=1
(cd crates/hrm-core
 timeout 150 /tmp/b/whole_op_gradients --ignored --test-threads 1 > $OUT/grad.log 2>&1; echo "grad rc $?"
 timeout 60 /tmp/b/decode --ignored --nocapture > $OUT/decode.log 2>&1; echo "decode rc $?"
 timeout 60 /tmp/b/device_memory --ignored --nocapture --test-threads 1 > $OUT/memory-test.log 2>&1; echo "memory test rc $?")
grep -hE "^test |panicked|differ|nvidia-smi" $OUT/grad.log $OUT/decode.log $OUT/memory-test.log | head -40
python3 - > /tmp/mem/corpus.txt <<'PY'
import glob
text = "\n\n".join(open(p).read() for p in sorted(glob.glob("docs/*.md")) + ["README.md"])
print((text + "\n\n") * 10)
PY
cat > /tmp/mem/mem.toml <<'TOML'
[model]
arch = "hrm"
vocab_size = 0
h_layers = 2
l_layers = 2
h_cycles = 2
l_cycles = 2
halt_max_steps = 2
loss = "softmax"
[model.block]
d_model = 512
n_heads = 8
max_seq_len = 256
[data]
seq_len = 256
batch_size = 64
validation_fraction = 0.02
shuffle_block = 256
[[data.sources]]
name = "docs"
path = "corpus.txt"
[tokenizer]
kind = "char"
[run]
steps = 80
eval_every = 40
eval_batches = 2
sample_every = 40
sample_prompt = "The model"
sample_tokens = 40
log_every = 5
checkpoint_every = 1000
TOML
for dev in cuda libtorch; do
  timeout 150 /tmp/b/hrm train --config /tmp/mem/mem.toml --device $dev --output /tmp/mem/run-$dev > $OUT/train-$dev.log 2>&1 &
  pid=$!
  : > /tmp/mem/smi-$dev.txt
  while kill -0 $pid 2>/dev/null; do
    echo "apps $(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits | tr '\n' ';') gpu $(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits)" >> /tmp/mem/smi-$dev.txt
    sleep 0.5
  done
  wait $pid; echo "train $dev rc $?"
  cp /tmp/mem/run-$dev/metrics.jsonl $OUT/metrics-$dev.jsonl 2>/dev/null
  cp /tmp/mem/smi-$dev.txt $OUT/ 2>/dev/null
  grep -h "sample:\|stopped" /tmp/mem/run-$dev/train.log
done
python3 - <<'PY'
import json
for dev in ["cuda", "libtorch"]:
    try:
        rows = [json.loads(l) for l in open(f"/tmp/mem/run-{dev}/metrics.jsonl") if '"gpu_memory"' in l]
    except OSError:
        print(dev, "no metrics"); continue
    ours = [r["gpu_memory"] for r in rows]
    proc = max((m.get("process") or 0) for m in ours) >> 20
    dev_used = max((m.get("device_used") or 0) for m in ours) >> 20
    smi_proc, smi_dev = 0, 0
    for line in open(f"/tmp/mem/smi-{dev}.txt"):
        apps, gpu = line[5:].split(" gpu ")
        smi_dev = max(smi_dev, int(gpu.strip() or 0))
        for app in filter(None, apps.strip().split(";")):
            smi_proc = max(smi_proc, int(app.split(",")[1]))
    print(f"{dev}: ours process {proc} MiB, device {dev_used} MiB; nvidia-smi process {smi_proc} MiB, device {smi_dev} MiB; last {ours[-1]}")
PY
