#!/usr/bin/env bash
# Uses stamina from another project the four supported ways: installed + find_package,
# add_subdirectory, FetchContent (pointed at this checkout) and pkg-config. Each consumer is
# built and run; tests and examples must not be built when stamina is not the top-level project.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pkg-config git
src=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "--- install to a temporary prefix"
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  -DSTAMINA_BUILD_TESTS=OFF -DSTAMINA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$work/build" >/dev/null
cmake --install "$work/build" >/dev/null

echo "--- find_package(stamina CONFIG REQUIRED)"
cmake -S test/consumer -B "$work/package" -G Ninja -DCONSUMER_MODE=package -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/package" >/dev/null
"$work/package/consumer"

echo "--- add_subdirectory"
cmake -S test/consumer -B "$work/subdirectory" -G Ninja -DCONSUMER_MODE=subdirectory -DSTAMINA_SOURCE="$src" >/dev/null
cmake --build "$work/subdirectory" >/dev/null
"$work/subdirectory/consumer"
if [ -e "$work/subdirectory/stamina/test/test_core" ] || grep -q test_core "$work/subdirectory/build.ninja"; then
  echo "tests were built although stamina is not the top-level project"; exit 1
fi

echo "--- FetchContent (this checkout's HEAD)"
cmake -S test/consumer -B "$work/fetch" -G Ninja -DCONSUMER_MODE=fetch -DSTAMINA_SOURCE="$src" >/dev/null
cmake --build "$work/fetch" >/dev/null
"$work/fetch/consumer"

echo "--- pkg-config"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
g++ test/consumer/main.cpp $(pkg-config --cflags --libs stamina) -o "$work/pkgconfig-consumer"
"$work/pkgconfig-consumer"
echo "consumer builds: 4 passed, 0 failed"
