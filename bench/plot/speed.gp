# openssl speed ops/s against async_jobs for one algorithm.
# gnuplot -e "dat='speed.rsa2048.dat'; out='speed.rsa2048.png'; alg='rsa2048'" speed.gp
set terminal pngcairo size 900,560 font ",11"
set output out
set title sprintf("openssl speed %s: one process with offload vs software", alg)
set xlabel "async\\_jobs"
set ylabel "operations/s"
set logscale x 2
set grid
set key bottom right
set yrange [0:*]
stats dat using 1 nooutput
set xrange [STATS_min / 1.3 : STATS_max * 1.3]
# Columns: async_jobs engine provider software multi2 engine_min engine_max provider_min provider_max
plot dat using 1:2:6:7 with yerrorlines lw 2 pt 7 title "engine (median, bars: range)", \
     dat using 1:3:8:9 with yerrorlines lw 2 pt 5 title "provider", \
     dat using 1:4 with lines dt 2 lw 2 title "software, 1 process", \
     dat using 1:5 with lines dt 3 lw 2 title "software -multi 2"
