#!/bin/bash
# The NAT grid's kinds behave as declared, proved with real UDP (and TCP) traffic:
# for every kind a node behind its own router asks probe servers on the public
# segment which address and port they saw (mapping), and gets unsolicited packets
# from a third host and from another port of a contacted host (filtering). Also: no
# LAN reaches another LAN, and two routers of one kind with the same LAN stay apart.
# The kinds run in parallel. (TAP; docs/testing-nat.md shows the numbers.)
set -u
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
PROBE=$BIFROST_BUILDDIR/tests/natprobe
T=$(mktemp -d /tmp/natgrid-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
trap 'rm -rf "$T"' EXIT
. "$BIFROST_SRCDIR/tests/integration/natgrid_lib.sh"
[ -x "$PROBE" ] || { echo "Bail out! $PROBE is not built (make tests/natprobe)"; exit 1; }
T0=$(now_ms)

# Public segment: A and B answer probes (A on two ports), C is the stranger
A=203.0.113.10; B=203.0.113.11; C=203.0.113.12
grid_init
grid_public_host A $A
grid_public_host B $B
grid_public_host C $C
grid_nodes $(for k in $GRID_KINDS; do echo "$k:$k"; done)
# Two routers of one kind, both LANs 192.168.7.0/24
grid_nodes port-restricted:twin1:192.168.7 port-restricted:twin2:192.168.7
echo "# grid of $((GRID_N)) routers and 3 public hosts built in $(( $(now_ms) - T0 )) ms"

grid_spawn A "$T/echo.A" "$PROBE" echo --tcp --lifetime 120 3478 3479
grid_spawn B "$T/echo.B" "$PROBE" echo --lifetime 120 3478
grid_spawn C "$T/echo.C" "$PROBE" echo --lifetime 120 3478
# The carrier of cgnat answers on its inner address too: the first layer's mapping
grid_spawn "$(grid_carrier cgnat)" "$T/echo.carrier" "$PROBE" echo --lifetime 120 3478
# A server inside the full-cone LAN (the most open kind), for the isolation checks
grid_spawn full-cone "$T/echo.lan" "$PROBE" echo --lifetime 120 5000
ready () { grep -q '^READY' "$1"; }
wait_for 5 ready "$T/echo.A" && wait_for 5 ready "$T/echo.B" && wait_for 5 ready "$T/echo.C" \
    && wait_for 5 ready "$T/echo.carrier" && wait_for 5 ready "$T/echo.lan"
ok $? "probe servers on A ($A:3478, :3479), B, C, the cgnat carrier and in a LAN are up"

# probe_kind NAME: every measurement of one node, into $T/NAME.*; run in the background
probe_kind () {
    # Deadlines are generous for what must arrive (a loaded machine is slow; the
    # answer ends the wait) and short for udp-blocked, whose 4 timeouts are expected
    local k=$1 m p wait=2000
    [ "$k" = udp-blocked ] && wait=300
    # Mapping: one socket (port 40000) to A:3478, A:3479, B:3478, then A:3478 again
    grid_exec "$k" "$PROBE" send --from-port 40000 --timeout $wait $A:3478 $A:3479 $B:3478 $A:3478 > "$T/$k.map" 2>&1
    grid_exec "$k" "$PROBE" send --tcp --timeout 3000 $A:3478 > "$T/$k.tcp" 2>&1
    grid_exec "$k" ping -c 1 -W 1 -q $A > /dev/null 2>&1; echo $? > "$T/$k.ping"
    [ "$k" = cgnat ] && grid_exec "$k" "$PROBE" send --from-port 40000 --timeout $wait "$(grid_carrier_ip cgnat):3478" > "$T/$k.inner" 2>&1
    [ "$k" = udp-blocked ] && return 0
    # Filtering: port 40001 sends to A:3478 only, then listens; C:3478 and A:3479
    # send to the mapped address, and last A:3478 (always allowed) says STOP
    # (the listen deadline only bounds a failure: STOP ends it)
    grid_exec "$k" "$PROBE" send --from-port 40001 --timeout $wait --listen 15000 $A:3478 > "$T/$k.filt" 2>&1 &
    p=$!
    if wait_for 10 grep -q '^LISTENING' "$T/$k.filt"; then
        m=$(awk '$1 == "MAPPED" { print $3 }' "$T/$k.filt")
        if [ -n "$m" ]; then
            grid_exec C "$PROBE" relay --timeout 3000 127.0.0.1:3478 "$m" THIRD-HOST; echo "third $?" >> "$T/$k.relay"
            grid_exec A "$PROBE" relay --timeout 3000 127.0.0.1:3479 "$m" OTHER-PORT; echo "other $?" >> "$T/$k.relay"
            grid_exec A "$PROBE" relay --timeout 3000 127.0.0.1:3478 "$m" STOP; echo "stop $?" >> "$T/$k.relay"
        fi
    fi
    wait $p
}
t1=$(now_ms)
jobs=""
for k in $GRID_KINDS twin1 twin2; do probe_kind "$k" & jobs="$jobs $!"; done
# Isolation, meanwhile: the LAN server answers its own router, and nobody else
grid_exec "$(grid_router full-cone)" "$PROBE" send --timeout 2000 "$(grid_ip full-cone):5000" > "$T/iso.router" 2>&1
ok $? "isolation control: the server in full-cone's LAN answers its own router"
grid_exec port-restricted "$PROBE" send --timeout 600 "$(grid_ip full-cone):5000" > "$T/iso.lan" 2>&1
ok $(( $? == 0 )) "isolation: another LAN (port-restricted's) cannot reach full-cone's LAN server"
grid_exec port-restricted ping -c 1 -W 1 -q "$(grid_ip full-cone)" > /dev/null 2>&1
ok $(( $? == 0 )) "isolation: another LAN cannot ping full-cone's LAN address"
# Even a public host that routes the LAN through the router's public address
grid_exec C ip route add "$(grid_ip full-cone | sed 's/\.[0-9]*$/.0/')/24" via "$(grid_wan full-cone)"
grid_exec C "$PROBE" send --timeout 600 "$(grid_ip full-cone):5000" > "$T/iso.pub" 2>&1
ok $(( $? == 0 )) "isolation: a public host routing via full-cone's router cannot reach its LAN"
for j in $jobs; do wait "$j"; done
echo "# probes of every kind in parallel: $(( $(now_ms) - t1 )) ms"

# Results --------------------------------------------------------------------
mapped () { awk -v s="$2" '$1 == "MAPPED" && $2 == s { print $3 }' "$1" | head -1; }
mapped_all () { awk '$1 == "MAPPED" { print $3 }' "$1" | paste -sd ' '; }
arrived () { grep -q "^FROM [0-9.:]* $2\$" "$1"; }
port () { echo "${1##*:}"; }
addr () { echo "${1%%:*}"; }

for k in $GRID_KINDS; do
    wan=$(grid_wan "$k")
    m1=$(mapped "$T/$k.map" $A:3478); m2=$(mapped "$T/$k.map" $A:3479); m3=$(mapped "$T/$k.map" $B:3478)
    m4=$(awk '$1 == "MAPPED" { print $3 }' "$T/$k.map" | sed -n 4p)
    echo "# $k: from $(grid_ip "$k"):40000 A:3478 A:3479 B:3478 A:3478 saw: $(mapped_all "$T/$k.map")"
    ok "$(cat "$T/$k.ping")" "$k: ICMP passes (ping $A)"
    tcp=$(mapped "$T/$k.tcp" $A:3478)
    [ "$(addr "$tcp")" = "$wan" ]
    ok $? "$k: TCP passes, A sees the public address $wan (saw ${tcp:-nothing})"

    if [ "$k" = udp-blocked ]; then
        [ "$(grep -c '^TIMEOUT' "$T/$k.map")" -eq 4 ] && ! grep -q '^MAPPED' "$T/$k.map"
        ok $? "udp-blocked: no UDP probe is answered (4 of 4 time out)"
        continue
    fi

    [ -n "$m1" ] && [ -n "$m2" ] && [ -n "$m3" ] && [ "$(addr "$m1")" = "$wan" ] && [ "$(addr "$m2")" = "$wan" ] && [ "$(addr "$m3")" = "$wan" ]
    ok $? "$k: every UDP probe answered, from the public address $wan"
    p1=$(port "$m1"); p2=$(port "$m2"); p3=$(port "$m3"); p4=$(port "$m4")
    case "$k" in
        none|full-cone|restricted|port-restricted)
            [ "$p1" = 40000 ] && [ "$p2" = 40000 ] && [ "$p3" = 40000 ]
            ok $? "$k: endpoint-independent mapping, port kept: 40000 to all three ($p1 $p2 $p3)" ;;
        symmetric|cgnat-sym)
            [ "$p1" != "$p2" ] && [ "$p1" != "$p3" ] && [ "$p2" != "$p3" ] && [ "$p4" = "$p1" ]
            ok $? "$k: endpoint-dependent mapping, a new port per destination ($p1 $p2 $p3; A:3478 again: $p4)" ;;
        symmetric-seq)
            [ -n "$p1" ] && [ "$p2" = $((p1 + 1)) ] && [ "$p3" = $((p2 + 1)) ] && [ "$p4" = "$p1" ]
            ok $? "symmetric-seq: endpoint-dependent mapping, sequential ports ($p1 $p2 $p3; A:3478 again: $p4)" ;;
        cgnat)
            lo=${GRID_CARRIER_PORTS%-*}; hi=${GRID_CARRIER_PORTS#*-}
            [ "$p1" = "$p2" ] && [ "$p2" = "$p3" ] && [ "$p1" -ge "$lo" ] && [ "$p1" -le "$hi" ]
            ok $? "cgnat: endpoint-independent mapping by the carrier, one port from $GRID_CARRIER_PORTS ($p1 $p2 $p3)" ;;
    esac
    if [ "$k" = cgnat ] || [ "$k" = cgnat-sym ]; then
        lo=${GRID_CARRIER_PORTS%-*}; hi=${GRID_CARRIER_PORTS#*-}
        [ "$p1" -ge "$lo" ] && [ "$p1" -le "$hi" ] && [ "$p3" -ge "$lo" ] && [ "$p3" -le "$hi" ]
        ok $? "$k: two layers: the carrier ($wan) translated the port too, into $GRID_CARRIER_PORTS (40000 -> $p1, $p3)"
    fi
    if [ "$k" = cgnat ]; then
        inner=$(mapped "$T/$k.inner" "$(grid_carrier_ip cgnat):3478")
        home=$(grid_carrier_ip cgnat); home=${home%.1}.2
        [ "$inner" = "$home:40000" ]
        ok $? "cgnat: first layer: the carrier's inner side sees the home router's $home, port kept (${inner:-nothing})"
    fi

    # Filtering, as RFC 4787 names it
    third=no; other=no
    arrived "$T/$k.filt" THIRD-HOST && third=yes
    arrived "$T/$k.filt" OTHER-PORT && other=yes
    arrived "$T/$k.filt" STOP; rc=$?
    ok $rc "$k: filtering control: the contacted endpoint A:3478 reaches the mapping ($(mapped_all "$T/$k.filt"))"
    [ "$rc" = 0 ] || sed 's/^/#   /' "$T/$k.filt" "$T/$k.relay" 2>/dev/null
    case "$k" in
        none|full-cone)             want_third=yes; want_other=yes; what="endpoint-independent filtering" ;;
        restricted)                 want_third=no;  want_other=yes; what="address-dependent filtering" ;;
        *)                          want_third=no;  want_other=no;  what="address-and-port-dependent filtering" ;;
    esac
    [ "$third" = "$want_third" ] && [ "$other" = "$want_other" ]
    ok $? "$k: $what: third host arrives: $third (want $want_third), A from another port: $other (want $want_other)"
done

# Two routers of one kind, one LAN prefix: both work, each with its own public address
t1=$(mapped "$T/twin1.map" $A:3478); t2=$(mapped "$T/twin2.map" $A:3478)
[ "$(grid_ip twin1)" = 192.168.7.2 ] && [ "$(grid_ip twin2)" = 192.168.7.2 ] \
    && [ "$(addr "$t1")" = "$(grid_wan twin1)" ] && [ "$(addr "$t2")" = "$(grid_wan twin2)" ] && [ "$(addr "$t1")" != "$(addr "$t2")" ]
ok $? "two port-restricted routers, both LANs 192.168.7.0/24: A sees $t1 and $t2"

echo "# natgrid_kinds: $(( $(now_ms) - T0 )) ms in all"
[ "$FAILED" -eq 0 ] || grid_show
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
