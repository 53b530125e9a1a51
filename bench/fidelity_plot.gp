# Measured vs predicted ops/s for bench/fidelity.sh: one point per (latency, jobs), on log-log
# axes; the diagonal is a perfect model, the band +-3%.
# gnuplot -e "csv='bench/out/fidelity.csv'; png='bench/out/fidelity.png'" bench/fidelity_plot.gp
if (!exists("csv")) csv = 'bench/out/fidelity.csv'
if (!exists("png")) png = 'bench/out/fidelity.png'
set terminal pngcairo size 900,640 font ",11"
set output png
set datafile separator ","
set key top left
set logscale xy
set grid
set xlabel "predicted ops/s  (min(J/L, compute bound))"
set ylabel "measured ops/s  (openssl speed -elapsed, ECDSA P-256 sign)"
set title "simaccel timing model: measured vs predicted"
set xrange [100:*]
set yrange [100:*]
plot x with lines lw 2 lc rgb "black" title "model", \
     x*1.03 with lines dt 2 lc rgb "gray" title "+-3%", \
     x*0.97 with lines dt 2 lc rgb "gray" notitle, \
     csv every ::1 using 6:(stringcolumn(1) eq "200us" ? $3 : 1/0):(sprintf("J=%d", $2)) with labels point pt 7 ps 1.5 lc rgb "#1f77b4" offset 1,-0.8 title "L = 200us", \
     csv every ::1 using 6:(stringcolumn(1) eq "1ms" ? $3 : 1/0):(sprintf("J=%d", $2)) with labels point pt 5 ps 1.5 lc rgb "#d62728" offset 1,-0.8 title "L = 1ms", \
     csv every ::1 using 6:(stringcolumn(1) eq "5ms" ? $3 : 1/0):(sprintf("J=%d", $2)) with labels point pt 9 ps 1.5 lc rgb "#2ca02c" offset 1,-0.8 title "L = 5ms"
