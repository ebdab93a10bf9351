#!/bin/bash
# node_tap: two nodes on TAP (layer 2). ARP resolves across the tunnel (a learns
# b's MAC, the one b derived from its key), ping works both ways, and TCP moves
# data intact.
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

two_nodes tap

# mac NODE: bifrost0's Ethernet address; neigh NODE ADDR: what ARP learned for ADDR
mac () { in_ns "$1" cat /sys/class/net/bifrost0/address 2>/dev/null; }
neigh () { in_ns "$1" ip neigh show "$2" dev bifrost0 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }

in_ns a ip -d link show bifrost0 2>/dev/null | grep -q "link/ether"
ok $? "a: bifrost0 is an Ethernet (TAP) device"
MAC_A=$(mac a); MAC_B=$(mac b)
[ -n "$MAC_A" ] && [ -n "$MAC_B" ] && [ "$MAC_A" != "$MAC_B" ]
ok $? "a and b have distinct MACs ($MAC_A, $MAC_B)"
[ -z "$(neigh a 10.100.0.2)" ]
ok $? "a: no neighbour entry for 10.100.0.2 before the first ping"

t0=$(now_ms)
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b over TAP"
echo "# first ping answered after $(( $(now_ms) - t0 )) ms (ARP and handshake included)"
[ "$(neigh a 10.100.0.2)" = "$MAC_B" ]
ok $? "a: ARP resolved 10.100.0.2 to b's MAC ($(neigh a 10.100.0.2))"
ping_ok b 10.100.0.1
ok $? "ping b -> a over TAP"
[ "$(neigh b 10.100.0.1)" = "$MAC_A" ]
ok $? "b: ARP resolved 10.100.0.1 to a's MAC ($(neigh b 10.100.0.1))"
in_ns a ping -c 20 -i 0.05 -q 10.100.0.2 > "$T/ping20" 2>&1
grep -q " 0% packet loss" "$T/ping20"
ok $? "20 pings a -> b, none lost"
sed -n 's/^rtt/# rtt/p' "$T/ping20"

# The derived MAC is stable: b restarted with the same key has the same MAC
stop_node b
start_node b; ok $? "node b restarted"
[ "$(mac b)" = "$MAC_B" ]
ok $? "b's MAC is the same after the restart ($(mac b))"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b after b's restart"

# 4 MB over TCP, both directions
head -c 4000000 /dev/urandom > "$T/blob"
tcp_copy () {   # tcp_copy FROM TO TO-ADDR PORT
    rm -f "$T/blob.received"
    in_ns "$2" socat -u TCP-LISTEN:$4,reuseaddr OPEN:"$T/blob.received",creat,trunc &
    local listener=$!
    wait_for 5 in_ns "$2" sh -c "ss -ltn | grep -q :$4"
    in_ns "$1" socat -u OPEN:"$T/blob" TCP:$3:$4,connect-timeout=5
    wait_for 10 sh -c "! kill -0 $listener"
    kill "$listener" 2>/dev/null
    cmp -s "$T/blob" "$T/blob.received"
}
tcp_copy a b 10.100.0.2 5001
ok $? "4 MB over TCP a -> b arrive intact"
tcp_copy b a 10.100.0.1 5002
ok $? "4 MB over TCP b -> a arrive intact"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
