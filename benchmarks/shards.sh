#!/usr/bin/env bash
# Three shards, one down: three TCP shard servers on loopback (benchmarks/real_storms
# shard-server, started here and stopped by pid); a client sends 150 requests/s round robin for
# 20 s, one async_retry call per request with a policy per shard (the defaults scaled down in
# time, attempts limited to 0.5 s). Shard 3 is killed 5 s in and started again 10 s later. Run
# with a circuit breaker per shard (circuit_breakers) and with the defaults (adaptive throttle).
# Writes benchmarks/results/shards/*.csv and prints the targets: healthy shards >= 99.9 %
# successful with unchanged latency, the down shard failing fast (p99 <= 1 ms) while its breaker
# is open, and used again within 2 s of its return.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh python3 libbenchmark-dev
cmake --preset bench >/dev/null
cmake --build --preset bench --target real_storms -j "$(nproc)" >/dev/null
bin=build/bench/benchmarks/real_storms
out=benchmarks/results/shards
rm -rf "$out" && mkdir -p "$out"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listening() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.02; done; }

for policy in breaker default; do
  ports=()
  servers=()
  for _ in 1 2 3; do
    port=$(free_port)
    "$bin" shard-server "$port" 30 & servers+=($!); pids+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do wait_listening "$port"; done
  "$bin" shard-client "${ports[0]},${ports[1]},${ports[2]}" 150 20 "$policy" "$out/$policy.csv" & client=$!; pids+=("$client")
  sleep 5
  kill "${servers[2]}"; wait "${servers[2]}" 2>/dev/null || true  # shard 3 goes down ...
  sleep 10
  "$bin" shard-server "${ports[2]}" 15 & pids+=($!)                  # ... and comes back
  wait "$client"
  for s in "${servers[@]:0:2}"; do kill "$s" 2>/dev/null || true; done
  echo "  shards $policy done"
done

python3 - "$out" <<'PY'
import csv, sys, pathlib
out = pathlib.Path(sys.argv[1])
def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else float("nan")
def verdict(ok):
    return "MET " if ok else "MISS"
lines = []
for policy in ("breaker", "default"):
    rows = [(int(r["shard"]), float(r["start_s"]), float(r["latency_ms"]), r["ok"] == "1")
            for r in csv.DictReader((out / f"{policy}.csv").open())]
    # The client starts a moment after this script's clock; times are the client's own.
    t0 = min(r[1] for r in rows)
    healthy = [r for r in rows if r[0] != 2]
    ok_share = 100.0 * sum(r[3] for r in healthy) / len(healthy)
    before = p99([r[2] for r in healthy if r[1] - t0 < 4.5])
    during = p99([r[2] for r in healthy if 5.5 <= r[1] - t0 < 14.5])
    down = [r for r in rows if r[0] == 2 and 6.0 <= r[1] - t0 < 14.5]
    down_p99 = p99([r[2] for r in down])
    back = [r[1] - t0 for r in rows if r[0] == 2 and r[3] and r[1] - t0 >= 15.0]
    reuse = (min(back) - 15.0) if back else float("inf")
    lines.append(f"{policy:8} healthy shards {ok_share:6.2f} % ok, latency p99 {before:.2f} ms before / {during:.2f} ms during; "
                 f"down shard p99 {down_p99:.2f} ms ({sum(not r[3] for r in down)} of {len(down)} failed); "
                 f"used again {reuse:.2f} s after its return")
    if policy == "breaker":
        lines.append(f"  {verdict(ok_share >= 99.9)} healthy shards >= 99.9 % successful ({ok_share:.2f} %)")
        lines.append(f"  {verdict(during <= 1.1 * before + 0.5)} healthy shards' latency unchanged "
                     f"(p99 {before:.2f} -> {during:.2f} ms)")
        lines.append(f"  {verdict(down_p99 <= 1.0)} the down shard fails fast while its breaker is open (p99 {down_p99:.2f} ms)")
        lines.append(f"  {verdict(reuse <= 2.0)} the shard is used again within 2 s of its return ({reuse:.2f} s)")
text = "\n".join(lines)
print(text)
(out / "summary.txt").write_text(text + "\n")
PY
