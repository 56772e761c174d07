#!/usr/bin/env bash
# Draws throughput against session count (S4 fan-in, S5 fan-out) for mqttx, raw Paho
# (and raw Paho with a hand-off thread, when the run has that column) and libmosquitto
# from the JSON that `mqttx-bench --json FILE` writes:
#   bench/plot_sessions.sh results.json [docs/throughput-by-sessions.svg]
# Needs jq and gnuplot (apt-get install jq gnuplot-nox).
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 results.json [out.svg]" >&2
    exit 2
fi
json=$1
out=${2:-docs/throughput-by-sessions.svg}
for tool in jq gnuplot; do
    if ! command -v "$tool" >/dev/null; then
        echo "$0 needs $tool: apt-get install jq gnuplot-nox" >&2
        exit 1
    fi
done

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
for scenario in S4 S5; do
    for lib in mqttx paho paho-handoff libmosquitto; do
        jq -r --arg s "$scenario" --arg lib "$lib" \
            '.cases[] | select(.scenario == $s and .results[$lib] != null)
             | [.sessions, .results[$lib].value] | @tsv' "$json" >"$data/$scenario-$lib.dat"
    done
done
# The hand-off line only when the run measured it (mqttx-bench --libraries ...,paho-handoff).
handoff() {
    if [[ -s $data/$1-paho-handoff.dat ]]; then
        echo "\"$data/$1-paho-handoff.dat\" title \"raw Paho C++, hand-off thread\" lw 2,"
    fi
}
machine=$(jq -r '"\(.machine.cpu), \(.machine.cores) cores; \(.messages) messages, median of \(.rounds)"' "$json")

gnuplot <<PLOT
set terminal svg size 960,420 font "sans,11"
set output "$out"
set multiplot layout 1,2 title "mqttx-bench: $machine"
set logscale x
set xrange [5:2000]
set xlabel "sessions"
set grid
set key bottom left
set style data linespoints
set title "S4 fan-in: N publishers, one subscriber (QoS 1)"
set ylabel "messages/s"
plot "$data/S4-mqttx.dat" title "mqttx" lw 2, \
     "$data/S4-paho.dat" title "raw Paho C++" lw 2, $(handoff S4) \
     "$data/S4-libmosquitto.dat" title "libmosquitto" lw 2
set title "S5 fan-out: one publisher, N subscribers (QoS 1)"
set ylabel "deliveries/s"
plot "$data/S5-mqttx.dat" title "mqttx" lw 2, \
     "$data/S5-paho.dat" title "raw Paho C++" lw 2, $(handoff S5) \
     "$data/S5-libmosquitto.dat" title "libmosquitto" lw 2
unset multiplot
PLOT
echo "wrote $out"
