#!/bin/bash
# discovery_tls: a registry serving HTTPS with a certificate made here; a node whose
# discovery trusts that certificate (ca_file) registers and gets its virtual IP, a
# node that trusts another CA refuses the registry and never registers. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
export BIFROST_ADMIN_TOKEN=admin-$ID-secret
RURL=https://192.0.2.10:7443
REGPID=
trap 'kill -TERM $REGPID 2>/dev/null; node_cleanup' EXIT

underlay reg 192.0.2.10
underlay a 192.0.2.1
underlay b 192.0.2.2
mkdir -p "$T/reg"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=192.0.2.10 \
    -addext "subjectAltName=IP:192.0.2.10" -keyout "$T/reg/key.pem" -out "$T/reg/cert.pem" >/dev/null 2>&1 &&
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=192.0.2.10 \
    -addext "subjectAltName=IP:192.0.2.10" -keyout "$T/reg/other-key.pem" -out "$T/reg/other.pem" >/dev/null 2>&1
ok $? "two self-signed certificates for 192.0.2.10 (the registry's, and a stranger's)"
cat > "$T/reg/registry.cfg" <<CFG
registry = {
    listen = "192.0.2.10:7443";
    database = "$T/reg/registry.db";
    admin_token = "\${BIFROST_ADMIN_TOKEN}";
    tls_cert = "$T/reg/cert.pem";
    tls_key = "$T/reg/key.pem";
    rate_limit = 0;
};
CFG
ip netns exec "$(ns_of reg)" "$REGISTRY" -c "$T/reg/registry.cfg" -r "$T/reg/run" >>"$T/reg/registry.log" 2>&1 &
REGPID=$!
wait_for 10 in_ns reg curl -s --cacert "$T/reg/cert.pem" -o /dev/null "$RURL/client/meta"
ok $? "registry answers over https on 192.0.2.10:7443"
in_ns reg curl -s --cacert "$T/reg/cert.pem" -X POST -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" \
    --data-binary '{"id":"tls","name":"tls","cidr":"10.100.0.0/24"}' "$RURL/api/v1/mesh/networks" >/dev/null
export BIFROST_JOIN_TOKEN
BIFROST_JOIN_TOKEN=$(in_ns reg curl -s --cacert "$T/reg/cert.pem" -X POST -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" \
    --data-binary '{"ttl":600,"reusable":true}' "$RURL/api/v1/mesh/networks/tls/tokens" | jq -r .token)
case "$BIFROST_JOIN_TOKEN" in bjt_*) ok 0 "network and join token created over https" ;; *) ok 1 "join token" ;; esac

tls_config () {     # tls_config NODE CA
    mkdir -p "$T/$1"
    disc_node_cfg "$T/$1" "$1" tls "$RURL" "ca_file = \"$2\";"
}
tls_config a "$T/reg/cert.pem"
tls_config b "$T/reg/other.pem"
vip () { in_ns "$1" ip -o -4 addr show dev bifrost0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'; }
has_vip () { [ -n "$(vip "$1")" ]; }

start_node a; start_node b
wait_for 15 has_vip a
ok $? "node a (trusts the registry's certificate) registered over https: $(vip a)"
sleep 3
! has_vip b
ok $? "node b (trusts another CA) got no address: it did not talk to the registry"
registered=$(in_ns reg curl -s --cacert "$T/reg/cert.pem" -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" \
    "$RURL/api/v1/mesh/networks/tls/peers" | jq -r '[.peers[].name] | sort | join(",")')
[ "$registered" = "a" ]
ok $? "the registry knows only a (got '$registered')"
echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
