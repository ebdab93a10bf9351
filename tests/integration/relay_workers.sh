#!/bin/sh
# relay_workers: the relay service as a user depends on it, with real processes:
# bifrostd runs the broker and bifrost-relay with `instances = 2` on loopback,
# tests/relay_probe plays 8 pairs of nodes (each pair in its own network, so the
# steering spreads them over the workers) and the registry (it mints credentials
# with the shared secret, which lives only in the environment). Proves: a
# 100 pkts/s stream per pair passes without loss and both workers carry some;
# kill -9 of a worker and `bifrostctl scale relay 1`, `4`, then `2` during the stream:
# every pair resumes (the gaps are measured and printed: under 1 s on a quiet
# machine, bounded at 3 s so a loaded one does not fail the point) and the loss
# is counted; forged, expired and other-network credentials, unregistered and
# spoofed sources and cross-network DATA reach nobody, a flood over peer_pps is
# cut, and `bifrostctl relay` shows the refused, dropped and limited counts.
. "$(dirname "$0")/sup_lib.sh"
echo "1..19"

LIBEXEC=${BIFROST_LIBEXEC_DIR:-${BIFROST_BUILDDIR:-.}/libexec}
PROBE=${BIFROST_BUILDDIR:-.}/tests/relay_probe
PY=$(command -v /usr/bin/python3 || command -v python3)
if [ ! -x "$LIBEXEC/bifrost-bus" ] || [ ! -x "$LIBEXEC/bifrost-relay" ] || [ ! -x "$PROBE" ] || [ -z "$PY" ]; then
    for i in $(seq 1 19); do echo "ok $i # SKIP bifrost-bus, bifrost-relay, tests/relay_probe or python3 missing"; done
    exit 0
fi
export BIFROST_LIBEXEC_DIR="$LIBEXEC"

# The secret: generated, exported for bifrostd (the config says "${RELAY_SECRET}")
# and the probe (which reads $RELAY_SECRET); never in a file, never on a command line
RELAY_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export RELAY_SECRET
# A port free for UDP and TCP on loopback (every worker accepts TCP on the same number)
PORT=$($PY -c 'import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass')
RELAY=127.0.0.1:$PORT
PEER_PPS=300

# The restart policy is the default one (backoff_min 1 s for a worker that dies
# young): the gaps measured are those a user gets
cat > "$T/relay.cfg" <<EOF
supervisor: { stop_timeout = "2s"; };
services = (
  { name = "bus"; exec = "bifrost-bus"; },
  { name = "relay"; exec = "bifrost-relay"; depends = ["bus"]; instances = 2; pass_env = ["RELAY_SECRET"]; }
);
relay = { listen = "$RELAY"; secret = "\${RELAY_SECRET}"; peer_pps = $PEER_PPS; };
EOF

# relay_json: `bifrostctl relay --json` into $T/relay.json
relay_json () { ctl relay --json > "$T/relay.json" 2>/dev/null; }
# steered N: exactly N workers answer and each steers over N
steered () {
    relay_json || return 1
    $PY - "$T/relay.json" "$1" <<'EOF'
import json, sys
w = json.load(open(sys.argv[1]))["workers"]
n = int(sys.argv[2])
sys.exit(0 if len(w) == n and all(x.get("answered") and x.get("workers") == n for x in w) else 1)
EOF
}
# counters: the sums of refused, dropped and limited over the workers
counters () {
    relay_json && $PY -c 'import json, sys
w = json.load(open(sys.argv[1]))["workers"]
print(*(sum(x.get(k, 0) for x in w) for k in ("refused", "dropped", "limited")))' "$T/relay.json"
}
# stream NAME SECONDS: starts the probe in the background (8 pairs, 100 pkts/s);
# STREAM_PID, and $T/NAME.ready appears when the measured stream starts
stream () {
    rm -f "$T/$1.ready"
    "$PROBE" stream --relay "$RELAY" --pairs 8 --pps 100 --seconds "$2" --json \
        --ready-file "$T/$1.ready" > "$T/$1.json" 2>"$T/$1.err" &
    STREAM_PID=$!
    remember "$STREAM_PID"
    WAIT_STEP=0.01 wait_for 15 test -f "$T/$1.ready"
}
# at_ms NAME: ms since the stream NAME started (the ready file's mtime)
at_ms () { $PY -c 'import os, sys, time; print(int((time.time_ns() - os.stat(sys.argv[1]).st_mtime_ns) / 1e6))' "$T/$1.ready"; }
# log_at_ms NAME PATTERN [AFTER]: ms since the stream NAME started of the last
# bifrostd log line matching PATTERN, or with AFTER the first one at or after AFTER
# ms (from its HH:MM:SS.mmm stamp, local time, today); -1 when there is none
log_at_ms () {
    grep "$2" "$LOG" | $PY -c 'import os, sys, time
start = os.stat(sys.argv[1]).st_mtime_ns / 1e6
lt = time.localtime(start / 1000)
midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)) * 1000
at = []
for line in sys.stdin:
    h, m, sec = line.split()[0].split(":")
    at.append(int(midnight + (int(h) * 3600 + int(m) * 60 + float(sec)) * 1000 - start))
if len(sys.argv) > 2:
    at = [t for t in at if t >= int(sys.argv[2])][:1]
print(at[-1] if at else -1)' "$T/$1.ready" ${3:-}
}
# verdict NAME MAX_GAP_MS [EVENT=MS ...]: prints "PAIRS_OK WORST LOST SENT" and,
# as TAP comments, the loss and, per event, the worst gap that began after it.
# PAIRS_OK counts the pairs that received and had no gap of MAX_GAP_MS or more;
# the bounds given are 3 times what a quiet machine keeps, so only a pair that
# stopped or stalled for another reason fails
verdict () {
    _name=$1; _max=$2; shift 2
    $PY - "$T/$_name.json" "$_max" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
limit = float(sys.argv[2])
events = [(e.split("=")[0], int(e.split("=")[1])) for e in sys.argv[3:]]
pairs = d["per_pair"]
ok = sum(1 for p in pairs if p["received"] > 0 and p["max_gap_ms"] < limit)
print(ok, round(d["worst_gap_ms"]), d["lost"], d["sent"])
print("# %s: sent %d, received %d, lost %d (%.1f %%), worst gap %.0f ms (pair %d at %d ms)" % (
      sys.argv[1].rsplit("/", 1)[1], d["sent"], d["received"], d["lost"],
      100.0 * d["lost"] / max(1, d["sent"]), d["worst_gap_ms"], d["worst_gap_pair"], d["worst_gap_at_ms"]),
      file=sys.stderr)
for i, (name, at) in enumerate(events):
    end = events[i + 1][1] - 50 if i + 1 < len(events) else 10 ** 9
    gaps = [(g[1], p["pair"], g[0], g[2]) for p in pairs for g in p["gaps"] if at - 50 <= g[0] < end]
    moved = len(set(g[1] for g in gaps))
    worst = max(gaps) if gaps else (0, -1, 0, 0)
    print("#   %s at %d ms: %d of %d pairs paused >= 100 ms, worst gap %d ms (pair %d, from %d ms)%s" % (
          name, at, moved, len(pairs), worst[0], worst[1], worst[2],
          "; gaps (pair:from+ms/packets lost): " + " ".join("%d:%d+%d/%d" % (g[1], g[2], g[0], g[3]) for g in sorted(gaps, key=lambda g: (g[1], g[2])))
          if gaps else ""), file=sys.stderr)
EOF
}

start_bifrostd "$T/relay.cfg"
wait_for 10 steered 2
ok $? "bifrostd runs bus and relay.1, relay.2; both steer the port over 2 workers"
remember "$(field relay.1 2)" "$(field relay.2 2)"
! grep -q "$RELAY_SECRET" "$T/relay.cfg" "$LOG" 2>/dev/null
ok $? "the secret is in neither the config file nor the log"

# 1. Steady state: no loss, and both workers carry networks
stream steady 3
wait "$STREAM_PID"
set -- $(verdict steady 300 2>"$T/steady.txt")
cat "$T/steady.txt"
[ "${1:-0}" -eq 8 ] && [ "${3:-1}" -eq 0 ] && [ "${4:-0}" -ge 2300 ]
ok $? "8 pairs at 100 pkts/s for 3 s: 0 lost of ${4:-?}, worst gap ${2:-?} ms"
relay_json
$PY -c 'import json, sys
w = json.load(open(sys.argv[1]))["workers"]
for x in w: print("#   %s: peers %d, registered %d, forwarded %d" % (x["name"], x["peers_registered"], x["registered"], x["forwarded"]))
sys.exit(0 if len(w) == 2 and all(x["registered"] > 0 and x["forwarded"] > 0 for x in w) else 1)' "$T/relay.json"
ok $? "the 8 networks spread over both workers (registered and forwarded > 0 at each)"

# 2. kill -9 of a worker during the stream
W1=$(field relay.1 2)
stream kill 6
sleep 1.5
KILL_AT=$(at_ms kill)
kill -KILL "$W1"
wait_for 5 new_ready relay.1 "$W1"
ok $? "relay.1 killed with -9 is restarted by bifrostd"
remember "$(field relay.1 2)"
wait "$STREAM_PID"
RESTART_AT=$(log_at_ms kill "relay.1: started")
READY_AT=$(log_at_ms kill "relay.1: ready")
set -- $(verdict kill 3000 "kill-9=$KILL_AT" "restarted=$RESTART_AT" 2>"$T/kill.txt")
cat "$T/kill.txt"
echo "# kill -9 at $KILL_AT ms; bifrostd started relay.1 again at $RESTART_AT ms (restart backoff), READY at $READY_AT ms"
[ "${1:-0}" -eq 8 ]
ok $? "kill -9: every pair resumes, worst gap ${2:-?} ms (bound 3000)"
[ "${3:-0}" -gt 0 ] && [ "${3:-0}" -lt "${4:-0}" ]
ok $? "kill -9: the loss is counted (${3:-?} of ${4:-?} packets)"
wait_for 5 steered 2
ok $? "after the restart both workers steer over 2 again"

# 3. scale 2 -> 1 -> 4, kill -9 of one of the four, scale 4 -> 2, all during one stream.
#    With four workers a dead one in the middle of the group leaves an index the
#    steering program still names: that network falls back to the kernel's
#    4-tuple hash (a pair may be split) until the others count it gone.
stream scale 12
sleep 1.5
ONE_AT=$(at_ms scale)
ctl scale relay 1 >/dev/null
wait_for 5 steered 1
ok $? "bifrostctl scale relay 1: one worker, steering over 1"
sleep 1.5
UP_AT=$(at_ms scale)
ctl scale relay 4 >/dev/null
wait_for 5 steered 4
ok $? "bifrostctl scale relay 4: four workers, each steering over 4"
W3=$(field relay.3 2)
remember "$W3" "$(field relay.4 2)"
sleep 1.5
KILL4_AT=$(at_ms scale)
kill -KILL "$W3"
wait_for 5 new_ready relay.3 "$W3"
ok $? "relay.3 of four killed with -9 is restarted"
remember "$(field relay.3 2)"
wait_for 5 steered 4
sleep 1
DOWN_AT=$(at_ms scale)
ctl scale relay 2 >/dev/null
wait_for 5 steered 2
ok $? "bifrostctl scale relay 2: two workers, each steering over 2"
wait "$STREAM_PID"
GONE_AT=$(log_at_ms scale "relay.1.*steering the port by network over 3 workers" "$KILL4_AT")
BACK_AT=$(log_at_ms scale "relay.3: started")
set -- $(verdict scale 3000 "scale-1=$ONE_AT" "scale-4=$UP_AT" "kill-9-of-4=$KILL4_AT" "relay.3-restarted=$BACK_AT" "scale-2=$DOWN_AT" 2>"$T/scale.txt")
cat "$T/scale.txt"
echo "# kill -9 of relay.3 at $KILL4_AT ms; relay.1 steered over 3 from $GONE_AT ms (the dead worker counted gone), relay.3 started again at $BACK_AT ms"
[ "${1:-0}" -eq 8 ]
ok $? "scale 2 -> 1 -> 4, kill -9, scale 4 -> 2: every pair resumes, worst gap ${2:-?} ms (bound 3000)"
[ "${3:-1}" -lt "${4:-0}" ]
ok $? "scale and kill: the loss is counted (${3:-?} of ${4:-?} packets)"

# 4. Attacks: everything dropped, and bifrostctl relay shows it
set -- $(counters)
R0=${1:-0}; D0=${2:-0}; L0=${3:-0}
"$PROBE" attack --relay "$RELAY" --limit-pps "$PEER_PPS" > "$T/attack.txt" 2>&1
RC=$?
sed 's/^/#   /' "$T/attack.txt"
[ "$RC" -eq 0 ] && grep -q "attack: 11 checks, 0 failed" "$T/attack.txt"
ok $? "relay_probe attack: forged/expired/other-network REGISTER, unregistered and spoofed DATA/PING, cross-network DATA reach nobody; the flood is cut"
set -- $(counters)
R1=${1:-0}; D1=${2:-0}; L1=${3:-0}
echo "# bifrostctl relay: refused +$((R1 - R0)), dropped +$((D1 - D0)), limited +$((L1 - L0))"
ctl relay | sed 's/^/#   /'
# 3 forged + 2 expired + 2 other-network REGISTERs; 6 unregistered DATA/PING and 1
# with a wrong network word
[ $((R1 - R0)) -ge 7 ] && [ $((D1 - D0)) -ge 6 ]
ok $? "bifrostctl relay counts the refused REGISTERs (+$((R1 - R0))) and the dropped datagrams (+$((D1 - D0)))"
[ $((L1 - L0)) -gt 0 ]
ok $? "bifrostctl relay counts the flood as limited (+$((L1 - L0)))"

ctl relay > "$T/relay.txt" 2>&1
grep -q "^relay.1 " "$T/relay.txt" && grep -q "^relay.2 " "$T/relay.txt" && head -1 "$T/relay.txt" | grep -q "LIMITED"
ok $? "bifrostctl relay prints one line per worker"

kill -TERM "$BPID"
wait "$BPID"
ok $? "bifrostd stops cleanly"
BPID=
finish
