# CDF of device request latency from the stats histograms (latency_cdf.csv, one model per index).
# gnuplot -e "dat='latency_cdf.dat'; out='latency_cdf.png'; models='fixed:200us exp:500us'" latency_cdf.gp
set terminal pngcairo size 900,560 font ",11"
set output out
set title "device request latency CDF (ecdsa-sign, submission to completion)"
set xlabel "latency (µs, bucket upper bound)"
set ylabel "fraction of requests"
set logscale x 10
set grid
set key bottom right
set yrange [0:1.02]
plot for [i=0:words(models)-1] dat index i using 1:2 with steps lw 2 title "latency=".word(models, i+1)
