#!/usr/bin/env bash
# Builds the demo in release mode and runs it. Arguments are passed to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target demo -j "$(nproc)"
./build/release/examples/demo "$@"
