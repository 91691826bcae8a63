# Attempts reaching C per top-level request, per scenario and wiring (benchmarks/layers.sh).
set terminal pngcairo size 900,420
set output out
set style data histogram
set style fill solid 0.8
set boxwidth 0.8
set ylabel "attempts at C per request"
set xtics rotate by -30
set grid ytics
unset key
plot data using 2:xtic(1)
