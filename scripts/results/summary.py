#!/usr/bin/env python3
"""Merges the JSON reports of `cargo xtask compare` and `cargo xtask train-all-sizes` into
docs/results/summary.json: one object per run, tagged with its experiment.
Usage: scripts/results/summary.py OUT.json EXPERIMENT=REPORT.json [EXPERIMENT=REPORT.json ...]"""
import json
import sys

rows = []
for arg in sys.argv[2:]:
    experiment, path = arg.split("=", 1)
    for row in json.load(open(path)):
        rows.append({"experiment": experiment, **row})
with open(sys.argv[1], "w") as out:
    json.dump(rows, out, indent=1)
    out.write("\n")
print(f"{len(rows)} runs -> {sys.argv[1]}")
