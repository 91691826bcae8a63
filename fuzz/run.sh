#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 60) from a copy of its seed
# corpus; exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/setup.sh clang-14 libclang-rt-14-dev
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in backoff retry_after layer_headers; do
  mkdir -p "$work/$target"
  cp fuzz/corpus/$target/* "$work/$target/"
  echo "--- fuzz_$target for ${seconds}s"
  status=0
  ./build/fuzz/fuzz/fuzz_$target -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/$target" >"$work/$target.log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added|INFO: seed corpus)" "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz_$target found a problem (exit $status):"
    grep -E -A15 "ERROR|SUMMARY|invariant|runtime error" "$work/$target.log" | head -60
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null || true
    exit 1
  fi
done
echo "fuzzing: no findings"
