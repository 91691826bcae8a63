#!/usr/bin/env python3
"""Checks the simulation's CSVs against issue 12's targets; the real-process targets are
checked by real_storms_summary.py (its output is in results/real/summary.txt)."""
import csv
import os
import sys

out = sys.argv[1]


def table(name):
    with open(os.path.join(out, name)) as f:
        return {r["policy"]: r for r in csv.DictReader(f)}


meta = table("storm_metastable.csv")
outage = table("storm_outage.csv")
default = "stamina default (default throttle)"
print("simulation targets (virtual time, fixed seeds)")
checks = []
d = meta[default]
checks.append((f"metastable: the default recovers in every seed ({d['recovered_seeds']}/{d['seeds']})",
               d["recovered_seeds"] == d["seeds"]))
n = meta["naive: 10 tries, no wait"]
checks.append((f"metastable: naive recovers in no seed ({n['recovered_seeds']}/{n['seeds']})", n["recovered_seeds"] == "0"))
recovering = {p: float(r["failed_requests"]) for p, r in meta.items() if r["recovered_seeds"] == r["seeds"]}
best = min(recovering.values())
checks.append((f"metastable: among recovering policies the default fails the fewest or within 10 % "
               f"({recovering.get(default, float('nan')):.0f} vs best {best:.0f})", recovering.get(default, 1e18) <= 1.1 * best + 1e-9))
o = outage[default]
checks.append((f"outage: peak offered load <= 2x normal ({float(o['peak_load']):.2f}x)", float(o["peak_load"]) <= 2.0))
checks.append((f"outage: failed requests <= 1 % ({float(o['failed_pct']):.2f} %)", float(o["failed_pct"]) <= 1.0))
for what, ok in checks:
    print(f"  {'MET ' if ok else 'MISS'} {what}")
real = os.path.join(out, "real", "summary.txt")
if os.path.exists(real):
    print()
    print(open(real).read().rstrip())
