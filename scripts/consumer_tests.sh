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

echo "consumer builds: 4 passed, 0 failed"
