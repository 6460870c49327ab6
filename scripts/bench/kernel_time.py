#!/usr/bin/env python3
"""Where a GPU program's time goes, from an Nsight Compute per-launch CSV.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv PROGRAM ... > kernels.csv
    python scripts/bench/kernel_time.py kernels.csv --steps 4

Groups every launch by what its kernel does (matmul, attention, element-wise, reduction,
softmax, copy, gather/scatter, other), and prints per group the launches and milliseconds per
step (totals divided by --steps, the number of steps the program ran), then the 15 kernels
that took longest in all. The grouping reads the kernel's name only.
"""

import argparse
import csv
import re
import sys
from collections import defaultdict

GROUPS = [
    ("attention", r"flash|fmha|attention|sdpa|cudnn"),
    ("matmul", r"gemm|cutlass|sm90_xmma|matmul|mma|cublas|nvjet"),
    ("softmax", r"softmax"),
    ("reduction", r"reduce|sum|mean|norm|welford"),
    ("gather/scatter", r"scatter|gather|index|embedding"),
    ("copy/cat", r"copy|cat|contiguous|transpose|permute|fill"),
    ("element-wise", r"elementwise|vectorized|unrolled|pointwise|triton_poi|cast|unary|binary"),
]
UNIT = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3}


def group_of(name):
    lowered = name.lower()
    for group, pattern in GROUPS:
        if re.search(pattern, lowered):
            return group
    return "other"


def launches(path):
    """(kernel name, milliseconds) for each launch in the CSV, skipping ncu's own messages."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        yield row["Kernel Name"], value * UNIT.get(row["Metric Unit"], 1e-6)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("--steps", type=float, default=1.0, help="steps the profiled program ran")
    args = p.parse_args()
    by_group = defaultdict(lambda: [0, 0.0])
    by_kernel = defaultdict(lambda: [0, 0.0])
    for name, ms in launches(args.csv):
        for table, key in ((by_group, group_of(name)), (by_kernel, name)):
            table[key][0] += 1
            table[key][1] += ms
    if not by_group:
        sys.exit(f"{args.csv}: no gpu__time_duration.sum rows")
    total = sum(ms for _, ms in by_group.values())
    print(f"{'group':<16}{'launches/step':>15}{'ms/step':>10}{'share':>8}")
    for group, (count, ms) in sorted(by_group.items(), key=lambda kv: -kv[1][1]):
        print(f"{group:<16}{count / args.steps:>15.0f}{ms / args.steps:>10.2f}{ms / total:>8.1%}")
    print(f"{'total':<16}{sum(c for c, _ in by_group.values()) / args.steps:>15.0f}{total / args.steps:>10.2f}")
    print("\nlongest kernels (all launches): ms/step, launches/step, name")
    for name, (count, ms) in sorted(by_kernel.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"{ms / args.steps:>8.2f} {count / args.steps:>6.0f}  {name[:110]}")


if __name__ == "__main__":
    main()
