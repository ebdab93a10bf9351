#!/bin/sh
# Writes the seed corpus of fuzz_disc_json into fuzz/corpus/fuzz_disc_json/: each
# file is one selector byte (which parser, see fuzz_disc_json.c) and a registry
# reply or event, good and broken. Run from the source tree: sh services/discovery/gen_disc_corpus.sh
set -e
D=${1:-fuzz/corpus/fuzz_disc_json}
mkdir -p "$D"
K='q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80='
P='{"id":"b4c804b23a21c6aa","name":"laptop","public_key":"'$K'","vip":"10.100.0.1","endpoints":["198.51.100.7:51820"],"candidates":["candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"],"online":true,"last_seen":1700000000000,"created":1700000000000}'
n=0
seed () {   # seed SELECTOR TEXT
    n=$((n + 1))
    { printf "\\$(printf '%03o' "$1")"; printf '%s' "$2"; } > "$D/seed-$(printf '%02d' $n)"
}
seed 0 '{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","registry_key":"'$K'","expires_in":60,"scheme":"bifrost-keyproof-v1"}'
seed 0 '{"nonce":"","registry_key":"short"}'
seed 0 '{"nonce":5}'
seed 1 '{"peer":'"$P"',"peer_token":"bpt_xyz","network":{"id":"office","name":"office","cidr":"10.100.0.0/16","prefix":16},"heartbeat_interval":30,"registry_key":"'$K'"}'
seed 1 '{"peer":'"$P"',"peer_token":"bpt_xyz","network":{"id":"office","prefix":40}}'
seed 1 '{"peer":{},"peer_token":7}'
seed 2 '{"peers":['"$P"','"$P"']}'
seed 2 '{"peers":[]}'
seed 2 '{"peers":[{"id":"zz"}]}'
seed 2 '{"peers":[{"id":"b4c804b23a21c6aa","name":"x","public_key":"'$K'","vip":"10.1.2.300"}]}'
seed 2 '{"peers":[{"id":"b4c804b23a21c6aa","name":"x","public_key":"'$K'","vip":"10.1.2.3","endpoints":["a:1","b:2","c:3","d:4","e:5","f:6","g:7","h:8","i:9"]}]}'
seed 2 '{"peers":['
seed 3 '{"event":"subscribed","network":"office","peer":null}'
seed 3 '{"event":"peer.joined","network":"office","peer":'"$P"'}'
seed 3 '{"event":"peer.changed","network":"office","peer":'"$P"',"reason":"offline"}'
seed 3 '{"event":"peer.left","network":"office","peer":'"$P"',"reason":"expired"}'
seed 3 '{"event":"signal","network":"office","from":"b4c804b23a21c6aa","to":"0000000000000001","type":"offer","data":{"sdp":"v=0","n":[1,2,{"x":null}]}}'
seed 3 '{"event":"signal","from":"b4c804b23a21c6aa","type":"offer"}'
seed 3 '{"event":"network.deleted"}'
seed 3 '{"event":"peer.joined","peer":{"id":"b4c804b23a21c6aa","name":"x\u0000y","public_key":"'$K'","vip":"10.1.2.3"}}'
seed 3 '{"event":5}'
seed 3 '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]'
seed 4 '{"name":"bifrost-registry","version":"0.1.0","ttl":86400,"iceServers":[{"urls":["stun:turn.example.org:3478"]},{"urls":["turn:turn.example.org:3478?transport=udp"],"username":"1700086400:b4c804b23a21c6aa","credential":"dvSdV1YGXw0TI92UauKfluPnRsc="}]}'
seed 4 '{"name":"bifrost-registry"}'
seed 4 '{"iceServers":[{"url":"x"}]}'
seed 4 '{"ttl":-1}'
seed 5 '{"delivered":2}'
seed 5 '{"online":true,"heartbeat_interval":30}'
G='{"servers":["relay-1@192.0.2.10:3479","relay-2@[2001:db8::2]:3479"],"network":"8d3f0c2b9a716e54","credential":"1700086400.0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}'
seed 1 '{"peer":'"$P"',"peer_token":"bpt_xyz","network":{"id":"office","prefix":16},"heartbeat_interval":30,"relay":'"$G"'}'
seed 5 '{"online":true,"heartbeat_interval":30,"relay":'"$G"'}'
seed 5 '{"online":true,"relay":{"servers":["nameless:1"],"network":"zz","credential":"1.x"}}'
seed 6 '{"error":"invalid token"}'
seed 6 '<html><body>502 Bad Gateway</body></html>'
echo "$n seeds in $D"
