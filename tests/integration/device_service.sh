#!/bin/sh
# device_service.sh: the real bifrost-device in a network namespace of its own,
# with a real broker and dev_pipe_probe playing crypto on the data pipes
# (docs/packet-path.md). TUN: ping a peer through the pipes, unknown destination
# dropped and counted, kill -9 and restart, SIGTERM removes the interface. TAP:
# ARP flooded and answered from the peer's derived MAC, then ping. Config
# errors: exit 78 with file:line. Ends with the packets/s TUN -> dev-crypto. (TAP)
set -u
if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1 || [ ! -c /dev/net/tun ]; then
    echo "1..0 # SKIP needs root, ip netns and /dev/net/tun"
    exit 0
fi
B=${BIFROST_BUILDDIR:-.}
LIBEXEC=${BIFROST_LIBEXEC_DIR:-$B/libexec}
PROBE=$B/services/device/dev_pipe_probe
NS=dev-test-$$
T=$(mktemp -d /tmp/dev-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
RUN=$T/run
BUS_PID= DEV_PID= PROBE_PID=
TESTNO=0 FAILED=0

cleanup () {
    for p in $PROBE_PID $DEV_PID $BUS_PID; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "# $f:"
            tail -30 "$f" | sed 's/^/#   /'
        done
    fi
    ip netns del "$NS" 2>/dev/null
    seccomp_check "$T"
    rm -rf "$T"
}
trap cleanup EXIT

. "${BIFROST_SRCDIR:-.}/tests/integration/tap_lib.sh"
nsx () { ip netns exec "$NS" "$@"; }
has_addr () { nsx ip -o addr show dev bifrost0 | grep -q "inet $1 "; }
has_mtu () { nsx ip -o link show dev bifrost0 | grep -q "mtu $1 "; }
link_gone () { ! nsx ip link show dev bifrost0 >/dev/null 2>&1; }
dead () { ! kill -0 "$1" 2>/dev/null; }
# status FIELD: one field of device.status.reply
status () { nsx "$PROBE" -r "$RUN" status 2>/dev/null | sed -n "s/^$1=//p"; }
probe_saw () { grep -q "$1" "$T/probe.log"; }

start_device () {   # start_device CONFIG
    # not through nsx: $! must be the device itself (ip netns exec execs it)
    ip netns exec "$NS" "$LIBEXEC/bifrost-device" -c "$1" -r "$RUN" >>"$T/device.log" 2>&1 &
    DEV_PID=$!
}
start_probe () {    # start_probe [ARGS]: serve, wait until its pipe is bound
    : >"$T/probe.log"
    ip netns exec "$NS" "$PROBE" -r "$RUN" serve --seconds 60 "$@" >"$T/probe.log" 2>&1 &
    PROBE_PID=$!
    wait_for 5 probe_saw '^ready'
}
stop_device () {    # stop_device SIGNAL: signal, wait for the exit, its code in rc
    kill "-$1" "$DEV_PID" 2>/dev/null
    wait "$DEV_PID" 2>/dev/null
    rc=$?
    DEV_PID=
}

echo "1..19"
ip netns add "$NS" || { echo "not ok 1 - cannot create netns $NS"; exit 1; }
nsx ip link set lo up
PEER_KEY=$(printf '%s' 'AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=')     # bytes 1..32

cat >"$T/tun.cfg" <<EOF
# the other services' groups are ignored by device
connection = { keepalive_interval = "25s"; };
device = {
    type = "tun";
    name = "bifrost0";
    mtu = 1420;
    address = "10.100.0.1/24";
};
peers = ( { name = "beta"; public_key = "$PEER_KEY"; allowed_ips = ["10.100.0.2/32"]; } );
EOF

# --- config errors first: exit 78, every error with file:line
cat >"$T/bad.cfg" <<EOF
device = {
    type = "tun";
    mtu = 70000;
    adress = "10.100.0.1/24";
    mac_address = "02:00:00:00:00:01";
};
EOF
"$LIBEXEC/bifrost-device" --check-config -c "$T/bad.cfg" >"$T/check.out" 2>&1
rc=$?
grep -q "bad.cfg:3: device.mtu: expected 576..65535" "$T/check.out" \
    && grep -q "bad.cfg:4: device.adress: unknown setting" "$T/check.out" \
    && grep -q "bad.cfg:5: device.mac_address: only a tap device" "$T/check.out"
ok $(( rc == 78 ? $? : 1 )) "--check-config: exit 78 ($rc), mtu, typo and mac on tun reported with file:line"
"$LIBEXEC/bifrost-device" --check-config -c "$T/tun.cfg" >"$T/check.out" 2>&1
ok $? "--check-config of a good config: exit 0"

# --- TUN
# The probe plays services of the node, which the broker's sender policy
# (schemas/senders.def) rightly refuses: the broker runs without it here
ip netns exec "$NS" env BIFROST_BUS_UNCHECKED=1 "$LIBEXEC/bifrost-bus" -r "$RUN" >"$T/bus.log" 2>&1 &
BUS_PID=$!
wait_for 5 test -S "$RUN/bus.ipc"
start_device "$T/tun.cfg"
wait_for 5 has_addr 10.100.0.1/24
ok $? "tun: bifrost0 exists with 10.100.0.1/24"
has_mtu 1420
ok $? "tun: MTU 1420"

nsx ping -c1 -W1 10.100.0.2 >/dev/null 2>&1
ok $(( $? == 0 )) "tun: ping 10.100.0.2 fails while nobody plays crypto"
start_probe
nsx ping -c1 -W2 10.100.0.2 >"$T/ping.log" 2>&1
ok $? "tun: ping 10.100.0.2 answered through dev-crypto and crypto-dev"
probe_saw '^tag=0 len=84 icmp-echo 10.100.0.1>10.100.0.2'
ok $? "tun: the probe got the echo request tagged with peer 0"

nsx ping -c1 -W1 10.100.0.77 >/dev/null 2>&1
sleep 0.1       # the drop is counted on the device's loop; status asks that loop
dropped=$(status drop_unknown)
! probe_saw '10.100.0.77' && [ "${dropped:-0}" -ge 1 ]
ok $? "tun: 10.100.0.77 (no peer) dropped, not sent, counted (drop_unknown=$dropped)"

# --- kill -9 and restart: same name, same address
old=$DEV_PID
kill -KILL "$DEV_PID"; wait "$DEV_PID" 2>/dev/null
wait_for 5 link_gone
ok $? "kill -9: the kernel removed the interface with the process"
# a persistent tun of the same name left behind (by a crash of an older
# version, or by hand) is replaced, not reused with its stale address
nsx ip tuntap add dev bifrost0 mode tun && nsx ip addr add 10.9.9.9/24 dev bifrost0
start_device "$T/tun.cfg"
wait_for 5 has_addr 10.100.0.1/24 && has_mtu 1420 && ! has_addr 10.9.9.9/24
ok $? "restart after kill -9, over a stale persistent bifrost0: back with 10.100.0.1/24, MTU 1420 (pid $old -> $DEV_PID)"
wait_for 5 nsx ping -c1 -W1 10.100.0.2
ok $? "restart: ping works again"

# --- SIGTERM: clean exit, interface removed
stop_device TERM
link_gone
ok $(( rc == 0 ? $? : 1 )) "SIGTERM: exit 0 ($rc), bifrost0 removed"

# --- packets/s TUN -> dev-crypto (64-byte UDP, blasted inside the namespace)
kill -TERM "$PROBE_PID"; wait "$PROBE_PID" 2>/dev/null; PROBE_PID=
start_device "$T/tun.cfg"
wait_for 5 has_addr 10.100.0.1/24
ip netns exec "$NS" "$PROBE" -r "$RUN" count --seconds 20 >"$T/count.log" 2>&1 &
PROBE_PID=$!
wait_for 5 grep -q ready "$T/count.log"
nsx "$PROBE" blast 10.100.0.2 300000 64 >"$T/blast.log" 2>&1
wait "$PROBE_PID"; PROBE_PID=
rate=$(sed -n 's/.* rate \([0-9]*\)$/\1/p' "$T/count.log")
echo "# TUN -> dev-crypto: $(cat "$T/count.log" | tail -1); blaster: $(cat "$T/blast.log")"
echo "# device status: $(nsx "$PROBE" -r "$RUN" status | grep -E 'rx_packets|to_crypto|drop_pipe|paused' | tr '\n' ' ')"
[ "${rate:-0}" -gt 1000 ]
ok $? "TUN -> dev-crypto: ${rate:-0} packets/s (64-byte UDP)"
stop_device TERM

# --- TAP: ARP flooded, answered from the peer's derived MAC, then ping
sed -e 's/"tun"/"tap"/' -e 's/mtu = 1420;/mtu = 1420; mac_address = "";/' "$T/tun.cfg" >"$T/tap.cfg"
start_probe --peer-key "$PEER_KEY"
start_device "$T/tap.cfg"
# mac_address = "": without a crypto to ask for the key, the fallback MAC after ~3 s
wait_for 8 sh -c "ip netns exec $NS ip -o link show dev bifrost0 | grep -q 'UP'"
ok $? "tap: bifrost0 up (MAC $(nsx cat /sys/class/net/bifrost0/address 2>/dev/null))"
nsx ping -c1 -W2 10.100.0.2 >"$T/ping.log" 2>&1
ok $? "tap: ping 10.100.0.2 answered"
probe_saw '^tag=4294967295 len=42 arp-request 10.100.0.1>10.100.0.2'
ok $? "tap: the ARP request was flooded (tag 0xFFFFFFFF)"
PEER_MAC=$(nsx ip neigh show 10.100.0.2 dev bifrost0 | awk '{ print $3 }')
[ "$PEER_MAC" = "9e:31:92:4f:b3:e3" ]      # dev_mac_from_key (bytes 1..32)
ok $? "tap: 10.100.0.2 resolved to the peer's derived MAC ($PEER_MAC)"
probe_saw '^tag=0 len=98 icmp-echo 10.100.0.1>10.100.0.2'
ok $? "tap: the echo request went to peer 0 by its MAC"
stop_device TERM
link_gone
ok $(( rc == 0 ? $? : 1 )) "tap: SIGTERM removes the interface"
exit 0
