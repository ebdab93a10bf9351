#!/bin/sh
# registry_api: the registry's REST API and WebSocket events against the real
# bifrost-registry process: every route with good and bad input, wrong and
# missing tokens (and nothing changed), join token expiry / single use /
# revocation, pool exhaustion, 20 concurrent registrations, events over a real
# WebSocket, lease expiry, and persistence across kill -9. (TAP)
. "${BIFROST_SRCDIR:-.}/tests/integration/registry_lib.sh"

cat > "$T/registry.cfg" <<CFG
registry = {
    listen = "127.0.0.1:$PORT";
    database = "$T/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    rate_limit = 0;             # unlimited here; registry_tls.sh tests the limit
    max_body = 4096;
};
CFG
"$REGISTRY" -c "$T/registry.cfg" --check-config >/dev/null 2>&1
ok $? "--check-config accepts the test config"
printf 'registry = { lisen = "x"; heartbeat_interval = "soon"; default_cidr = "10.0.0.1/8"; };\n' > "$T/bad.cfg"
"$REGISTRY" -c "$T/bad.cfg" --check-config > "$T/bad.out" 2>&1
rc=$?
is "$rc" 78 "a bad config exits 78"
grep -q 'bad.cfg:1' "$T/bad.out" && grep -q lisen "$T/bad.out" && grep -q heartbeat_interval "$T/bad.out" \
    && grep -q 'host bits' "$T/bad.out"
ok $? "each config error is reported with file and line"

start_registry "$T/registry.cfg"
ok $? "registry answers on 127.0.0.1:$PORT"

# Its sandbox (Landlock, docs/supervisor.md), asked of the program confined as it
# runs: it creates files beside its database, and reads neither a key outside
# nor /etc/shadow
mkdir -p "$T/elsewhere" && echo secret > "$T/elsewhere/node.key"
sandbox_check () { "$REGISTRY" -c "$T/registry.cfg" -r "$T/run" --sandbox-check "$1" 2>/dev/null; }
sandbox_check "$T" | grep -q ": create allowed"
ok $? "the registry may create files beside its database ($(sandbox_check "$T"))"
sed "s|database = \"$T/registry.db\"|database = \"$T/db/registry.db\"|" "$T/registry.cfg" > "$T/registry-db.cfg"
got=$("$REGISTRY" -c "$T/registry-db.cfg" -r "$T/run" --sandbox-check "$T/elsewhere/node.key" 2>/dev/null)
echo "$got" | grep -q ": read denied"
ok $? "with its database in $T/db, it cannot read $T/elsewhere/node.key ($got)"
sandbox_check /etc/shadow | grep -q ": read denied"
ok $? "nor /etc/shadow ($(sandbox_check /etc/shadow))"

# --- /client/meta without TURN: STUN only (no turn group: no ICE servers at all)
is "$(http GET /client/meta '')" 200 "GET /client/meta anonymous"
is "$(out 'd["name"]')" bifrost-registry "meta names the registry"

# --- networks: auth first, nothing changes on failure
N=/api/v1/mesh/networks
is "$(http POST $N '' '{"name":"office"}')" 401 "create network without token: 401"
is "$(out 'd["error"]')" "missing bearer token" "401 has a JSON error"
is "$(http POST $N wrong-token '{"name":"office"}')" 401 "create network with a wrong token: 401"
is "$(http POST $N "$ADMIN" '{"name":')" 400 "malformed JSON: 400"
is "$(http POST $N "$ADMIN" '{"name":5}')" 400 "wrong type: 400"
is "$(http POST $N "$ADMIN" '{"name":"office","cidr":"10.100.0.0/33"}')" 400 "bad CIDR prefix: 400"
is "$(http POST $N "$ADMIN" '{"name":"office","cidr":"10.100.0.1/16"}')" 400 "CIDR with host bits: 400"
is "$(http POST $N "$ADMIN" '{"name":"no spaces allowed"}')" 400 "bad name: 400"
is "$(http POST $N "$ADMIN" '{"name":"x","surprise":1}')" 400 "unknown member: 400"
big=$($PY -c 'print("{\"name\":\"" + "a" * 5000 + "\"}")')
is "$(http POST $N "$ADMIN" "$big")" 413 "oversized body: 413"
is "$(http GET $N "$ADMIN")" 200 "list networks"
is "$(out 'len(d["networks"])')" 0 "no network was created by the bad requests"
is "$(http POST $N "$ADMIN" '{"id":"office","name":"office"}')" 201 "create network office"
is "$(out 'd["cidr"]')" 10.100.0.0/16 "default CIDR 10.100.0.0/16"
is "$(http POST $N "$ADMIN" '{"id":"office","name":"again"}')" 409 "duplicate id: 409"
is "$(http GET $N/office "$ADMIN")" 200 "GET network"
is "$(http GET $N/nowhere "$ADMIN")" 404 "GET unknown network: 404"
# Without the admin token, a network that does not exist answers as one does
# (issue 16, finding 9: ids cannot be probed)
for req in "GET $N/X/peers" "POST $N/X/challenge" "PATCH $N/X" "GET $N/X/events"; do
    set -- $req
    known=$(http "$1" "$(echo "$2" | sed 's|/X|/office|')" '')
    is "$(http "$1" "$(echo "$2" | sed 's|/X|/nowhere|')" '')" "$known" "$1 ${2#$N/X}: the same answer ($known) for an unknown network"
done
is "$(http PATCH $N/office "$ADMIN")" 405 "wrong method: 405"

# --- join tokens
is "$(http POST $N/office/tokens "" '{}')" 401 "create token without admin: 401"
is "$(http POST $N/office/tokens "$ADMIN" '{"ttl":"long"}')" 400 "token ttl of the wrong type: 400"
http POST $N/office/tokens "$ADMIN" '{"ttl":600}' >/dev/null
SINGLE=$(out 'd["token"]')
http POST $N/office/tokens "$ADMIN" '{"ttl":600,"reusable":true}' >/dev/null
REUSE=$(out 'd["token"]'); REUSE_ID=$(out 'd["id"]')
http POST $N/office/tokens "$ADMIN" '{"ttl":1,"reusable":true}' >/dev/null
SHORT=$(out 'd["token"]'); SHORT_EXP=$(out 'd["expires"]')
is "$(http GET $N/office/tokens "$ADMIN")" 200 "list tokens"
is "$(out 'len(d["tokens"])')" 3 "three tokens listed"
grep -q bjt_ "$T/out.json"
is $? 1 "the token list never shows a token's secret"
$PY -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join(db.iterdump()))' "$T/registry.db" > "$T/dump.sql"
grep -q "office" "$T/dump.sql" && ! grep -q "${REUSE#bjt_}" "$T/dump.sql"
ok $? "the database holds no token in clear"

# --- registration
is "$(register office '' a "$T/a.key")" 401 "register without a join token: 401"
is "$(register office bjt_forged a "$T/a.key")" 401 "register with a forged join token: 401"
is "$(register office "$SINGLE" a "$T/a.key")" 201 "register a with the single-use token"
A_ID=$(out 'd["peer"]["id"]'); A_TOKEN=$(out 'd["peer_token"]')
is "$(out 'd["peer"]["vip"]')" 10.100.0.1 "a gets 10.100.0.1"
is "$(register office "$SINGLE" b "$T/b.key")" 401 "the single-use token works once"
is "$(out 'd["error"]')" "join token already used" "... and says so"
# A thief with a's public key but his own secret: the proof fails
"$CLIENT" keygen > "$T/thief.key"
echo "$(cut -d' ' -f1 "$T/a.key") $(cut -d' ' -f2 "$T/thief.key")" > "$T/fake.key"
curl -s -X POST -o "$T/ch.json" "$API/networks/office/challenge"
body=$("$CLIENT" body "$(cut -d' ' -f2 "$T/thief.key")" "$(jget "$T/ch.json" 'd["registry_key"]')" office \
       "$(jget "$T/ch.json" 'd["nonce"]')" thief)
body=$(echo "$body" | $PY -c 'import json,sys; d=json.load(sys.stdin); d["public_key"]=sys.argv[1]; print(json.dumps(d))' \
       "$(cut -d' ' -f1 "$T/a.key")")
is "$(http POST $N/office/peers "$REUSE" "$body")" 403 "registering someone else's key fails the key proof: 403"
is "$(http POST $N/office/peers "$REUSE" "$body")" 403 "... again: a failed proof spends nothing"
wait_for 5 sh -c "[ \$(( \$(date +%s%N) / 1000000 )) -gt $SHORT_EXP ]"
is "$(register office "$SHORT" c "$T/c.key")" 401 "an expired join token: 401"
is "$(out 'd["error"]')" "join token expired" "... and says so"
"$CLIENT" keygen > "$T/b.key"
curl -s -X POST -o "$T/ch.json" "$API/networks/office/challenge"
body=$("$CLIENT" body "$(cut -d' ' -f2 "$T/b.key")" "$(jget "$T/ch.json" 'd["registry_key"]')" office \
       "$(jget "$T/ch.json" 'd["nonce"]')" b 192.0.2.1:51820)
is "$(http POST $N/office/peers "$REUSE" "$body")" 201 "register b with the reusable token"
B_ID=$(out 'd["peer"]["id"]'); B_TOKEN=$(out 'd["peer_token"]')
is "$(out 'd["peer"]["vip"]')" 10.100.0.2 "b gets 10.100.0.2"
is "$(http POST $N/office/peers "$REUSE" "$body")" 401 "the same registration again: a challenge is single-use (401)"
is "$(out 'd["error"]')" "challenge already used (POST .../challenge for a new one)" "... and says so"
is "$(register office '' a "$T/a.key")" 200 "a returning key re-registers without a join token"
is "$(out 'd["peer"]["vip"]')" 10.100.0.1 "... and keeps its address"
A_TOKEN=$(out 'd["peer_token"]')
is "$(http GET $N/office/peers "$A_TOKEN")" 200 "a peer lists its network's peers"
is "$(out 'len(d["peers"])')" 2 "two peers, nothing from the failed attempts"
is "$(http GET $N/office/peers "bpt_nope")" 401 "list peers with a bad token: 401"
is "$(http POST $N/office/tokens "$A_TOKEN" '{}')" 403 "a peer cannot create tokens: 403"
is "$(http DELETE $N/office/peers/$A_ID "$B_TOKEN")" 403 "a peer cannot remove another: 403"
is "$(http DELETE $N/office "$A_TOKEN")" 403 "a peer cannot delete the network: 403"
is "$(http PUT $N/office/peers/$A_ID/heartbeat "$A_TOKEN" '{"endpoints":["nonsense"]}')" 400 "heartbeat with a bad endpoint: 400"
is "$(http PUT $N/office/peers/$A_ID/heartbeat "$A_TOKEN" '{"endpoints":["198.51.100.7:4000"]}')" 200 "heartbeat"
is "$(http GET $N/office/peers/$A_ID "$ADMIN")" 200 "GET one peer"
is "$(out 'd["endpoints"][0]')" 198.51.100.7:4000 "the heartbeat updated a's endpoints"
is "$(http DELETE $N/office/tokens/$REUSE_ID "$ADMIN")" 204 "revoke the reusable token"
is "$(register office "$REUSE" c "$T/c.key")" 401 "a revoked token: 401"
is "$(out 'd["error"]')" "join token revoked" "... and says so"
is "$(http GET /client/meta "$A_TOKEN")" 200 "meta with a peer token"
is "$(http GET /client/meta "bpt_forged")" 401 "meta with a forged token: 401"

# --- pool exhaustion: a /29 has 6 addresses
http POST $N "$ADMIN" '{"id":"small","name":"small","cidr":"10.7.0.0/29"}' >/dev/null
http POST $N/small/tokens "$ADMIN" '{"reusable":true}' >/dev/null
SMALL=$(out 'd["token"]')
n=0
for i in 1 2 3 4 5 6; do
    [ "$(register small "$SMALL" "s$i" "$T/s$i.key")" = 201 ] && n=$((n + 1))
done
is "$n" 6 "six peers fill a /29"
is "$(register small "$SMALL" s7 "$T/s7.key")" 507 "the seventh: 507"
out 'd["error"]' | grep -q exhausted
ok $? "... with a clear error ($(out 'd["error"]'))"

# --- 20 concurrent registrations: distinct addresses
http POST $N "$ADMIN" '{"id":"crowd","name":"crowd","cidr":"10.8.0.0/24"}' >/dev/null
http POST $N/crowd/tokens "$ADMIN" '{"reusable":true}' >/dev/null
CROWD=$(out 'd["token"]')
for i in $(seq 1 20); do "$CLIENT" keygen > "$T/k$i.key"; done
pids=
for i in $(seq 1 20); do
    register crowd "$CROWD" "c$i" "$T/k$i.key" "$T/c$i.json" > "$T/c$i.status" &
    pids="$pids $!"
done
wait $pids
n=0
for i in $(seq 1 20); do [ "$(cat "$T/c$i.status")" = 201 ] && n=$((n + 1)); done
is "$n" 20 "20 parallel registrations all succeed"
http GET $N/crowd/peers "$ADMIN" >/dev/null
is "$(out 'len(set(p["vip"] for p in d["peers"]))')" 20 "... with 20 distinct addresses"

# --- WebSocket events
$WS 127.0.0.1 "$PORT" $N/office/events --timeout 3 > "$T/ws-anon.out" 2>&1
grep -q refused "$T/ws-anon.out"
ok $? "a WebSocket without a token is refused"
$WS 127.0.0.1 "$PORT" $N/office/events --token "$B_TOKEN" --timeout 20 > "$T/ws-b.out" 2>/dev/null &
BGPIDS="$BGPIDS $!"
$WS 127.0.0.1 "$PORT" $N/office/events --token "$A_TOKEN" --query-token --timeout 20 > "$T/ws-a.out" 2>/dev/null &
BGPIDS="$BGPIDS $!"
wait_for 5 grep -q subscribed "$T/ws-b.out" && wait_for 5 grep -q subscribed "$T/ws-a.out"
ok $? "peers subscribe to events (header and ?token=)"
http POST $N/office/tokens "$ADMIN" '{}' >/dev/null
register office "$(out 'd["token"]')" d "$T/d.key" >/dev/null
D_ID=$(out 'd["peer"]["id"]')
wait_for 5 grep -q "peer.joined.*$D_ID" "$T/ws-b.out"
ok $? "b receives peer.joined for d"
http PUT $N/office/peers/$A_ID/heartbeat "$A_TOKEN" '{"candidates":["candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"]}' >/dev/null
wait_for 5 grep -q 'peer.changed.*candidate:1' "$T/ws-b.out"
ok $? "b receives peer.changed when a's candidates change"
is "$(http POST $N/office/peers/$B_ID/signal "$A_TOKEN" '{"type":"offer","data":{"sdp":"v=0 secret-for-b"}}')" 202 "a signals b"
is "$(out 'd["delivered"]')" 1 "... delivered to one connection"
wait_for 5 grep -q "\"from\":\"$A_ID\".*secret-for-b" "$T/ws-b.out"
ok $? "b receives the signal from a"
is "$(http POST $N/office/peers/$B_ID/signal "$ADMIN" '{"type":"offer","data":1}')" 403 "the admin cannot inject signals: 403"
is "$(http DELETE $N/office/peers/$D_ID "$ADMIN")" 204 "the admin removes d"
wait_for 5 grep -q "peer.left.*$D_ID" "$T/ws-b.out"
ok $? "b receives peer.left for d"
grep -q secret-for-b "$T/ws-a.out"
is $? 1 "a never saw the signal addressed to b"
# Issue 16, finding 6: re-registering replaces a's peer token; the WebSocket
# opened with the old one is closed (b's is not)
is "$(register office '' a "$T/a.key")" 200 "a re-registers: a new peer token"
A_TOKEN=$(out 'd["peer_token"]')
wait_for 5 grep -q "closed by the server" "$T/ws-a.out"
ok $? "... and the WebSocket a opened with its old token is closed"
grep -q "closed by the server" "$T/ws-b.out"
is $? 1 "... b's stays open"

# --- leases: heartbeat 1 s, offline after 2 s, removed after 3 s
http POST $N "$ADMIN" '{"id":"lease","name":"lease","settings":{"heartbeat_interval":1,"offline_after":2,"expire_after":3}}' >/dev/null
http POST $N/lease/tokens "$ADMIN" '{"reusable":true}' >/dev/null
LT=$(out 'd["token"]')
$WS 127.0.0.1 "$PORT" $N/lease/events --token "$ADMIN" --timeout 15 > "$T/ws-lease.out" 2>/dev/null &
BGPIDS="$BGPIDS $!"
wait_for 5 grep -q subscribed "$T/ws-lease.out"
register lease "$LT" alive "$T/l.key" >/dev/null; L_ID=$(out 'd["peer"]["id"]'); L_TOKEN=$(out 'd["peer_token"]')
register lease "$LT" quiet "$T/q.key" >/dev/null; Q_ID=$(out 'd["peer"]["id"]')
# Heartbeats for up to 30 s, stopped once checked (a loaded machine may take its
# time to expire the other peer; the live one must not run out of heartbeats first)
# (in a subshell with its own $T: http writes its reply to $T/out.json, which the
# checks below read)
( T="$T/heartbeats"; mkdir -p "$T"
  for i in $(seq 1 60); do http PUT $N/lease/peers/$L_ID/heartbeat "$L_TOKEN" >/dev/null; sleep 0.5; done ) &
HB=$!
BGPIDS="$BGPIDS $HB"
wait_for 8 grep -q "peer.changed.*$Q_ID.*offline" "$T/ws-lease.out"
ok $? "a silent peer is marked offline (event)"
wait_for 8 grep -q "peer.left.*$Q_ID.*expired" "$T/ws-lease.out"
ok $? "... then removed (peer.left, expired)"
http GET $N/lease/peers "$ADMIN" >/dev/null
is "$(out '[p["id"] for p in d["peers"]]')" "[\"$L_ID\"]" "the heartbeating peer stays, the silent one is gone"
kill $HB 2>/dev/null

# --- a database locked by another connection (issue 16, finding 7): the
# registry's one service thread must not wait for it. A write route answers 503
# with Retry-After at once, /client/meta asked right behind it is fast, and all
# works again once the lock is released.
$PY - "$T/registry.db" "$T/lock" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
deadline = time.time() + 8
while os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.02)
db.execute("ROLLBACK")
PY
LOCKER=$!
BGPIDS="$BGPIDS $LOCKER"
wait_for 5 test -f "$T/lock"
ok $? "another connection holds the database's write lock"
# The write request is on the wire before /client/meta connects
$PY - 127.0.0.1 "$PORT" "$ADMIN" > "$T/locked.out" <<'PY'
import http.client, socket, sys, time
host, port, admin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = b'{"id":"locked","name":"locked"}'
t0 = time.monotonic()
w = socket.create_connection((host, port), timeout=10)
w.sendall(b"POST /api/v1/mesh/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin.encode()
          + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
t1 = time.monotonic()
m = http.client.HTTPConnection(host, port, timeout=10)
m.request("GET", "/client/meta")
meta = m.getresponse().status
meta_ms = (time.monotonic() - t1) * 1000
reply = b""
while True:
    chunk = w.recv(4096)
    if not chunk:
        break
    reply += chunk
write_ms = (time.monotonic() - t0) * 1000
head = reply.split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
retry = [h.split(":", 1)[1].strip() for h in head if h.startswith("retry-after:")]
print(head[0].split()[1], retry[0] if retry else "-", meta, "%.0f" % write_ms, "%.0f" % meta_ms)
PY
read -r w_status w_retry m_status w_ms m_ms < "$T/locked.out"
is "$w_status" 503 "a write route answers 503 while the database is locked (in $w_ms ms)"
is "$w_retry" 1 "... with Retry-After: 1"
is "$m_status" 200 "/client/meta asked right behind it answers"
# not blocked behind the lock: 7.8 s each before issue 16, milliseconds now; the
# bound is 3 times the second once asserted (a loaded machine), still far from 7.8 s
[ "$w_ms" -lt 3000 ] && [ "$m_ms" -lt 3000 ]
ok $? "... neither waits for the lock (write $w_ms ms, /client/meta $m_ms ms; both waited 7.8 s before issue 16)"
rm -f "$T/lock"
wait "$LOCKER"
ok $? "the other connection releases its lock"
is "$(http POST $N "$ADMIN" '{"id":"locked","name":"locked"}')" 201 "the same write works again"
is "$(http DELETE $N/locked "$ADMIN")" 204 "... and another"

# --- persistence across kill -9
stop_registry KILL
# The database holds the registry's private key: 0600 (created so under umask
# 022), and a readable one is refused (78) with a clear error
is "$(stat -c %a "$T/registry.db")" 600 "the database is created 0600"
chmod 644 "$T/registry.db"
"$REGISTRY" -c "$T/registry.cfg" -r "$T/run" > "$T/open.out" 2>&1
is "$?" 78 "a database others can read: the registry refuses to start (78)"
grep -q "registry.db has mode 0644.*chmod 600" "$T/open.out"
ok $? "... and says why and what to do"
chmod 600 "$T/registry.db"
start_registry "$T/registry.cfg"
ok $? "registry restarts after kill -9"
is "$(http GET $N "$ADMIN")" 200 "list networks after restart"
is "$(out '" ".join(sorted(n["id"] for n in d["networks"]))')" "crowd lease office small" "all networks survived"
is "$(http GET $N/office/peers "$A_TOKEN")" 200 "a's peer token still works"
is "$(out '" ".join(sorted(p["vip"] for p in d["peers"]))')" "10.100.0.1 10.100.0.2" "peers and addresses survived"
is "$(register small "$SMALL" s7 "$T/s7.key")" 507 "the /29 pool is still full after restart"
is "$(register office '' b "$T/b.key")" 200 "b re-registers after restart"
is "$(out 'd["peer"]["vip"]')" 10.100.0.2 "... with the same address"
is "$(http DELETE $N/small "$ADMIN")" 204 "delete network small"
is "$(http GET $N/small "$ADMIN")" 404 "... it is gone"

stop_registry TERM
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
