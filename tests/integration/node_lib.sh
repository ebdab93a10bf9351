# node_lib.sh: shared helpers of the tunnel tests (sourced, not run).
#
# Two (or three) Bifrost nodes, each a real bifrostd with real services, each in
# its own network namespace; the namespaces are joined by veth pairs on a bridge-less
# point-to-point underlay 192.0.2.0/24 (TEST-NET-1, only inside the namespaces).
# Everything this file creates (namespaces, links, processes, files) is removed on
# exit, whatever happened.

set -u
ID=$$
T=$(mktemp -d /tmp/node-test-XXXXXX)
chmod 755 "$T"
TESTNO=0
FAILED=0
NODES=""
NAMESPACES=""
BIFROSTD=$BIFROST_BUILDDIR/supervisor/bifrostd
CTL=$BIFROST_BUILDDIR/tools/bifrostctl
LIBEXEC=$BIFROST_LIBEXEC_DIR

node_cleanup () {
    for n in $NODES; do
        pid=$(cat "$T/$n/bifrostd.pid" 2>/dev/null)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    for ns in $NAMESPACES; do
        # Anything still running in a namespace we made was started by this test
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$FAILED" -ne 0 ]; then
        for n in $NODES; do
            echo "# ---- log of node $n (last 60 lines)"
            tail -60 "$T/$n/bifrostd.log" 2>/dev/null | sed 's/^/#   /'
        done
    fi
    seccomp_check "$T"
    # KEEP_T=/some/dir keeps a copy of the test's folder (logs, configs), as sup_lib.sh
    [ -n "${KEEP_T:-}" ] && rm -rf "$KEEP_T" && cp -r "$T" "$KEEP_T"
    rm -rf "$T"
}
trap node_cleanup EXIT
trap 'exit 1' INT TERM

WAIT_STEP=0.1
. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"

# underlay NAME ADDR: a namespace with lo up, joined to the hub namespace by a veth
UNDERLAY_HUB=""
underlay () {
    local name=$1 addr=$2 ns="bf$1-$ID"
    if [ -z "$UNDERLAY_HUB" ]; then
        UNDERLAY_HUB="bfhub-$ID"
        ip netns add "$UNDERLAY_HUB" && NAMESPACES="$NAMESPACES $UNDERLAY_HUB"
        ip -n "$UNDERLAY_HUB" link add br0 type bridge
        ip -n "$UNDERLAY_HUB" link set br0 up
    fi
    ip netns add "$ns" && NAMESPACES="$NAMESPACES $ns"
    ip -n "$ns" link set lo up
    ip link add "bv$name$ID" type veth peer name "bh$name$ID"
    ip link set "bv$name$ID" netns "$ns"
    ip link set "bh$name$ID" netns "$UNDERLAY_HUB"
    ip -n "$ns" link set "bv$name$ID" name eth0
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$UNDERLAY_HUB" link set "bh$name$ID" master br0
    ip -n "$UNDERLAY_HUB" link set "bh$name$ID" up
}
ns_of () { echo "bf$1-$ID"; }
in_ns () { local n=$1; shift; ip netns exec "$(ns_of "$n")" "$@"; }

# genkey NODE: the node's key file; prints its public key
genkey () {
    mkdir -p "$T/$1"
    "$LIBEXEC/bifrost-crypto" --genkey "$T/$1/node.key"
}

# node_config NODE TYPE ADDR/PREFIX PEERS-TEXT [EXTRA]: writes $T/NODE/node.cfg
# NODE_MORE_SERVICES, when set, is appended to the services list (",\n { ... }").
# Device and crypto run as one process, bifrost-tunnel (the default), or as two
# for the nodes named in NODE_SPLIT (e.g. NODE_SPLIT="b"): both layouts are tested.
node_config () {
    local n=$1 type=$2 addr=$3 peers=$4 extra=${5:-}
    local tunnel='    { name = "tunnel"; exec = "bifrost-tunnel"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "tunnel"]; },'
    case " ${NODE_SPLIT:-} " in *" $n "*) tunnel='    { name = "crypto"; exec = "bifrost-crypto"; depends = ["bus"]; },
    { name = "nat";    exec = "bifrost-nat";    depends = ["bus", "crypto"]; },
    { name = "device"; exec = "bifrost-device"; depends = ["bus", "crypto"]; },' ;; esac
    cat > "$T/$n/node.cfg" <<CFG
run_dir = "$T/$n/run";
key_file = "$T/$n/node.key";
device = { type = "$type"; name = "bifrost0"; mtu = 1420; address = "$addr"; };
connection = { listen = "0.0.0.0:51820"; keepalive_interval = "2s"; };
peers = ( $peers );
supervisor = { backoff_min = "100ms"; backoff_max = "1s"; stable_after = "2s";
               liveness_timeout = "3s"; stop_timeout = "2s"; intensity = 30; };
services = (
    { name = "bus";    exec = "bifrost-bus"; },
$tunnel
    { name = "router"; exec = "bifrost-router"; depends = ["bus"]; }${NODE_MORE_SERVICES:-}
);
$extra
CFG
}

# peer NAME KEY ALLOWED [ENDPOINT]: one entry of a peers list
peer () {
    local ep=""
    [ -n "${4:-}" ] && ep="endpoint = \"$4\"; direct = true;"
    echo "{ name = \"$1\"; public_key = \"$2\"; allowed_ips = [\"$3\"]; $ep }"
}

# two_nodes TYPE [EXTRA]: nodes a (10.100.0.1, dials b at 192.0.2.2:51820) and b
# (10.100.0.2, waits for a) on the underlay, TYPE tun or tap, EXTRA appended to both
# configs; keys in $KA and $KB; both started (two test points)
two_nodes () {
    underlay a 192.0.2.1
    underlay b 192.0.2.2
    KA=$(genkey a); KB=$(genkey b)
    node_config a "$1" 10.100.0.1/24 "$(peer b "$KB" 10.100.0.2/32 192.0.2.2:51820)" "${2:-}"
    node_config b "$1" 10.100.0.2/24 "$(peer a "$KA" 10.100.0.1/32)" "${2:-}"
    start_node a; ok $? "node a: every service READY"
    start_node b; ok $? "node b: every service READY"
}

# start_node NODE: bifrostd in the node's namespace; waits until every service is READY
start_node () {
    local n=$1
    case " $NODES " in *" $n "*) ;; *) NODES="$NODES $n" ;; esac
    # Not through in_ns: a function run in the background is a subshell, and its pid
    # (not bifrostd's) would get the SIGTERM of stop_node. ip and env exec, so $! is bifrostd.
    ip netns exec "$(ns_of "$n")" env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" -c "$T/$n/node.cfg" \
        >>"$T/$n/bifrostd.log" 2>&1 &
    echo $! > "$T/$n/bifrostd.pid"
    wait_for 15 all_ready "$n"
}
ctl () { local n=$1; shift; "$CTL" -r "$T/$n/run" "$@"; }
# all_ready NODE: every service its config lists (4 with bifrost-tunnel, 5 split) is READY
all_ready () {
    local out want; out=$(ctl "$1" status 2>/dev/null) || return 1
    want=$(grep -c 'exec = "bifrost-' "$T/$1/node.cfg")
    echo "$out" | awk -v want="$want" '$1 == "INSTANCE" { on = 1; next } on && NF == 0 { on = 0 } on && $3 != "ready" { bad = 1 } on { n++ } END { exit (bad || n < want) }'
}
# service_pid NODE SERVICE: pid of the service's first instance
service_pid () { ctl "$1" status 2>/dev/null | awk -v s="$2.1" '$1 == s && $3 == "ready" { print $2 }'; }
# wait_restarted NODE SERVICE OLD_PID: the supervisor brought SERVICE back (a new
# pid, READY) within 10 s
wait_restarted () {
    wait_for 10 sh -c "p=\$($CTL -r '$T/$1/run' status 2>/dev/null | awk '\$1 == \"$2.1\" && \$3 == \"ready\" { print \$2 }'); [ -n \"\$p\" ] && [ \"\$p\" != $3 ]"
}
stop_node () {
    local pid; pid=$(cat "$T/$1/bifrostd.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait_for 10 sh -c "! kill -0 $pid"
}
# ping_ok NODE ADDR: one ping with a 1 s deadline
ping_ok () { in_ns "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; }
