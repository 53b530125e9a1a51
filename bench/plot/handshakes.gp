# TLS handshakes/s per certificate and mode, median of the rounds with their range.
# handshakes.dat (prepare.py handshakes): "cert" then per mode three columns: median, min, max.
# gnuplot -e "dat='handshakes.dat'; out='handshakes.png'; modes=3" handshakes.gp
set terminal pngcairo size 900,560 font ",11"
set output out
set title "HAProxy nbthread 1: new TLS connections/s (median of the rounds, bars: range)"
set ylabel "handshakes/s"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
set yrange [0:*]
plot for [i=0:modes-1] dat using (column(2 + 3 * i)):(column(3 + 3 * i)):(column(4 + 3 * i)):xtic(1) \
    title columnheader(2 + 3 * i)
