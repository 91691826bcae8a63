#!/usr/bin/env bash
# Hedging against a real loopback backend (benchmarks/hedging.cpp): an Asio server whose service
# time is 1 ms for 98 % of requests and 100 ms for 2 % (drawn per request), started here and
# stopped by its pid. Each strategy makes the same number of calls at the same concurrency;
# then an overload profile (every request takes 100 ms) shows what the hedge budget bounds, and
# one caller at a time on 1 ms requests compares async_hedge's success path with async_retry's.
# Writes benchmarks/results/hedging.csv and prints the table with the targets.
# Usage: benchmarks/hedging.sh [--short]   (--short: fewer calls)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=20000
overload_calls=2000
fast_calls=3000
[[ "${1:-}" == "--short" ]] && { calls=4000; overload_calls=600; fast_calls=500; }
bash scripts/setup.sh python3 libbenchmark-dev
cmake --preset bench >/dev/null
cmake --build --preset bench --target bench_hedging -j "$(nproc)" >/dev/null
bin=build/bench/benchmarks/bench_hedging
out=benchmarks/results/hedging.csv
mkdir -p benchmarks/results

server=""
cleanup() { [[ -n "$server" ]] && for strategy in async-retry idle-hedge async-retry idle-hedge; do
  timeout 300 "$bin" client "$port" "$strategy" fast "$fast_calls" 1 >> "$out"
  echo "  success path, $strategy done"
done
kill "$server" 2>/dev/null || true; }
trap cleanup EXIT
coproc SERVER { exec "$bin" server; }
server=$SERVER_PID
read -r port <&"${SERVER[0]}"
echo "server pid $server on 127.0.0.1:$port"

"$bin" header > "$out"
for strategy in none constant adaptive-p95 adaptive-p98 naive; do
  timeout 300 "$bin" client "$port" "$strategy" tail "$calls" 16 >> "$out"
  echo "  heavy tail, $strategy done"
done
for strategy in none unbudgeted-constant constant adaptive-p95 naive; do
  timeout 300 "$bin" client "$port" "$strategy" overload "$overload_calls" 32 >> "$out"
  echo "  overload, $strategy done"
done
for strategy in async-retry idle-hedge async-retry idle-hedge; do
  timeout 300 "$bin" client "$port" "$strategy" fast "$fast_calls" 1 >> "$out"
  echo "  success path, $strategy done"
done
kill "$server"
wait "$server" 2>/dev/null || true
server=""
python3 benchmarks/hedging_summary.py "$out"
