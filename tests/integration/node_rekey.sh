#!/bin/bash
# node_rekey: session keys are replaced under load without losing a packet. With
# crypto.rekey_after_time = 2s, 800 pings at 100/s (8 s, several rekeys) all get
# their answer, and 20 MB over TCP spanning rekeys arrive intact; crypto's
# handshake counters prove the rekeys happened.
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

two_nodes tun 'crypto = { rekey_after_time = "2s"; };'
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b through the tunnel"

# handshakes NODE: handshakes this node initiated and completed (each handshake
# completes at exactly one initiator, so a's + b's counts every rekey once)
handshakes () { ctl "$1" peers --json 2>/dev/null | jq '.crypto.handshakes_completed'; }
H0=$(( $(handshakes a) + $(handshakes b) ))

in_ns a ping -c 800 -i 0.01 -W 1 -q 10.100.0.2 > "$T/ping800" 2>&1
grep -q "800 packets transmitted, 800 received" "$T/ping800"
ok $? "800 pings at 100/s across rekeys: none lost ($(grep -o '[0-9]* received' "$T/ping800"))"
sed -n 's/^rtt/# rtt/p' "$T/ping800"
H1=$(( $(handshakes a) + $(handshakes b) ))
echo "# handshakes during the 8 s ping: $(( H1 - H0 ))"
[ $(( H1 - H0 )) -ge 3 ]
ok $? "at least 3 rekeys during the ping ($(( H1 - H0 )) handshakes)"

# 20 MB over TCP, paced (100 kB every 25 ms, about 5 s) so that it spans rekeys
head -c 20000000 /dev/urandom > "$T/blob"
cat > "$T/send.py" <<'PY'
import socket, sys, time
data = open(sys.argv[1], "rb").read()
s = socket.create_connection(("10.100.0.2", 5001), timeout=10)
for off in range(0, len(data), 100000):
    s.sendall(data[off:off + 100000])
    time.sleep(0.025)
s.close()
PY
in_ns b socat -u TCP-LISTEN:5001,reuseaddr OPEN:"$T/blob.received",creat,trunc &
LISTENER=$!
wait_for 5 in_ns b sh -c "ss -ltn | grep -q :5001"
t0=$(now_ms)
in_ns a python3 "$T/send.py" "$T/blob"
ok $? "sender: 20 MB written"
wait_for 10 sh -c "! kill -0 $LISTENER"
ms=$(( $(now_ms) - t0 ))
cmp -s "$T/blob" "$T/blob.received"
ok $? "20 MB over TCP a -> b arrive intact ($ms ms)"
H2=$(( $(handshakes a) + $(handshakes b) ))
echo "# handshakes during the TCP transfer: $(( H2 - H1 ))"
[ $(( H2 - H1 )) -ge 1 ]
ok $? "the transfer spanned at least one rekey ($(( H2 - H1 )) handshakes)"
drops () { ctl "$1" peers --json 2>/dev/null | jq '.crypto | .unknown_index + .replay + .expired + .tampered + .queue_full + .queue_expired + .no_key'; }
[ "$(drops a)" = 0 ] && [ "$(drops b)" = 0 ]
ok $? "crypto dropped nothing across the rekeys (a: $(drops a), b: $(drops b))"
echo "# crypto counters a: $(ctl a peers --json | jq -c '.crypto | {handshakes_initiated, handshakes_completed, handshakes_responded, replay, unknown_index, expired, queue_full, pipe_full}')"
echo "# crypto counters b: $(ctl b peers --json | jq -c '.crypto | {handshakes_initiated, handshakes_completed, handshakes_responded, replay, unknown_index, expired, queue_full, pipe_full}')"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
