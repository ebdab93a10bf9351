#!/bin/sh
# bench/run.sh: runs every benchmark with short durations and prints Markdown
# tables (what `make bench` shows; docs/benchmarks.md records a run).
#   bench/run.sh [BUILD_DIR]        env: BENCH_SECONDS (default 2), BENCH_ROUNDS (3)
# Each data pipe row is the median of BENCH_ROUNDS rounds of BENCH_SECONDS; the
# whole run takes about 9 x ROUNDS x SECONDS + 6 x SECONDS + a few seconds
# (about 75 s with the defaults). bench-vpn (Makemodule.am) comes after it.
set -eu
build=${1:-.}
secs=${BENCH_SECONDS:-2}
rounds=${BENCH_ROUNDS:-3}
pipe="$build/bench/bench_pipe"
broker="$build/bench/bench_broker"
hops="$build/bench/bench_hops"
for p in "$pipe" "$broker" "$hops"; do
    [ -x "$p" ] || { echo "run.sh: $p is not built (run make bench)" >&2; exit 1; }
done

echo "## Data pipes (bus_pipe over SOCK_SEQPACKET, two processes, $(nproc) CPUs, median of $rounds x ${secs} s)"
echo
echo "| pipe | packets/s | Gbit/s | dropped |"
echo "|---|---|---|---|"
for b in 1 16 64; do
    "$pipe" -m -s "$secs" -r "$rounds" -b "$b" -p 1400 -w
done
for b in 1 16 64; do
    "$pipe" -m -s "$secs" -r "$rounds" -b "$b" -p 1400
done
"$pipe" -m -s "$secs" -r "$rounds" -b 1 -p 64 -w
"$pipe" -m -s "$secs" -r "$rounds" -b 64 -p 64 -w
"$pipe" -m -s "$secs" -r "$rounds" -b 64 -p 64
echo
echo "## Control plane (broker, three processes, ${secs} s each)"
echo
echo "| measurement | result | | |"
echo "|---|---|---|---|"
"$broker" -m -s "$secs"
echo
echo "## Pipe hops (one ping-sized packet around a ring of 8 processes, ${secs} s each)"
echo
echo "| transport | median RTT | p99 | per hop | samples |"
echo "|---|---|---|---|---|"
for t in pipe service pair; do
    for i in 0 10000; do
        "$hops" -m -t "$t" -n 8 -i "$i" -s "$secs"
    done
done
