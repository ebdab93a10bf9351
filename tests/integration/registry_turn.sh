#!/bin/sh
# registry_turn: TURN credentials issued by the registry are accepted by a real
# coturn started through bifrost-coturn (an allocation with turnutils_uclient),
# and expired or forged ones are refused. Everything on 127.0.0.1. (TAP)
. "${BIFROST_SRCDIR:-.}/tests/integration/registry_lib.sh"
COTURN=$B/services/coturn/bifrost-coturn
if ! command -v turnserver >/dev/null || ! command -v turnutils_uclient >/dev/null; then
    echo "1..0 # SKIP coturn is not installed (apt-get install coturn)"
    exit 0
fi
TURN_SECRET=$(openssl rand -hex 24)
export TURN_SECRET
TPORT=$(free_port)
CPID=

turn_cleanup () {
    [ -n "$CPID" ] && kill -KILL "$CPID" 2>/dev/null
    reg_cleanup
}
trap turn_cleanup EXIT

cat > "$T/server.cfg" <<CFG
registry = {
    listen = "127.0.0.1:$PORT";
    database = "$T/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    rate_limit = 0;
};
turn = {
    realm = "bifrost.test";
    host = "127.0.0.1";
    listening_ip = "127.0.0.1";
    listen_port = $TPORT;
    min_port = 50000;
    max_port = 50200;
    secret = "\${TURN_SECRET}";
    credential_ttl = "10m";
    allow_loopback_peers = true;    # the test's peers are on loopback
};
CFG

env -u TURN_SECRET "$COTURN" -c "$T/server.cfg" --check-config > "$T/nosecret.out" 2>&1
rc=$?
is "$rc" 78 "bifrost-coturn without TURN_SECRET in the environment exits 78"
grep -q TURN_SECRET "$T/nosecret.out"
ok $? "... naming the missing variable"

"$COTURN" -c "$T/server.cfg" -r "$T/run" > "$T/coturn.log" 2>&1 &
CPID=$!
wait_for 10 sh -c "ss -lun | grep -q '127.0.0.1:$TPORT '"
ok $? "coturn listens on 127.0.0.1:$TPORT (udp)"
is "$(readlink /proc/$CPID/exe)" "$(readlink -f "$(command -v turnserver)")" "bifrost-coturn became turnserver (same pid)"
is "$(stat -c %a "$T/run/turnserver.conf")" 600 "turnserver.conf is mode 0600"
# coturn binds its ports as root, then becomes turn.user (default turnserver,
# the Debian package's user: proc-user/proc-group)
want_uid=$(id -u turnserver 2>/dev/null || echo "(no turnserver user)")
is "$(awk '$1 == "Uid:" { print $2 " " $3 " " $4 " " $5 }' /proc/$CPID/status)" "$want_uid $want_uid $want_uid $want_uid" \
    "coturn runs as turnserver (real, effective, saved and fs uid), not root"
grep -q "^proc-user=turnserver\$" "$T/run/turnserver.conf"
ok $? "turnserver.conf sets proc-user=turnserver"
tr '\0' ' ' < /proc/$CPID/cmdline | grep -q "$TURN_SECRET"
is $? 1 "the secret is not on the command line"
grep -q "^static-auth-secret=$TURN_SECRET\$" "$T/run/turnserver.conf"
ok $? "the secret from the environment is in the generated config"

start_registry "$T/server.cfg"
ok $? "registry starts with the turn group"
is "$(http GET /client/meta '')" 200 "anonymous /client/meta"
is "$(out 'len(d["iceServers"])')" 1 "anonymous: STUN only"
is "$(out 'd["iceServers"][0]["urls"][0]')" "stun:127.0.0.1:$TPORT" "STUN URL from the turn group"

http POST /api/v1/mesh/networks "$ADMIN" '{"id":"t","name":"t"}' >/dev/null
http POST /api/v1/mesh/networks/t/tokens "$ADMIN" '{}' >/dev/null
register t "$(out 'd["token"]')" p1 "$T/p1.key" >/dev/null
P1=$(out 'd["peer_token"]'); P1_ID=$(out 'd["peer"]["id"]')
is "$(http GET /client/meta "$P1")" 200 "/client/meta with a peer token"
is "$(out 'd["iceServers"][1]["urls"][0]')" "turn:127.0.0.1:$TPORT?transport=udp" "TURN udp URL"
is "$(out 'd["iceServers"][1]["urls"][1]')" "turn:127.0.0.1:$TPORT?transport=tcp" "TURN tcp URL"
is "$(out 'd["ttl"]')" 600 "ttl from credential_ttl"
USER=$(out 'd["iceServers"][1]["username"]')
PASS=$(out 'd["iceServers"][1]["credential"]')
echo "$USER" | grep -q ":$P1_ID\$"
ok $? "username is <expiry>:<peer id> ($USER)"
expiry=${USER%%:*}
now=$(date +%s)
[ "$expiry" -gt $((now + 590)) ] && [ "$expiry" -le $((now + 601)) ]
ok $? "expiry is now + ttl"
grep -q "$TURN_SECRET" "$T/registry.log" "$T/out.json"
is $? 1 "the secret is neither logged nor returned"

uclient () {    # uclient USER PASS [extra flags]: one client-to-client allocation, 3 packets
    _u=$1; _p=$2; shift 2
    timeout 15 turnutils_uclient -p "$TPORT" -y -n 3 -m 1 "$@" -u "$_u" -w "$_p" 127.0.0.1 > "$T/uclient.out" 2>&1
}
uclient "$USER" "$PASS"
ok $? "coturn accepts the registry's credential (udp allocation)"
grep -q 'Total lost packets 0' "$T/uclient.out"
ok $? "... and relays packets with no loss"
uclient "$USER" "$PASS" -t
ok $? "... also over TCP"
uclient "$USER" "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
is $? 255 "a forged password is refused"
uclient "1:$P1_ID" "$PASS"
is $? 255 "a changed username (expiry in the past) is refused"
old="$(( now - 60 )):$P1_ID"
oldpass=$(printf %s "$old" | openssl dgst -sha1 -hmac "$TURN_SECRET" -binary | base64)
uclient "$old" "$oldpass"
is $? 255 "a correctly signed but expired credential is refused"

stop_registry TERM
kill -TERM "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
CPID=
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
