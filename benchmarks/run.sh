#!/usr/bin/env bash
# Builds the benchmarks in release mode (-O2), runs overhead, scale and herd, and writes
# CSV files, PNG plots and summary.txt (each ratio against its baseline) to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh libbenchmark-dev gnuplot-nox python3
cmake --preset bench >/dev/null
cmake --build --preset bench -j "$(nproc)"
out=benchmarks/results
mkdir -p "$out"
bin=build/bench/benchmarks

echo "--- overhead (Google Benchmark, median of 5 repetitions)"
"$bin/bench_overhead" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/overhead.csv" --benchmark_out_format=csv --benchmark_min_time=0.2
echo "--- coroutine frame of a co_await call"
"$bin/bench_frame_sizes" | tee "$out/frame_sizes.txt"
echo "--- scale"
"$bin/bench_scale" 100000 "$out/scale.csv"
echo "--- herd"
"$bin/bench_herd" "$out"

gnuplot benchmarks/plots.gp
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(g++ --version | head -1)"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  python3 benchmarks/summary.py "$out"
} | tee "$out/summary.txt"
