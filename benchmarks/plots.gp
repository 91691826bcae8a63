# gnuplot script (run from the repository root): the herd study's work and completion time.
set datafile separator ","
set terminal pngcairo size 1100,600 noenhanced
set key outside right top
set grid
set xlabel "clients"
set logscale y
set key autotitle columnhead
columns = 10

set output "benchmarks/results/herd_calls.png"
set title "Contention: total calls until every client won its write (mean of 100 runs)"
set ylabel "calls"
plot for [i=2:columns] "benchmarks/results/herd_calls_wide.csv" using 1:i with linespoints

set output "benchmarks/results/herd_time.png"
set title "Contention: time until the last client is done (mean of 100 runs)"
set ylabel "ms"
plot for [i=2:columns] "benchmarks/results/herd_time_wide.csv" using 1:i with linespoints
