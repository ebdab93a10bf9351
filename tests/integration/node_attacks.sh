#!/bin/bash
# node_attacks: what an attacker on the underlay can send to a node is dropped and
# counted by crypto, and the tunnel a -> b goes on working after each: a tampered
# data packet (one ciphertext byte flipped), a replayed one (a real datagram sent
# again), a handshake from a key the node does not list (node c), and a packet
# from b whose inner source address is not b's (anti-spoofing on a), a flood
# of handshake initiations from one address (nat's budget, not crypto's CPU),
# and one from spoofed addresses during which b still makes a handshake with a
# (nat's cookie replies under load).
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

underlay a 192.0.2.1
underlay b 192.0.2.2
underlay c 192.0.2.3
KA=$(genkey a); KB=$(genkey b); KC=$(genkey c)
node_config a tun 10.100.0.1/24 "$(peer b "$KB" 10.100.0.2/32 192.0.2.2:51820)"
node_config b tun 10.100.0.2/24 "$(peer a "$KA" 10.100.0.1/32)"
# c lists a (and dials it); a does not list c
node_config c tun 10.100.0.3/24 "$(peer a "$KA" 10.100.0.1/32 192.0.2.1:51820)"
start_node a; ok $? "node a: every service READY"
start_node b; ok $? "node b: every service READY"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b through the tunnel"

# counter NODE NAME: one of crypto's counters (bifrostctl peers --json)
counter () { ctl "$1" peers --json 2>/dev/null | jq -r ".crypto.$2 // empty"; }
# counter_at_least NODE NAME VALUE
counter_at_least () { local v; v=$(counter "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
tunnel_ok () {
    in_ns a ping -c 5 -i 0.05 -W 1 -q 10.100.0.2 > "$T/tunnel" 2>&1
    grep -q " 0% packet loss" "$T/tunnel"
}

# A sniffer on b's underlay (python3, stdlib only): the payload of the first UDP
# datagram from 192.0.2.1 to port 51820 of the given size, written to a file
cat > "$T/sniff.py" <<'PY'
import socket, struct, sys, time
out, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("eth0", 0))
s.settimeout(0.2)
open(out + ".ready", "w").close()
deadline = time.time() + 10
while time.time() < deadline:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    ip = frame[14:]
    if len(ip) < 28 or ip[9] != 17 or ip[12:16] != socket.inet_aton("192.0.2.1"):
        continue
    ihl = (ip[0] & 15) * 4
    sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
    payload = ip[ihl + 8:ihl + ulen]
    if dport == 51820 and len(payload) == size and payload[0] == 4:
        open(out, "wb").write(payload)
        sys.exit(0)
sys.exit(1)
PY
# send FILE [FLIP-OFFSET]: the datagram to b's port, from a's underlay address
cat > "$T/send.py" <<'PY'
import socket, sys
data = bytearray(open(sys.argv[1], "rb").read())
if len(sys.argv) > 2:
    data[int(sys.argv[2])] ^= 0x01
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes(data), ("192.0.2.2", 51820))
PY
# capture FILE PING-SIZE: a ping a -> b of that size, its data datagram sniffed on b
capture () {
    local size=$(( $2 + 28 + 32 ))   # ICMP + IPv4 header, then data header and tag
    rm -f "$1" "$1.ready"
    in_ns b python3 "$T/sniff.py" "$1" $size &
    local sniffer=$!
    wait_for 5 test -e "$1.ready"
    in_ns a ping -c 1 -W 1 -s "$2" -q 10.100.0.2 >/dev/null 2>&1
    wait $sniffer
}

# 1. Tampered: a datagram b never received (dropped by a firewall rule on b after
# the sniffer saw it), one ciphertext byte flipped. Its counter is new to b, so
# only the authentication tag can refuse it.
in_ns b nft -f - <<'NFT'
table inet bftest {
    chain in {
        type filter hook input priority 0;
        udp dport 51820 udp length 268 drop
    }
}
NFT
ok $? "b: firewall rule holding back one datagram size"
capture "$T/held" 200
ok $? "captured a data datagram a -> b (held back from b)"
in_ns b nft delete table inet bftest
TAMPERED=$(counter b tampered)
in_ns a python3 "$T/send.py" "$T/held" 40
wait_for 5 counter_at_least b tampered $(( ${TAMPERED:-0} + 1 ))
ok $? "tampered datagram dropped and counted on b (tampered ${TAMPERED:-?} -> $(counter b tampered))"
tunnel_ok; ok $? "tunnel a -> b unharmed after the tampered datagram"

# 2. Replayed: a datagram b received and accepted, sent again unmodified
capture "$T/seen" 300
ok $? "captured a data datagram a -> b (delivered)"
REPLAY=$(counter b replay)
RX=$(ctl b peers --json | jq '.peers[0].rx_packets')
in_ns a python3 "$T/send.py" "$T/seen"
wait_for 5 counter_at_least b replay $(( ${REPLAY:-0} + 1 ))
ok $? "replayed datagram dropped and counted on b (replay ${REPLAY:-?} -> $(counter b replay))"
# the replay delivered nothing: b's received packets grew only by the test pings
tunnel_ok; ok $? "tunnel a -> b unharmed after the replay"
RX2=$(ctl b peers --json | jq '.peers[0].rx_packets')
[ $(( RX2 - RX )) -eq 5 ]
ok $? "b delivered exactly the 5 new pings, not the replay ($RX -> $RX2)"

# 3. Unknown key: c dials a, which does not list c: refused and counted
UNKNOWN=$(counter a handshake_unknown_key)
start_node c; ok $? "node c (a key a does not know): every service READY"
wait_for 10 counter_at_least a handshake_unknown_key $(( ${UNKNOWN:-0} + 1 ))
ok $? "a refuses c's handshake: handshake_unknown_key ${UNKNOWN:-?} -> $(counter a handshake_unknown_key)"
ctl c peers --json | jq -e '.peers[0].session == false' >/dev/null
ok $? "c has no session with a"
in_ns c ping -c 1 -W 1 -q 10.100.0.1 >/dev/null 2>&1
ok $(( $? == 0 )) "ping c -> a fails"
[ "$(ctl a peers --json | jq '.peers | length')" = 1 ]
ok $? "a still lists only b"
tunnel_ok; ok $? "tunnel a -> b unharmed while c knocks"

# 4. Spoofed inner source: b sends from an address that is not in its allowed_ips
SPOOFED=$(counter a spoofed)
in_ns b ip addr add 10.100.0.99/32 dev bifrost0
in_ns b ping -c 3 -i 0.2 -W 1 -I 10.100.0.99 -q 10.100.0.1 >/dev/null 2>&1
ok $(( $? == 0 )) "ping b -> a from 10.100.0.99 (not b's) is not answered"
wait_for 5 counter_at_least a spoofed $(( ${SPOOFED:-0} + 3 ))
ok $? "a drops and counts them as spoofed (${SPOOFED:-?} -> $(counter a spoofed))"
in_ns b ip addr del 10.100.0.99/32 dev bifrost0
tunnel_ok; ok $? "tunnel a -> b unharmed after the spoofed packets"
ping_ok b 10.100.0.1; ok $? "ping b -> a from b's own address still works"

# 5. An initiation flood: 300 handshake initiations from one address with a valid
# mac1 (anyone who knows a's public key can compute it), each of which would cost
# a's crypto Diffie-Hellman work; nat passes its source's budget (10, then 5 a
# second: services/nat/nat_hs_budget.h) and drops and counts the rest
cat > "$T/flood.py" <<'PY'
import base64, hashlib, os, socket, sys
pub = base64.b64decode(sys.argv[1])
key = hashlib.blake2b(b"mac1----" + pub, digest_size=32).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    msg = bytes([1, 0, 0, 0]) + os.urandom(4 + 32 + 48 + 28)
    msg += hashlib.blake2b(msg, key=key, digest_size=16).digest() + bytes(16)
    s.sendto(msg, (sys.argv[2], 51820))
PY
nat_counter () { ctl "$1" peers --json 2>/dev/null | jq -r ".nat.$2 // empty"; }
# refused NODE: initiations nat kept from crypto, over a budget or answered with a cookie
refused () { ctl "$1" peers --json 2>/dev/null | jq -r '(.nat.initiations_limited // 0) + (.nat.cookies_sent // 0)'; }
INVALID=$(counter a handshake_invalid); REFUSED=$(refused a)
in_ns c python3 "$T/flood.py" "$KA" 192.0.2.1 300
ok $? "c sent 300 initiations with a valid mac1 to a"
wait_for 5 sh -c "[ \"\$($CTL -r '$T/a/run' peers --json 2>/dev/null | jq -r '(.nat.initiations_limited // 0) + (.nat.cookies_sent // 0)')\" -ge $(( ${REFUSED:-0} + 250 )) ]"
ok $? "a's nat refused at least 250 of them (over the budget or a cookie reply): ${REFUSED:-?} -> $(refused a)"
sleep 0.5
INVALID2=$(counter a handshake_invalid)
[ -n "$INVALID2" ] && [ $(( INVALID2 - ${INVALID:-0} )) -ge 1 ] && [ $(( INVALID2 - ${INVALID:-0} )) -le 50 ]
ok $? "a's crypto did the work of at most 50 (10 at once, then 5 a second) (handshake_invalid ${INVALID:-?} -> ${INVALID2:-?})"
tunnel_ok; ok $? "tunnel a -> b unharmed after the flood"

# 6. A flood of initiations from spoofed sources: thousands a second, each with
# a valid mac1 for a's key, from random addresses of the underlay's /24 (not a
# node's) and random ports, sent with IP_HDRINCL from c's namespace (3000 a
# second until the points below are done, 10 s at most). Without
# cookies they use up the budget of all sources (500, then 250 a second) and
# crypto's CPU with it, and a peer's initiation rarely finds a token. With
# cookies (docs/nat.md, "Cookie replies") a's nat is under load after 50 a
# second: it answers each with a cookie reply to the spoofed source, which
# never comes back with it, and passes crypto only initiations whose mac2 proves
# their source receives at its address. b's tunnel restarts during the flood,
# so b must make a new handshake with a: its first initiation gets a cookie, its
# retry carries mac2 and gets through.
cat > "$T/spoof.py" <<'PY'
import base64, hashlib, os, random, socket, struct, sys, time
# spoof.py KEY DST RATE MAX-SECONDS OUT: until OUT.stop exists; writes the count to OUT
pub, dst, rate, seconds, out = base64.b64decode(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
key = hashlib.blake2b(b"mac1----" + pub, digest_size=32).digest()
msgs = []
for i in range(256):
    msg = bytes([1, 0, 0, 0]) + os.urandom(4 + 32 + 48 + 28)
    msgs.append(msg + hashlib.blake2b(msg, key=key, digest_size=16).digest() + bytes(16))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)   # IP_HDRINCL
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
sources = [socket.inet_aton("192.0.2.%d" % h) for h in range(10, 255)]  # not .1-.3
to = socket.inet_aton(dst)
sent, start, tick = 0, time.time(), 0.01
open(out + ".started", "w").close()
while time.time() - start < seconds and not os.path.exists(out + ".stop"):
    for _ in range(max(1, int(rate * tick))):
        payload = msgs[sent % len(msgs)]
        udp = struct.pack("!HHHH", random.randint(1024, 65535), 51820, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, random.choice(sources), to)
        s.sendto(ip + udp, (dst, 0))
        sent += 1
    time.sleep(max(0.0, start + (sent / rate) - time.time()))
open(out, "w").write("%d\n" % sent)
PY
# jq_at NODE FILTER: a value of bifrostctl peers --json
jq_at () { ctl "$1" peers --json 2>/dev/null | jq -r "$2"; }
INVALID=$(counter a handshake_invalid)
SENT_A=$(jq_at a '.nat.cookies_sent // 0'); GOT_B=$(jq_at b '.nat.cookies_received // 0')
PROVEN=$(jq_at a '.nat.initiations_cookie // 0')
rm -f "$T/spoofed" "$T/spoofed.started" "$T/spoofed.stop"
in_ns c python3 "$T/spoof.py" "$KA" 192.0.2.1 3000 10 "$T/spoofed" &
SPOOF=$!
wait_for 5 test -e "$T/spoofed.started"
wait_for 3 sh -c "[ \"\$($CTL -r '$T/a/run' peers --json 2>/dev/null | jq -r '.nat.under_load')\" = true ]"
ok $? "spoofed flood: a's nat is under load (nat.under_load)"
OLD=$(service_pid b tunnel)
kill -KILL "$OLD"
wait_restarted b tunnel "$OLD"
ok $? "b's tunnel restarted during the flood (was $OLD, now $(service_pid b tunnel)): it needs a new handshake with a"
START=$(date +%s%N)
wait_for 5 ping_ok b 10.100.0.1
ok $? "during the flood, b completes a handshake with a: ping b -> a crosses after $(( ($(date +%s%N) - START) / 1000000 )) ms"
kill -0 "$SPOOF" 2>/dev/null
ok $? "the flood was still going when the ping crossed"
ping_ok a 10.100.0.2
ok $? "ping a -> b crosses during the flood too"
touch "$T/spoofed.stop"
wait "$SPOOF"
SPOOFED=$(cat "$T/spoofed" 2>/dev/null || echo 0)
INVALID2=$(counter a handshake_invalid)
SENT_A2=$(jq_at a '.nat.cookies_sent // 0'); GOT_B2=$(jq_at b '.nat.cookies_received // 0')
PROVEN2=$(jq_at a '.nat.initiations_cookie // 0')
echo "# spoofed: $SPOOFED initiations sent; a: cookies_sent $SENT_A -> $SENT_A2, initiations_cookie $PROVEN -> $PROVEN2, handshake_invalid ${INVALID:-?} -> ${INVALID2:-?}, under load $(jq_at a '.nat.under_load_ms') ms; b: cookies_received $GOT_B -> $GOT_B2"
[ "$SPOOFED" -ge 1000 ] && [ $(( SENT_A2 - SENT_A )) -ge $(( SPOOFED / 2 )) ]
ok $? "a's nat answered the spoofed initiations with cookie replies (cookies_sent $SENT_A -> $SENT_A2 for $SPOOFED sent)"
[ $(( GOT_B2 - GOT_B )) -ge 1 ] && [ $(( PROVEN2 - PROVEN )) -ge 1 ]
ok $? "b's nat received a cookie (cookies_received $GOT_B -> $GOT_B2) and a's nat passed b's initiation on its mac2 (initiations_cookie $PROVEN -> $PROVEN2)"
[ -n "$INVALID2" ] && [ $(( INVALID2 - ${INVALID:-0} )) -le 100 ]
ok $? "a's crypto did the DH work of at most 100 of the $SPOOFED spoofed initiations (handshake_invalid ${INVALID:-?} -> ${INVALID2:-?})"
wait_for 3 sh -c "[ \"\$($CTL -r '$T/a/run' peers --json 2>/dev/null | jq -r '.nat.under_load')\" = false ]"
ok $? "a's nat is no longer under load a second after the flood"
tunnel_ok; ok $? "tunnel a -> b unharmed after the spoofed flood"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
