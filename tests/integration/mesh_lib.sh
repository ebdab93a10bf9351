# mesh_lib.sh: a deployment on the NAT grid (sourced, not run): relays, the
# registry that lists them, a network with a join token, and nodes that know only
# the registry. Shared by the tests that need a whole deployment (relay_grid,
# grid_move), so one is set up one way everywhere. Needs natgrid_lib.sh,
# disc_lib.sh and tap_lib.sh sourced, T (the test's directory), and the hosts on
# the grid already (grid_public_host / grid_nodes).
#
#   mesh_relay HOST IP NAME INSTANCES        bifrostd with the bus and N relay workers on IP:3479
#   mesh_registry HOST IP SERVER...          the registry on IP:7080 listing the relays;
#                                            creates network "grid" and BIFROST_JOIN_TOKEN;
#                                            with MESH_TURN=1 also coturn on IP:3478
#                                            (bifrost-coturn, STUN and TURN), whose REST
#                                            credentials the registry hands out
#   mesh_start_node NAME [CONNECTION-EXTRA]  a node (disc_lib.sh) in NAME's namespace,
#                                            not routing through peers unless MESH_ROUTING=1
#   mesh_finish                              ends what mesh_* started (by pid)
#   mesh_end LINES [KEEP]                    a test's EXIT trap: mesh_finish, the logs
#                                            when something failed, grid_cleanup
#   vip NAME, all_have_vip NAME..., peers_json NAME, peer_path NAME PEER,
#   pair_pings A B (VIP[] filled by the caller), log_ms FILE PATTERN
# Secrets reach the programs through their environment only.
MESH_BIFROSTD=$BIFROST_BUILDDIR/supervisor/bifrostd
CTL=$BIFROST_BUILDDIR/tools/bifrostctl
MESH_REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
export RELAY_SECRET BIFROST_ADMIN_TOKEN=admin-$$-mesh BIFROST_JOIN_TOKEN=
RELAY_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
PIDS=""
declare -A VIP=()

# spawn NAME LOG CMD...: CMD in NAME's namespace, in the background; pid in PIDS
spawn () {
    local name=$1 log=$2; shift 2
    ip netns exec "$(grid_ns "$name")" "$@" >>"$log" 2>&1 &
    PIDS="$PIDS $!"
}

mesh_finish () {
    local p
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
}

# mesh_end LINES [KEEP]: the end of a test on a deployment (its EXIT trap): ends
# what mesh_* started, shows the last LINES lines of every log in $T (each node's
# bifrostd.log, registry.log, coturn.log, ...) when a test point failed, copies
# $T to KEEP when given (to read the logs afterwards), and removes $T
mesh_end () {
    local lines=${1:-30} keep=${2:-} f
    mesh_finish
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*/bifrostd.log "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "# ---- $f (last $lines lines)"
            tail -"$lines" "$f" 2>/dev/null | sed 's/^/#   /'
        done
    fi
    grid_cleanup
    [ -n "$keep" ] && rm -rf "$keep" && cp -r "$T" "$keep"
    seccomp_check "$T"
    rm -rf "$T"
}

mesh_relay () {
    local host=$1 ip=$2 name=$3 n=$4
    local dir=$T/$host
    mkdir -p "$dir"
    cat > "$dir/relay.cfg" <<CFG
run_dir = "$dir/run";
relay = { listen = "$ip:3479"; secret = "\${RELAY_SECRET}"; };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s"; };
services = (
    { name = "bus";   exec = "bifrost-bus"; },
    { name = "relay"; exec = "bifrost-relay"; depends = ["bus"]; instances = $n; pass_env = ["RELAY_SECRET"]; }
);
CFG
    spawn "$host" "$dir/bifrostd.log" env BIFROST_LIBEXEC_DIR="$BIFROST_LIBEXEC_DIR" "$MESH_BIFROSTD" -c "$dir/relay.cfg"
    MESH_LAST_PID=$!
    _mesh_relay_ready () { [ "$("$CTL" -r "$dir/run" status 2>/dev/null | grep -c "^relay\.[0-9]* .* ready")" = "$n" ]; }
    wait_for 15 _mesh_relay_ready
    ok $? "$name: $n worker(s) ready on $ip:3479"
}

mesh_registry () {
    local host=$1 ip=$2 servers="" s; shift 2
    for s in "$@"; do servers="$servers${servers:+, }\"$s\""; done
    RURL=http://$ip:7080
    local turn=""
    if [ "${MESH_TURN:-0}" = 1 ]; then
        export TURN_SECRET
        TURN_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
        turn="turn = { realm = \"bifrost.test\"; host = \"$ip\"; listening_ip = \"$ip\"; relay_ip = \"$ip\";
         listen_port = 3478; min_port = 49152; max_port = 49407;
         secret = \"\${TURN_SECRET}\"; credential_ttl = \"10m\"; };"
    fi
    cat > "$T/registry.cfg" <<CFG
registry = { listen = "$ip:7080"; database = "$T/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
relay = { servers = [$servers]; secret = "\${RELAY_SECRET}"; };
$turn
CFG
    if [ -n "$turn" ]; then
        spawn "$host" "$T/coturn.log" "$BIFROST_BUILDDIR/services/coturn/bifrost-coturn" -c "$T/registry.cfg" -r "$T/coturn-run"
        wait_for 10 sh -c "ip netns exec $(grid_ns "$host") ss -lun | grep -q '$ip:3478 '"
        ok $? "coturn listens on $ip:3478 (STUN and TURN)"
    fi
    spawn "$host" "$T/registry.log" "$MESH_REGISTRY" -c "$T/registry.cfg" -r "$T/regrun"
    MESH_REG_HOST=$host
    wait_for 10 grid_exec "$host" curl -sf -o /dev/null "$RURL/client/meta"
    ok $? "registry answers on $RURL"
    mesh_admin POST "" '{"id":"grid","name":"grid","cidr":"10.99.0.0/24","settings":{"heartbeat_interval":1,"offline_after":5,"expire_after":120}}' >/dev/null
    BIFROST_JOIN_TOKEN=$(mesh_admin POST /grid/tokens '{"ttl":600,"reusable":true}' | jq -r .token)
    case "$BIFROST_JOIN_TOKEN" in bjt_*) ok 0 "network and join token created" ;; *) ok 1 "network and join token created" ;; esac
}
mesh_admin () { grid_exec "$MESH_REG_HOST" curl -s -X "$1" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" ${3:+--data-binary "$3"} "$RURL/api/v1/mesh/networks$2"; }

# The grid tests are about each pair's own paths (direct, punched, relayed, ICE,
# birthday): their nodes do not route through each other (relay_via_peers =
# false), else a pair may be carried by a third node instead of the path under
# test (docs/routing.md, "Routes and nat's own paths"). MESH_ROUTING=1 keeps the
# default (routing on).
mesh_start_node () {
    local routing="relay_via_peers = false;"
    [ "${MESH_ROUTING:-0}" = 1 ] && routing=""
    disc_node_cfg "$T/$1" "$1" grid "$RURL" "" "$routing ${2:-}"
    spawn "$1" "$T/$1/bifrostd.log" env BIFROST_LIBEXEC_DIR="$BIFROST_LIBEXEC_DIR" "$MESH_BIFROSTD" -c "$T/$1/node.cfg"
}
vip () { grid_exec "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
all_have_vip () { local n; for n in "$@"; do [ -n "$(vip "$n")" ] || return 1; done; }
peers_json () { "$CTL" -r "$T/$1/run" peers --json 2>>"$T/ctl-peers.err"; }
peer_path () { peers_json "$1" | jq -r --arg b "$2" '.peers[] | select(.name == $b) | .path'; }
pair_pings () { grid_exec "$1" ping -c 1 -W 1 -q "${VIP[$2]}" >/dev/null 2>&1 && grid_exec "$2" ping -c 1 -W 1 -q "${VIP[$1]}" >/dev/null 2>&1; }
# log_ms FILE PATTERN: the time of day (ms) of the first log line matching
log_ms () {
    grep -m1 -E "$2" "$1" 2>/dev/null | awk '{ split ($1, t, "[:.]"); printf "%d\n", ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'
}
