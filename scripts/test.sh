#!/usr/bin/env bash
# Builds stamina with a CMake preset and runs its tests and examples with ctest.
# Usage: scripts/test.sh [preset [ctest arguments...]]   (default: ci = debug build under ASan+UBSan, warnings
# are errors, every test and example). Other presets: dev, release, clang, asan (ASan+UBSan),
# tsan, standalone (the suite against standalone Asio, g++ under TSan). With ctest arguments,
# only the executables those tests need are built, e.g.
#   scripts/test.sh asan -L unit      the unit-test executables under ASan+UBSan
# With --build-only first, builds what the tests need and runs nothing (CI builds ahead that way).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
if [ "${1:-}" = "--build-only" ]; then build_only=true; shift; fi
preset="${1:-ci}"
[ $# -gt 0 ] && shift
# promtool checks the metrics text; spdlog for its adapter; redis-server for the outage test
bash scripts/setup.sh prometheus libspdlog-dev redis-server libasio-dev
# The test suites share a precompiled header; ccache caches such compilations only with these.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake --preset "$preset" >/dev/null
if [ $# -gt 0 ]; then
  # The executables of the selected tests (ctest names them after their targets).
  mapfile -t targets < <(ctest --preset "$preset" -N "$@" | sed -n 's/^ *Test *#[0-9]*: \(\(test\|example\)_[a-z_]*\)$/\1/p' |
    grep -Fx -f <(ninja -C "build/$preset" -t targets all | sed 's/:.*//'))
  cmake --build --preset "$preset" -j "$(nproc)" --target "${targets[@]}"
else
  cmake --build --preset "$preset" -j "$(nproc)"
fi
$build_only || ctest --preset "$preset" -j "$(nproc)" "$@"
