#!/bin/bash
# tap_routed: a layer-2 (TAP) virtual LAN across a routed hop (issue 18): a
# registry and three nodes a, b, c on TAP devices, nftables drops everything
# between a and c on the underlay, so whatever a sends c (and back) crosses b in
# a routing header. What a LAN needs works across the hop:
#   - ARP: a pings c's virtual address; a's neighbour table holds c's MAC
#   - IPv6 neighbour discovery: a pings c's link-local fe80::...%bifrost0
#   - DHCP: dnsmasq on c serves a range of the TAP subnet, dhclient on a gets a
#     lease from it; the leased address works
#   - mDNS: avahi-daemon on a and c (each with a private D-Bus system bus and
#     its own /run, in its namespace); c publishes c-host, a resolves
#     c-host.local to c's TAP address with avahi-resolve
#   - broadcast: five UDP broadcasts and one ARP request (a layer-2 broadcast
#     frame) from a reach b and c exactly once each
# Points the data path cannot pass yet are TODO points with their reason (see
# TODO_LINK below). Every process the test starts runs in a namespace it made
# and is ended with it. About 40 s. (TAP: the Test Anything Protocol's output,
# as every test here.)
# Left out of the sanitizer build's suite (the suite's 20 minutes): its crypto and device paths run under ASan in crypto_selftest and
# node_tap, and most of its time is avahi, dnsmasq and dhclient.
if [ -n "${ASAN_OPTIONS:-}" ]; then echo "1..0 # SKIP TAP across a hop with LAN services: release build only"; exit 0; fi
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

export BIFROST_ADMIN_TOKEN=admin-$ID-secret
REGPID=
XPIDS=""            # what this test starts beside the nodes (dnsmasq, dhclient, dbus, avahi)
# (started with ip netns exec, not in_ns: a function run in the background is a
# subshell, and $! would be its pid; ip exec's the command, so $! is the command)
tr_cleanup () {
    local f
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*/dnsmasq.log "$T"/*/dhclient.log "$T"/*/avahi.log "$T"/*/dbus.log; do
            [ -r "$f" ] || continue
            echo "# ---- $f (last 15 lines)"
            tail -15 "$f" | sed 's/^/#   /'
        done
    fi
    disc_cleanup $XPIDS     # node_cleanup also kills anything left in the namespaces, then deletes them
}
trap tr_cleanup EXIT

# crypto checks the inner source of every TAP frame (services/crypto/
# crypto_node.c, s_source_allowed): the sending peer's allowed_ips, what the
# link itself sends from no peer's address (a DHCP client's 0.0.0.0, IPv6
# link-local and ::), and on TAP any address no other peer owns (a lease
# from a DHCP server on the virtual LAN). No point is a TODO any more; the
# mechanism stays for the next thing the data path cannot carry.
TODO_LINK=""
TODO_LEASE=""
# expect STATUS DESCRIPTION REASON: a test point, or with a REASON a TODO point
# that does not count as a failure
expect () {
    [ -z "$3" ] && { ok "$1" "$2"; return; }
    TESTNO=$((TESTNO + 1))
    if [ "$1" -eq 0 ]; then echo "ok $TESTNO - $2 # TODO $3"; else echo "not ok $TESTNO - $2 # TODO $3"; fi
}

for t in dnsmasq dhclient avahi-daemon avahi-resolve dbus-daemon nft python3; do
    command -v "$t" >/dev/null || { echo "1..0 # SKIP $t not installed (scripts/install-deps.sh)"; exit 0; }
done

disc_underlay reg a b c
disc_registry taproute
ok $? "registry on 192.0.2.10:7080, network taproute and a join token"

# a and c cannot reach each other on the underlay (the registry they both can)
disc_block bfroute a c
ok $? "nftables drops every datagram between a and c"

vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 scope global 2>/dev/null | awk 'NR == 1 { sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }
mac () { in_ns "$1" cat /sys/class/net/bifrost0/address 2>/dev/null; }
# neigh NODE ADDR: the MAC the neighbour table holds for ADDR on bifrost0
neigh () { in_ns "$1" ip neigh show "$2" dev bifrost0 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }
for n in a b c; do DISC_DEVICE=tap disc_node_cfg "$T/$n" "$n" taproute "$RURL"; done
for n in a b c; do start_node $n; ok $? "node $n: every service READY"; done
for n in a b c; do wait_for 15 has_vip $n; done
VA=$(vip a); VB=$(vip b); VC=$(vip c)
in_ns a ip -d link show bifrost0 2>/dev/null | grep -q link/ether && [ -n "$VA" ] && [ -n "$VB" ] && [ -n "$VC" ]
ok $? "TAP devices with addresses from the registry: a $VA, b $VB, c $VC"
wait_for 15 ping_ok a "$VB" && wait_for 15 ping_ok c "$VB"
ok $? "a -> b and c -> b direct"
pj () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
routed_session () { [ "$(pj a '.peers[] | select(.name == "c") | .session')" = true ]; }
t0=$(now_ms)
wait_for 30 routed_session
ok $? "a's session with c is up through b, after $(( $(now_ms) - t0 )) ms"

# ---- ARP across the hop
MAC_C=$(mac c)
[ -z "$(neigh a "$VC")" ]
ok $? "a: no neighbour entry for c ($VC) before the first ping"
t0=$(now_ms)
wait_for 15 ping_ok a "$VC"
ok $? "ping a -> c over TAP through b, first answer after $(( $(now_ms) - t0 )) ms (ARP included)"
[ -n "$MAC_C" ] && [ "$(neigh a "$VC")" = "$MAC_C" ]
ok $? "a: ARP resolved $VC across the hop to c's MAC ($(neigh a "$VC"), c has $MAC_C)"
in_ns a ping -c 20 -i 0.05 -W 1 -q "$VC" > "$T/ping4" 2>&1
grep -q " 0% packet loss" "$T/ping4" && [ "$(pj a '.peers[] | select(.name == "c") | .routed_via')" = b ]
ok $? "20 pings a -> c, none lost, through b: rtt min/avg/max/mdev $(awk '/^rtt/ { print $4 }' "$T/ping4") ms"

# ---- IPv6 neighbour discovery across the hop (c's link-local address)
ll () { in_ns "$1" ip -o -6 addr show dev bifrost0 scope link 2>/dev/null | awk 'NR == 1 { sub("/.*", "", $4); print $4 }'; }
# the link-local address is usable once its duplicate address detection is over
ll_ready () { [ -n "$(ll "$1")" ] && ! in_ns "$1" ip -6 addr show dev bifrost0 scope link | grep -q tentative; }
wait_for 10 ll_ready a && wait_for 10 ll_ready c
LLC=$(ll c)
t0=$(now_ms)
ping6_ok () { in_ns a ping -6 -c 1 -W 1 -q "$LLC%bifrost0" >/dev/null 2>&1; }
wait_for 8 ping6_ok
expect $? "ping a -> c's link-local $LLC%bifrost0 through b, first answer after $(( $(now_ms) - t0 )) ms (neighbour discovery included)" "$TODO_LINK"
[ "$(neigh a "$LLC")" = "$MAC_C" ]
expect $? "a: neighbour discovery resolved $LLC to c's MAC ($(neigh a "$LLC"))" "$TODO_LINK"
in_ns a ping -6 -c 20 -i 0.05 -W 1 -q "$LLC%bifrost0" > "$T/ping6" 2>&1
grep -q " 0% packet loss" "$T/ping6"
expect $? "20 pings a -> $LLC, none lost: rtt min/avg/max/mdev $(awk '/^rtt/ { print $4 }' "$T/ping6") ms" "$TODO_LINK"

# ---- DHCP on the virtual LAN: dnsmasq on c serves 10.100.0.200-209 (outside
# what the registry hands out from the bottom of 10.100.0.0/24), dhclient on a
# asks on bifrost0. dhclient's own script is not used: it would rewrite the
# machine's /etc/resolv.conf; ours adds the address and notes the lease.
ip netns exec "$(ns_of c)" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=bifrost0 --bind-interfaces \
    --dhcp-range=10.100.0.200,10.100.0.209,255.255.255.0,2m --dhcp-authoritative --dhcp-leasefile="$T/c/dnsmasq.leases" \
    --pid-file="$T/c/dnsmasq.pid" --log-dhcp --log-facility="$T/c/dnsmasq.log" >>"$T/c/dnsmasq.log" 2>&1 &
XPIDS="$XPIDS $!"
cat > "$T/a/dhclient.script" <<SH
#!/bin/sh
case "\$reason" in BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr add "\$new_ip_address/\$new_subnet_mask" dev "\$interface"
    echo "\$new_ip_address \$new_dhcp_server_identifier \$new_dhcp_lease_time" > "$T/a/dhcp.bound" ;;
esac
exit 0
SH
chmod 755 "$T/a/dhclient.script"
printf 'timeout 12;\ninitial-interval 1;\n' > "$T/a/dhclient.conf"
wait_for 5 in_ns c sh -c 'ss -lun | grep -q ":67 "'
t0=$(now_ms)
ip netns exec "$(ns_of a)" dhclient -4 -d -1 -v -cf "$T/a/dhclient.conf" -sf "$T/a/dhclient.script" -lf "$T/a/dhclient.leases" \
    -pf "$T/a/dhclient.pid" bifrost0 >>"$T/a/dhclient.log" 2>&1 &
XPIDS="$XPIDS $!"
wait_for 14 test -s "$T/a/dhcp.bound"; rc=$?; tlease=$(( $(now_ms) - t0 ))
LEASE= LSERVER= LTIME=
read -r LEASE LSERVER LTIME < "$T/a/dhcp.bound" 2>/dev/null
case "$LEASE" in 10.100.0.20[0-9]) in_range=0 ;; *) in_range=1 ;; esac
[ "$rc" -eq 0 ] && [ "$in_range" -eq 0 ] && [ "$LSERVER" = "$VC" ]
expect $? "DHCP across the hop: a got ${LEASE:-no lease} from c's range (server ${LSERVER:-none}, ${LTIME:-?} s) after $tlease ms" "$TODO_LINK"
ping_from_lease () { in_ns a ping -c 1 -W 1 -q -I "$LEASE" "$VC" >/dev/null 2>&1; }
[ -n "$LEASE" ] && grep -q "$LEASE" "$T/c/dnsmasq.leases"
expect $? "c's lease file holds a's lease ${LEASE:-none}" "$TODO_LINK"
[ -n "$LEASE" ] && wait_for 3 ping_from_lease
expect $? "a's leased address ${LEASE:-none} works: ping c from it" "$TODO_LEASE"

# ---- mDNS: avahi-daemon on a and c, each with a private D-Bus system bus (for
# avahi-resolve) and its own /run (avahi's pid file and socket have fixed
# paths), in its node's namespace
avahi_start () {   # avahi_start NODE HOSTNAME
    local d="$T/$1"
    cat > "$d/dbus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/dbus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow user="root"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy>
</busconfig>
XML
    cat > "$d/avahi.conf" <<CONF
[server]
host-name=$2
use-ipv4=yes
use-ipv6=no
allow-interfaces=bifrost0
enable-dbus=yes
[publish]
publish-hinfo=no
publish-workstation=no
CONF
    ip netns exec "$(ns_of "$1")" dbus-daemon --config-file="$d/dbus.conf" --nofork --nopidfile >>"$d/dbus.log" 2>&1 &
    XPIDS="$XPIDS $!"
    wait_for 5 test -S "$d/dbus.sock" || return 1
    ip netns exec "$(ns_of "$1")" unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon &&
        DBUS_SYSTEM_BUS_ADDRESS="unix:path=$1/dbus.sock" exec avahi-daemon -f "$1/avahi.conf" --no-drop-root --no-chroot --no-rlimits' \
        avahi "$d" >>"$d/avahi.log" 2>&1 &
    XPIDS="$XPIDS $!"
    wait_for 10 grep -q "Server startup complete" "$d/avahi.log"
}
avahi_start c c-host && avahi_start a a-host
ok $? "avahi-daemon on a (a-host) and c (c-host), each on its own D-Bus"
resolve () { in_ns a env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/a/dbus.sock" avahi-resolve -4 -n c-host.local 2>/dev/null; }
resolved () { [ "$(resolve | awk '{ print $2 }')" = "$VC" ]; }
t0=$(now_ms)
wait_for 15 resolved; rc=$?; tres=$(( $(now_ms) - t0 ))
ok $rc "mDNS across the hop: a resolves c-host.local to $VC after $tres ms"
t0=$(now_ms)
in_ns a env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/a/dbus.sock" avahi-resolve -4 -n c-host.local >/dev/null 2>&1
echo "# a second resolve (from avahi's cache): $(( $(now_ms) - t0 )) ms"

# ---- Broadcast across the hop, each copy counted: 5 numbered UDP datagrams to
# the subnet broadcast, and one ARP request for an address nobody has (a layer-2
# broadcast frame), from a; b (direct) and c (through b) each get each once
BCAST=$(in_ns a ip -o -4 addr show dev bifrost0 scope global | awk 'NR == 1 { for (i = 1; i < NF; i++) if ($i == "brd") print $(i + 1) }')
LPIDS=
# listen NODE: for 4 s, the UDP datagrams to port 7001 ("udp msg-N") and the
# ARP requests for 10.100.0.250 ("arp") that reach bifrost0, one line each
listen () {
    in_ns "$1" python3 - > "$T/$1.got" 2>&1 <<'PY' &
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
u.bind(("", 7001))
u.setblocking(False)
r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
r.bind(("bifrost0", 0))
r.setblocking(False)
target = socket.inet_aton("10.100.0.250")
end = time.time() + 4
while time.time() < end:
    try:
        print("udp", u.recv(2048).decode(), flush=True)
    except BlockingIOError:
        pass
    try:
        f = r.recv(2048)
        if len(f) >= 42 and f[20:22] == b"\x00\x01" and f[38:42] == target:
            print("arp", flush=True)
    except BlockingIOError:
        pass
    time.sleep(0.002)
PY
    LPIDS="$LPIDS $!"
}
listen b; listen c
sleep 0.5
in_ns a python3 - "$BCAST" "$VA" <<'PY'
import socket, sys, time
bcast, src = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"bifrost0")
for k in range(5):
    s.sendto(("msg-%d" % k).encode(), (bcast, 7001))
    time.sleep(0.1)
# one ARP request, who-has 10.100.0.250, from a's MAC and address, to ff:ff:ff:ff:ff:ff
r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
r.bind(("bifrost0", 0))
mac = bytes.fromhex(open("/sys/class/net/bifrost0/address").read().strip().replace(":", ""))
arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + socket.inet_aton(src) + b"\x00" * 6 + socket.inet_aton("10.100.0.250")
r.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
PY
wait $LPIDS; LPIDS=
udp () { grep -c '^udp msg-' "$T/$1.got"; }
udp_distinct () { grep '^udp msg-' "$T/$1.got" | sort -u | wc -l; }
arps () { grep -c '^arp' "$T/$1.got"; }
[ "$(udp b)" = 5 ] && [ "$(udp_distinct b)" = 5 ] && [ "$(udp c)" = 5 ] && [ "$(udp_distinct c)" = 5 ]
ok $? "5 UDP broadcasts from a to $BCAST: b got $(udp b) ($(udp_distinct b) distinct), c through b got $(udp c) ($(udp_distinct c) distinct)"
[ "$(arps b)" = 1 ] && [ "$(arps c)" = 1 ]
ok $? "one ARP broadcast frame from a: b got $(arps b) copy, c through b $(arps c)"
echo "# crypto's drops of frames as spoofed: a $(pj a .crypto.spoofed), b $(pj b .crypto.spoofed), c $(pj c .crypto.spoofed)"

# ---- A TAP network takes addresses no peer owns (the lease above), never
# another peer's: a speaks from b's address to c, c drops it as spoofed
SPOOFED=$(pj c .crypto.spoofed)
in_ns a ip addr add "$VB/32" dev bifrost0
in_ns a ping -c 3 -i 0.2 -W 1 -I "$VB" -q "$VC" >/dev/null 2>&1
ok $(( $? == 0 )) "ping a -> c from b's address $VB is not answered"
spoof_counted () { [ "$(pj c .crypto.spoofed)" -ge $(( ${SPOOFED:-0} + 1 )) ]; }
wait_for 5 spoof_counted
ok $? "c drops a's frames from b's address as spoofed (${SPOOFED:-?} -> $(pj c .crypto.spoofed))"
in_ns a ip addr del "$VB/32" dev bifrost0

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
