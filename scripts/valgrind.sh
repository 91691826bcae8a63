#!/usr/bin/env bash
# Runs the unit-test executables under valgrind memcheck: zero errors and zero leaks required.
# Usage: scripts/valgrind.sh [preset]   (default: ci; the preset must already be built)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh valgrind
dir="build/${1:-ci}/test"
for t in test_core test_async test_cancellation test_scenarios test_audit test_stress; do
  echo "--- valgrind $t"
  valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --quiet "$dir/$t" --report_level=short
done
