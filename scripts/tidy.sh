#!/usr/bin/env bash
# clang-tidy 14 (checks in .clang-tidy, warnings are errors) over the library sources and one
# translation unit that instantiates every driver (test/instantiate_drivers.cpp). Needs a
# configured preset with compile_commands.json (default: ci).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh clang-tidy-14
db="build/${1:-ci}"
files=(test/instantiate_drivers.cpp src/*.cpp)
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy-14 -p "$db" --quiet
echo "clang-tidy: clean"
