#!/usr/bin/env bash
# Storm safety, from one command: the virtual-time simulations (benchmarks/storm.cpp: a
# metastable overload and an outage, every policy, 10 seeds), then the real-process scenarios
# (benchmarks/real_storms.sh: the metastable overload with real processes, HAProxy as a rate
# limiter). Writes CSVs, PNG plots and storms_summary.txt (every target: MET or MISS) to
# benchmarks/results/. Usage: storms.sh [seeds]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-10}"
bash scripts/setup.sh libbenchmark-dev gnuplot-nox python3 haproxy
cmake --preset bench >/dev/null
cmake --build --preset bench --target bench_storm real_storms -j "$(nproc)" >/dev/null
out=benchmarks/results
mkdir -p "$out"
./build/bench/benchmarks/bench_storm "$out" "$seeds" | tee "$out/storm_sim.txt"
bash benchmarks/real_storms.sh | tee "$out/storm_real.txt"
gnuplot benchmarks/storms.gp
python3 benchmarks/storm_targets.py "$out" | tee "$out/storms_summary.txt"
