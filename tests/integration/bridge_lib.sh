# bridge_lib.sh: the bridge's server for the integration tests (sourced, not
# run; after tap_lib.sh and natgrid_lib.sh). Used by bridge.sh and bridge_page.sh.
#
#   bridge_server NAME ADDR:PORT DIR [BRIDGE_KEYS]
#                       bifrostd with bus and bifrost-bridge listening on
#                       ADDR:PORT, in NAME's namespace of the grid: its config
#                       in DIR/bridge.cfg, run directory DIR/run, log DIR.log;
#                       BRIDGE_KEYS are more keys of the `bridge` group. The
#                       token is $BRIDGE_TOKEN (exported by the test, passed
#                       with pass_env). Waits until bridge.1 is ready; its pid
#                       in BRIDGE_SERVER_PID and in the grid's (grid_spawn).
#                       Not inside $( ).
#   bridge_ctl ARGS...  bifrostctl against that server's run directory
#   urlenc VALUE        VALUE percent-encoded for a URL's query or fragment
BRIDGE_SERVER_DIR=""
BRIDGE_SERVER_PID=""

bridge_server () {
    local name=$1 listen=$2 dir=$3 keys=${4:-}
    BRIDGE_SERVER_DIR=$dir
    mkdir -p "$dir"
    cat > "$dir/bridge.cfg" <<CFG
run_dir = "$dir/run";
bridge = { listen = "$listen"; token = "\${BRIDGE_TOKEN}"; $keys };
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s"; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
    { name = "bridge"; exec = "bifrost-bridge"; depends = ["bus"]; pass_env = ["BRIDGE_TOKEN"]; }
);
CFG
    grid_spawn "$name" "$dir.log" env BIFROST_LIBEXEC_DIR="$BIFROST_LIBEXEC_DIR" \
        "$BIFROST_BUILDDIR/supervisor/bifrostd" -c "$dir/bridge.cfg"
    BRIDGE_SERVER_PID=$GRID_PID
    wait_for $((10 * ${SLOW:-1})) _bridge_ready
}
_bridge_ready () { bridge_ctl status 2>/dev/null | grep -q "^bridge\.1 .* ready"; }

bridge_ctl () { "$BIFROST_BUILDDIR/tools/bifrostctl" -r "$BRIDGE_SERVER_DIR/run" "$@"; }

urlenc () { jq -rn --arg v "$1" '$v | @uri'; }
