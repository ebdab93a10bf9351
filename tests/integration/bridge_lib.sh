# bridge_lib.sh: what the bridge's integration scripts share (sourced, not
# run; after tap_lib.sh): bridge.sh and bridge_page.sh on the NAT grid,
# bridge_dualstack.sh in namespaces of its own. Sourcing it sets BRIDGE_TOKEN
# (fresh, exported for bifrostd's pass_env), PIDS (none yet) and T0 (now); the
# caller sets T (its temporary directory) and SLOW, and may set HB_INTERVAL_MS
# and HB_TIMEOUT_MS (the bridge's defaults, 1000 and 3000, otherwise).
#   bridge_spawn NS LOG CMD...      CMD in namespace NS, in the background;
#                                   its pid in SPAWNED and PIDS
#   bridge_start NS LISTEN          bifrostd with bus and bifrost-bridge in NS,
#                                   listening on LISTEN; true once bridge.1 is ready
#   bridge_stop_all                 every spawned process ends (SIGCONT first:
#                                   a test may have stopped one), then the
#                                   logs' tails when a point failed
#   bridge_ctl ARGS...              bifrostctl against that server
#   urlenc TEXT                     TEXT percent-encoded for a query
BIFROSTD=$BIFROST_BUILDDIR/supervisor/bifrostd
CTL=$BIFROST_BUILDDIR/tools/bifrostctl
PEER=$BIFROST_BUILDDIR/services/bridge/bifrost-bridge-peer
CLIENT=$BIFROST_BUILDDIR/tests/bridge_ws_client
export BRIDGE_TOKEN
BRIDGE_TOKEN=tok-$$-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
PIDS=""
T0=$(now_ms)

bridge_spawn () {
    local ns=$1 log=$2; shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
    SPAWNED=$!                  # ip netns exec execs: $! is CMD's own pid
    PIDS="$PIDS $SPAWNED"
}

bridge_ctl () { "$CTL" -r "$T/srv/run" "$@"; }
bridge_ready () { bridge_ctl status 2>/dev/null | grep -q "^bridge\.1 .* ready"; }

bridge_start () {
    local ns=$1 listen=$2
    mkdir -p "$T/srv"
    cat > "$T/srv/bridge.cfg" <<CFG
run_dir = "$T/srv/run";
bridge = { listen = "$listen"; token = "\${BRIDGE_TOKEN}";
           heartbeat_interval = "${HB_INTERVAL_MS:-1000}ms"; heartbeat_timeout = "${HB_TIMEOUT_MS:-3000}ms"; };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s"; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "bridge"; exec = "bifrost-bridge"; depends = ["bus"]; pass_env = ["BRIDGE_TOKEN"]; }
);
CFG
    bridge_spawn "$ns" "$T/srv.log" env BIFROST_LIBEXEC_DIR="$BIFROST_LIBEXEC_DIR" "$BIFROSTD" -c "$T/srv/bridge.cfg"
    wait_for $((10 * SLOW)) bridge_ready
}

bridge_stop_all () {
    local p f
    for p in $PIDS; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    [ "$FAILED" -ne 0 ] || return 0
    for f in "$T"/*.log "$T"/*.out; do
        [ -f "$f" ] || continue
        echo "# ---- $f (last 25 lines)"
        tail -25 "$f" 2>/dev/null | sed 's/^/#   /'
    done
}

urlenc () { jq -rn --arg v "$1" '$v | @uri'; }
