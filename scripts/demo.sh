#!/usr/bin/env bash
# Builds the demo in release mode and runs it; arguments go to the demo (e.g. --naive). It
# writes the goodput per second to build/release/demo.csv and plots it to
# build/release/demo.png (gnuplot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh gnuplot-nox
cmake --preset release >/dev/null
cmake --build --preset release --target demo -j "$(nproc)"
./build/release/examples/demo --csv build/release/demo.csv "$@"
gnuplot -e "set terminal pngcairo size 900,420; set output 'build/release/demo.png'; set datafile separator ',';
  set key top left; set xlabel 'second'; set ylabel 'per second'; set object 1 rect from 4,0 to 6,graph 1 fc rgb '#eeeeee' behind;
  plot 'build/release/demo.csv' using 1:4 with lines lw 2 title 'successes', '' using 1:2 with lines dt 2 title 'arrivals',
  '' using 1:3 with lines title 'attempts'" && echo "plot: build/release/demo.png"
