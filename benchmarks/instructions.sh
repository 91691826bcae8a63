#!/usr/bin/env bash
# Instructions executed per call (callgrind), before/after: builds benchmarks/instructions.cpp
# against the library at REV (a git revision, default HEAD~1) and against the working tree, and
# prints per case the instructions per call and the ratio to the hand-written baseline of the same
# build. Exact and repeatable where the times of compare.sh move by several per cent with code
# layout alone; not a time (a cache miss or a mispredicted branch costs many instructions' worth).
# Usage: bash benchmarks/instructions.sh [REV]
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-HEAD~1}"
bash scripts/setup.sh valgrind libbenchmark-dev python3
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/old" "$rev"
for tree in "$work/old" .; do
  (cd "$tree" && cmake --preset bench >/dev/null && cmake --build --preset bench -j "$(nproc)" --target stamina >/dev/null)
done
# The same driver source for both: only API that REV has too.
g++ -I"$work/old/include" -O2 -DNDEBUG -std=gnu++20 -o "$work/old.bin" benchmarks/instructions.cpp \
  "$work/old/build/bench/libstamina.a" -pthread
g++ -Iinclude -O2 -DNDEBUG -std=gnu++20 -o "$work/new.bin" benchmarks/instructions.cpp build/bench/libstamina.a -pthread
per_call() {  # binary case: the difference of two runs, so that start-up does not count
  local a b
  a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" 2000 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" 12000 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  echo $(((b - a) / 10000))
}
for c in sync_hand_written sync_default sync_no_deadline awaitable_hand_written awaitable_wrapped awaitable_stamina \
  token_hand_written token_wrapped token_stamina callback_direct callback_composed callback_stamina retry_hand_written \
  retry_wrapped retry_stamina; do
  echo "$c $(per_call "$work/old.bin" "$c") $(per_call "$work/new.bin" "$c")"
done >"$work/counts"
python3 - "$work/counts" "$rev" <<'PY'
import sys
counts = {c: (int(o), int(n)) for c, o, n in (l.split() for l in open(sys.argv[1]))}
rev = sys.argv[2]
pairs = [("sync success, default policy (45 s deadline)", "sync_default", "sync_hand_written"),
         ("sync success, no deadline", "sync_no_deadline", "sync_hand_written"),
         ("co_await, awaitable op", "awaitable_stamina", "awaitable_hand_written"),
         ("co_await, token op", "token_stamina", "token_hand_written"),
         ("callback, token op", "callback_stamina", "callback_direct"),
         ("retry path, zero waits", "retry_stamina", "retry_hand_written")]
print("instructions per call (callgrind); ratio = stamina / hand-written baseline, same build")
print(f"  {'case':46} {rev[:12]:>12} {'ratio':>6} | {'working tree':>12} {'ratio':>6} | change")
for label, ours, base in pairs:
    (o, n), (bo, bn) = counts[ours], counts[base]
    print(f"  {label:46} {o:12d} {o / bo:5.2f}x | {n:12d} {n / bn:5.2f}x | {100 * (n - o) / o:+5.1f} %")
floors = [("co_await, awaitable op", "awaitable_stamina", "awaitable_wrapped", "awaitable_hand_written"),
          ("co_await, token op", "token_stamina", "token_wrapped", "token_hand_written"),
          ("callback, token op", "callback_stamina", "callback_composed", "callback_direct"),
          ("retry path, zero waits", "retry_stamina", "retry_wrapped", "retry_hand_written")]
print("floors (working tree): the same hand-written loop as a coroutine (or composed operation) of its own, "
      "called per call")
print(f"  {'case':46} {'baseline':>9} {'floor':>13} {'stamina':>8} {'above the floor':>16}")
for label, ours, floor, base in floors:
    b, f, n = counts[base][1], counts[floor][1], counts[ours][1]
    print(f"  {label:46} {b:9d} {f:6d} {f / b:5.2f}x {n:8d} {n - f:+9d} ({n / f:.2f}x)")
PY
