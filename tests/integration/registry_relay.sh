#!/bin/sh
# registry_relay: the registry's side of the relays (issue 14) against the real
# bifrost-registry and a real SQLite file. With a relay group, every
# registration and heartbeat reply carries a relay grant whose credential
# verifies with the shared secret (HMAC-SHA-256 as docs/relay.md writes it,
# recomputed here by a few lines of Python: a second implementation of the
# format, not librelay's own code) and not with another; a heartbeat brings a
# fresh one; /client/meta lists the relays; a bad secret is a config error with
# file and line (exit 78). The address every registration and heartbeat comes
# from is recorded as the peer's reflexive address (loopback, a second loopback
# address, a network namespace). A database of the registry before the
# migration still opens, with its peers and tokens. Without a secret: no grant,
# and the log says why. (TAP)
. "${BIFROST_SRCDIR:-.}/tests/integration/registry_lib.sh"

RELAY_SECRET=$(openssl rand -hex 32)
export RELAY_SECRET
NS=
relay_cleanup () {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    reg_cleanup
}
trap relay_cleanup EXIT

# The registry listens on every address: the namespace's node reaches it over a veth
cat > "$T/server.cfg" <<CFG
registry = {
    listen = "0.0.0.0:$PORT";
    database = "$T/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    rate_limit = 0;
};
relay = {
    servers = [ "relay-1@192.0.2.10:3479", "relay-2@[2001:db8::10]:3479" ];
    secret = "\${RELAY_SECRET}";
    credential_ttl = "10m";
};
CFG
"$REGISTRY" -c "$T/server.cfg" --check-config > "$T/check.out" 2>&1
ok $? "--check-config accepts a relay group with a 64-hex-digit secret"

# --- a bad secret: file and line, exit 78, and the value is not printed
line=$(grep -n 'secret = ' "$T/server.cfg" | cut -d: -f1)
RELAY_SECRET=00ff0f "$REGISTRY" -c "$T/server.cfg" --check-config > "$T/bad.out" 2>&1
rc=$?
is "$rc" 78 "a relay.secret that is not 64 hex digits: exit 78"
grep -q "server.cfg:$line: relay.secret: expected 64 hex digits" "$T/bad.out"
ok $? "... reported at server.cfg:$line ($(grep relay.secret "$T/bad.out" | head -1 | cut -c1-100))"
grep -q 00ff0f "$T/bad.out"
is $? 1 "... without printing the secret"
env -u RELAY_SECRET "$REGISTRY" -c "$T/server.cfg" --check-config > "$T/unset.out" 2>&1
rc=$?
[ "$rc" -eq 78 ] && grep -q "server.cfg:$line:.*RELAY_SECRET is not set" "$T/unset.out"
ok $? "RELAY_SECRET not in the environment: exit 78, naming it at its line (got $rc)"
sed 's/"relay-2@\[2001:db8::10\]:3479"/"192.0.2.11:3479"/' "$T/server.cfg" > "$T/badserver.cfg"
"$REGISTRY" -c "$T/badserver.cfg" --check-config > "$T/badserver.out" 2>&1
rc=$?
line=$(grep -n 'servers = ' "$T/badserver.cfg" | cut -d: -f1)
[ "$rc" -eq 78 ] && grep -q "badserver.cfg:$line: relay.servers.\[1\]: each entry must be \"name@host:port\"" "$T/badserver.out"
ok $? "a relay without a name: exit 78 with file and line (got $rc)"

start_registry "$T/server.cfg"
ok $? "registry starts with the relay group"
grep -q "relays on: 2 server(s), credentials valid for 600 s" "$T/registry.log"
ok $? "the log says relays are on"

http POST /api/v1/mesh/networks "$ADMIN" '{"id":"rt","name":"rt"}' >/dev/null
http POST /api/v1/mesh/networks/rt/tokens "$ADMIN" '{"reusable":true}' >/dev/null
JOIN=$(out 'd["token"]')
t0=$(date +%s)
is "$(register rt "$JOIN" p1 "$T/p1.key" "$T/reg.json")" 201 "registration"
t1=$(date +%s)
P1=$(jget "$T/reg.json" 'd["peer_token"]'); P1_ID=$(jget "$T/reg.json" 'd["peer"]["id"]')
is "$(jget "$T/reg.json" 'd["relay"]["servers"]')" '["relay-1@192.0.2.10:3479","relay-2@[2001:db8::10]:3479"]' \
    "the reply carries the relays"
# The network tag: the first 8 bytes of BLAKE2b-256 of the network id, little-endian
TAG=$(relay_tag rt)
is "$(jget "$T/reg.json" 'd["relay"]["network"]')" "$TAG" "... the network tag of rt ($TAG)"
CRED=$(jget "$T/reg.json" 'd["relay"]["credential"]')
echo "$CRED" | grep -Eq '^[0-9]+\.[0-9a-f]{64}$'
ok $? "... and a credential EXPIRY.MACHEX"
expiry=${CRED%%.*}
[ "$expiry" -ge $((t0 + 600)) ] && [ "$expiry" -le $((t1 + 600)) ]
ok $? "... valid until now + credential_ttl ($expiry, registered at $t0)"

relay_verify "$RELAY_SECRET" "$TAG" "$P1_ID" "$CRED" "$(date +%s)"
ok $? "the credential verifies with relay.secret for (network tag, peer id, expiry)"
relay_verify "$(openssl rand -hex 32)" "$TAG" "$P1_ID" "$CRED" "$(date +%s)"
is $? 1 "... and not with another secret"
relay_verify "$RELAY_SECRET" "$TAG" 0000000000000001 "$CRED" "$(date +%s)"
is $? 1 "... nor for another peer"
OTHER_TAG=$(relay_tag other)
relay_verify "$RELAY_SECRET" "$OTHER_TAG" "$P1_ID" "$CRED" "$(date +%s)"
is $? 1 "... nor for another network"
relay_verify "$RELAY_SECRET" "$TAG" "$P1_ID" "$((expiry + 1)).${CRED#*.}" "$(date +%s)"
is $? 1 "... nor with a changed expiry"

# --- heartbeats renew it
is "$(http PUT "/api/v1/mesh/networks/rt/peers/$P1_ID/heartbeat" "$P1" '{}')" 200 "heartbeat"
H1=$(out 'd["relay"]["credential"]')
relay_verify "$RELAY_SECRET" "$(out 'd["relay"]["network"]')" "$P1_ID" "$H1" "$(date +%s)"
ok $? "the heartbeat reply carries a credential that verifies"
fresh () {
    http PUT "/api/v1/mesh/networks/rt/peers/$P1_ID/heartbeat" "$P1" '{}' >/dev/null
    H2=$(out 'd["relay"]["credential"]')
    [ "${H2%%.*}" -gt "${H1%%.*}" ] 2>/dev/null
}
wait_for 5 fresh
ok $? "a heartbeat a second later brings a fresh credential (expiry ${H1%%.*} -> ${H2%%.*})"
relay_verify "$RELAY_SECRET" "$TAG" "$P1_ID" "$H2" "$(date +%s)"
ok $? "... that verifies too"
is "$(out 'd["relay"]["servers"]')" '["relay-1@192.0.2.10:3479","relay-2@[2001:db8::10]:3479"]' "... with the relays"

# --- /client/meta lists the relays, never a credential
is "$(http GET /client/meta '')" 200 "GET /client/meta anonymous"
is "$(out 'd["relays"]')" '["relay-1@192.0.2.10:3479","relay-2@[2001:db8::10]:3479"]' "meta lists the relays"
is "$(http GET /client/meta "$P1")" 200 "GET /client/meta with a peer token"
is "$(out 'len(d["relays"])')" 2 "... the relays again"
grep -q credential "$T/out.json"
is $? 1 "... and no credential in the meta"
grep -q "$RELAY_SECRET" "$T/registry.log" "$T"/*.json
is $? 1 "the secret is neither logged nor returned"
grep -q "${CRED#*.}" "$T/registry.log"
is $? 1 "no credential is logged"

# --- the reflexive address: where each registration and heartbeat came from
is "$(jget "$T/reg.json" 'd["peer"]["reflexive"]')" 127.0.0.1 "the registration reply shows the reflexive address 127.0.0.1"
is "$(http GET /api/v1/mesh/networks/rt/peers "$ADMIN")" 200 "list peers"
is "$(out '[p["reflexive"] for p in d["peers"] if p["id"] == "'"$P1_ID"'"][0]')" 127.0.0.1 "... p1 listed with reflexive 127.0.0.1"
is "$(out '[p["endpoints"] for p in d["peers"] if p["id"] == "'"$P1_ID"'"][0]')" '["192.0.2.1:51820"]' \
    "... next to the endpoints it reported"
$WS 127.0.0.1 "$PORT" /api/v1/mesh/networks/rt/events --token "$ADMIN" --count 2 --timeout 5 > "$T/ws.out" 2>&1 &
WSPID=$!
BGPIDS="$BGPIDS $WSPID"
wait_for 5 grep -q subscribed "$T/ws.out"
code=$(curl -s -o "$T/out.json" -w '%{http_code}' --interface 127.0.0.2 -X PUT -H "Authorization: Bearer $P1" \
       -H 'Expect:' --data-binary '{}' "$API/networks/rt/peers/$P1_ID/heartbeat")
is "$code" 200 "a heartbeat from 127.0.0.2 (the node's address changed)"
wait "$WSPID"
grep -q '"event": *"peer.changed".*"reflexive": *"127.0.0.2"' "$T/ws.out"
ok $? "... peer.changed carries the new reflexive address"
http GET "/api/v1/mesh/networks/rt/peers/$P1_ID" "$ADMIN" >/dev/null
is "$(out 'd["reflexive"]')" 127.0.0.2 "... and the peer record shows it"

# From a network namespace behind a veth: the registry sees the namespace's address
if ip netns add "rr$$" 2>/dev/null; then
    NS=rr$$
    ip link add "rrh$$" type veth peer name "rrn$$" && ip link set "rrn$$" netns "$NS" \
        && ip addr add 198.18.214.1/30 dev "rrh$$" && ip link set "rrh$$" up \
        && ip -n "$NS" addr add 198.18.214.2/30 dev "rrn$$" && ip -n "$NS" link set "rrn$$" up \
        && ip -n "$NS" link set lo up
    ok $? "namespace $NS at 198.18.214.2 behind a veth"
    NSAPI=http://198.18.214.1:$PORT/api/v1/mesh
    "$CLIENT" keygen > "$T/p2.key"
    ip netns exec "$NS" curl -s -X POST -o "$T/ch.json" "$NSAPI/networks/rt/challenge"
    body=$("$CLIENT" body "$(cut -d' ' -f2 "$T/p2.key")" "$(jget "$T/ch.json" 'd["registry_key"]')" rt \
           "$(jget "$T/ch.json" 'd["nonce"]')" p2 10.0.0.2:51820)
    code=$(ip netns exec "$NS" curl -s -o "$T/reg2.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $JOIN" \
           -H 'Expect:' --data-binary "$body" "$NSAPI/networks/rt/peers")
    is "$code" 201 "registration from the namespace"
    P2_ID=$(jget "$T/reg2.json" 'd["peer"]["id"]')
    http GET /api/v1/mesh/networks/rt/peers "$ADMIN" >/dev/null
    is "$(out '[p["reflexive"] for p in d["peers"] if p["id"] == "'"$P2_ID"'"][0]')" 198.18.214.2 \
        "p2 is listed with the namespace's address as its reflexive address"
    is "$(out '[p["endpoints"] for p in d["peers"] if p["id"] == "'"$P2_ID"'"][0]')" '["10.0.0.2:51820"]' \
        "... next to the (private) endpoint it reported"
    relay_verify "$RELAY_SECRET" "$TAG" "$P2_ID" "$(jget "$T/reg2.json" 'd["relay"]["credential"]')" "$(date +%s)"
    ok $? "... and its own credential verifies for its own peer id"
else
    ok 0 "# SKIP network namespace (not root)"
fi

# --- a database of the first registry (no reflexive column, no paths table,
# user_version 0) still opens, with every peer and token, and is migrated to the
# latest schema (2)
stop_registry TERM
$PY - "$T/registry.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("ALTER TABLE peers DROP COLUMN reflexive")
db.execute("DROP TABLE IF EXISTS paths")      # migration 2's table (issue 19)
db.execute("PRAGMA user_version = 0")
db.commit()
cols = [r[1] for r in db.execute("PRAGMA table_info(peers)")]
sys.exit(1 if "reflexive" in cols else 0)
PY
ok $? "database turned back into the pre-migration form (no reflexive column, user_version 0)"
start_registry "$T/server.cfg"
ok $? "the registry opens the old database"
grep -q "registry.db: now at schema version 1" "$T/registry.log" && grep -q "registry.db: now at schema version 2" "$T/registry.log"
ok $? "... and migrates it to version 1, then 2 (logged)"
is "$(http PUT "/api/v1/mesh/networks/rt/peers/$P1_ID/heartbeat" "$P1" '{}')" 200 "p1's peer token from before still works"
relay_verify "$RELAY_SECRET" "$TAG" "$P1_ID" "$(out 'd["relay"]["credential"]')" "$(date +%s)"
ok $? "... and gets a credential that verifies"
http GET "/api/v1/mesh/networks/rt/peers/$P1_ID" "$ADMIN" >/dev/null
is "$(out 'd["reflexive"]')" 127.0.0.1 "... its reflexive address is recorded again"
is "$(register rt "$JOIN" p3 "$T/p3.key")" 201 "the join token from before registers a new peer"
is "$($PY -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$T/registry.db")" \
    2 "user_version is 2"

# --- without a secret: no grant, no relays in the meta, and the log says why
stop_registry TERM
grep -v 'secret = ' "$T/server.cfg" > "$T/nosecret.cfg"
"$REGISTRY" -c "$T/nosecret.cfg" --check-config > /dev/null 2>&1
ok $? "a relay group without a secret is a valid registry config"
start_registry "$T/nosecret.cfg"
ok $? "registry starts without relay.secret"
grep -q "relays off: relay.servers without relay.secret" "$T/registry.log"
ok $? "the log says why relays are off"
is "$(register rt "$JOIN" p1 "$T/p1.key" "$T/reg.json")" 200 "p1 registers again"
P1=$(jget "$T/reg.json" 'd["peer_token"]')
is "$(jget "$T/reg.json" '"relay" in d')" False "no relay grant in the registration reply"
is "$(http PUT "/api/v1/mesh/networks/rt/peers/$P1_ID/heartbeat" "$P1" '{}')" 200 "heartbeat"
is "$(out '"relay" in d')" False "no relay grant in the heartbeat reply"
http GET /client/meta "$P1" >/dev/null
is "$(out '"relays" in d')" False "no relays in /client/meta"

stop_registry TERM
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
