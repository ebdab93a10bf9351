#!/bin/bash
# ctl_join: `bifrostctl join` and `leave` as an operator uses them (issue 19,
# docs/bifrostctl.md "Joining a network"). A registry in a namespace; on two
# fresh nodes (no key, no config) `bifrostctl join URL --token T --network N`
# makes the key (0600), writes the config and the token file (0600), starts
# bifrostd and prints the virtual IP; the nodes ping each other over it. A
# bad URL (2), an unreachable registry (3) and a wrong token (4) each give
# their exit code and leave no file behind. `leave` stops the node and
# removes it from the registry's peer list. (TAP)
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"
. "$BIFROST_SRCDIR/tests/integration/disc_lib.sh"

REGISTRY=$BIFROST_BUILDDIR/services/registry/bifrost-registry
export BIFROST_ADMIN_TOKEN=admin-$ID-secret
export BIFROST_NO_SYSTEMD=1         # never the host's systemd: bifrostd started directly
REGPID=

reg_cleanup () {
    disc_registry_cleanup
    node_cleanup
}
trap reg_cleanup EXIT

underlay reg 192.0.2.10
underlay a 192.0.2.1
underlay b 192.0.2.2
# The registry on 192.0.2.10:7080 with network j and a reusable join token
# (disc_lib.sh); the token goes to bifrostctl on its command line only: out of
# this shell's environment, so no process started below inherits it
disc_registry j
ok $? "registry answers on $RURL: network j and a reusable join token"
TOKEN=$BIFROST_JOIN_TOKEN
unset BIFROST_JOIN_TOKEN

# join NODE URL [ARGS]: bifrostctl join in the node's namespace, everything
# under $T/NODE; stdout in $T/NODE.out, stderr in $T/NODE.err; the exit code
join () {
    local n=$1 url=$2; shift 2
    mkdir -p "$T/$n"
    in_ns "${JOIN_NS:-$n}" "$CTL" -r "$T/$n/run" join "$url" --config "$T/$n/etc/bifrost.cfg" --key-file "$T/$n/lib/node.key" \
        --log "$T/$n/bifrostd.log" --name "$n" --wait 30 "$@" > "$T/$n.out" 2> "$T/$n.err"
}
# nothing_left NODE: no config, token, key or temporary file of a failed join
nothing_left () { [ -z "$(find "$T/$1/etc" "$T/$1/lib" -type f 2>/dev/null)" ]; }
fails_with () {     # fails_with CODE NODE DESCRIPTION URL [ARGS]
    local code=$1 n=$2 what=$3 rc; shift 3
    JOIN_NS=a join "$n" "$@"; rc=$?
    [ "$rc" = "$code" ] && nothing_left "$n"
    ok $? "$what: exit $rc (want $code), nothing written: $(tail -1 "$T/$n.err")"
}
fails_with 2 x "a bad URL" "htp://192.0.2.10:7080" --network j --token "$TOKEN"
fails_with 2 x "plain http to another machine without --allow-http" "$RURL" --network j --token "$TOKEN"
fails_with 3 x "an unreachable registry (nothing on the port)" "http://192.0.2.10:7999" --allow-http --network j --token "$TOKEN"
fails_with 4 x "a wrong token" "$RURL" --allow-http --network j --token bjt_not-a-token
fails_with 4 x "an unknown network" "$RURL" --allow-http --network nope --token "$TOKEN"
grep -q "bjt_not-a-token" "$T/x.err"
[ $? -ne 0 ]
ok $? "the wrong token is not echoed in the message"

# Two fresh nodes join
t0=$(now_ms)
join a "$RURL" --allow-http --network j --token "$TOKEN"; rc=$?
NODES="$NODES a"; cp "$T/a/run/bifrostd.pid" "$T/a/bifrostd.pid" 2>/dev/null
ok $rc "node a joined in $(( $(now_ms) - t0 )) ms: $(cat "$T/a.out")"
join b "$RURL/api/v1/mesh/networks/j" --allow-http --token "$TOKEN"; rc=$?
NODES="$NODES b"; cp "$T/b/run/bifrostd.pid" "$T/b/bifrostd.pid" 2>/dev/null
ok $rc "node b joined with the network in the URL: $(cat "$T/b.out")"
VA=$(awk '{ sub("/.*", "", $NF); print $NF }' "$T/a.out")
VB=$(awk '{ sub("/.*", "", $NF); print $NF }' "$T/b.out")
case "$VA$VB" in 10.100.0.*10.100.0.*) [ "$VA" != "$VB" ] ;; *) false ;; esac
ok $? "both printed their virtual IPs ($VA, $VB)"
[ "$(stat -c %a "$T/a/lib/node.key")" = 600 ] && [ "$(stat -c %a "$T/a/etc/join-token")" = 600 ]
ok $? "the new key and the token file are mode 0600"
! grep -q "$TOKEN" "$T/a/etc/bifrost.cfg" "$T/a/bifrostd.log" && grep -q 'join_token_file' "$T/a/etc/bifrost.cfg"
ok $? "the token is in neither the config nor the log; the config names the token file"
holders=""
for p in $(ip netns pids "$(ns_of a)"); do
    tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q "$TOKEN" && holders="$holders $p(argv)"
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "$TOKEN" && holders="$holders $p(env)"
done
[ -z "$holders" ]
ok $? "no process of node a holds the token in its argv or environment (${holders:-none})"
env BIFROST_LIBEXEC_DIR="$LIBEXEC" "$BIFROSTD" --check-config -c "$T/a/etc/bifrost.cfg" >/dev/null 2>&1
ok $? "the written config passes bifrostd --check-config"
wait_for 15 ping_ok a "$VB" && wait_for 5 ping_ok b "$VA"
ok $? "a and b ping each other over their virtual IPs"

# Joining again (the node runs): the config is rewritten, bifrostd reloads, same address
join a "$RURL" --allow-http --network j --token "$TOKEN"; rc=$?
[ "$rc" = 0 ] && grep -q "$VA" "$T/a.out" && grep -q "reloads" "$T/a.err"
ok $? "join on a running node: bifrostd reloads, the same virtual IP (rc $rc: $(cat "$T/a.out"))"

# A config other than the one the running bifrostd reads: refused before anything is written
in_ns a "$CTL" -r "$T/a/run" join "$RURL" --allow-http --network j --token "$TOKEN" --config "$T/a/other/bifrost.cfg" \
    --key-file "$T/a/lib/node.key" --name a > "$T/a.out" 2> "$T/a.err"; rc=$?
[ "$rc" = 1 ] && grep -q "runs with $T/a/etc/bifrost.cfg" "$T/a.err" && [ ! -e "$T/a/other" ]
ok $? "join with another --config while bifrostd runs: exit $rc, nothing written ($(tail -1 "$T/a.err"))"

# leave: b is stopped and gone from the registry's list
peers () { admin GET /j/peers | jq -r '[.peers[].name] | sort | join(",")'; }
[ "$(peers)" = "a,b" ]
ok $? "the registry lists a and b"
BPID=$(cat "$T/b/bifrostd.pid")
in_ns b "$CTL" leave --config "$T/b/etc/bifrost.cfg" > "$T/b.out" 2> "$T/b.err"; rc=$?
[ "$rc" = 0 ] && grep -q "left network j" "$T/b.out"
ok $? "bifrostctl leave on b: exit $rc, $(cat "$T/b.out")"
[ "$(peers)" = "a" ]
ok $? "the registry's peers are now: $(peers)"
# stopped: gone, or a zombie until whoever adopted it reaps it
state=$(awk '{ print $3 }' /proc/"$BPID"/stat 2>/dev/null)
{ [ -z "$state" ] || [ "$state" = Z ]; } && [ ! -e "$T/b/etc/join-token" ]
ok $? "b's bifrostd is stopped (state '${state:-gone}') and its token file removed"
in_ns b "$CTL" leave --config "$T/b/etc/bifrost.cfg" > "$T/b.out" 2> "$T/b.err"
ok $? "leave again: nothing to do, exit 0 ($(tail -1 "$T/b.err"))"
wait_for 10 sh -c "! ip netns exec $(ns_of a) ping -c 1 -W 1 -q $VB >/dev/null 2>&1"
ok $? "a no longer reaches b"

# ---- over https: a second registry with a self-signed certificate for 192.0.2.10
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=192.0.2.10 -addext "subjectAltName=IP:192.0.2.10" \
    -keyout "$T/reg/key.pem" -out "$T/reg/cert.pem" >/dev/null 2>&1 &&
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=192.0.2.10 -addext "subjectAltName=IP:192.0.2.10" \
    -keyout "$T/reg/other-key.pem" -out "$T/reg/other.pem" >/dev/null 2>&1
cat > "$T/reg/tls.cfg" <<CFG
registry = { listen = "192.0.2.10:7443"; database = "$T/reg/tls.db"; admin_token = "\${BIFROST_ADMIN_TOKEN}";
             tls_cert = "$T/reg/cert.pem"; tls_key = "$T/reg/key.pem"; rate_limit = 0; };
CFG
ip netns exec "$(ns_of reg)" "$REGISTRY" -c "$T/reg/tls.cfg" -r "$T/reg/run-tls" >>"$T/reg/registry-tls.log" 2>&1 &
TLSPID=$!
SURL=https://192.0.2.10:7443
wait_for 10 in_ns reg curl -s --cacert "$T/reg/cert.pem" -o /dev/null "$SURL/client/meta"
ok $? "a second registry answers over https on 192.0.2.10:7443"
sadmin () { in_ns reg curl -s --cacert "$T/reg/cert.pem" -X POST -H "Authorization: Bearer $BIFROST_ADMIN_TOKEN" --data-binary "$2" "$SURL/api/v1/mesh/networks$1"; }
sadmin "" '{"id":"s","name":"s","cidr":"10.101.0.0/24"}' >/dev/null
STOKEN=$(sadmin /s/tokens '{"ttl":600}' | jq -r .token)
rm -rf "$T/y"
fails_with 3 y "https with a certificate the system's CAs do not know" "$SURL" --network s --token "$STOKEN"
grep -q "not trusted" "$T/y.err"
ok $? "... and it says the certificate is not trusted"
fails_with 3 y "https with --ca-file of another certificate" "$SURL" --network s --token "$STOKEN" --ca-file "$T/reg/other.pem"
join b "$SURL" --network s --token "$STOKEN" --ca-file "$T/reg/cert.pem"; rc=$?
cp "$T/b/run/bifrostd.pid" "$T/b/bifrostd.pid" 2>/dev/null
[ "$rc" = 0 ] && grep -q "virtual IP 10.101.0.1/24" "$T/b.out" && grep -q "ca_file = \"$T/reg/cert.pem\"" "$T/b/etc/bifrost.cfg" \
    && grep -q "registered in s" "$T/b.err"
ok $? "b (which left j) joins s over https with --ca-file: rc $rc, $(cat "$T/b.out")"
kill -TERM "$TLSPID" 2>/dev/null

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
