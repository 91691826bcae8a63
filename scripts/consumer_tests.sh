#!/usr/bin/env bash
# Uses stamina from another project the four supported ways: the Boost flavour installed +
# find_package, add_subdirectory and pkg-config (the README's blocks); the standalone Asio flavour,
# with Boost hidden, installed + find_package, FetchContent (pointed at this checkout) and
# pkg-config; and both flavours linked into one program. Each consumer is built and run; tests and examples must not be built when stamina
# is not the top-level project.
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

# consumer NAME MODE FLAVOUR [cmake arguments...]: configures test/consumer, builds and runs it.
consumer() {
  local name=$1 mode=$2 flavour=$3
  shift 3
  cmake -S test/consumer -B "$work/$name" -G Ninja -DCONSUMER_MODE="$mode" -DCONSUMER_FLAVOUR="$flavour" "$@" >/dev/null
  cmake --build "$work/$name" --target consumer >/dev/null  # not the other flavour's library
  "$work/$name/consumer"
}
# Standalone Asio, with Boost hidden from CMake: no Boost header may reach the consumer's
# compilation (ninja's recorded dependencies).
no_boost_headers() {
  if ninja -C "$work/$1" -t deps | grep -q "/boost/"; then
    echo "a Boost header was compiled into the standalone consumer:"; ninja -C "$work/$1" -t deps | grep "/boost/" | head -3
    exit 1
  fi
}

# Tests and examples must not be built when stamina is not the top-level project.
no_tests() {
  if grep -q -e test_core -e example_ "$work/$1/build.ninja"; then
    echo "tests or examples were built although stamina is not the top-level project"; exit 1
  fi
}

echo "--- find_package(stamina CONFIG REQUIRED)"
consumer package package boost -DCMAKE_PREFIX_PATH="$prefix"

echo "--- both flavours in one program (find_package with both components)"
consumer both package both -DCMAKE_PREFIX_PATH="$prefix"

echo "--- add_subdirectory"
consumer subdirectory subdirectory boost -DSTAMINA_SOURCE="$src"
no_tests subdirectory

echo "--- standalone Asio: find_package(stamina COMPONENTS stamina_standalone), without Boost"
consumer standalone_package package standalone -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_Boost=TRUE
no_boost_headers standalone_package

# FetchContent (a clone of this checkout's HEAD, then add_subdirectory) once, with this flavour:
# add_subdirectory is checked with the Boost flavour above.
echo "--- standalone Asio: FetchContent, without Boost"
consumer standalone_fetch fetch standalone -DSTAMINA_SOURCE="$src" -DCMAKE_DISABLE_FIND_PACKAGE_Boost=TRUE
no_boost_headers standalone_fetch
no_tests standalone_fetch

echo "--- standalone Asio: pkg-config stamina_standalone"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ -o "$work/standalone_pc" test/consumer/standalone_main.cpp \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs stamina_standalone)
"$work/standalone_pc"

echo "consumer builds: 7 passed, 0 failed"
