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
#
# Relay mode (BIFROST_VIA_RELAY=1, the `custom2` anchor of `make bench-vpn-relay`): the
# two nodes meet through a registry and reach each other only through the relay.
# Side a's namespace also runs a server (bifrostd with bus, registry and relay with
# BIFROST_RELAY_WORKERS workers, default 1, limits off, on UNDERLAY_LOCAL: registry
# :7080, relay :3479); side a creates the network (cidr = the harness's overlay prefix)
# and a reusable join token with the admin API, registers first (so it gets OVERLAY_A,
# the pool's lowest address) and then writes the token to its work directory; side b
# waits for that token (of this round), registers second (OVERLAY_B). Both nodes use
# discovery (no static peers) and connection.force_relay = true.
set -u
PORT=51820
REG_PORT=7080
RELAY_PORT=3479
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

# The overlay's network address: OVERLAY_LOCAL with the host bits of OVERLAY_PREFIX cleared
overlay_cidr () {
    local a b c d n m
    IFS=. read -r a b c d <<< "$OVERLAY_LOCAL"
    n=$(( (a << 24) | (b << 16) | (c << 8) | d ))
    m=$(( (0xffffffff << (32 - OVERLAY_PREFIX)) & 0xffffffff ))
    n=$(( n & m ))
    echo "$(( n >> 24 & 255 )).$(( n >> 16 & 255 )).$(( n >> 8 & 255 )).$(( n & 255 ))/$OVERLAY_PREFIX"
}

# Side a of the relay mode: registry + relay under their own bifrostd, then the
# network and a reusable join token (into BIFROST_JOIN_TOKEN). Fresh database per round.
relay_server_up () {
    local w=$BENCH_WORKDIR s=$BENCH_WORKDIR/server bifrostd=$1 url="http://$UNDERLAY_LOCAL:$REG_PORT" i
    local net='{"id":"bench","name":"bench","cidr":"'$(overlay_cidr)'","settings":{"heartbeat_interval":5,"offline_after":30,"expire_after":300}}'
    rm -rf "$s"; mkdir -p "$s"
    export RELAY_SECRET BIFROST_ADMIN_TOKEN
    RELAY_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    BIFROST_ADMIN_TOKEN=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    cat > "$s/server.cfg" <<CFG
# written by vpn-bifrost.sh (relay mode): the registry and the relay of the benchmark,
# relay limits off (the defaults, 50k packets/s and 500 Mbit/s per node, would cap it)
run_dir = "$s/run";
log_level = "${BIFROST_LOG_LEVEL:-warn}";
registry = { listen = "$UNDERLAY_LOCAL:$REG_PORT"; database = "$s/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
relay = { servers = ["relay-1@$UNDERLAY_LOCAL:$RELAY_PORT"]; secret = "\${RELAY_SECRET}";
          listen = "$UNDERLAY_LOCAL:$RELAY_PORT";
          peer_pps = 0; peer_bps = 0; network_pps = 0; network_bps = 0; };
services = (
    { name = "bus";      exec = "bifrost-bus"; },
    { name = "registry"; exec = "bifrost-registry"; depends = ["bus"]; },
    { name = "relay";    exec = "bifrost-relay"; depends = ["bus"]; instances = ${BIFROST_RELAY_WORKERS:-1}; }
);
CFG
    "$bifrostd" --check-config -c "$s/server.cfg" >/dev/null || die "bad config $s/server.cfg"
    "$bifrostd" -c "$s/server.cfg" &
    SERVER_PID=$!
    echo "$SERVER_PID" > "$w/server.pid"
    for i in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server's bifrostd exited (see its output above)"
        curl -sf -o /dev/null "$url/client/meta" && break
        [ "$i" -eq 100 ] && die "the registry does not answer on $url after 10 s"
        sleep 0.1
    done
    admin () { curl -s -X POST -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" --data-binary "$2" "$url/api/v1/mesh/networks$1"; }
    admin "" "$net" >/dev/null
    BIFROST_JOIN_TOKEN=$(admin /bench/tokens '{"ttl":3600,"reusable":true}' | jq -r .token)
    case "$BIFROST_JOIN_TOKEN" in bjt_*) ;; *) die "no join token from $url" ;; esac
    export BIFROST_JOIN_TOKEN
}

# Side b of the relay mode: the token side a wrote in this round (bounded: 30 s)
relay_token_wait () {
    local f=$BENCH_PEER_WORKDIR/join.token i round token
    for i in $(seq 1 300); do
        if [ -s "$f" ]; then
            read -r round token < "$f"
            [ "$round" = "${BENCH_ROUND:-0}" ] && { export BIFROST_JOIN_TOKEN=$token; return; }
        fi
        sleep 0.1
    done
    die "no join token of round ${BENCH_ROUND:-0} from side a in $f after 30 s"
}

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
    local via_relay=${BIFROST_VIA_RELAY:-0} address peers discovery="" conn_extra="" reg_host
    bifrostd=$(find_bifrostd)
    [ -s "$w/node.key" ] && [ -s "$BENCH_PEER_WORKDIR/node.pub" ] || die "no keys: run '$0 prepare' first"
    peer_key=$(cat "$BENCH_PEER_WORKDIR/node.pub")
    # a dials b; b learns a's endpoint from the handshake (as a server would)
    [ "$BENCH_SIDE" = a ] && endpoint="endpoint = \"$UNDERLAY_PEER:$PORT\"; direct = true;"
    [ "${BIFROST_OFFLOAD:-1}" = 1 ] && extra="offload = true;"
    address="address = \"$OVERLAY_LOCAL/$OVERLAY_PREFIX\";"
    peers="peers = ( { name = \"peer\"; public_key = \"$peer_key\"; allowed_ips = [\"$OVERLAY_PEER/32\"]; $endpoint } );"
    SERVER_PID=""
    if [ "$via_relay" = 1 ]; then
        # The registry gives the address and the peer; the relay carries every packet
        address="" peers="" conn_extra="force_relay = true;"
        if [ "$BENCH_SIDE" = a ]; then
            rm -f "$w/join.token"
            relay_server_up "$bifrostd"
            reg_host=$UNDERLAY_LOCAL
        else
            relay_token_wait
            reg_host=$UNDERLAY_PEER
        fi
        discovery="network_id = \"bench\";
discovery = { server = \"http://$reg_host:$REG_PORT\"; join_token = \"\${BIFROST_JOIN_TOKEN}\";
              heartbeat_interval = \"5s\"; name = \"bench-$BENCH_SIDE\"; };"
    fi
    # device and crypto in one process (the default), or in two (BIFROST_SPLIT=1)
    local tunnel='    { name = "tunnel"; exec = "bifrost-tunnel"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "tunnel"]; },'
    [ "${BIFROST_SPLIT:-0}" = 1 ] && tunnel='    { name = "crypto"; exec = "bifrost-crypto"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "crypto"]; },
    { name = "device"; exec = "bifrost-device"; depends = ["bus", "crypto"]; },'
    local dsvc=""
    [ "$via_relay" = 1 ] && dsvc=',
    { name = "discovery"; exec = "bifrost-discovery"; depends = ["bus", "tunnel"]; }'
    [ "$via_relay" = 1 ] && [ "${BIFROST_SPLIT:-0}" = 1 ] && die "BIFROST_VIA_RELAY=1 with BIFROST_SPLIT=1 is not written"
    rm -rf "$w/run"
    cat > "$w/node.cfg" <<CFG
# written by vpn-bifrost.sh for the benchmark, side $BENCH_SIDE
run_dir = "$w/run";
key_file = "$w/node.key";
log_level = "${BIFROST_LOG_LEVEL:-warn}";
device = { type = "tun"; name = "$TUN_NAME"; mtu = $TUN_MTU;
           $address $extra };
connection = { listen = "$UNDERLAY_LOCAL:$PORT"; keepalive_interval = "5s"; $conn_extra };
$peers
$discovery
services = (
    { name = "bus";    exec = "bifrost-bus"; },
$tunnel
    { name = "router"; exec = "bifrost-router"; depends = ["bus"]; }$dsvc
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
        [ "$i" -eq 150 ] && die "$TUN_NAME has no address $OVERLAY_LOCAL after 15 s ($(ip -o -4 addr show dev "$TUN_NAME" 2>/dev/null | awk '{print $4}'))"
        sleep 0.1
    done
    # Relay mode: a registered first and got OVERLAY_A; now b may register
    if [ "$via_relay" = 1 ] && [ "$BENCH_SIDE" = a ]; then
        echo "${BENCH_ROUND:-0} $BIFROST_JOIN_TOKEN" > "$w/join.token.tmp" && mv "$w/join.token.tmp" "$w/join.token"
    fi
    if [ "$BENCH_SIDE" = a ]; then
        for i in $(seq 1 30); do
            ping -c 1 -W 1 -q "$OVERLAY_PEER" >/dev/null 2>&1 && break
            [ "$i" -eq 30 ] && echo "vpn-bifrost: no ping to $OVERLAY_PEER yet" >&2
        done
    fi
    echo "vpn-bifrost: side $BENCH_SIDE up (bifrostd pid $pid)" >&2
    # Foreground until the harness stops us (TERM to our process group reaches
    # bifrostd too, which stops its services in order)
    trap 'kill -TERM "$pid" $SERVER_PID 2>/dev/null; wait "$pid" $SERVER_PID; exit 0' TERM INT
    wait "$pid"
}

cmd_down () {
    need BENCH_WORKDIR
    local w=$BENCH_WORKDIR pid i f
    # the node first, then (relay mode, side a) the registry and relay
    for f in bifrostd.pid server.pid; do
        pid=$(cat "$w/$f" 2>/dev/null)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -rf "$w/run" "$w/node.cfg" "$w/bifrostd.pid" "$w/server.pid" "$w/server" "$w/join.token"
}

case "${1:-}" in
    prepare) cmd_prepare ;;
    up) cmd_up ;;
    down) cmd_down ;;
    -h|--help|*) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] ;;
esac
