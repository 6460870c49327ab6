#!/usr/bin/env python3
"""Communication cost of data-parallel training per size preset: the gradient all-reduce of one
optimiser step against the step's measured compute time, for 2, 4 and 8 GPUs and two links.

Reads parameter counts from docs/results/summary.json (the train-all-sizes rows) and one-GPU
step times from docs/benchmarks/gpu-train.json (cuda bf16 HRM rows, batch 32 x 512). A ring
all-reduce of G bytes over n GPUs moves 2(n-1)/n * G bytes through each GPU's link; with no
overlap of communication and backward, the scaling efficiency is t_step / (t_step + t_comm),
given for hrm's measured step and for the same step at torch.compile's speed.

hrm averages gradients with burn's local collective, whose default is a tree of arity 2:
groups of three reduce into their first device, level by level, then the result goes back
down the same tree; a parent takes its children's gradients one after another through its
own link, so a level costs (largest group - 1) x G each way. `--algorithm tree` (default)
counts that; `--algorithm ring` the bandwidth-optimal ring (what NCCL's all-reduce does).
Usage: scripts/bench/comm_cost.py [--algorithm tree|ring] [--grad-bytes 4] [--links nvlink=400,pcie=25]  (GB/s)"""
import argparse
import json

parser = argparse.ArgumentParser()
parser.add_argument("--grad-bytes", type=int, default=4, help="bytes per gradient value (f32: 4, bf16: 2)")
parser.add_argument("--algorithm", choices=["tree", "ring"], default="tree", help="all-reduce algorithm")
parser.add_argument("--links", default="nvlink=400,pcie=25", help="name=GB/s of achievable all-reduce bandwidth")
args = parser.parse_args()
links = [(name, float(gbps)) for name, gbps in (l.split("=") for l in args.links.split(","))]



def tree_levels(n, arity=2):
    """Gradients a parent takes in, summed over the levels of burn's reduce tree on n devices."""
    devices, total = list(range(n)), 0
    while len(devices) > 1:
        groups = [devices[i : i + arity + 1] for i in range(0, len(devices), arity + 1)]
        total += max(len(g) - 1 for g in groups)
        devices = [g[0] for g in groups]
    return total


def bytes_through_link(n, grad):
    if args.algorithm == "ring":
        return 2 * (n - 1) / n * grad
    return 2 * tree_levels(n) * grad


params = {r["preset"]: r["params"] for r in json.load(open("docs/results/summary.json")) if r["experiment"] == "all-sizes"}
rows = [
    r
    for r in json.load(open("docs/benchmarks/gpu-train.json"))
    if r["backend"] == "cuda" and r["dtype"] == "bf16" and r["model"] == "hrm"
]
steps = {r["preset"]: r["batch"] * r["seq_len"] / r["tokens_per_s"] for r in rows}
# The same step at torch.compile's speed: where scaling would stand once hrm is as fast.
fast_steps = {r["preset"]: r["batch"] * r["seq_len"] / r["torch_compile_bf16_tokens_per_s"] for r in rows}
header = "| preset | parameters | gradient | step (1 GPU): hrm / torch.compile |"
rule = "|---|---:|---:|---:|"
for name, _ in links:
    for n in (2, 4, 8):
        header += f" {name} {n} GPUs |"
        rule += "---:|"
print(header)
print(rule)
for preset, p in params.items():
    grad = p * args.grad_bytes
    step, fast = steps.get(preset), fast_steps.get(preset)
    times = f"{step * 1e3:.0f} / {fast * 1e3:.0f} ms" if step else "-"
    row = f"| {preset} | {p:,} | {grad / 1e9:.2f} GB | {times} |"
    for _, gbps in links:
        for n in (2, 4, 8):
            comm = bytes_through_link(n, grad) / (gbps * 1e9)
            cell = f"{comm * 1e3:.1f} ms"
            if step:
                cell += f" ({step / (step + comm):.0%} / {fast / (fast + comm):.0%})"
            row += f" {cell} |"
    print(row)
