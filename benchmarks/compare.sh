#!/usr/bin/env bash
# Before/after on the same machine and in the same minutes: builds bench_overhead at REV (a git
# revision, default HEAD~1) and at the working tree, runs them alternately ROUNDS times (default
# 7) and prints, per case, the median time and the median of the per-round ratios against the
# hand-written baseline of the same binary and round. The machine is shared and noisy; ratios
# taken within one run are steadier than times, and alternating spreads the noise over both.
# Usage: bash benchmarks/compare.sh [REV [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-HEAD~1}"
rounds="${2:-7}"
bash scripts/setup.sh libbenchmark-dev python3
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/old" "$rev"
for tree in "$work/old" .; do
  (cd "$tree" && cmake --preset bench >/dev/null && cmake --build --preset bench -j "$(nproc)" --target bench_overhead >/dev/null)
done
filter="sync|callback|awaitable|token|retry_path"
run() {  # which round
  local bin="$work/old/build/bench/benchmarks/bench_overhead"
  [ "$1" = new ] && bin=build/bench/benchmarks/bench_overhead
  "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.2 --benchmark_format=csv 2>/dev/null >"$work/$1_$2.csv"
}
# The binary that runs second in a round was measured up to 30 % slower (both ways round), so
# the order alternates: old first in odd rounds, new first in even ones.
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then run old "$r"; run new "$r"; else run new "$r"; run old "$r"; fi
done
python3 - "$work" "$rounds" "$rev" <<'PY'
import csv, statistics, sys
work, rounds, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pairs = [("sync success, default policy (45 s deadline)", "sync_stamina_retry", "sync_hand_written_loop"),
         ("sync success, no deadline", "sync_stamina_retry_no_timeout", "sync_hand_written_loop"),
         ("co_await, awaitable op", "async_awaitable_stamina", "async_awaitable_hand_written_loop"),
         ("co_await, token op", "async_token_stamina", "async_token_hand_written_loop"),
         ("callback, token op", "callback_stamina", "callback_direct"),
         ("retry path, zero waits", "async_retry_path_stamina", "async_retry_path_hand_written_loop")]
def load(kind):
    return [{r["name"]: float(r["real_time"]) for r in csv.DictReader(open(f"{work}/{kind}_{i}.csv"))}
            for i in range(1, rounds + 1)]
runs = {k: load(k) for k in ("old", "new")}
print(f"median of {rounds} alternating rounds; ratio = stamina / hand-written baseline, same binary and round")
print(f"  {'case':46} {rev[:12]:>12} {'ratio':>7} | {'working tree':>12} {'ratio':>7}")
for label, ours, base in pairs:
    cols = [(statistics.median(x[ours] for x in runs[k]), statistics.median(x[ours] / x[base] for x in runs[k]))
            for k in ("old", "new")]
    print(f"  {label:46} {cols[0][0]:9.1f} ns {cols[0][1]:6.2f}x | {cols[1][0]:9.1f} ns {cols[1][1]:6.2f}x")
PY
