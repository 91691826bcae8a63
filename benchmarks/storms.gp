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
set key inside right center
f = "benchmarks/results/storm_goodput.csv"
plot f using 1:2 every ::1 with lines lw 2 title "no retry", \
     f using 1:3 every ::1 with lines lw 2 title "naive: 10 tries, no wait", \
     f using 1:4 every ::1 with lines lw 2 title "stamina 0.1 default", \
     f using 1:5 every ::1 with lines lw 2 title "stamina 0.1 default + retry_budget", \
     f using 1:6 every ::1 with lines lw 3 title "stamina default (default throttle)", \
     f using 1:8 every ::1 with lines lw 1 title "gRPC", \
     f using 1:9 every ::1 with lines lw 1 title "AWS standard"
unset object 1

set output "benchmarks/results/real_metastable_goodput.png"
set title "Real processes (seed 1): load 75/s, capacity 100/s, 30/s from 5 s to 7 s"
set object 2 rect from 5, graph 0 to 7, graph 1 behind
set key inside right center
files = "none naive v0.1 budget default limit"
plot for [p in files] sprintf("< paste -d, benchmarks/results/real/metastable_%s_1_client1.csv benchmarks/results/real/metastable_%s_1_client2.csv", p, p) \
     using 1:($4+$9) with lines lw 2 title p
