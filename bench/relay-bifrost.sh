#!/bin/bash
# relay-bifrost.sh: the Bifrost relay (bifrost-relay under bifrostd) as the `custom`
# case of the relay forwarding harness (../shared/bench/relay/run.sh, its README
# "Your relay, in the same run"), measured beside no relay, fwd.c and coturn.
#
#   relay-bifrost.sh run [HARNESS]  runs the harness once (root): CASES, ROUNDS, SIZES,
#                                   OUTDIR as run.sh reads them; this script's three
#                                   commands as CUSTOM_RELAY_UP, CUSTOM_PEER_PREP and
#                                   CUSTOM_SEND; a fresh RELAY_SECRET for the run
#   relay-bifrost.sh up             (CUSTOM_RELAY_UP, in tr-srv) writes the relay config
#                                   and runs bifrostd (bus + relay, $BIFROST_RELAY_WORKERS
#                                   instances) on $SRV:$PORT, limits off, until stopped;
#                                   on TERM it first saves every worker's counters and CPU
#                                   to $OUTDIR/relay-workers.<n>.json
#   relay-bifrost.sh prep           (CUSTOM_PEER_PREP, in tr-peer) waits until every worker
#                                   steers by the same count, then registers the receiving
#                                   peer from $PEER:$PEER_PORT (once per network) and exits;
#                                   a new peer id for every trial (below), in $OUTDIR
#   relay-bifrost.sh send           (CUSTOM_SEND, in tr-cli) relay_probe blast: $SESS
#                                   sessions in $BIFROST_RELAY_WORKERS networks (one per
#                                   worker: steering is by network), $SIZE-byte payloads for
#                                   $SECS s at $RATE (0 = unpaced) to that peer; blast's JSON
#
# Knobs: BIFROST_RELAY_WORKERS (default 1), BIFROST_RELAY_GSO (default 1: relay.gso),
# BIFROST_RELAY_NETWORKS (networks the sessions spread over; default = the workers),
# RELAY_SECRET (64 hex digits; `run` makes one). Programs from BIFROST_BUILDDIR (else
# the build tree this script is run from: bench/.. or $PWD): supervisor/bifrostd,
# tools/bifrostctl, tests/relay_probe, libexec/ (BIFROST_LIBEXEC_DIR).
set -u
here=$(cd "$(dirname "$0")" && pwd)

die () { echo "relay-bifrost: $*" >&2; exit 1; }

builddir () {
    local d
    for d in "${BIFROST_BUILDDIR:-}" "$here/.." "$PWD"; do
        [ -n "$d" ] && [ -x "$d/supervisor/bifrostd" ] && { (cd "$d" && pwd); return; }
    done
    die "no build tree with supervisor/bifrostd (set BIFROST_BUILDDIR)"
}
B=$(builddir) || exit 1
LIBEXEC=${BIFROST_LIBEXEC_DIR:-$B/libexec}
WORKERS=${BIFROST_RELAY_WORKERS:-1}
NETWORKS=${BIFROST_RELAY_NETWORKS:-$WORKERS}
need () { for v in "$@"; do [ -n "${!v:-}" ] || die "$v is not set (run me from the relay harness)"; done; }
run_dir () { echo "$OUTDIR/bifrost-relay/run"; }
# The receiving peer's id, new for every trial: each trial's 16 senders are new peers
# too, and one peer may have at most 64 partners (relay.peer_sessions, 64 at most)
# until idle ones expire (idle_timeout), so one fixed receiver would refuse the fifth
# trial within 30 s (measured: a whole trial counted as `limited`)
peer_id_file () { echo "$OUTDIR/bifrost-relay/peer-id"; }

# Every worker answers relay.status and steers by the count of workers (all N)
steered () {
    "$B/tools/bifrostctl" -r "$(run_dir)" relay --json 2>/dev/null \
        | jq -e --argjson n "$WORKERS" '[.workers[] | select(.workers == $n)] | length == $n' >/dev/null 2>&1
}

cmd_up () {
    need OUTDIR SRV PORT RELAY_SECRET
    local d="$OUTDIR/bifrost-relay" gso=true pid
    [ "${BIFROST_RELAY_GSO:-1}" = 1 ] || gso=false
    mkdir -p "$d"; rm -rf "$d/run"
    cat > "$d/relay.cfg" <<CFG
# written by relay-bifrost.sh for the relay benchmark: limits off
run_dir = "$d/run";
log_level = "warn";
relay = { listen = "$SRV:$PORT"; secret = "\${RELAY_SECRET}"; gso = $gso;
          peer_pps = 0; peer_bps = 0; network_pps = 0; network_bps = 0;
          network_sessions = 0; network_peers = 0; };
services = (
    { name = "bus";   exec = "bifrost-bus"; },
    { name = "relay"; exec = "bifrost-relay"; depends = ["bus"]; instances = $WORKERS; }
);
CFG
    BIFROST_LIBEXEC_DIR=$LIBEXEC "$B/supervisor/bifrostd" --check-config -c "$d/relay.cfg" >/dev/null \
        || die "bad config $d/relay.cfg"
    # In a session of its own: the harness's timeout signals its whole process group,
    # and the relay must still answer when this script saves its counters
    BIFROST_LIBEXEC_DIR=$LIBEXEC setsid "$B/supervisor/bifrostd" -c "$d/relay.cfg" &
    pid=$!
    # Stopped by the harness (TERM): the counters of every worker and the CPU of every
    # process first (after the measurement, so it costs the relay nothing measured)
    trap 's_save $pid; kill -TERM $pid 2>/dev/null; wait $pid; exit 0' TERM INT
    wait $pid
}

# The workers' counters (bifrostctl relay --json) and the CPU ticks of every process
# of the relay (bifrostd's children), into the next free $OUTDIR/relay-workers.N.json
s_save () {
    local n=1 out p sep=""
    while [ -e "$OUTDIR/relay-workers.$n.json" ]; do n=$((n + 1)); done
    out="$OUTDIR/relay-workers.$n.json"
    {
        printf '{"workers": %s, "gso": %s, "hz": %s, "status": ' "$WORKERS" "${BIFROST_RELAY_GSO:-1}" "$(getconf CLK_TCK)"
        "$B/tools/bifrostctl" -r "$(run_dir)" relay --json 2>/dev/null || printf null
        printf ', "cpu_ticks": {'
        for p in $(pgrep -P "$1"); do
            printf '%s"%s %s": %s' "$sep" "$p" "$(cat /proc/"$p"/comm)" \
                "$(sed 's/^.*) //' /proc/"$p"/stat | awk '{print $12 + $13}')"
            sep=", "
        done
        printf '}}\n'
    } > "$out" 2>/dev/null
}

cmd_prep () {
    need OUTDIR SRV PORT PEER PEER_PORT RELAY_SECRET
    local i id
    for i in $(seq 1 100); do steered && break; sleep 0.1; done
    [ "$i" -lt 100 ] || echo "relay-bifrost: the workers do not all steer by $WORKERS after 10 s" >&2
    id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    echo "$id" > "$(peer_id_file)"
    "$B/tests/relay_probe" register --relay "$SRV:$PORT" --peer-id "$id" --from "$PEER:$PEER_PORT" \
        --networks "$NETWORKS" --once
}

cmd_send () {
    need OUTDIR SRV PORT SESS SIZE SECS RATE RELAY_SECRET
    local id
    id=$(cat "$(peer_id_file)" 2>/dev/null) || die "no receiving peer: CUSTOM_PEER_PREP did not run"
    exec "$B/tests/relay_probe" blast --relay "$SRV:$PORT" --sessions "$SESS" --size "$SIZE" \
        --seconds "$SECS" --rate "$RATE" --to-peer "$id" --networks "$NETWORKS"
}

cmd_run () {
    local harness=${1:-${RELAY_HARNESS:-$here/../../shared/bench/relay/run.sh}}
    [ -f "$harness" ] || die "no harness at $harness (RELAY_HARNESS=...)"
    [ -x "$B/tests/relay_probe" ] || die "no $B/tests/relay_probe (make tests/relay_probe)"
    command -v jq >/dev/null || die "jq is needed"
    export RELAY_SECRET=${RELAY_SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}
    export BIFROST_BUILDDIR=$B BIFROST_LIBEXEC_DIR=$LIBEXEC BIFROST_RELAY_WORKERS=$WORKERS
    export CUSTOM_NAME=${CUSTOM_NAME:-bifrost-${WORKERS}w}
    export CUSTOM_RELAY_UP="exec '$here/relay-bifrost.sh' up"
    export CUSTOM_PEER_PREP="exec '$here/relay-bifrost.sh' prep"
    export CUSTOM_SEND="exec '$here/relay-bifrost.sh' send"
    OUTDIR=${OUTDIR:-/tmp/tr-relay}
    mkdir -p "$OUTDIR"; rm -f "$OUTDIR"/relay-workers.*.json
    export OUTDIR
    echo "relay-bifrost: $harness, CASES='${CASES:-}' workers=$WORKERS gso=${BIFROST_RELAY_GSO:-1} -> $OUTDIR" >&2
    bash "$harness"
}

case "${1:-}" in
    up) cmd_up ;;
    prep) cmd_prep ;;
    send) cmd_send ;;
    run) shift; cmd_run "$@" ;;
    -h|--help|*) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] ;;
esac
