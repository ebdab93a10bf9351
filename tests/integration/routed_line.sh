#!/bin/bash
# routed_line: mesh routing end to end with the real router (issue 18): a registry
# and three nodes that know only the registry, in network namespaces; nftables
# drops everything between a and c on the underlay. The routers learn each
# other through announcements carried in the crypto sessions, a's router sends
# its data path a route to c through b (route.next), and a's packets to c cross b
# in a routing header, end-to-end encrypted between a and c. Then a fourth peer
# d that reaches both joins; b is killed (SIGKILL of every process of its node):
# a's traffic to c moves to d and the outage is measured; b comes back and d
# dies: through b again; b with routing.transit = false carries nothing. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

export BIFROST_ADMIN_TOKEN=admin-$ID-secret
REGPID=
PINGPID=
BPINGPID=
trap 'disc_cleanup $PINGPID $BPINGPID' EXIT

disc_underlay reg a b c d
disc_registry line
ok $? "registry on 192.0.2.10:7080, network line and a join token"

# a and c cannot reach each other on the underlay (the registry they both can)
disc_block bfroute a c
ok $? "nftables drops every datagram between a and c"

for n in a b c; do disc_node_cfg "$T/$n" "$n" line "$RURL"; done
for n in a b c; do start_node $n; ok $? "node $n: every service READY"; done
for n in a b c; do wait_for 15 disc_has_vip $n; done
VA=$(disc_vip a); VB=$(disc_vip b); VC=$(disc_vip c)
[ -n "$VA" ] && [ -n "$VB" ] && [ -n "$VC" ]
ok $? "virtual addresses from the registry: a $VA, b $VB, c $VC"
wait_for 15 ping_ok a "$VB" && wait_for 15 ping_ok c "$VB"
ok $? "a -> b and c -> b direct"
# Before any unicast between them: the route comes, a's nat dials c through b,
# and the end-to-end session is up; a broadcast and a multicast from a then
# reach c across b once each (and b, a direct peer, once each)
pj () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
routed_session () { [ "$(pj a '.peers[] | select(.name == "c") | .session')" = true ]; }
t0=$(now_ms)
wait_for 30 routed_session
ok $? "a's session with c is up through b before any packet to c, after $(( $(now_ms) - t0 )) ms"
# listen NODE PORT [GROUP]: the datagrams of 4 s into $T/NODE.got, one line each (a group: joined on bifrost0)
listen () {
    in_ns "$1" python3 - "$2" "${3:-}" "$(disc_vip "$1")" > "$T/$1.got" 2>&1 <<'PY' &
import socket, struct, sys, time
port, group, ifaddr = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
if group:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(ifaddr))
s.settimeout(0.2)
end = time.time() + 4
while time.time() < end:
    try:
        print(s.recv(2048).decode(), flush=True)
    except socket.timeout:
        pass
PY
    LPIDS="$LPIDS $!"
}
LPIDS=
# send NODE DEST PORT: five numbered datagrams, 100 ms apart, out of bifrost0
send () {
    in_ns "$1" python3 - "$2" "$3" <<'PY'
import socket, sys, time
dest, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"bifrost0")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
for k in range(5):
    s.sendto(("msg-%d" % k).encode(), (dest, port))
    time.sleep(0.1)
PY
}
BCAST=$(in_ns a ip -o -4 addr show dev bifrost0 | awk '{ for (i = 1; i < NF; i++) if ($i == "brd") print $(i + 1) }')
listen b 7001; listen c 7001
sleep 0.5
send a "$BCAST" 7001
wait $LPIDS; LPIDS=
got () { grep -c '^msg-' "$T/$1.got"; }
[ "$(got c)" = 5 ] && [ "$(sort -u "$T/c.got" | grep -c '^msg-')" = 5 ] && [ "$(got b)" = 5 ]
ok $? "5 broadcasts from a to $BCAST: c (through b) got $(got c), b got $(got b), none twice"
listen c 7002 239.1.2.3
sleep 0.5
send a 239.1.2.3 7002
wait $LPIDS; LPIDS=
[ "$(got c)" = 5 ] && [ "$(sort -u "$T/c.got" | grep -c '^msg-')" = 5 ]
ok $? "5 datagrams from a to the multicast group 239.1.2.3: c, a member through b, got $(got c)"

t0=$(now_ms)
wait_for 30 ping_ok a "$VC"
ok $? "ping a -> c through b, $(( $(now_ms) - t0 )) ms after b was reached"
ping_ok c "$VA"
ok $? "ping c -> a"
ctl a routes --json 2>/dev/null | jq -e '.routes[] | select(.name == "c") | .next_hop_name == "b" and .hops == 2' >/dev/null
ok $? "a's routes: c through b, 2 hops"
ctl a routes 2>/dev/null | sed 's/^/# /'
[ "$(pj a '.peers[] | select(.name == "c") | .routed_via')" = b ]
ok $? "a's nat sends c's datagrams through b ($(pj a '.nat.routed_sent') sent in a routing header)"
in_ns a ping -c 10 -i 0.05 -W 1 -q "$VC" > "$T/ping" 2>&1
grep -q " 0% packet loss" "$T/ping" && [ "$(pj b '.nat.transit_forwarded')" -ge 20 ]
ok $? "10 pings a -> c, none lost: $(awk -F/ '/^rtt/ { print $5 }' "$T/ping") ms; b forwarded $(pj b '.nat.transit_forwarded')"
[ "$(pj c '.peers[] | select(.name == "a") | .session')" = true ] && [ "$(pj c '.peers[] | select(.name == "a") | .state')" != up ]
ok $? "c: its session peer is a, whom its nat never reached directly"


# A fourth peer reaching a and c; b dies (SIGKILL of every process of its node)
route_json () { ctl "$1" routes --json "$2" 2>/dev/null; }
via_hop () { route_json "$1" "$2" | jq -e --arg h "$3" '.routes[0] | .hops == 2 and .next_hop_name == $h' >/dev/null; }
disc_node_cfg "$T/d" d line "$RURL"
start_node d; ok $? "node d: every service READY"
wait_for 15 disc_has_vip d
candidates () { ctl a routes --json 2>/dev/null | jq -e '.neighbours >= 2' >/dev/null && ping_ok d "$VC"; }
wait_for 20 candidates
ok $? "d reaches a and c ($(ctl a routes --json 2>/dev/null | jq -c '[.neighbours, .total]' 2>&1))"
ip netns exec "$(ns_of a)" ping -i 0.05 -W 1 -D "$VC" > "$T/failover.out" 2>&1 &   # not in_ns: $! must be ping
PINGPID=$!
# a also talks to b itself: crypto spreads flows over equal-cost next hops (b
# and d) by a hash of the 5-tuple, so the pings to c may not cross b at all,
# and a nat that sends nothing to a dead peer learns it only from the silence
ip netns exec "$(ns_of a)" ping -i 0.2 -W 1 "$VB" > /dev/null 2>&1 &
BPINGPID=$!
sleep 1
rtt_b () { pj "$1" '.peers[] | select(.name == "b") | "\(.rtt_us / 1000) ms (var \(.rtt_var_us / 1000) ms, last \(.rtt_last_us / 1000) ms)"'; }
echo "# round trips to b before it dies (the unanswered timer's windows follow them): a $(rtt_b a); c $(rtt_b c)"
fd0=$(pj a '.nat.fast_downs')
for p in $(ip netns pids "$(ns_of b)"); do kill -KILL "$p" 2>/dev/null; done
tk=$(now_ms)
# nat's unanswered timer (docs/nat.md, "Peer timers"): what a sends to b goes
# unanswered, b is probed once it has been silent 1 s and is down 1 s later
# (the silence timer alone took 11.6 s), and the router moves the route at
# once. What is asserted is that outcome (down for unanswered traffic:
# fast_downs, then the route on d); the times are printed (about 2 s and 2.5 s
# on a quiet machine, docs/routing.md). The waits are outer bounds, 3 times
# the 5 s the points once asserted, so a loaded machine does not fail them
b_down () { [ "$(pj a '.peers[] | select(.name == "b") | .state')" != up ]; }
wait_for 15 b_down; rc=$?; tdown=$(( $(now_ms) - tk ))
[ "$rc" -eq 0 ] && [ "$(pj a '.nat.fast_downs')" -gt "${fd0:-0}" ]
ok $? "b killed: a's nat says b is down after $tdown ms, for unanswered traffic (fast_downs ${fd0:-?} -> $(pj a '.nat.fast_downs'), fast_probes $(pj a '.nat.fast_probes'))"
via_d () { via_hop a c d; }
wait_for 15 via_d; rc=$?; tmove=$(( $(now_ms) - tk ))
ok $rc "b killed: a's route to c moves to d after $tmove ms"
kill -INT "$BPINGPID" 2>/dev/null; wait "$BPINGPID" 2>/dev/null; BPINGPID=
wait_for 15 ping_ok a "$VC"
ok $? "ping a -> c through d"
sleep 1
kill -INT "$PINGPID" 2>/dev/null; wait "$PINGPID" 2>/dev/null; PINGPID=
# The outage: the longest gap between two answered pings
GAP=$(awk '/bytes from/ { gsub(/[\[\]]/, "", $1); t = $1 * 1000; if (last && t - last > gap) gap = t - last; last = t } END { printf "%d", gap }' "$T/failover.out")
echo "# outage a -> c when b died: ${GAP} ms between two answers (pings every 50 ms)"
# Both ways: a's requests and c's answers each cross b or d (each node's own
# hash), so c may have to find b dead too, after a moved: about 3.5 s at worst
# (the point is that the pings went on through d, asserted above; the bound is
# 3 times the 5 s once asserted, only to catch an outage of another kind)
[ "${GAP:-0}" -gt 0 ] && [ "$GAP" -lt 15000 ]
ok $? "the failover's outage a -> c: ${GAP} ms"

# b comes back; d goes: through b again
start_node b; ok $? "node b back: every service READY"
wait_for 15 ping_ok b "$VC"
for p in $(ip netns pids "$(ns_of d)"); do kill -KILL "$p" 2>/dev/null; done
tk=$(now_ms)
via_b () { via_hop a c b; }
wait_for 30 via_b
ok $? "b back and d gone: a's route to c through b again after $(( $(now_ms) - tk )) ms"
wait_for 15 ping_ok a "$VC"
ok $? "ping a -> c through b again"

# routing.transit = false on b: it announces nothing and carries nothing
stop_node b
DISC_CFG_EXTRA='routing = { transit = false; };' disc_node_cfg "$T/b" b line "$RURL"
start_node b; ok $? "node b (transit off): every service READY"
wait_for 15 ping_ok a "$VB"
no_route () { ! via_hop a c b && ! ping_ok a "$VC"; }
wait_for 20 no_route
ok $? "b with routing.transit = false: a has no route to c through b and no ping crosses"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
