#!/bin/bash
# vpn-bifrost.sh: brings a Bifrost tunnel up and down between the two namespaces of
# the reference harness (../shared/bench/vpn-throughput.sh, its `custom` anchor), so
# Bifrost is measured the same way, in the same run, as wireguard-go, tinc and fastd.
#
#   vpn-bifrost.sh prepare   (--custom-prepare, outside the namespaces): both node keys
#   vpn-bifrost.sh up        (--custom-a / --custom-b, inside a namespace): writes the
#                            node config, starts bifrostd, waits until every service is
#                            READY (and, on side a, until a ping reaches the peer), then
#                            stays in the foreground until the harness stops it
#   vpn-bifrost.sh down      (--custom-down-a / -b): stops bifrostd by pid, removes files
#
# Everything comes from the harness's environment: BENCH_SIDE, BENCH_WORKDIR,
# BENCH_PEER_WORKDIR, UNDERLAY_LOCAL/PEER, OVERLAY_LOCAL/PEER/PREFIX, TUN_MTU, TUN_NAME.
# Programs: $BIFROSTD (else bifrostd next to this script's build tree, else on PATH)
# and the services in $BIFROST_LIBEXEC_DIR (else where an installed bifrostd looks).
# Knobs: BIFROST_OFFLOAD (default 1) sets device.offload = true (TSO reads, GRO writes;
# 0 = one packet per syscall on the TUN); BIFROST_LOG_LEVEL (default warn);
# BIFROST_SPLIT (default 0; 1 = device and crypto as two processes, not bifrost-tunnel);
# BIFROST_EXTRA_CFG is appended to the node config verbatim.
set -u
PORT=51820
here=$(cd "$(dirname "$0")" && pwd)

die () { echo "vpn-bifrost: $*" >&2; exit 1; }

# The supervisor: explicit, else a build tree's (bench/ -> ../supervisor), else PATH
find_bifrostd () {
    if [ -n "${BIFROSTD:-}" ]; then echo "$BIFROSTD"; return; fi
    for d in "${BIFROST_BUILDDIR:-}" "$here/.." "$PWD"; do
        [ -n "$d" ] && [ -x "$d/supervisor/bifrostd" ] && { echo "$d/supervisor/bifrostd"; return; }
    done
    command -v bifrostd || die "bifrostd not found (set BIFROSTD or PATH)"
}

# bifrost-crypto for --genkey: where bifrostd itself finds its services
find_crypto () {
    local b d
    b=$(find_bifrostd)
    for d in "${BIFROST_LIBEXEC_DIR:-}" "$here" "$(dirname "$b")/../libexec" \
             "$(dirname "$b")/../libexec/bifrost" /usr/local/libexec/bifrost /usr/libexec/bifrost; do
        [ -n "$d" ] && [ -x "$d/bifrost-crypto" ] && { echo "$d/bifrost-crypto"; return; }
    done
    die "bifrost-crypto not found (set BIFROST_LIBEXEC_DIR)"
}

need () { for v in "$@"; do [ -n "${!v:-}" ] || die "$v is not set (run me from vpn-throughput.sh)"; done; }

cmd_prepare () {
    need BENCH_WORKDIR
    local crypto side; crypto=$(find_crypto)
    for side in a b; do
        mkdir -p "$BENCH_WORKDIR/$side"
        rm -f "$BENCH_WORKDIR/$side/node.key"
        "$crypto" --genkey "$BENCH_WORKDIR/$side/node.key" > "$BENCH_WORKDIR/$side/node.pub" \
            || die "bifrost-crypto --genkey failed"
    done
}

cmd_up () {
    need BENCH_SIDE BENCH_WORKDIR BENCH_PEER_WORKDIR UNDERLAY_LOCAL UNDERLAY_PEER \
         OVERLAY_LOCAL OVERLAY_PEER OVERLAY_PREFIX TUN_MTU TUN_NAME
    local w=$BENCH_WORKDIR bifrostd peer_key endpoint="" extra="" i pid
    bifrostd=$(find_bifrostd)
    [ -s "$w/node.key" ] && [ -s "$BENCH_PEER_WORKDIR/node.pub" ] || die "no keys: run '$0 prepare' first"
    peer_key=$(cat "$BENCH_PEER_WORKDIR/node.pub")
    # a dials b; b learns a's endpoint from the handshake (as a server would)
    [ "$BENCH_SIDE" = a ] && endpoint="endpoint = \"$UNDERLAY_PEER:$PORT\"; direct = true;"
    [ "${BIFROST_OFFLOAD:-1}" = 1 ] && extra="offload = true;"
    # device and crypto in one process (the default), or in two (BIFROST_SPLIT=1)
    local tunnel='    { name = "tunnel"; exec = "bifrost-tunnel"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "tunnel"]; },'
    [ "${BIFROST_SPLIT:-0}" = 1 ] && tunnel='    { name = "crypto"; exec = "bifrost-crypto"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "crypto"]; },
    { name = "device"; exec = "bifrost-device"; depends = ["bus", "crypto"]; },'
    rm -rf "$w/run"
    cat > "$w/node.cfg" <<CFG
# written by vpn-bifrost.sh for the benchmark, side $BENCH_SIDE
run_dir = "$w/run";
key_file = "$w/node.key";
log_level = "${BIFROST_LOG_LEVEL:-warn}";
device = { type = "tun"; name = "$TUN_NAME"; mtu = $TUN_MTU;
           address = "$OVERLAY_LOCAL/$OVERLAY_PREFIX"; $extra };
connection = { listen = "$UNDERLAY_LOCAL:$PORT"; keepalive_interval = "5s"; };
peers = ( { name = "peer"; public_key = "$peer_key"; allowed_ips = ["$OVERLAY_PEER/32"]; $endpoint } );
services = (
    { name = "bus";    exec = "bifrost-bus"; },
$tunnel
    { name = "router"; exec = "bifrost-router"; depends = ["bus"]; }
);
${BIFROST_EXTRA_CFG:-}
CFG
    "$bifrostd" --check-config -c "$w/node.cfg" >/dev/null || die "bad config $w/node.cfg"
    "$bifrostd" -c "$w/node.cfg" &
    pid=$!
    echo "$pid" > "$w/bifrostd.pid"
    # bounded: the interface exists with its address once device is READY
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || die "bifrostd exited (see its output above)"
        ip -o addr show dev "$TUN_NAME" 2>/dev/null | grep -q " $OVERLAY_LOCAL/" && break
        [ "$i" -eq 150 ] && die "$TUN_NAME has no address after 15 s"
        sleep 0.1
    done
    if [ "$BENCH_SIDE" = a ]; then
        for i in $(seq 1 30); do
            ping -c 1 -W 1 -q "$OVERLAY_PEER" >/dev/null 2>&1 && break
            [ "$i" -eq 30 ] && echo "vpn-bifrost: no ping to $OVERLAY_PEER yet" >&2
        done
    fi
    echo "vpn-bifrost: side $BENCH_SIDE up (bifrostd pid $pid)" >&2
    # Foreground until the harness stops us (TERM to our process group reaches
    # bifrostd too, which stops its services in order)
    trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
    wait "$pid"
}

cmd_down () {
    need BENCH_WORKDIR
    local w=$BENCH_WORKDIR pid i
    pid=$(cat "$w/bifrostd.pid" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$w/run" "$w/node.cfg" "$w/bifrostd.pid"
}

case "${1:-}" in
    prepare) cmd_prepare ;;
    up) cmd_up ;;
    down) cmd_down ;;
    -h|--help|*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] ;;
esac
