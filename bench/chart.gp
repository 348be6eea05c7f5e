# chart.gp: requests/s against concurrency, each case of bench/run.sh beside the ceiling.
# Called by bench/run.sh with: datafile, outfile, ncols (columns of datafile), subtitle.
# datafile: a header line (concurrency ceiling case...), then one line per concurrency.
set terminal pngcairo size 1000,640 font "sans,10"
set output outfile
set title "confidoc: requests/s through nginx over TLS, beside the ceiling\n{/*0.8 ".subtitle."}"
set xlabel "concurrency (connections)"
set ylabel "requests/s (log scale)"
set logscale x 2
set logscale y 10
set xtics (1, 2, 4, 8, 16, 32, 64, 128)
set grid xtics ytics mytics
set key outside right top
set offsets graph 0.05, graph 0.05, 0, 0
plot datafile using 1:2 with linespoints lw 3 dt 2 pt 7 lc rgb "black" title columnheader(2) noenhanced, \
     for [i=3:ncols] datafile using 1:i with linespoints lw 2 pt 7 title columnheader(i) noenhanced
