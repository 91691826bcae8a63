#!/usr/bin/env bash
# Retry storms against real processes on loopback, each started here and stopped by its pid:
#  1. metastable overload: benchmarks/real_storms (a FIFO UDP server, capacity 100/s, 30/s for
#     2 s) and two client processes at 37.5 requests/s each (75 % of capacity), attempts
#     limited to 0.5 s; one run per policy and seed ("limit": the defaults and a concurrency_limit
#     per client process);
#  1b. sustained overload: the same server and clients, capacity 37.5/s for 10 s (2x overload);
#  2. rate limiter: HAProxy (Debian's) limits to 20 accepted requests per second and answers
#     429 with Retry-After: 1; 200 clients each need one success;
#  3. random failures with capacity to spare: a UDP server answering in 2 ms, failing 30, 50, 70
#     or 90 % of attempts at random; 50 requests/s for 10 s with the defaults scaled down in time,
#     with the default throttle, without it, and with one attempt (the policies side by side, each
#     against its own server).
# Writes CSVs and summary to benchmarks/results/real/ and prints the table against the targets.
# Usage: real_storms.sh [--short]   (--short: naive, default and limit only, one seed, shorter runs,
# random failures at 50 and 70 % with the default only; for CI)
set -euo pipefail
cd "$(dirname "$0")/.."
short=false
[[ "${1:-}" == "--short" ]] && short=true
bash scripts/setup.sh haproxy python3 libbenchmark-dev
cmake --preset bench >/dev/null
cmake --build --preset bench --target real_storms -j "$(nproc)" >/dev/null
bin=build/bench/benchmarks/real_storms
out=benchmarks/results/real
rm -rf "$out" && mkdir -p "$out"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if $short; then policies="naive default limit"; seeds="1"; run=12; else policies="none naive v0.1 budget default limit"; seeds="1 2 3 4"; run=20; fi
echo "--- metastable overload: $run s per run, dip at 5 s for 2 s"
for policy in $policies; do
  for seed in $seeds; do
    port=$(free_port)
    tag="metastable_${policy}_${seed}"
    "$bin" metastable-server "$port" 100 5 2 30 "$run" "$out/${tag}_server.csv" & server=$!; pids+=("$server")
    sleep 0.2
    "$bin" metastable-client "$port" 37.5 "$run" "$policy" "$((seed * 2))" "$out/${tag}_client1.csv" & c1=$!; pids+=("$c1")
    "$bin" metastable-client "$port" 37.5 "$run" "$policy" "$((seed * 2 + 1))" "$out/${tag}_client2.csv" & c2=$!; pids+=("$c2")
    wait "$c1" "$c2"
    timeout 10 tail --pid="$server" -f /dev/null || kill "$server"
    wait "$server" || true
    echo "  $tag done"
  done
done

echo "--- sustained overload: capacity 37.5/s for 10 s from 2 s (75 requests/s: 2x)"
if $short; then overload_policies="limit"; overload_seeds="1"; else overload_policies="default limit"; overload_seeds="1 2 3"; fi
for policy in $overload_policies; do
  for seed in $overload_seeds; do
    port=$(free_port)
    tag="overload_${policy}_${seed}"
    "$bin" metastable-server "$port" 100 2 10 37.5 15 "$out/${tag}_server.csv" & server=$!; pids+=("$server")
    sleep 0.2
    "$bin" metastable-client "$port" 37.5 15 "$policy" "$((seed * 2))" "$out/${tag}_client1.csv" & c1=$!; pids+=("$c1")
    "$bin" metastable-client "$port" 37.5 15 "$policy" "$((seed * 2 + 1))" "$out/${tag}_client2.csv" & c2=$!; pids+=("$c2")
    wait "$c1" "$c2"
    timeout 10 tail --pid="$server" -f /dev/null || kill "$server"
    wait "$server" || true
    echo "  $tag done"
  done
done

echo "--- rate limiter: HAProxy, 20 accepted requests/s, 429 + Retry-After: 1; 200 clients"
if $short; then rl_policies="default"; else rl_policies="v0.1 spread default"; fi
for policy in $rl_policies; do
  port=$(free_port)
  cat > "$out/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend limiter
  bind 127.0.0.1:$port
  # One shared counter of *accepted* requests per second: rejected ones do not count.
  stick-table type integer size 1 expire 60s store gpc0_rate(1s)
  http-request track-sc0 int(1)
  http-request return status 429 content-type text/plain string "slow down" hdr Retry-After 1 if { sc_gpc0_rate(0) ge 20 }
  http-request sc-inc-gpc0(0)
  http-request return status 200 content-type text/plain string "ok"
CFG
  haproxy -f "$out/haproxy.cfg" -db >"$out/haproxy_$policy.log" 2>&1 & hp=$!; pids+=("$hp")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  sleep 1.2  # a quiet second, so the limiter's counter starts from zero
  timeout 120 "$bin" ratelimit-client "$port" 200 "$policy" "$out/ratelimit_$policy.csv"
  kill "$hp"; wait "$hp" 2>/dev/null || true
  echo "  ratelimit $policy done"
done

echo "--- random failures, capacity to spare: 50 requests/s for 10 s, answers in 2 ms"
if $short; then failing="0.5 0.7"; random_policies="default"; else failing="0.3 0.5 0.7 0.9"; random_policies="default off none"; fi
for p in $failing; do
  run=()
  for policy in $random_policies; do
    port=$(free_port)
    "$bin" random-server "$port" "$p" 14.5 & server=$!; pids+=("$server"); run+=("$server")
    sleep 0.1
    "$bin" random-client "$port" 50 10 "$policy" 7 "$out/random_${p}_${policy}.csv" & client=$!; pids+=("$client"); run+=("$client")
  done
  wait "${run[@]}"
  echo "  random failures $p done"
done

python3 benchmarks/real_storms_summary.py "$out" | tee "$out/summary.txt"
