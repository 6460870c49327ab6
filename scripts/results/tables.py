#!/usr/bin/env python3
"""Prints docs/results.md's tables from docs/results/summary.json: HRM vs flat at equal FLOPs
(mean ± sd over seeds), the reasoning modes, and every size preset.
Usage (repository root): scripts/results/tables.py [docs/results/summary.json]"""
import glob
import json
import math
import os
import statistics
import sys

rows = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "docs/results/summary.json"))
data = glob.glob(os.path.join("..", "shared", "data", "tinystories", "*.txt"))
data_bytes = sum(os.path.getsize(f) for f in data)


def mean(values):
    return statistics.mean(values) if values else float("nan")


for size in ("1m", "5m"):
    runs = [r for r in rows if r["experiment"] == f"compare-{size}"]
    print(f"\n~{size.upper()}: model | params | steps | tokens | epochs | final val bits/byte | best (step) | final train loss | ACT segments")
    for model in ("hrm", "hrm-no-act", "flat"):
        mine = [r for r in runs if r["model"] == model]
        if not mine:
            continue
        final = [r["val_bits_per_byte"] for r in mine]
        last = mine[0]["evaluations"][-1]
        bytes_per_token = last["loss"] / math.log(2) / last["bits_per_byte"]
        epochs = "-"
        if data_bytes:
            # The validation split (2 % of the documents) holds 57 KB of the 2.52 MB: 2.3 % of the bytes.
            train_tokens = data_bytes * 0.977 / bytes_per_token
            epochs = f"{mine[0]['tokens'] / train_tokens:.1f}"
        print(
            f"{model} | {mine[0]['params']:,} | {mine[0]['steps']:,} | {mine[0]['tokens'] / 1e6:.2f}M | {epochs} | "
            f"{mean(final):.4f} ± {statistics.stdev(final) if len(final) > 1 else 0:.4f} | "
            f"{mean([r['best_val_bits_per_byte'] for r in mine]):.4f} ({mine[0]['best_val_step']:,}) | "
            f"{mean([r['final_train_loss'] for r in mine]):.2f} | {mean([r['mean_act_steps'] for r in mine]):.2f}"
        )
    print(f"\n~{size.upper()} reasoning modes (bits/byte, mean over seeds): fast | normal | deep | extreme | trained + ACT halting")
    for model in ("hrm", "hrm-no-act"):
        mine = [r for r in runs if r["model"] == model and r["modes"]]
        cells = [mean([r["modes"][i]["bits_per_byte"] for r in mine]) for i in range(5)]
        print(f"{model} | " + " | ".join(f"{c:.4f}" for c in cells))

print("\nsizes: preset | params | batch x seq | steps | tokens | tokens/s | peak GPU memory | val loss first -> last | bits/byte | ACT segments | wall")
for r in (r for r in rows if r["experiment"] == "all-sizes"):
    print(
        f"{r['preset']} | {r['params']:,} | {r['batch']} x {r['seq_len']} | {r['steps']} | {r['tokens']:,} | "
        f"{r['tokens_per_s']:,.0f} | {r['peak_gpu_mem_bytes'] / 1e9:.1f} GB | {r['first_val_loss']:.3f} -> {r['val_loss']:.3f} | "
        f"{r['val_bits_per_byte']:.4f} | {r['mean_act_steps']:.2f} | {r['seconds']:.0f} s"
    )
