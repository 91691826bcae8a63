#!/usr/bin/env bash
# Layered retries against real processes on loopback: client -> A -> B -> C, Beast HTTP servers
# (benchmarks/layers.cpp), each started here and stopped by its pid. C is down, then fails half
# the requests, then answers past the client's deadline. Each wiring: "single" (the client calls
# C directly: what one layer alone sends), "naive" (every layer retries on its own), "layered"
# (grpc-timeout down, pushback up). Prints the table against issue 26's targets and writes
# benchmarks/results/layers/ (CSV, summary, plot).
# Usage: layers.sh [--short]   (--short: fewer requests, C down and slow only; for CI)
set -euo pipefail
cd "$(dirname "$0")/.."
short=false
[[ "${1:-}" == "--short" ]] && short=true
if $short; then bash scripts/setup.sh python3 libbenchmark-dev; else bash scripts/setup.sh python3 gnuplot-nox libbenchmark-dev; fi
cmake --preset bench >/dev/null
cmake --build --preset bench --target bench_layers -j "$(nproc)" >/dev/null
bin=build/bench/benchmarks/bench_layers
# The short run (CI) writes to a scratch directory: the committed results stay as they are.
if $short; then out=$(mktemp -d); else out=benchmarks/results/layers; rm -rf "$out" && mkdir -p "$out"; fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits (at most 10 s) until a server listens on port $1.
wait_port() { python3 -c '
import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)' "$1"; }

if $short; then modes="down slow"; requests=20; else modes="down half slow"; requests=60; fi
rate=20
# Servers outlive the client's last request by a few seconds: a naive chain keeps working after
# its caller gave up, which is part of what is measured.
serve=$(( requests / rate + 7 ))
for mode in $modes; do
  timeout_ms=1000
  [ "$mode" = slow ] && timeout_ms=300
  for wiring in single naive layered; do
    tag="${mode}_${wiring}"
    pc=$(free_port); pb=$(free_port); pa=$(free_port)
    w=$wiring; [ "$w" = single ] && w=naive
    "$bin" server "$pc" 0 "$mode" "$w" "$serve" "$out/${tag}_C.csv" & pids+=("$!"); c=$!
    servers=("$c")
    top=$pc
    if [ "$wiring" != single ]; then
      "$bin" server "$pb" "$pc" "$mode" "$w" "$serve" "$out/${tag}_B.csv" & pids+=("$!"); servers+=("$!")
      "$bin" server "$pa" "$pb" "$mode" "$w" "$serve" "$out/${tag}_A.csv" & pids+=("$!"); servers+=("$!")
      top=$pa
    fi
    for p in $pc $pb $pa; do [ "$wiring" = single ] && [ "$p" != "$pc" ] && continue; wait_port "$p"; done
    "$bin" client "$top" "$requests" "$rate" "$w" "$timeout_ms" "$out/${tag}_client.csv"
    for s in "${servers[@]}"; do
      timeout 20 tail --pid="$s" -f /dev/null || kill "$s"
      wait "$s" || true
    done
    echo "  $tag done"
  done
done
python3 benchmarks/layers_summary.py "$out" $modes | tee "$out/summary.txt"
if ! $short && command -v gnuplot >/dev/null; then
  gnuplot -e "data='$out/attempts.dat'; out='$out/layers.png'" benchmarks/layers.gp
fi
