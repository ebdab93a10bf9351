# registry_lib.sh: helpers of the registry integration tests (sourced, not run).
# A real bifrost-registry on 127.0.0.1 with a temp config, database and run dir;
# curl for REST, services/registry/ws_client.py for WebSocket events,
# reg-testclient for key pairs and key proofs (libnode/node_keyproof).
set -u
T=$(mktemp -d /tmp/registry-test-XXXXXX)
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
