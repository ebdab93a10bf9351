# registry_lib.sh: helpers of the registry integration tests (sourced, not run).
# A real bifrost-registry on 127.0.0.1 with a temp config, database and run dir;
# curl for REST, services/registry/ws_client.py for WebSocket events,
# reg-testclient for key pairs and key proofs (libnode/node_keyproof).
set -u
T=$(mktemp -d /tmp/registry-test-XXXXXX)
chmod 755 "$T"      # the services pass it under their own uids (docs/supervisor.md)
TESTNO=0
FAILED=0
RPID=
B=${BIFROST_BUILDDIR:-.}
S=${BIFROST_SRCDIR:-.}
REGISTRY=$B/services/registry/bifrost-registry
CLIENT=$B/services/registry/reg-testclient
PY=$(command -v /usr/bin/python3 || command -v python3)
WS="$PY $S/services/registry/ws_client.py"
ADMIN=admin-$$-secret
export BIFROST_ADMIN_TOKEN=$ADMIN
BGPIDS=

reg_cleanup () {
    [ -n "$RPID" ] && kill -KILL "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    for p in $BGPIDS; do kill -KILL "$p" 2>/dev/null; done
    if [ "$FAILED" -ne 0 ]; then
        for f in "$T"/registry*.log; do
            [ -f "$f" ] || continue
            echo "# $f:"; tail -40 "$f" | sed 's/^/#   /'
        done
    fi
    seccomp_check "$T"
    rm -rf "$T"
}
trap reg_cleanup EXIT

. "${BIFROST_SRCDIR:-.}/tests/integration/tap_lib.sh"
is () {     # is GOT EXPECTED DESCRIPTION
    if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3 (got '$1', expected '$2')"; fi
}
free_port () {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# jget FILE EXPR: a value from a JSON file; EXPR is a python expression on d
jget () {
    $PY -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2])
    print(v if not isinstance(v, (dict, list)) else json.dumps(v, separators=(",", ":")))
except Exception as e:
    print("<%s>" % e)' "$1" "$2"
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
API=$URL/api/v1/mesh

# start_registry CONFIG [LOG]: starts it and waits until it answers
start_registry () {
    "$REGISTRY" -c "$1" -r "$T/run" >>"${2:-$T/registry.log}" 2>&1 &
    RPID=$!
    wait_for 10 curl -s -o /dev/null "${URL}/client/meta" -k
}
stop_registry () {     # stop_registry SIGNAL
    kill -"$1" "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=
}

# http METHOD PATH TOKEN [BODY]: prints the status; the body goes to $T/out.json
http () {
    _auth=
    [ -n "$3" ] && _auth="Authorization: Bearer $3"
    if [ $# -ge 4 ]; then
        curl -s -k -o "$T/out.json" -w '%{http_code}' -X "$1" -H "$_auth" -H 'Expect:' \
             -H 'Content-Type: application/json' --data-binary "$4" "$URL$2"
    else
        curl -s -k -o "$T/out.json" -w '%{http_code}' -X "$1" -H "$_auth" "$URL$2"
    fi
}
out () { jget "$T/out.json" "$1"; }

# register NET TOKEN NAME KEYFILE [OUT]: challenge + proof + POST; prints the
# status, the response in OUT (default $T/out.json). Creates KEYFILE if missing.
register () {
    _o=${5:-$T/out.json}
    [ -f "$4" ] || "$CLIENT" keygen > "$4"
    _sk=$(cut -d' ' -f2 "$4")
    curl -s -k -X POST -o "$_o.ch" "$API/networks/$1/challenge"
    _nonce=$(jget "$_o.ch" 'd["nonce"]')
    _rk=$(jget "$_o.ch" 'd["registry_key"]')
    _body=$("$CLIENT" body "$_sk" "$_rk" "$1" "$_nonce" "$3" 192.0.2.1:51820)
    _auth=
    [ -n "$2" ] && _auth="Authorization: Bearer $2"
    curl -s -k -o "$_o" -w '%{http_code}' -X POST -H "$_auth" -H 'Expect:' --data-binary "$_body" \
         "$API/networks/$1/peers"
}

# relay_tag NETWORK_ID: the network tag of the relay credentials, 16 hex digits
# (the first 8 bytes of BLAKE2b-256 of the id, little-endian; docs/relay.md)
relay_tag () {
    $PY -c 'import hashlib, sys
print("%016x" % int.from_bytes(hashlib.blake2b(sys.argv[1].encode(), digest_size=32).digest()[:8], "little"))' "$1"
}
# relay_verify SECRET NETWORK_TAG PEER_ID CREDENTIAL NOW: exit 0 when CREDENTIAL
# ("EXPIRY.MACHEX") is the HMAC-SHA-256 with SECRET (64 hex digits) of
# "bifrost relay v1" || network || peer || expiry, each 8 bytes little-endian
# (docs/relay.md), and not expired at NOW: a second implementation of the
# format, in Python, so a test does not check librelay with itself
relay_verify () {
    $PY - "$@" <<'PY'
import hmac, hashlib, sys
secret, network, peer, cred, now = sys.argv[1:6]
expiry, mac = cred.split(".")
msg = b"bifrost relay v1" + b"".join(int(v, 16 if i < 2 else 10).to_bytes(8, "little")
                                     for i, v in enumerate((network, peer, expiry)))
want = hmac.new(bytes.fromhex(secret), msg, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(want, mac) and int(expiry) >= int(now) else 1)
PY
}
