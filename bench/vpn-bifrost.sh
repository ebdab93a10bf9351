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
#
# BIFROST_VIA (relay, turn, ice; BIFROST_VIA_RELAY=1 means relay) picks the path for the
# benchmarks of issue 15, each a `custom2` against the static pair (`custom`):
#   turn  side a's server runs the registry and coturn (bifrost-coturn, relay ports
#         49152-49407), no Bifrost relay; side b drops every UDP datagram between the
#         two underlay addresses but coturn's (3478 and the relay ports), and side a's
#         ephemeral ports are moved above them: the only way is ICE through coturn's
#         relayed candidates (`turn` in bifrostctl peers)
#   ice   the same server; side b drops UDP to and from nat's own port (51820) only:
#         nat's own direct path is closed, ICE's host candidates are not, so the pair
#         goes direct through ICE, its data through libnice (`ice direct`)
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
    export RELAY_SECRET BIFROST_ADMIN_TOKEN TURN_SECRET
    RELAY_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    BIFROST_ADMIN_TOKEN=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    TURN_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    if [ "$VIA" != relay ]; then
        # ICE modes: the registry and coturn (the registry hands out its TURN credentials)
        cat > "$s/server.cfg" <<CFG
# written by vpn-bifrost.sh ($VIA mode): the registry and coturn of the benchmark
run_dir = "$s/run";
log_level = "${BIFROST_LOG_LEVEL:-warn}";
registry = { listen = "$UNDERLAY_LOCAL:$REG_PORT"; database = "$s/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
turn = { realm = "bifrost.bench"; host = "$UNDERLAY_LOCAL"; listening_ip = "$UNDERLAY_LOCAL";
         relay_ip = "$UNDERLAY_LOCAL"; listen_port = 3478; min_port = 49152; max_port = 49407;
         secret = "\${TURN_SECRET}"; credential_ttl = "1h"; };
services = (
    { name = "bus";      exec = "bifrost-bus"; },
    { name = "registry"; exec = "bifrost-registry"; depends = ["bus"]; },
    { name = "coturn";   exec = "bifrost-coturn"; notify = "none"; }
);
CFG
    else
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
    fi
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

# The path of the relay modes: BIFROST_VIA, or BIFROST_VIA_RELAY=1 (relay); "" static
VIA=${BIFROST_VIA:-}
[ "${BIFROST_VIA_RELAY:-0}" = 1 ] && VIA=relay
case "$VIA" in ""|relay|turn|ice) ;; *) die "BIFROST_VIA: relay, turn or ice, not '$VIA'" ;; esac

cmd_prepare () {
    need BENCH_WORKDIR
    # The services pass the harness's work folders (0700) under their own
    # uids (docs/supervisor.md, "A uid per service")
    local d=$BENCH_WORKDIR
    while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
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
    local via_relay=0 address peers discovery="" conn_extra="" reg_host
    bifrostd=$(find_bifrostd)
    [ -s "$w/node.key" ] && [ -s "$BENCH_PEER_WORKDIR/node.pub" ] || die "no keys: run '$0 prepare' first"
    peer_key=$(cat "$BENCH_PEER_WORKDIR/node.pub")
    # a dials b; b learns a's endpoint from the handshake (as a server would)
    [ "$BENCH_SIDE" = a ] && endpoint="endpoint = \"$UNDERLAY_PEER:$PORT\"; direct = true;"
    [ "${BIFROST_OFFLOAD:-1}" = 1 ] && extra="offload = true;"
    address="address = \"$OVERLAY_LOCAL/$OVERLAY_PREFIX\";"
    peers="peers = ( { name = \"peer\"; public_key = \"$peer_key\"; allowed_ips = [\"$OVERLAY_PEER/32\"]; $endpoint } );"
    SERVER_PID=""
    [ -n "$VIA" ] && via_relay=1
    if [ "$via_relay" = 1 ]; then
        # The registry gives the address and the peer; the relay carries every packet
        # (relay), or ICE finds the only way left open (turn, ice: see the header)
        address="" peers="" conn_extra="force_relay = true;"
        [ "$VIA" != relay ] && conn_extra='ice_after = "1s";'
        if [ "$VIA" != relay ] && [ "$BENCH_SIDE" = a ]; then
            # coturn's relay ports are not ours: our ephemeral ports above them
            echo "50000 60999" > /proc/sys/net/ipv4/ip_local_port_range
        fi
        if [ "$VIA" != relay ] && [ "$BENCH_SIDE" = b ]; then
            nft delete table inet vpnbench 2>/dev/null
            if [ "$VIA" = turn ]; then
                nft -f - <<NFT || die "nft failed"
table inet vpnbench {
    chain out { type filter hook output priority 0; ip daddr $UNDERLAY_PEER udp dport != { 3478, 49152-49407 } drop; }
    chain in  { type filter hook input priority 0;  ip saddr $UNDERLAY_PEER udp sport != { 3478, 49152-49407 } drop; }
}
NFT
            else
                nft -f - <<NFT || die "nft failed"
table inet vpnbench {
    chain out { type filter hook output priority 0; ip daddr $UNDERLAY_PEER udp dport $PORT drop; udp sport $PORT ip daddr $UNDERLAY_PEER drop; }
    chain in  { type filter hook input priority 0;  ip saddr $UNDERLAY_PEER udp sport $PORT drop; udp dport $PORT ip saddr $UNDERLAY_PEER drop; }
}
NFT
            fi
        fi
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
        # The path the pair is on (what was measured): bifrostctl next to bifrostd
        local ctl
        ctl=$(dirname "$bifrostd")/../tools/bifrostctl
        [ -x "$ctl" ] || ctl=$(command -v bifrostctl)
        [ -n "$ctl" ] && echo "vpn-bifrost: side a's path: $("$ctl" -r "$w/run" peers --json 2>/dev/null | jq -r '[.peers[].path] | join(", ")')" >&2
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
    nft delete table inet vpnbench 2>/dev/null
    return 0
}

case "${1:-}" in
    prepare) cmd_prepare ;;
    up) cmd_up ;;
    down) cmd_down ;;
    -h|--help|*) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] ;;
esac
