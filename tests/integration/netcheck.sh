#!/bin/bash
# netcheck: `bifrostctl netcheck` tells a user what their network does to UDP
# (issue 15). On the NAT grid (natgrid_lib.sh) with a registry and two relays at
# different addresses (mesh_lib.sh), four nodes: one behind symmetric-seq (a new
# port per destination, in sequence), one behind a full cone, one public, one
# whose router blocks UDP. Asserted, from netcheck's --json and its text: the
# mapping class of each (endpoint-dependent-sequential with step 1 and a port of
# the grid's sequence, endpoint-independent, none, unknown), the address every
# relay sees (the router's, on two ports for symmetric-seq, one for the cone),
# UDP yes or TCP only, both relays with a round trip, hairpinning (the grid's
# routers do not hairpin; a public node reaches itself), no IPv6 (the grid has
# none), filtering unknown and port mapping off (tests/integration/portmap_grid.sh
# checks netcheck with a mapping). (TAP)
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
WAIT_STEP=0.2           # every poll is a bifrostctl per node
T=$(mktemp -d /tmp/netcheck-XXXXXX)
chmod 755 "$T"

finish () { mesh_end 15; }
trap finish EXIT

grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_public_host relay2 203.0.113.12
grid_nodes symmetric-seq:seq full-cone:cone none:pub udp-blocked:blocked
ok $? "grid: registry, two relays, nodes behind symmetric-seq, full cone, none and a UDP-blocking router"
mesh_relay relay 203.0.113.11 relay-1 1
mesh_relay relay2 203.0.113.12 relay-2 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479 relay-2@203.0.113.12:3479
NODES="seq cone pub blocked"
for n in $NODES; do mesh_start_node "$n"; done

netcheck () { "$CTL" -r "$T/$1/run" netcheck --json 2>/dev/null; }
field () { netcheck "$1" | jq -r "$2" 2>/dev/null; }
# Both relays answered and the class is settled (the blocked node: both reached over TCP)
settled () {
    local n
    for n in seq cone pub; do [ "$(field $n '[.relays[] | select(.up and .transport == "udp")] | length')" = 2 ] || return 1; done
    [ "$(field blocked '[.relays[] | select(.up)] | length')" = 2 ]
}
wait_for 30 settled
ok $? "every node reaches both relays (over UDP, the blocked one over TCP)"
hairpin_settled () { [ "$(field seq .hairpin)" = no ] && [ "$(field pub .hairpin)" = yes ]; }
wait_for 5 hairpin_settled

# symmetric-seq: two relays, two ports of the router's sequence, one apart
j=$(netcheck seq)
echo "$j" | sed 's/^/# seq: /' | head -40
seen=$(echo "$j" | jq -r '[.relays[].observed] | join(" ")')
[ "$(echo "$j" | jq -r .mapping)" = endpoint-dependent-sequential ] && [ "$(echo "$j" | jq -r .mapping_step)" = 1 ] \
    && [ "$(echo "$j" | jq -r .mapping_relays)" = 2 ]
ok $? "seq: mapping endpoint-dependent-sequential, step 1, from 2 relays"
high=$(echo "$j" | jq -r .mapping_highest_port)
[ "$high" -ge "$GRID_SEQ_BASE" ] && [ "$high" -lt $((GRID_SEQ_BASE + GRID_SEQ_COUNT)) ]
ok $? "seq: the highest port seen ($high) is one of the router's sequence ($GRID_SEQ_BASE..)"
ports=$(echo "$j" | jq -r '[.relays[].observed | split(":")[1]] | unique | length')
ips=$(echo "$j" | jq -r '[.relays[].observed | split(":")[0]] | unique | join(" ")')
[ "$ports" = 2 ] && [ "$ips" = "$(grid_wan seq)" ]
ok $? "seq: the relays see its router's address $(grid_wan seq) on two ports ($seen)"

# full cone: one ip:port toward both relays
j=$(netcheck cone)
seen=$(echo "$j" | jq -r '[.relays[].observed] | unique | join(" ")')
[ "$(echo "$j" | jq -r .mapping)" = endpoint-independent ] && [ "${seen%:*}" = "$(grid_wan cone)" ] \
    && [ "$(echo "$j" | jq -r '[.relays[].observed] | unique | length')" = 1 ]
ok $? "cone: mapping endpoint-independent, both relays see $seen (router $(grid_wan cone))"

# public: no NAT
j=$(netcheck pub)
[ "$(echo "$j" | jq -r .mapping)" = none ] && [ "$(echo "$j" | jq -r '.relays[0].observed')" = "$(grid_wan pub):51820" ]
ok $? "pub: mapping none (a relay sees its own address and port: $(echo "$j" | jq -r '.relays[0].observed'))"

# UDP blocked: the relays answer over TCP only, the mapping cannot be known
j=$(netcheck blocked)
[ "$(echo "$j" | jq -r .udp)" = false ] && [ "$(echo "$j" | jq -r .mapping)" = unknown ] \
    && [ "$(echo "$j" | jq -r '[.relays[].transport] | unique | join(" ")')" = tcp ]
ok $? "blocked: UDP false, both relays over TCP, mapping unknown"

# UDP, relays and their round trips
for n in seq cone pub; do
    [ "$(field $n .udp)" = true ] && [ "$(field $n '[.relays[] | select(.rtt_us > 0)] | length')" = 2 ] \
        && [ "$(field $n '[.relays[].name] | sort | join(" ")')" = "relay-1 relay-2" ]
    ok $? "$n: UDP true, relay-1 and relay-2 with round trips ($(field $n '[.relays[].rtt_us] | join(" ")') us)"
done

# Hairpinning: the grid's routers do not loop a datagram back to their inside;
# a public node's datagram to its own address comes back
[ "$(field seq .hairpin)" = no ] && [ "$(field cone .hairpin)" = no ] && [ "$(field pub .hairpin)" = yes ]
ok $? "hairpinning: seq $(field seq .hairpin), cone $(field cone .hairpin), pub $(field pub .hairpin)"

# IPv6 (off in the grid), filtering and the gateway
[ "$(field cone .ipv6.global_address)" = false ] && [ "$(field cone .ipv6.relay)" = false ] \
    && [ "$(field cone .filtering)" = unknown ] && [ "$(field cone .port_mapping.state)" = off ]
ok $? "cone: no global IPv6 address, no relay over IPv6, filtering unknown, port mapping off (connection.port_mapping)"

# The text a user reads
text=$("$CTL" -r "$T/seq/run" netcheck 2>&1)
echo "$text" | sed 's/^/#   /'
echo "$text" | grep -q "^NAT mapping  *endpoint-dependent-sequential (step 1, highest port $high; from 2 relays)" \
    && echo "$text" | grep -q "^UDP  *yes (2 of 2 relays answer over UDP)" \
    && echo "$text" | grep -qE "^relay-1 +203\.0\.113\.11:3479 +udp +yes +[0-9.]+ ms +$(grid_wan seq):[0-9]+$"
ok $? "bifrostctl netcheck prints the mapping, UDP and a line per relay"
text=$("$CTL" -r "$T/blocked/run" netcheck 2>&1)
echo "$text" | grep -q "^UDP  *no: the relays answer over TCP or WebSocket only"
ok $? "bifrostctl netcheck on the blocked node: UDP no, TCP only"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
