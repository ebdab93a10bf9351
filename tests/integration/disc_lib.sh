# disc_lib.sh: the config of a node that knows only a registry (sourced, not run).
#   disc_node_cfg DIR NAME NETWORK SERVER [DISCOVERY-EXTRA] [CONNECTION-EXTRA]
# writes DIR/node.cfg: run directory and key under DIR, discovery with the join
# token from ${BIFROST_JOIN_TOKEN}, 1 s heartbeats, a TUN device (DISC_DEVICE=tap:
# a TAP one) without an address (the registry gives it), 2 s keepalives, fast restarts, and the node's
# services (bus, tunnel, nat, router, discovery); nat listens on DISC_LISTEN (default
# 0.0.0.0:51820, IPv4 only). DISC_SERVICES_EXTRA is added to the services
# (e.g. the bridge), DISC_CFG_EXTRA to the end (e.g. its group). Used by the
# discovery, relay and bridge tests, so a node is configured one way everywhere.
disc_node_cfg () {
    local dir=$1 name=$2 network=$3 server=$4 disc_extra=${5:-} conn_extra=${6:-}
    # The test registries answer plain http on a namespace address: say so
    # (discovery refuses http:// beyond loopback unless allow_http is set)
    case $server in http://*) disc_extra="allow_http = true; $disc_extra" ;; esac
    mkdir -p "$dir"
    cat > "$dir/node.cfg" <<CFG
run_dir = "$dir/run";
key_file = "$dir/node.key";
network_id = "$network";
discovery = { server = "$server"; join_token = "\${BIFROST_JOIN_TOKEN}"; heartbeat_interval = "1s";
              name = "$name"; $disc_extra };
device = { type = "${DISC_DEVICE:-tun}"; name = "bifrost0"; mtu = 1400; };
connection = { listen = "${DISC_LISTEN:-0.0.0.0:51820}"; keepalive_interval = "2s"; $conn_extra };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s";
               liveness_timeout = "5s"; stop_timeout = "3s"; intensity = 30; };
services = (
    { name = "bus";       exec = "bifrost-bus"; },
    { name = "tunnel";    exec = "bifrost-tunnel";    depends = ["bus"]; },
    { name = "nat";       exec = "bifrost-nat";       depends = ["bus", "tunnel"]; },
    { name = "router";    exec = "bifrost-router";    depends = ["bus"]; },
    { name = "discovery"; exec = "bifrost-discovery"; depends = ["bus", "tunnel"]; pass_env = ["BIFROST_JOIN_TOKEN"]; }
    ${DISC_SERVICES_EXTRA:+, $DISC_SERVICES_EXTRA}
);
${DISC_CFG_EXTRA:-}
CFG
}

#   disc_registry NETWORK
# (with node_lib.sh: a namespace `reg` made by `underlay reg 192.0.2.10`) starts
# bifrost-registry there on 192.0.2.10:7080 (database and log under $T/reg),
# waits until it answers, creates NETWORK (10.100.0.0/24, heartbeats every 1 s,
# offline after 3 s) and a reusable join token, exported as BIFROST_JOIN_TOKEN.
# Sets RURL and REGPID (the registry itself, for its owner's cleanup) and
# defines `admin METHOD PATH [BODY]` for the network API. Returns non-zero, with
# a line on stderr, when any step fails. Shared by the routing tests and
# bench/mesh_hops.sh, so a test registry is started one way.
disc_registry () {
    local network=$1
    RURL=http://192.0.2.10:7080
    export BIFROST_ADMIN_TOKEN=${BIFROST_ADMIN_TOKEN:-admin-$$-secret}
    mkdir -p "$T/reg"
    cat > "$T/reg/registry.cfg" <<CFG
registry = { listen = "192.0.2.10:7080"; database = "$T/reg/registry.db";
             admin_token = "\${BIFROST_ADMIN_TOKEN}"; rate_limit = 0; };
CFG
    # ip exec's the registry: $! is the registry itself
    ip netns exec "$(ns_of reg)" "$BIFROST_BUILDDIR/services/registry/bifrost-registry" \
        -c "$T/reg/registry.cfg" -r "$T/reg/run" >>"$T/reg/registry.log" 2>&1 &
    REGPID=$!
    admin () { in_ns reg curl -s -m 5 -X "$1" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" ${3:+--data-binary "$3"} \
                   "$RURL/api/v1/mesh/networks$2"; }
    wait_for 10 in_ns reg curl -s -o /dev/null "$RURL/client/meta" \
        || { echo "disc_registry: the registry does not answer on $RURL" >&2; return 1; }
    admin POST "" "{\"id\":\"$network\",\"name\":\"$network\",\"cidr\":\"10.100.0.0/24\",
                    \"settings\":{\"heartbeat_interval\":1,\"offline_after\":3,\"expire_after\":120}}" \
        | jq -e --arg n "$network" '.id == $n' >/dev/null \
        || { echo "disc_registry: could not create network $network" >&2; return 1; }
    BIFROST_JOIN_TOKEN=$(admin POST "/$network/tokens" '{"ttl":3600,"reusable":true}' | jq -r .token)
    export BIFROST_JOIN_TOKEN
    case "$BIFROST_JOIN_TOKEN" in bjt_*) return 0 ;; esac
    echo "disc_registry: no join token" >&2
    return 1
}

#   disc_registry_stop
# stops the registry disc_registry (or the test) started as REGPID: SIGTERM,
# then up to 5 s for it to end. disc_registry_cleanup, for the test's EXIT
# trap, does the same and, when a point failed ($FAILED), shows the last 20
# lines of $T/reg/registry.log. One way for every test with a registry.
disc_registry_stop () {
    [ -n "${REGPID:-}" ] && kill -TERM "$REGPID" 2>/dev/null && wait_for 5 sh -c "! kill -0 $REGPID"
    REGPID=
}
disc_registry_cleanup () {
    disc_registry_stop
    if [ "${FAILED:-0}" -ne 0 ]; then
        echo "# ---- registry log (last 20 lines)"
        tail -20 "$T/reg/registry.log" 2>/dev/null | sed 's/^/#   /'
    fi
}

#   disc_cleanup [PID...]
# the EXIT trap of a test with a registry and nodes: SIGTERM to each PID (what
# the test started beside the nodes), the registry stopped (disc_registry_cleanup),
# then node_cleanup. `trap 'disc_cleanup $PIDS' EXIT` (single quotes): the
# pids as they are when the test ends.
disc_cleanup () {
    local p
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    disc_registry_cleanup
    node_cleanup
}

#   disc_underlay NODE...
# (with node_lib.sh) one underlay namespace per NODE: `reg` on 192.0.2.10 (where
# disc_registry listens), the others on 192.0.2.1, .2, ... in the order given.
disc_underlay () {
    local n i=0
    for n in "$@"; do
        if [ "$n" = reg ]; then underlay reg 192.0.2.10; else i=$((i + 1)); underlay "$n" "192.0.2.$i"; fi
    done
}

#   disc_block TABLE A B
# A and B cannot reach each other on the underlay: nftables table inet TABLE on
# A drops every datagram from and to B's eth0 address, and the same on B for
# A's. True when both tables are in place. The routing tests build their
# "a reaches c only through b" this way.
disc_underlay_addr () { in_ns "$1" ip -o -4 addr show dev eth0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }'; }
disc_block () {
    local table=$1 a=$2 b=$3 pair
    for pair in "$a $(disc_underlay_addr "$b")" "$b $(disc_underlay_addr "$a")"; do
        set -- $pair
        in_ns "$1" nft -f - <<NFT
table inet $table {
    chain in { type filter hook input priority 0; ip saddr $2 drop; }
    chain out { type filter hook output priority 0; ip daddr $2 drop; }
}
NFT
    done
    in_ns "$a" nft list table inet "$table" >/dev/null 2>&1 && in_ns "$b" nft list table inet "$table" >/dev/null 2>&1
}

#   disc_up NETWORK NODE...
# (with node_lib.sh and disc_registry) writes each NODE's config (disc_node_cfg
# under $T/NODE, DISC_CFG_EXTRA and the rest as there), starts it (start_node)
# and waits up to 15 s for the virtual address the registry gives it, kept in
# the associative array V (V[NODE], empty when none came). Returns non-zero
# when a node did not start or got no address. `disc_vip NODE`: the address;
# `disc_has_vip NODE`: true when it has one.
disc_vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
disc_has_vip () { [ -n "$(disc_vip "$1")" ]; }
declare -gA V 2>/dev/null
disc_up () {
    local network=$1 n rc=0; shift
    for n in "$@"; do disc_node_cfg "$T/$n" "$n" "$network" "$RURL"; done
    for n in "$@"; do start_node "$n" || { echo "disc_up: node $n did not start" >&2; rc=1; }; done
    for n in "$@"; do
        wait_for 15 sh -c "ip netns exec $(ns_of "$n") ip -o -4 addr show dev bifrost0 | grep -q inet"
        V[$n]=$(disc_vip "$n")
        [ -n "${V[$n]}" ] || rc=1
    done
    return $rc
}
