#!/usr/bin/env bash
# clang-tidy 14 (checks in .clang-tidy, warnings are errors) over the library sources and the
# translation units that instantiate its templates. Needs a configured preset with
# compile_commands.json (default: ci).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh clang-tidy-14
db="build/${1:-ci}"
files=(src/*.cpp test/async_tests.cpp test/sync_tests.cpp examples/async_tokens.cpp)
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy-14 -p "$db" --quiet
echo "clang-tidy: clean"
