# TLS handshakes/s per certificate and mode (bench/report.sh handshakes.dat: one block per mode).
# gnuplot -e "dat='handshakes.dat'; out='handshakes.png'" handshakes.gp
set terminal pngcairo size 900,560 font ",11"
set output out
set title "HAProxy nbthread 1: new TLS connections/s"
set ylabel "handshakes/s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top right
set yrange [0:*]
plot for [col=2:*] dat using col:xtic(1) title columnheader
