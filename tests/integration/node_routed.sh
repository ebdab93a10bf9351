#!/bin/bash
# node_routed: mesh routing's data path (issue 18, docs/routing.md "Transit"). Three
# nodes a, b, c on one underlay; nftables drops everything between a and c, so a
# reaches c only through b. The router's events are played by bifrost-testsvc --next,
# run under the router's service uid, so the broker lets it register as `router`
# (the real router is not in these configs). Asserted: ping a -> c crosses b (b's
# transit counters grow, c's crypto session peer is a, c's nat never saw a
# directly), a route announcement travels in a's session with b, a tampered routed
# datagram and one whose header names another source are dropped at c, TTL 1 is
# dropped at b, b's transit budget drops and counts a flood per source, and
# routing.transit = false at b stops it.
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

I_A=a1a1a1a1a1a1a1a1; I_B=b2b2b2b2b2b2b2b2; I_C=c3c3c3c3c3c3c3c3; I_D=d4d4d4d4d4d4d4d4  # registry ids
INJECT=$BIFROST_BUILDDIR/tests/bifrost-testsvc     # its router part: tests/testsvc_inject.c

# cfg NODE ADDR PEERS [EXTRA]: a node without the router (the test plays it);
# inner MTU 1400: a routed peer's datagrams carry the 20-byte routing header
cfg () {
    cat > "$T/$1/node.cfg" <<CFG
run_dir = "$T/$1/run";
key_file = "$T/$1/node.key";
device = { type = "tun"; name = "bifrost0"; mtu = 1400; address = "$2"; };
connection = { listen = "0.0.0.0:51820"; keepalive_interval = "2s"; };
peers = ( $3 );
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s";
               liveness_timeout = "3s"; stop_timeout = "2s"; intensity = 30; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "tunnel"; exec = "bifrost-tunnel"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "tunnel"]; }
);
${4:-}
CFG
}

# inject NODE ARGS...: (re)starts the node's stand-in router with these events,
# under the router's service uid (schemas/users.def: base + 6; the base is the
# bus's uid - 1, from the node's log) and the node's group
declare -A INJ=()
# the stand-ins end first (by pid), then everything node_lib.sh made
routed_cleanup () {
    local p
    for p in "${INJ[@]}"; do { kill "$p" && wait "$p"; } 2>/dev/null; done
    node_cleanup
}
trap routed_cleanup EXIT
inject () {
    local n=$1 base; shift
    base=$(grep -m1 -o 'bus.1 running in .* as uid [0-9]*' "$T/$n/bifrostd.log" | awk '{ print $NF - 1 }')
    base=${base:-61100}
    [ -n "${INJ[$n]:-}" ] && kill "${INJ[$n]}" 2>/dev/null && wait "${INJ[$n]}" 2>/dev/null
    ip netns exec "$(ns_of "$n")" setpriv --reuid=$((base + 6)) --regid=$((base + 6)) --groups="$base" \
        env BIFROST_SERVICE=router "$INJECT" -r "$T/$n/run" -i router.9 "$@" >> "$T/$n/inject.log" 2>&1 &
    INJ[$n]=$!
}
# routes_a TTL [HOPS]: a's routes (to c through b, or through HOPS)
routes_a () { inject a --next "0 $I_A $I_B $1 0:$I_B" --next "1 $I_A $I_C $1 ${2:-0:$I_B}" --next "2 $I_A $I_D 8 2:$I_D" \
                       --announce "0 200"; }
routes_b () { inject b --next "0 $I_B $I_A 8 0:$I_A" --next "1 $I_B $I_C 8 1:$I_C"; }
routes_c () { inject c --next "0 $I_C $I_B 8 0:$I_B" --next "1 $I_C $I_A 8 0:$I_B" --next "2 $I_C $I_D 8 2:$I_D"; }
routes_d () { inject d --next "0 $I_D $I_A 8 0:$I_A" --next "1 $I_D $I_C 8 1:$I_C"; }

# pj NODE FILTER: jq over `bifrostctl peers --json`; pj_ok NODE FILTER: true?
pj () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
pj_ok () { ctl "$1" peers --json 2>/dev/null | jq -e "$2" >/dev/null; }
pings () {      # pings NODE ADDR COUNT INTERVAL: packets received
    in_ns "$1" ping -c "$3" -i "$4" -W 1 -q "$2" 2>/dev/null | awk '/received/ { print $4 }'
}

disc_underlay a b c d
KA=$(genkey a); KB=$(genkey b); KC=$(genkey c); KD=$(genkey d)
# a and c list each other without an endpoint: they know each other's key only;
# d is a second way from a to c (equal cost with b, for the flows' spread)
cfg a 10.100.0.1/24 "$(peer b "$KB" 10.100.0.2/32 192.0.2.2:51820), $(peer c "$KC" 10.100.0.3/32), $(peer d "$KD" 10.100.0.4/32 192.0.2.4:51820)"
cfg b 10.100.0.2/24 "$(peer a "$KA" 10.100.0.1/32 192.0.2.1:51820), $(peer c "$KC" 10.100.0.3/32 192.0.2.3:51820)" \
    'routing = { transit_packets_per_second = 50; };'
cfg c 10.100.0.3/24 "$(peer b "$KB" 10.100.0.2/32 192.0.2.2:51820), $(peer a "$KA" 10.100.0.1/32), $(peer d "$KD" 10.100.0.4/32 192.0.2.4:51820)"
cfg d 10.100.0.4/24 "$(peer a "$KA" 10.100.0.1/32 192.0.2.1:51820), $(peer c "$KC" 10.100.0.3/32 192.0.2.3:51820)"
for n in a b c d; do start_node "$n"; ok $? "node $n: every service READY"; done

# nftables: a and c cannot reach each other on the underlay
disc_block bfroute a c
ok $? "nftables drops every datagram between a and c"
wait_for 15 ping_ok a 10.100.0.2 && wait_for 15 ping_ok b 10.100.0.3
ok $? "a -> b and b -> c direct"
! ping_ok a 10.100.0.3
ok $? "a -> c fails without routes"

# --- Routed through b ----------------------------------------------------------
routes_a 8; routes_b; routes_c; routes_d
wait_for 10 pj_ok a '.peers[] | select(.name == "c") | .routed_via == "b"' \
    && wait_for 10 pj_ok c '.peers[] | select(.name == "a") | .routed_via == "b"'
ok $? "route.next taken: a reaches c through b, c reaches a through b"
wait_for 15 ping_ok a 10.100.0.3
ok $? "ping a -> c through b"
in_ns a ping -c 20 -i 0.05 -W 1 -q 10.100.0.3 > "$T/routed.ping" 2>&1
in_ns a ping -c 20 -i 0.05 -W 1 -q 10.100.0.2 > "$T/direct.ping" 2>&1
avg () { awk -F/ '/^rtt/ { print $5 }' "$1"; }
grep -q " 0% packet loss" "$T/routed.ping"
ok $? "20 pings a -> c, none lost: RTT $(avg "$T/routed.ping") ms through b, $(avg "$T/direct.ping") ms a -> b direct"
FWD=$(pj b '.nat.transit_forwarded'); FWD_A=$(pj b '.peers[] | select(.name == "a") | .transit_forwarded')
FWD_C=$(pj b '.peers[] | select(.name == "c") | .transit_forwarded')
[ "${FWD:-0}" -ge 42 ] && [ "${FWD_A:-0}" -ge 21 ] && [ "${FWD_C:-0}" -ge 21 ]
ok $? "b forwarded them: transit_forwarded $FWD (from a $FWD_A, from c $FWD_C)"
pj_ok c '.peers[] | select(.name == "a") | .session == true and .rx_packets >= 21 and .state != "up"' \
    && [ "$(pj c '.nat.routed_received')" -ge 21 ]
ok $? "c: its crypto session peer is a ($(pj c '.peers[] | select(.name == "a") | .rx_packets') packets), nat never saw a directly ($(pj c '.peers[] | select(.name == "a") | .state')), $(pj c '.nat.routed_received') routed received"
pj_ok a '.nat.routed_sent >= 21 and (.peers[] | select(.name == "c") | .session == true)'
ok $? "a: $(pj a '.nat.routed_sent') datagrams sent in a routing header"

# --- A route announcement in a's session with b --------------------------------
wait_for 5 pj_ok b '.crypto.announces_rx >= 1'
ok $? "b's crypto got a's announcements (route.heard): announces_rx $(pj b '.crypto.announces_rx'), a sent $(pj a '.crypto.announces_tx')"

# --- Tampered and misattributed routed datagrams at c ---------------------------
# A sniffer on c's underlay: the first routed datagram (type 5) of a size from b
cat > "$T/sniff.py" <<'PY'
import socket, struct, sys, time
out, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("eth0", 0))
s.settimeout(0.2)
open(out + ".ready", "w").close()
deadline = time.time() + 10
while time.time() < deadline:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    ip = frame[14:]
    if len(ip) < 28 or ip[9] != 17 or ip[12:16] != socket.inet_aton("192.0.2.2"):
        continue
    ihl = (ip[0] & 15) * 4
    sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
    payload = ip[ihl + 8:ihl + ulen]
    if dport == 51820 and len(payload) == size and payload[0] == 5:
        open(out, "wb").write(payload)
        sys.exit(0)
sys.exit(1)
PY
# resend FILE [FLIP-OFFSET|-] [SOURCE-ID]: the datagram to c's port from b's endpoint
# (192.0.2.2:51820, a raw socket: b's nat holds the port; SPORT: another port),
# changed as asked
cat > "$T/resend.py" <<'PY'
import os, socket, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
if len(sys.argv) > 2 and sys.argv[2] != "-":
    data[int(sys.argv[2])] ^= 0x01
if len(sys.argv) > 3:
    data[4:12] = int(sys.argv[3], 16).to_bytes(8, "little")
sport = int(os.environ.get("SPORT", "51820"))
udp = struct.pack("!HHHH", sport, 51820, 8 + len(data), 0) + bytes(data)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                 socket.inet_aton("192.0.2.2"), socket.inet_aton("192.0.2.3"))
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).sendto(ip + udp, ("192.0.2.3", 0))
PY
# c holds back routed datagrams of one size (a's 200-byte pings: 228 + 32 + 20)
in_ns c nft add chain inet bfroute hold '{ type filter hook input priority -1; }' \
    && in_ns c nft add rule inet bfroute hold udp dport 51820 udp length 288 drop
ok $? "c: firewall rule holding back one routed datagram size"
rm -f "$T/held" "$T/held.ready"
in_ns c python3 "$T/sniff.py" "$T/held" 280 &
SNIFFER=$!
wait_for 5 test -e "$T/held.ready"
in_ns a ping -c 1 -W 1 -s 200 -q 10.100.0.3 >/dev/null 2>&1
wait $SNIFFER
ok $? "captured a routed data datagram a -> c on c's underlay (held back from c)"
in_ns c nft delete chain inet bfroute hold
counter () { pj "$1" ".crypto.$2 // 0"; }
TAMPERED=$(counter c tampered); WRONG=$(counter c routed_source); RX=$(pj c '.peers[] | select(.name == "a") | .rx_packets')
in_ns b python3 "$T/resend.py" "$T/held" 60
wait_for 5 sh -c "[ \$($CTL -r $T/c/run peers --json | jq '.crypto.tampered') -gt $TAMPERED ]"
ok $? "c drops the routed datagram with one ciphertext byte flipped (tampered $TAMPERED -> $(counter c tampered))"
in_ns b python3 "$T/resend.py" "$T/held" - "$I_B"
wait_for 5 sh -c "[ \$($CTL -r $T/c/run peers --json | jq '.crypto.routed_source') -gt $WRONG ]"
ok $? "c drops a's datagram whose routing header names b as its source (routed_source $WRONG -> $(counter c routed_source))"
NOTNB=$(pj c '.nat.transit_drop_not_neighbour')
in_ns b env SPORT=40000 python3 "$T/resend.py" "$T/held"
wait_for 5 sh -c "[ \$($CTL -r $T/c/run peers --json | jq '.nat.transit_drop_not_neighbour') -gt $NOTNB ]"
ok $? "c drops it from b's address but not b's endpoint (port 40000): transit_drop_not_neighbour $NOTNB -> $(pj c '.nat.transit_drop_not_neighbour')"
in_ns b python3 "$T/resend.py" "$T/held"
wait_for 5 sh -c "[ \$($CTL -r $T/c/run peers --json | jq '.peers[] | select(.name == \"a\") | .rx_packets') -gt $RX ]"
ok $? "the same datagram unchanged, from b's endpoint: delivered as a's"
GOT=$(pings a 10.100.0.3 5 0.05)
[ "${GOT:-0}" -eq 5 ]
ok $? "tunnel a -> c unharmed: 5 pings, ${GOT:-0} answered"

# --- TTL: a datagram with TTL 1 ends at b ----------------------------------------
TTL=$(pj b '.nat.transit_drop_ttl')
routes_a 1
# the new TTL is in a's nat once b starts dropping (a ping each try)
ttl_drops () { in_ns a ping -c 1 -W 0.3 -q 10.100.0.3 >/dev/null 2>&1; [ "$(pj b '.nat.transit_drop_ttl')" -gt "$TTL" ]; }
wait_for 10 ttl_drops
TTL=$(pj b '.nat.transit_drop_ttl')
GOT=$(pings a 10.100.0.3 5 0.1)
wait_for 5 sh -c "[ \$($CTL -r $T/b/run peers --json | jq '.nat.transit_drop_ttl') -ge $(( TTL + 5 )) ]"
ok $? "TTL 1: b drops a's datagrams (transit_drop_ttl $TTL -> $(pj b '.nat.transit_drop_ttl')), ${GOT:-0} of 5 pings answered"
[ "${GOT:-0}" -eq 0 ]
ok $? "no ping a -> c gets through with TTL 1"
routes_a 8
wait_for 10 ping_ok a 10.100.0.3
ok $? "TTL 8 again: ping a -> c"

# --- Budget: 50 datagrams a second per source at b ------------------------------
BUDGET=$(pj b '.nat.transit_drop_budget')
GOT=$(pings a 10.100.0.3 300 0.005)
OVER_A=$(pj b '.peers[] | select(.name == "a") | .transit_over_budget')
[ "$(pj b '.nat.transit_drop_budget')" -gt "$BUDGET" ] && [ "${OVER_A:-0}" -gt 0 ]
ok $? "b drops what exceeds a's budget: transit_drop_budget $BUDGET -> $(pj b '.nat.transit_drop_budget'), over budget from a $OVER_A"
[ "${GOT:-0}" -gt 50 ] && [ "${GOT:-0}" -lt 295 ]   # the rate ping reaches depends on the load: only "some, not all"
ok $? "300 pings at 200/s a -> c: ${GOT:-0} answered (the budget's share)"

# --- Equal-cost next hops: b and d, a pick per flow ------------------------------
# flows.py FIRST-PORT FLOWS PER-FLOW GAP: UDP datagrams a -> c's port 9, one flow
# per source port
cat > "$T/flows.py" <<'PY'
import socket, sys, time
first, flows, per, gap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for p in range(first, first + flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.100.0.1", p))
    socks.append(s)
for _ in range(per):
    for s in socks:
        s.sendto(b"flow", ("10.100.0.3", 9))
        time.sleep(gap)
PY
routes_a 8 "0:$I_B 2:$I_D"
fwd_a () { pj "$1" '.peers[] | select(.name == "a") | .transit_forwarded'; }
wait_for 10 in_ns d ping -c 1 -W 1 -q 10.100.0.1 && wait_for 10 in_ns d ping -c 1 -W 1 -q 10.100.0.3
ok $? "d: a -> d and d -> c direct"
B0=$(fwd_a b); D0=$(fwd_a d)
in_ns a python3 "$T/flows.py" 41000 1 20 0.02
B1=$(fwd_a b); D1=$(fwd_a d)
{ [ $((D1 - D0)) -eq 0 ] && [ $((B1 - B0)) -ge 20 ]; } || { [ $((D1 - D0)) -eq 20 ]; }
ok $? "one flow (20 datagrams) takes one next hop: b $((B1 - B0)), d $((D1 - D0))"
in_ns a python3 "$T/flows.py" 42000 32 5 0.02
B2=$(fwd_a b); D2=$(fwd_a d)
[ $((D2 - D1)) -gt 0 ] && [ $((D2 - D1)) -lt 160 ] && [ $((B2 - B1 + D2 - D1)) -ge 160 ]
ok $? "32 flows spread over b and d: b forwarded $((B2 - B1)), d $((D2 - D1)) (keepalives go the first way)"
routes_a 8

# --- routing.transit = false at b -----------------------------------------------
stop_node b
ok $? "b: stopped"
sed -i 's/routing = { transit_packets_per_second = 50; };/routing = { transit = false; };/' "$T/b/node.cfg"
start_node b; ok $? "b: every service READY again, with routing.transit = false"
routes_b
wait_for 15 ping_ok a 10.100.0.2 && wait_for 15 ping_ok c 10.100.0.2
ok $? "a -> b and c -> b direct again"
GOT=$(pings a 10.100.0.3 5 0.1)
[ "${GOT:-0}" -eq 0 ] && [ "$(pj b '.nat.transit_drop_refused')" -ge 5 ] && pj_ok b '.nat.transit == false'
ok $? "b refuses to carry: ${GOT:-0} of 5 pings a -> c, transit_drop_refused $(pj b '.nat.transit_drop_refused')"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
