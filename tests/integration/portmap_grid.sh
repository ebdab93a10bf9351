#!/bin/bash
# portmap_grid: a port mapping is what takes a symmetric x symmetric pair off the
# relay (issue 15: "behind a NAT whose gateway runs miniupnpd, a node gets a
# mapping and the pair goes direct where it could not before"). TAP; design and
# numbers in docs/portmap.md.
#
# The project's NAT grid (natgrid_lib.sh), a registry and a relay on the public
# segment, and six nodes, each behind a `symmetric` router (a new random port
# per destination: no hole punching gets through two of them):
#
#   off-a   router runs miniupnpd, connection.port_mapping = false
#   off-b                          (the pair off-a / off-b: the proof it stays relayed)
#   map-a   router runs miniupnpd, connection.port_mapping = true
#   map-b                          (the pair map-a / map-b: it goes direct)
#   nogw    no miniupnpd at first, connection.port_mapping = true ("no gateway");
#           later its router starts miniupnpd and nogw moves to another address
#           (a new network): it maps at once, not at its next retry, and goes direct
#           with off-b
#   upnp    router runs miniupnpd, port_mapping = true, port_mapping_protocol = "upnp"
#           (UPnP-IGD from the sandboxed nat: SSDP, HTTP; it goes direct with off-b)
#
# The two pairs run side by side (one registry network, so every node knows every
# other; only the pairs named are asserted). Asserted: off-a's router has no
# mapping and off-a / off-b ping through the relay and stay there; map-a reports
# its mapping (bifrostctl status), the registry lists it first among map-a's
# endpoints, map-b's nat has it as map-a's first candidate, map-a / map-b ping
# and are direct both ways within a few seconds of the mapping; miniupnpd's dnat
# for it is in map-a's router and gone once map-a stops; nogw says "no gateway"
# and pings off-b through the relay; upnp maps through UPnP and goes direct with
# off-b. Then map-a moves to another LAN address: it maps again from there and
# map-b, up with it by then, gets the new candidate and goes direct to it again;
# nogw moves at the same time, into a network whose gateway answers now.
#
# miniupnpd (2.3.1, nftables backend) fills chains of table "inet filter" it does
# not create: the test adds them to the grid's router, lets the dnat'ed flows
# through the grid's forward filter, and keeps the router's own traffic out of
# its random-port masquerade, so miniupnpd's STUN check (against
# portmap_probe's responder on the registry host) sees a 1:1 NAT and maps on
# the documentation address (it refuses "reserved" ranges otherwise; see
# tests/integration/portmap_upnp.sh).
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/mesh_lib.sh"
set -u
MINIUPNPD=${MINIUPNPD:-/usr/sbin/miniupnpd}
PROBE=$BIFROST_BUILDDIR/tests/portmap_probe
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (network namespaces)"; exit 0; }
[ -x "$MINIUPNPD" ] || { echo "1..0 # SKIP no $MINIUPNPD (apt-get install miniupnpd-nftables)"; exit 0; }
[ -x "$PROBE" ] || { echo "Bail out! $PROBE is not built (make tests/portmap_probe)"; exit 1; }
# A pair that goes direct does so within this long of the mapping (probes every
# 0.5 s at first; tripled under the sanitizers)
DIRECT_BUDGET_MS=${PORTMAP_GRID_DIRECT_MS:-5000}
[ -n "${ASAN_OPTIONS:-}" ] && DIRECT_BUDGET_MS=$((DIRECT_BUDGET_MS * 3))
T=$(mktemp -d /tmp/portmap-grid-XXXXXX)
chmod 755 "$T"
T0=$(now_ms)

finish () { mesh_end 30 "${PORTMAP_GRID_LOGS:-}"; }
trap finish EXIT

# ---------------------------------------------------------------------------
# The grid
grid_init
grid_public_host reg 203.0.113.10
grid_public_host relay 203.0.113.11
grid_nodes symmetric:off-a symmetric:off-b symmetric:map-a symmetric:map-b symmetric:nogw symmetric:upnp
ok $? "grid: a registry, a relay, six nodes behind symmetric NATs"

# upnp_router NODE: the chains miniupnpd fills, hooked into NODE's router
upnp_router () {
    local rt wan
    rt=$(grid_router "$1"); wan=$(grid_wan "$1")
    ip netns exec "$rt" nft -f - <<NFT
table inet filter {
    chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
    chain miniupnpd { }
    chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
    chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
insert rule ip natgrid filter_fwd iifname "wan" oifname "lan" ct status dnat accept
insert rule ip natgrid nat_post oifname "wan" ip saddr $wan accept
NFT
}
# start_miniupnpd NODE: miniupnpd on NODE's router (UPnP on :5555, NAT-PMP), the
# node's LAN allowed
start_miniupnpd () {
    local rt lan
    rt=$(grid_router "$1"); lan=$(grid_ip "$1"); lan=${lan%.*}
    cat > "$T/miniupnpd.$1.conf" <<CONF
ext_ifname=wan
listening_ip=lan
http_port=5555
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=no
ext_perform_stun=yes
ext_stun_host=203.0.113.10
ext_stun_port=3478
min_lifetime=120
max_lifetime=86400
uuid=fc4ec57e-b051-11db-88f8-0060085db3f$((${#1} % 10))
allow 1024-65535 $lan.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
    grid_spawn "$rt" "$T/miniupnpd.$1.log" "$MINIUPNPD" -d -f "$T/miniupnpd.$1.conf" -P "$T/miniupnpd.$1.pid"
}
dnats () { ip netns exec "$(grid_router "$1")" nft list chain inet filter prerouting_miniupnpd 2>/dev/null | grep dnat; }

grid_spawn reg "$T/stun.log" "$PROBE" stun --lifetime 120 3478
upnp_router off-a && upnp_router map-a && upnp_router upnp && upnp_router nogw
ok $? "miniupnpd's chains on the routers of off-a, map-a, upnp and nogw"
wait_for 5 grep -q '^READY' "$T/stun.log"
start_miniupnpd off-a
start_miniupnpd map-a
start_miniupnpd upnp
stun_ok () { grep -q "is now behind unrestricted full-cone NAT 1:1" "$T/miniupnpd.$1.log"; }
wait_for 10 stun_ok off-a && wait_for 5 stun_ok map-a && wait_for 5 stun_ok upnp
ok $? "miniupnpd on the three routers took their WAN address as public (STUN)"

mesh_relay relay 203.0.113.11 relay-1 1
mesh_registry reg 203.0.113.10 relay-1@203.0.113.11:3479

# ---------------------------------------------------------------------------
# The nodes, all at once
t_start=$(now_ms)
mesh_start_node off-a "port_mapping = false;"
mesh_start_node off-b
mesh_start_node map-a "port_mapping = true;"
MAP_A_PID=${PIDS##* }
mesh_start_node map-b
mesh_start_node nogw "port_mapping = true;"
mesh_start_node upnp "port_mapping = true; port_mapping_protocol = \"upnp\";"
NODES="off-a off-b map-a map-b nogw upnp"
wait_for 30 all_have_vip $NODES
ok $? "six nodes registered ($(( $(now_ms) - t_start )) ms)"
for n in $NODES; do VIP[$n]=$(vip "$n"); done
status () { "$CTL" -r "$T/$1/run" status 2>/dev/null; }

# map-a: the mapping, in bifrostctl status and in miniupnpd's table
MAP_WAN=$(grid_wan map-a)
mapped () { status map-a | grep -qE "^port mapping (natpmp|upnp) $MAP_WAN:[0-9]+ via "; }
wait_for 10 mapped
ok $? "map-a: $(status map-a | grep '^port mapping' || echo 'no port mapping line')"
MAPPED=$(status map-a | sed -n 's/^port mapping [a-z]* \([0-9.:]*\) via .*/\1/p')
MAPPED=${MAPPED:-none}
MAP_MS=$(grep -m1 -o 'port mapping: [a-z]* [0-9.:]* -> port .* took [0-9]* ms' "$T/map-a/bifrostd.log" | sed 's/.*took \([0-9]*\) ms/\1/')
peers_json map-a | jq -e --arg e "$MAPPED" '.nat.port_mapping == "mapped" and .nat.port_mapping_external == $e and .nat.port_mapping_lifetime_left > 3000' >/dev/null
ok $? "map-a: bifrostctl status --json: port_mapping mapped, external $MAPPED, lease ~3600 s"
"$CTL" -r "$T/map-a/run" netcheck --json 2>/dev/null | jq -e --arg e "$MAPPED" \
    '.port_mapping.state == "mapped" and .port_mapping.external == $e and (.port_mapping.protocol | test("natpmp|upnp")) and .port_mapping.gateway != ""' >/dev/null
ok $? "map-a: bifrostctl netcheck shows the gateway: $("$CTL" -r "$T/map-a/run" netcheck 2>/dev/null | grep '^port mapping')"
dnats map-a | grep -q "dport ${MAPPED##*:} dnat ip to $(grid_ip map-a):51820"
ok $? "map-a's router: miniupnpd's dnat ${MAPPED##*:} -> $(grid_ip map-a):51820 ($(dnats map-a | tr -s ' ' | head -1))"
[ -z "$(dnats off-a)" ]
ok $? "off-a's router (miniupnpd too, port_mapping off): no mapping"

# The candidate went through the registry to map-b, first
first_endpoint () { mesh_admin GET /grid/peers | jq -r '.peers[] | select(.name == "map-a") | .endpoints[0]' 2>/dev/null | head -1; }
reg_first () { [ "$(first_endpoint)" = "$MAPPED" ]; }
wait_for 5 reg_first
ok $? "the registry lists $MAPPED first among map-a's endpoints (got '$(first_endpoint)')"
b_knows () { grep -qE "peer map-a: (added as index [0-9]+, endpoint $MAPPED|new endpoints, first $MAPPED)" "$T/map-b/bifrostd.log"; }
wait_for 5 b_knows
ok $? "map-b's nat has $MAPPED as map-a's first candidate ($(grep -m1 -oE "peer map-a: (added as index [0-9]+, endpoint|new endpoints, first) $MAPPED" "$T/map-b/bifrostd.log"))"

# nogw: no gateway answered, said clearly
nogw_failed () { status nogw | grep -q "^port mapping failed: no gateway: "; }
wait_for 10 nogw_failed
ok $? "nogw: $(status nogw | grep '^port mapping' || echo 'no port mapping line')"

# upnp: UPnP-IGD from the sandboxed nat (SSDP search, description, SOAP)
UPNP_WAN=$(grid_wan upnp)
UPNP_GW=$(grid_ip upnp); UPNP_GW=${UPNP_GW%.*}.1:5555
upnp_mapped () { status upnp | grep -q "^port mapping upnp $UPNP_WAN:51820 via $UPNP_GW, "; }
wait_for 10 upnp_mapped
ok $? "upnp: $(status upnp | grep '^port mapping' || echo 'no port mapping line')"
UPNP_MS=$(grep -m1 -o 'port mapping: upnp [0-9.:]* -> port .* took [0-9]* ms' "$T/upnp/bifrostd.log" | sed 's/.*took \([0-9]*\) ms/\1/')

# ---------------------------------------------------------------------------
# The pairs: pings, then paths
path_is () { [[ "$(peer_path "$1" "$2")" == $3 ]]; }
wait_for 10 pair_pings map-a map-b
ok $? "map-a <-> map-b: a ping crosses both ways"
direct_both () { path_is map-a map-b direct && path_is map-b map-a direct; }
wait_for 10 direct_both
ok $? "map-a <-> map-b: direct both ways (map-a: '$(peer_path map-a map-b)', map-b: '$(peer_path map-b map-a)')"
d=$(log_ms "$T/map-b/bifrostd.log" "peer map-a: endpoint $MAPPED")
m=$(log_ms "$T/map-a/bifrostd.log" "port mapping: [a-z]+ $MAPPED")
r=$(log_ms "$T/map-b/bifrostd.log" "registered in grid as map-b ")
first=$(grep -m1 -oE "nat\.1\[[0-9]+\]: peer map-a: endpoint [^ ]+" "$T/map-b/bifrostd.log" | awk '{ print $5 }')
DIRECT_MS=-1
[ -n "$d" ] && [ -n "$m" ] && DIRECT_MS=$(( d - (m > r ? m : r) ))
[ "$DIRECT_MS" -ge 0 ] && [ "$DIRECT_MS" -le "$DIRECT_BUDGET_MS" ]
ok $? "map-b reached map-a at $MAPPED $DIRECT_MS ms after both the mapping and its registration (budget $DIRECT_BUDGET_MS ms; first endpoint $first)"
grid_exec map-b ping -c 3 -i 0.05 -W 1 -q "${VIP[map-a]}" >/dev/null 2>&1
ok $? "map-b -> map-a: pings cross on the direct path"

wait_for 10 pair_pings off-a off-b
ok $? "off-a <-> off-b: a ping crosses both ways"
wait_for 10 pair_pings nogw off-b
ok $? "nogw <-> off-b: a ping crosses both ways"
# By now map-a / map-b went direct; the pairs without a mapping had as long
relayed () { path_is "$1" "$2" "relay relay-1" && path_is "$2" "$1" "relay relay-1"; }
relayed off-a off-b
ok $? "off-a <-> off-b (no mapping) stay on the relay ('$(peer_path off-a off-b)', '$(peer_path off-b off-a)')"
relayed nogw off-b
ok $? "nogw <-> off-b (no gateway) stay on the relay ('$(peer_path nogw off-b)', '$(peer_path off-b nogw)')"
upnp_direct () { pair_pings upnp off-b && path_is upnp off-b direct && path_is off-b upnp direct; }
wait_for 10 upnp_direct
ok $? "upnp <-> off-b (UPnP mapping on one side): a ping crosses, direct both ways ('$(peer_path upnp off-b)', '$(peer_path off-b upnp)')"

# ---------------------------------------------------------------------------
# map-a moves to another LAN address (a new DHCP lease): its mapping forwards to
# an address it no longer has. nat sees the move (it looks every 5 s), maps
# again from the new address, and the new candidate reaches map-b, which is up
# by then (the old direct path died: map-a's packets leave from another
# address now, through a new random port) and probes it first: direct again.
# At the same time nogw's router gets a miniupnpd and nogw moves too: its
# failed mapping is tried again at once (its next retry is 30 s away)
start_miniupnpd nogw
wait_for 10 stun_ok nogw
ok $? "miniupnpd on nogw's router now"
readdress () {   # readdress NODE NEW-IP
    local old
    old=$(grid_ip "$1")
    grid_exec "$1" ip -b - <<IP
addr del $old/24 dev eth0
addr add $2/24 dev eth0
route add default via ${old%.*}.1
IP
}
OLD_IP=$(grid_ip map-a); NEW_IP=${OLD_IP%.*}.3
NOGW_IP=$(grid_ip nogw); NOGW_IP=${NOGW_IP%.*}.3
t_move=$(now_ms)
readdress map-a "$NEW_IP" && readdress nogw "$NOGW_IP"
ok $? "map-a moved from $OLD_IP to $NEW_IP, nogw to $NOGW_IP"
remapped () { status map-a | grep -qE "^port mapping (natpmp|upnp) $MAP_WAN:[0-9]+ via " && dnats map-a | grep -q "dnat ip to $NEW_IP:51820"; }
wait_for 10 remapped
ok $? "map-a mapped again for $NEW_IP after $(( $(now_ms) - t_move )) ms: $(status map-a | grep '^port mapping') ($(dnats map-a | grep -o "dport [0-9]* dnat ip to $NEW_IP:51820"))"
MAPPED2=$(status map-a | sed -n 's/^port mapping [a-z]* \([0-9.:]*\) via .*/\1/p')
MAPPED2=${MAPPED2:-none}
b_knows2 () { grep -qE "peer map-a: (added as index [0-9]+, endpoint|new endpoints, first) $MAPPED2" "$T/map-b/bifrostd.log"; }
wait_for 5 b_knows2
ok $? "map-b has the new candidate $MAPPED2 first ($(grep -oE "peer map-a: new endpoints, first [0-9.]+:[0-9]+" "$T/map-b/bifrostd.log" | tail -1))"
at_new () { peers_json map-b | jq -e --arg e "$MAPPED2" '.peers[] | select(.name == "map-a") | .path == "direct" and .endpoint == $e' >/dev/null 2>&1; }
pings_and_direct () { pair_pings map-a map-b && at_new; }
wait_for 15 pings_and_direct
ok $? "map-a <-> map-b: direct again at $MAPPED2 and a ping crosses, $(( $(now_ms) - t_move )) ms after the move (map-b: '$(peer_path map-b map-a)' at $(peers_json map-b | jq -r '.peers[] | select(.name == "map-a") | .endpoint'))"
MOVE_MS=$(( $(now_ms) - t_move ))
NOGW_WAN=$(grid_wan nogw)
nogw_mapped () { status nogw | grep -qE "^port mapping (natpmp|upnp) $NOGW_WAN:51820 via " \
                  && grep -q "address moved from .* (a new network): mapping again" "$T/nogw/bifrostd.log"; }
wait_for 10 nogw_mapped
ok $? "nogw mapped $(( $(now_ms) - t_move )) ms after its move, not at its next retry: $(status nogw | grep '^port mapping')"
nogw_direct () { pair_pings nogw off-b && path_is nogw off-b direct && path_is off-b nogw direct; }
wait_for 15 nogw_direct
ok $? "nogw <-> off-b: a ping crosses, direct both ways now ('$(peer_path nogw off-b)', '$(peer_path off-b nogw)'), $(( $(now_ms) - t_move )) ms after the move"

# ---------------------------------------------------------------------------
# map-a stops: the mapping is deleted at the gateway
t_stop=$(now_ms)
kill -TERM "$MAP_A_PID"
no_dnat () { ! dnats map-a | grep -q "to $NEW_IP:"; }
wait_for 10 no_dnat
ok $? "map-a stopped: miniupnpd's dnat is gone after $(( $(now_ms) - t_stop )) ms"

echo "# mapping made in ${MAP_MS:-?} ms (UPnP: ${UPNP_MS:-?} ms); map-b direct to map-a $DIRECT_MS ms after the mapping and its registration; direct again $MOVE_MS ms after map-a's move; total $(( $(now_ms) - T0 )) ms"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
