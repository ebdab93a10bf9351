# disc_lib.sh: the config of a node that knows only a registry (sourced, not run).
#   disc_node_cfg DIR NAME NETWORK SERVER [DISCOVERY-EXTRA] [CONNECTION-EXTRA]
# writes DIR/node.cfg: run directory and key under DIR, discovery with the join
# token from ${BIFROST_JOIN_TOKEN}, 1 s heartbeats, a TUN device without an
# address (the registry gives it), 2 s keepalives, fast restarts, and the node's
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
device = { type = "tun"; name = "bifrost0"; mtu = 1400; };
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
