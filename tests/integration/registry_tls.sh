#!/bin/sh
# registry_tls: the API over HTTPS and WSS with a certificate generated here
# (openssl), plain HTTP refused on that port, and the per-address rate limit
# (token bucket: a burst passes, then 429 with Retry-After, then it refills). (TAP)
. "${BIFROST_SRCDIR:-.}/tests/integration/registry_lib.sh"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
ok $? "self-signed certificate generated"
cat > "$T/registry.cfg" <<CFG
registry = {
    listen = "127.0.0.1:$PORT";
    database = "$T/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    tls_cert = "$T/cert.pem";
    tls_key = "$T/key.pem";
    rate_limit = 2;
    rate_burst = 10;
};
CFG
URL=https://127.0.0.1:$PORT
API=$URL/api/v1/mesh
start_registry "$T/registry.cfg"
ok $? "registry starts with TLS"
code=$(curl -s -o "$T/out.json" -w '%{http_code}' --cacert "$T/cert.pem" "$URL/client/meta")
is "$code" 200 "GET /client/meta over https, certificate verified"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$PORT/client/meta")
[ "$code" != 200 ]
ok $? "plain http on the TLS port does not work ($code)"
is "$(http POST /api/v1/mesh/networks "$ADMIN" '{"id":"sec","name":"sec"}')" 201 "create a network over https"
$WS 127.0.0.1 "$PORT" /api/v1/mesh/networks/sec/events --tls --token "$ADMIN" --count 1 --timeout 5 > "$T/wss.out" 2>&1
grep -q '"event":"subscribed"' "$T/wss.out"
ok $? "events over wss://"

# Rate limit: 10 burst, 2/s (slow, so a loaded machine's slow TLS handshakes do not
# refill the bucket during the burst). Wait for a full bucket first.
sleep 5
codes=
for i in $(seq 1 30); do
    code=$(curl -s -k -D "$T/h$i.txt" -o "$T/out$i.json" -w '%{http_code}' "$URL/client/meta")
    codes="$codes $code"
    # a 429 of the burst itself: a request after it may find a refilled token
    [ "$code" = 429 ] && cp "$T/h$i.txt" "$T/h.txt" && cp "$T/out$i.json" "$T/out.json"
done
n200=$(echo $codes | tr ' ' '\n' | grep -c '^200$')
n429=$(echo $codes | tr ' ' '\n' | grep -c '^429$')
[ "$n200" -ge 9 ] && [ "$n429" -ge 5 ] && [ $((n200 + n429)) -eq 30 ]
ok $? "a burst of 30 requests: the first 10 (and what refills) pass, the rest get 429 ($codes)"
grep -qi '^retry-after: 1' "$T/h.txt" && grep -q '"error":"too many requests"' "$T/out.json"
ok $? "429 carries Retry-After and a JSON error"
wait_for 3 sh -c "[ \$(curl -s -k -o /dev/null -w '%{http_code}' $URL/client/meta) = 200 ]"
ok $? "the bucket refills"
stop_registry TERM
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
