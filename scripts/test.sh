#!/usr/bin/env bash
# Builds stamina with a CMake preset and runs every test and example with ctest.
# Usage: scripts/test.sh [preset]   (default: ci = debug build, warnings are errors)
# Other presets: dev, release, asan (ASan+UBSan), tsan.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-ci}"
# promtool checks the metrics text; spdlog for its adapter; redis-server for the outage test
bash scripts/setup.sh prometheus libspdlog-dev redis-server
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
