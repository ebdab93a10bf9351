#!/bin/bash
# kill9.sh (make soak, not make check): the supervisor's promise under traffic,
# many times over. Two nodes (node_lib.sh); a ping every 10 ms from a to b over
# the tunnel, the whole time; every service of node a (bus, tunnel, nat, router,
# and the tunnel's device-link helper) is killed with SIGKILL SOAK_KILLS times
# (100), one kill every stable_after + 0.5 s so each restart counts as a fresh
# one. After each kill the node must be whole again (every service READY, a ping
# answered) within 20 s; a node that is not counts as stuck and is restarted.
# Prints, per service, the outage each kill caused to the ping (the longest gap
# between two answers around the kill: median, 95th percentile, max) and the
# stuck count; the numbers go in docs/benchmarks.md ("Soak").
#   make soak            # or: SOAK_KILLS=10 make soak
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

KILLS=${SOAK_KILLS:-100}
TARGETS=${SOAK_TARGETS:-"bus tunnel nat router device-link"}
STABLE_S=1
RECOVER_S=20

underlay a 192.0.2.1
underlay b 192.0.2.2
KA=$(genkey a); KB=$(genkey b)
node_config a tun 10.100.0.1/24 "$(peer b "$KB" 10.100.0.2/32 192.0.2.2:51820)"
node_config b tun 10.100.0.2/24 "$(peer a "$KA" 10.100.0.1/32)"
# A restart after stable_after is a fresh one (no backoff); intensity must
# allow one kill per service every stable_after + 0.5 s
sed -i "s/stable_after = \"2s\";/stable_after = \"${STABLE_S}s\";/; s/intensity = 30;/intensity = 1000;/" \
    "$T/a/node.cfg" "$T/b/node.cfg"
start_node a; ok $? "node a: every service READY"
start_node b; ok $? "node b: every service READY"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b"

# The traffic: -D stamps every answer with the time, -O says when one is missing
in_ns a ping -i 0.01 -D -O -W 1 10.100.0.2 > "$T/ping.log" 2>&1 &
PING=$!
trap 'kill $PING 2>/dev/null; node_cleanup' EXIT

# target_pid NAME: the pid to kill (the helper is the tunnel's child)
target_pid () {
    if [ "$1" = device-link ]; then
        pgrep -P "$(service_pid a tunnel)" -x device-link | head -1
    else
        service_pid a "$1"
    fi
}
whole () { all_ready a && ping_ok a 10.100.0.2; }

# The ping's own jitter, before any kill: the longest gap in 3 quiet seconds
sleep 3
QUIET=$(awk -v since="$(date -d '-3 sec' +%s.%N)" '/bytes from/ { t = substr ($1, 2, length ($1) - 2) + 0
        if (t > since) { if (last && t - last > worst) worst = t - last; last = t } }
        END { printf "%.0f", worst * 1000 }' "$T/ping.log")

STUCK=0
: > "$T/kills"
for round in $(seq 1 "$KILLS"); do
    for svc in $TARGETS; do
        pid=$(target_pid "$svc")
        if [ -z "$pid" ]; then
            wait_for "$RECOVER_S" whole
            pid=$(target_pid "$svc")
        fi
        [ -n "$pid" ] || { echo "# round $round: no pid for $svc"; continue; }
        echo "$svc $(date +%s.%N)" >> "$T/kills"
        kill -KILL "$pid"
        sleep 0.2
        if ! wait_for "$RECOVER_S" whole; then
            STUCK=$((STUCK + 1))
            echo "# round $round: node a not whole ${RECOVER_S} s after kill -9 of $svc: restarting it"
            stop_node a; start_node a
        fi
        sleep "$STABLE_S.5"
    done
    [ $((round % 10)) = 0 ] && echo "# round $round of $KILLS done, $STUCK stuck"
done
kill "$PING" 2>/dev/null; wait "$PING" 2>/dev/null

# outage per kill: the longest gap between two consecutive answers, among the
# answers from the kill to the next kill (the first answer after the kill
# closes the gap that the kill opened)
awk '
    FNR == NR { svc [NR] = $1; at [NR] = $2; n = NR; next }
    /bytes from/ { t = substr ($1, 2, length ($1) - 2); r [++m] = t + 0 }
    END {
        for (k = 1; k <= n; k++) {
            worst = 0
            until = k < n ? at [k + 1] : at [k] + 10
            for (i = 2; i <= m; i++) {
                if (r [i] <= at [k]) continue
                if (r [i - 1] >= until) break
                if (r [i] - r [i - 1] > worst) worst = r [i] - r [i - 1]
            }
            printf "%s %.0f\n", svc [k], worst * 1000
        }
    }' "$T/kills" "$T/ping.log" > "$T/outages"
sent=$(grep -c 'icmp_seq=' "$T/ping.log"); answered=$(grep -c 'bytes from' "$T/ping.log")
echo "# soak: $KILLS kills of each of: $TARGETS; pings $answered answered of about $sent lines; stuck $STUCK"
echo "# outage of the ping per kill, ms (the longest gap between answers; 10 ms = none; $QUIET ms in 3 s without kills):"
for svc in $TARGETS; do
    grep "^$svc " "$T/outages" | awk '{ print $2 }' | sort -n | awk -v s="$svc" '
        { v [NR] = $1 } END { if (NR) printf "#   %-12s kills %3d  median %5d  p95 %5d  max %5d\n", s, NR, v [int ((NR + 1) / 2)], v [int (NR * 0.95 + 0.999)], v [NR] }'
done
echo "# the three longest outages (service, ms, UTC time of the kill):"
paste -d ' ' "$T/outages" <(awk '{ print $2 }' "$T/kills") | sort -k2,2n | tail -3 | while read -r svc ms at; do
    echo "#   $svc $ms ms at $(date -u -d "@$at" +%H:%M:%S.%N | cut -c1-12)"
done
[ "$STUCK" = 0 ]
ok $? "no node stuck after $((KILLS * $(echo $TARGETS | wc -w))) kills"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
