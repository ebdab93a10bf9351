#!/bin/bash
# demo.sh: a Bifrost mesh of three nodes on this machine, each a real bifrostd with
# all its services in its own network namespace, joined by an emulated internet
# (192.0.2.0/24 on a bridge). Each node has a virtual address 10.100.0.N/24 on its
# bifrost0 interface; static peers (examples/node.cfg shows one annotated).
#
#   examples/demo.sh            start, show, then keep running until Ctrl-C
#   examples/demo.sh --once     start, show, stop (used by the test suite)
#
# Needs root, a built tree (BIFROST_BUILDDIR, default: ./build/release or .), or an
# installed Bifrost. Everything it creates is removed when it ends.
set -u
ONCE=0; [ "${1:-}" = "--once" ] && ONCE=1
here=$(cd "$(dirname "$0")/.." && pwd)
B=${BIFROST_BUILDDIR:-}
if [ -z "$B" ]; then
    for d in "$here/build/release" "$here"; do [ -x "$d/supervisor/bifrostd" ] && B=$d && break; done
fi
if [ -n "$B" ]; then
    BIFROSTD=$B/supervisor/bifrostd; CTL=$B/tools/bifrostctl; LIBEXEC=$B/libexec
else
    BIFROSTD=$(command -v bifrostd); CTL=$(command -v bifrostctl)
    LIBEXEC=$(dirname "$BIFROSTD")/../libexec/bifrost
fi
[ -x "${BIFROSTD:-}" ] || { echo "demo: build Bifrost first (scripts/demo.sh does it)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, TUN devices)"; exit 1; }

ID=$$
W=$(mktemp -d /tmp/bifrost-demo-XXXXXX)
NODES="a b c"
cleanup () {
    echo; echo "demo: stopping"
    for n in $NODES; do
        [ -f "$W/$n/pid" ] && kill -TERM "$(cat "$W/$n/pid")" 2>/dev/null
    done
    sleep 1
    for ns in "demo-hub-$ID" $(for n in $NODES; do echo "demo-$n-$ID"; done); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$W"
    [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 0' INT TERM

say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
inns () { local n=$1; shift; ip netns exec "demo-$n-$ID" "$@"; }

say "emulated internet: a bridge, three hosts 192.0.2.1-3"
ip netns add "demo-hub-$ID"
ip -n "demo-hub-$ID" link add br0 type bridge && ip -n "demo-hub-$ID" link set br0 up
i=0
for n in $NODES; do
    i=$((i + 1))
    ip netns add "demo-$n-$ID"
    ip -n "demo-$n-$ID" link set lo up
    ip link add "dv$n$ID" type veth peer name "dh$n$ID"
    ip link set "dv$n$ID" netns "demo-$n-$ID"; ip link set "dh$n$ID" netns "demo-hub-$ID"
    ip -n "demo-$n-$ID" link set "dv$n$ID" name eth0
    ip -n "demo-$n-$ID" addr add "192.0.2.$i/24" dev eth0
    ip -n "demo-$n-$ID" link set eth0 up
    ip -n "demo-hub-$ID" link set "dh$n$ID" master br0 up
    mkdir -p "$W/$n"
    eval "KEY_$n=\$($LIBEXEC/bifrost-crypto --genkey $W/$n/node.key)"
    echo "   node $n: 192.0.2.$i, public key $(eval echo \$KEY_$n)"
done

say "configs: every node lists the other two as peers (see $W/a/node.cfg)"
i=0
for n in $NODES; do
    i=$((i + 1)); peers=""; j=0
    for m in $NODES; do
        j=$((j + 1)); [ "$m" = "$n" ] && continue
        peers="$peers${peers:+, }{ name = \"$m\"; public_key = \"$(eval echo \$KEY_$m)\"; allowed_ips = [\"10.100.0.$j/32\"]; endpoint = \"192.0.2.$j:51820\"; direct = true; }"
    done
    cat > "$W/$n/node.cfg" <<CFG
run_dir = "$W/$n/run";
key_file = "$W/$n/node.key";
device = { type = "tun"; name = "bifrost0"; mtu = 1420; address = "10.100.0.$i/24"; };
connection = { listen = "0.0.0.0:51820"; keepalive_interval = "25s"; };
peers = ( $peers );
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "tunnel"; exec = "bifrost-tunnel"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "tunnel"]; },
    { name = "router"; exec = "bifrost-router"; depends = ["bus"]; }
);
CFG
done

say "start: one bifrostd per node"
for n in $NODES; do
    inns "$n" env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$W/$n/node.cfg" >"$W/$n/log" 2>&1 &
    echo $! > "$W/$n/pid"
done
for n in $NODES; do
    # every instance ready: bus, tunnel (device and crypto), nat, router
    for _ in $(seq 1 100); do
        [ "$("$CTL" -r "$W/$n/run" status 2>/dev/null | grep -cE '^[a-z]+\.[0-9]+ +[0-9]+ +ready ')" -ge 4 ] && break
        sleep 0.1
    done
done
"$CTL" -r "$W/a/run" status

say "ping across the mesh"
rc=0
for n in $NODES; do
    for j in 1 2 3; do
        out=$(inns "$n" ping -c 3 -i 0.2 -W 2 10.100.0.$j 2>&1 | tail -2 | head -1)
        echo "   $n -> 10.100.0.$j: $out"
        echo "$out" | grep -q " 0% packet loss" || rc=1
    done
done

say "bifrostctl peers on node a"
"$CTL" -r "$W/a/run" peers

say "the bus of node a, live (bifrostctl tap, 2 s)"
"$CTL" -r "$W/a/run" tap --timeout 2 --count 6 2>/dev/null | cut -c1-160

if [ "$ONCE" = 1 ]; then
    [ $rc = 0 ] && echo "demo: every node reached every other" || echo "demo: some pings failed (logs in $W/*/log)"
    exit $rc
fi
say "running; try:"
echo "   ip netns exec demo-a-$ID ping 10.100.0.2"
echo "   $CTL -r $W/a/run peers"
echo "   $CTL -r $W/b/run tap"
echo "   kill -9 \$($CTL -r $W/a/run status | awk '/^crypto/ {print \$2}')   # and watch it come back"
echo "Ctrl-C stops the demo and removes everything."
#  sleep in the background and wait for it: bash runs a trap only between
#  commands, so a TERM or INT sent to this script alone (not to the terminal's
#  whole process group, as Ctrl-C does) would otherwise wait for the sleep
while :; do sleep 3600 & SLEEPER=$!; wait $SLEEPER; done
