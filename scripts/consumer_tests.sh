#!/usr/bin/env bash
# Uses stamina from another project the four supported ways: installed + find_package,
# add_subdirectory, FetchContent (pointed at this checkout) and pkg-config; then the standalone
# Asio flavour installed + find_package, FetchContent and pkg-config, with Boost hidden. Each
# consumer is built and run; tests and examples must not be built when stamina is not the
# top-level project.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pkg-config git libasio-dev
src=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The README's route first: its two blocks (install, then pkg-config), run as written from a
# directory holding a clone named `stamina` and an app.cpp, with HOME in the scratch directory.
# Its installed tree then serves find_package too.
echo "--- the README: configure, build, install with --prefix after configuring; pkg-config"
mkdir -p "$work/readme/home"
git clone -q "$src" "$work/readme/stamina"
cp test/consumer/main.cpp "$work/readme/app.cpp"
readme_block() {  # the ```sh block after <!-- ci: $1 -->
  awk -v tag="<!-- ci: $1 -->" '$0 == tag {found = 1; next} found && /^```sh/ {inside = 1; next}
    inside && /^```/ {exit} inside {print}' "$src/README.md"
}
for block in install pkg-config; do
  [ -n "$(readme_block "$block")" ] || { echo "README has no '$block' block"; exit 1; }
done
(cd "$work/readme" && HOME="$work/readme/home" PKG_CONFIG_PATH="" \
  bash -euo pipefail -c "$(readme_block install)"$'\n'"$(readme_block pkg-config)"$'\n./app' >/dev/null)
prefix="$work/readme/home/.local"

echo "--- find_package(stamina CONFIG REQUIRED)"
cmake -S test/consumer -B "$work/package" -G Ninja -DCONSUMER_MODE=package -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
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

# Standalone Asio, with Boost hidden from CMake: the installed tree's find_package, and
# FetchContent. No Boost header may reach the consumer's compilation (ninja's recorded deps).
no_boost_headers() {
  if ninja -C "$1" -t deps | grep -q "/boost/"; then
    echo "a Boost header was compiled into the standalone consumer:"; ninja -C "$1" -t deps | grep "/boost/" | head -3
    exit 1
  fi
}
echo "--- standalone Asio: find_package(stamina COMPONENTS stamina_standalone), without Boost"
cmake -S test/consumer_standalone -B "$work/standalone_package" -G Ninja -DCONSUMER_MODE=package \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_Boost=TRUE >/dev/null
cmake --build "$work/standalone_package" >/dev/null
no_boost_headers "$work/standalone_package"
"$work/standalone_package/consumer"

echo "--- standalone Asio: FetchContent, without Boost"
cmake -S test/consumer_standalone -B "$work/standalone_fetch" -G Ninja -DCONSUMER_MODE=fetch \
  -DSTAMINA_SOURCE="$src" -DCMAKE_DISABLE_FIND_PACKAGE_Boost=TRUE >/dev/null
cmake --build "$work/standalone_fetch" >/dev/null
no_boost_headers "$work/standalone_fetch"
"$work/standalone_fetch/consumer"

echo "--- standalone Asio: pkg-config stamina_standalone"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ -o "$work/standalone_pc" test/consumer_standalone/main.cpp \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs stamina_standalone)
"$work/standalone_pc"

echo "consumer builds: 7 passed, 0 failed"
