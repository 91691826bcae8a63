#!/usr/bin/env bash
# clang-tidy 14 (checks in .clang-tidy, warnings are errors) over the library sources and one
# translation unit that instantiates every driver (test/instantiate_drivers.cpp). Needs a
# configured preset with compile_commands.json (default: ci).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh clang-tidy-14
# The Boost.Asio flavour's entries: the sources are compiled once per flavour (the same code;
# the standalone flavour is compiled with -Werror by its own preset).
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
python3 - "build/${1:-ci}/compile_commands.json" "$db/compile_commands.json" <<'PY'
import json, sys
entries = [e for e in json.load(open(sys.argv[1])) if "stamina_standalone.dir" not in e.get("output", e["command"])]
json.dump(entries, open(sys.argv[2], "w"))
PY
files=(test/instantiate_drivers.cpp src/*.cpp)
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy-14 -p "$db" --quiet
echo "clang-tidy: clean"
