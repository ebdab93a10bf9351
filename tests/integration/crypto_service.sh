#!/bin/sh
# crypto_service: two real bifrost-crypto processes (nodes A and B, each with its
# own run directory and broker) and crypto_pipe_probe playing device and nat for
# both and the network between them. Keys are made at first start (mode 0600) and
# fetched with crypto.key; then the peer configs are written and the data path is
# proven: first packet queued through the handshake, 1000 packets each way,
# tampered / replayed / spoofed datagrams dropped and counted, data sent on a lent
# UDP socket (ROUTE, SENT, bad ROUTEs, a descriptor that is not UDP), kill -9 and restart,
# --check-config errors with file:line. (TAP)
set -u
echo "1..38"
T=$(mktemp -d /tmp/crypto-svc-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
RA="$T/a"; RB="$T/b"
PIDS=
TESTNO=0
FAILED=0

LIBEXEC=${BIFROST_LIBEXEC_DIR:-${BIFROST_BUILDDIR:-.}/libexec}
PROBE=${BIFROST_BUILDDIR:-.}/services/crypto/crypto_pipe_probe
CRYPTO="$LIBEXEC/bifrost-crypto"
if [ ! -x "$LIBEXEC/bifrost-bus" ] || [ ! -x "$CRYPTO" ] || [ ! -x "$PROBE" ]; then
    i=0; while [ $i -lt 38 ]; do i=$((i + 1)); echo "ok $i # SKIP bifrost-bus, bifrost-crypto or the probe not built"; done
    exit 0
fi

cleanup () {
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "# $f:"; tail -30 "$f" | sed 's/^/#   /'; }; done
    fi
    seccomp_check "$T"
    rm -rf "$T"
}
trap cleanup EXIT

. "$BIFROST_SRCDIR/tests/integration/tap_lib.sh"
# probe_checks FILE: every "check: ok|FAIL what" line of the probe becomes a TAP line
probe_checks () {
    while read -r _tag _res _what; do
        [ "$_tag" = "check:" ] || continue
        [ "$_res" = ok ]; ok $? "$_what"
    done < "$1"
    grep -v '^check:' "$1" | sed 's/^/# /'
}
counter () { "$PROBE" counter "$1" "$2"; }

export BIFROST_HEARTBEAT_MS=200
export BIFROST_PSK=$(head -c 32 /dev/urandom | base64)
mkdir -p "$RA" "$RB"
# The probe plays services of the node, which the broker's sender policy
# (schemas/senders.def) rightly refuses: the broker runs without it here
BIFROST_BUS_UNCHECKED=1 "$LIBEXEC/bifrost-bus" -r "$RA" >"$T/bus-a.log" 2>&1 & PIDS="$PIDS $!"
BIFROST_BUS_UNCHECKED=1 "$LIBEXEC/bifrost-bus" -r "$RB" >"$T/bus-b.log" 2>&1 & PIDS="$PIDS $!"
wait_for 5 test -S "$RA/bus.ipc" && wait_for 5 test -S "$RB/bus.ipc"
ok $? "two brokers are up"

# First start without peers: the key file is created (directory 0700, file 0600)
printf 'key_file = "%s/state/a/node.key";\n' "$T" > "$T/a0.cfg"
printf 'key_file = "%s/state/b/node.key";\n' "$T" > "$T/b0.cfg"
start () {  # start NODE CONFIG: starts bifrost-crypto, sets PID_<NODE>
    "$CRYPTO" -r "$(eval echo \$R$1)" -c "$2" >>"$T/crypto-$1.log" 2>&1 &
    eval PID_$1=$!
    PIDS="$PIDS $!"
}
start A "$T/a0.cfg"; start B "$T/b0.cfg"
KA=$("$PROBE" key "$RA"); KB=$("$PROBE" key "$RB")
[ ${#KA} -eq 44 ] && [ ${#KB} -eq 44 ] && [ "$KA" != "$KB" ]
ok $? "crypto.key answers each node's public key (A $KA)"
[ "$(stat -c %a "$T/state/a/node.key")" = 600 ] && [ "$(stat -c %a "$T/state/a")" = 700 ]
ok $? "the key file was created at first start with mode 0600 in a 0700 directory"
! grep -q "$(cat "$T/state/a/node.key")" "$T"/crypto-A.log
ok $? "the private key does not appear in the log"
kill -TERM "$PID_A" "$PID_B"; wait "$PID_A"; RC_A=$?; wait "$PID_B"; RC_B=$?
[ "$RC_A" -eq 0 ] && [ "$RC_B" -eq 0 ]
ok $? "SIGTERM: both exit 0"

KC=$(head -c 32 /dev/urandom | base64)
cat > "$T/a.cfg" <<EOF
# node A: B is its second peer (index 1)
key_file = "$T/state/a/node.key";
psk = "\${BIFROST_PSK}";
crypto = { rekey_after_time = "120s"; reject_after_time = "180s"; };
connection = { keepalive_interval = "25s"; direct_connect = true; connect_timeout = "10s"; };
device = { type = "tun"; name = "bf0"; };
peers = (
  { name = "c"; public_key = "$KC"; allowed_ips = ["10.100.0.3/32"]; },
  { name = "b"; public_key = "$KB"; allowed_ips = ["10.100.0.2/32"]; endpoint = "192.0.2.2:51820"; direct = true; }
);
EOF
cat > "$T/b.cfg" <<EOF
key_file = "$T/state/b/node.key";
psk = "\${BIFROST_PSK}";
peers = ( { name = "a"; public_key = "$KA"; allowed_ips = ["10.100.0.1/32"]; } );
EOF
"$CRYPTO" --check-config -c "$T/a.cfg" >"$T/check.out" 2>&1
ok $? "--check-config accepts A's config (other services' groups ignored)"

cat > "$T/bad.cfg" <<EOF
key_file = "$T/state/a/node.key";
psk = "not-a-key";
crypto = { rekey_after_time = "2m"; reject_after_time = "1m"; rekey_soon = 1; };
connection = { keepalive_interval = "forever"; };
peers = ( { name = "self"; public_key = "$KA"; allowed_ips = ["10.100.0.9/32"]; } );
EOF
"$CRYPTO" --check-config -c "$T/bad.cfg" >"$T/check.out" 2>&1
RC=$?
sed 's/^/#   /' "$T/check.out"
[ "$RC" -eq 78 ]
ok $? "--check-config of a bad config exits 78"
grep -q "bad.cfg:2: psk:" "$T/check.out" && grep -q "bad.cfg:3: crypto.reject_after_time:" "$T/check.out" \
  && grep -q "bad.cfg:3: crypto.rekey_soon: unknown setting" "$T/check.out" \
  && grep -q "bad.cfg:4: connection.keepalive_interval:" "$T/check.out" \
  && grep -q "bad.cfg:5: peers.\[0\].public_key: peer 'self' has this node's own public key" "$T/check.out"
ok $? "every error is reported with file:line (psk, reject < rekey, unknown key, duration, own key)"
chmod 644 "$T/state/b/node.key"
"$CRYPTO" -r "$RB" -c "$T/b.cfg" >"$T/check.out" 2>&1
RC=$?
chmod 600 "$T/state/b/node.key"
[ "$RC" -eq 78 ] && grep -q "mode 0644" "$T/check.out"
ok $? "a key file others can read is refused at start (exit 78)"

start A "$T/a.cfg"; start B "$T/b.cfg"
[ "$("$PROBE" key "$RA")" = "$KA" ]
ok $? "restarted with peers: the key from the file is reused"
[ "$("$PROBE" key "$RA" b)" = "$KB" ]
ok $? "crypto.key with a peer name answers that peer's configured key"

"$PROBE" traffic "$RA" "$RB" 1000 >"$T/traffic.out" 2>>"$T/probe.log"
ok $? "probe traffic: exit 0"
probe_checks "$T/traffic.out"       # 6 checks
"$PROBE" status "$RA" > "$T/status.json"
jq -e '.peers[1].name == "b" and .peers[1].session == true and .peers[1].rx_packets == 1000
       and .peers[1].tx_packets == 1002 and .peers[0].session == false and .peers[1].handshake_age_ms >= 0' \
   "$T/status.json" >/dev/null
ok $? "crypto.status of A: session with b, 1000 received, 1002 sent, none with c"

"$PROBE" attack "$RA" "$RB" >"$T/attack.out" 2>>"$T/probe.log"
probe_checks "$T/attack.out"        # 8 checks

# nat lends its UDP socket (connection.tunnel_sends): A sends its data itself
"$PROBE" wire "$RA" "$RB" >"$T/wire.out" 2>>"$T/probe.log"
ok $? "probe wire: exit 0"
probe_checks "$T/wire.out"          # 8 checks

# kill -9 of A, restart: a new handshake, traffic flows again
HS_B=$(counter "$RB" handshakes_responded)
kill -KILL "$PID_A"; wait "$PID_A" 2>/dev/null
start A "$T/a.cfg"
"$PROBE" traffic "$RA" "$RB" 200 >"$T/traffic2.out" 2>>"$T/probe.log"
RC=$?
grep -v '^check:' "$T/traffic2.out" | sed 's/^/# after restart: /'
[ "$RC" -eq 0 ] && [ "$(counter "$RB" handshakes_responded)" -gt "$HS_B" ]
ok $? "after kill -9 and restart of A: a new handshake, 200 packets each way arrive intact"

"$PROBE" bench "$RA" "$RB" 2 >"$T/bench.out" 2>>"$T/probe.log"
RC=$?
sed 's/^/# /' "$T/bench.out"
[ "$RC" -eq 0 ]
ok $? "bench: encrypted packets flow dev-crypto -> crypto-nat"

[ "$TESTNO" -eq 29 ] || echo "# planned 29, ran $TESTNO"
[ "$FAILED" -eq 0 ]
