# gnuplot script (run from the repository root): goodput over time in the storm scenarios.
set datafile separator ","
set terminal pngcairo size 1100,600 noenhanced
set key outside right top
set grid
set xlabel "second"
set ylabel "successes per second"
set style rect fc rgb "#eeeeee" fs solid noborder

set output "benchmarks/results/storm_goodput.png"
set title "Simulated metastable overload (seed 1): load 75/s, capacity 100/s, 30/s from 10 s to 12 s"
set object 1 rect from 10, graph 0 to 12, graph 1 behind
set key autotitle columnhead
plot for [i=2:10] "benchmarks/results/storm_goodput.csv" using 1:i with lines lw 2
unset object 1

set output "benchmarks/results/real_metastable_goodput.png"
set title "Real processes (seed 1): load 75/s, capacity 100/s, 30/s from 5 s to 7 s"
set object 2 rect from 5, graph 0 to 7, graph 1 behind
files = "none naive v0.1 budget default"
plot for [p in files] sprintf("< paste -d, benchmarks/results/real/metastable_%s_1_client1.csv benchmarks/results/real/metastable_%s_1_client2.csv", p, p) \
     using 1:($4+$9) with lines lw 2 title p
