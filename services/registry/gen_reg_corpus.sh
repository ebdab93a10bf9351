#!/bin/sh
# Writes the seed corpus of fuzz_reg_json: valid and invalid bodies of every
# registry request. Usage: gen_reg_corpus.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
k=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=
i=0
seed () { i=$((i + 1)); printf '%s' "$1" > "$out/seed-$(printf %03d $i)"; }
seed '{"name":"office"}'
seed '{"id":"home-1","name":"Home.LAN","cidr":"10.9.0.0/24","settings":{"heartbeat_interval":1,"offline_after":2,"expire_after":3}}'
seed '{"name":"x","cidr":"10.100.0.1/16"}'
seed '{"name":"x","cidr":"300.1.1.1/8"}'
seed '{"name":"x","settings":{"heartbeat_interval":1.5}}'
seed '{"name":"x","name":"y"}'
seed '{"name":"a\u0000b"}'
seed '{"name":""}'
seed '[]'
seed '"x"'
seed '{'
seed ''
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"$k\"}"
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"$k\",\"endpoints\":[\"192.0.2.1:51820\",\"[2001:db8::1]:51820\"],\"candidates\":[\"candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host\"]}"
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"AAAA\"}"
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"$k\",\"endpoints\":[\"1.2.3.4:0\"]}"
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"$k\",\"endpoints\":[1,2]}"
seed "{\"public_key\":\"$k\",\"name\":\"n1\",\"nonce\":\"$k\",\"proof\":\"$k\",\"candidates\":[\"a\\nb\"]}"
seed '{"ttl":60,"reusable":true,"description":"laptops"}'
seed '{"ttl":"60"}'
seed '{"ttl":-1}'
seed '{"reusable":1}'
seed '{"endpoints":["198.51.100.1:4000"]}'
seed '{"candidates":[]}'
seed '{"endpoints":"x"}'
seed '{"type":"offer","data":{"sdp":"v=0"}}'
seed '{"type":"answer","data":[1,2,{"a":null}]}'
seed '{"type":"of fer","data":1}'
seed '{"type":"x"}'
seed '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'
seed '{"name":"x","extra":{"a":[1,2,3]}}'
seed '{"name":"\ud800"}'
# heartbeats with paths (issue 19): good, every kind, bad kinds, a peer path
# without its via, duplicates, more than 64 entries
p=00112233445566aa
q=00112233445566bb
seed "{\"paths\":[{\"peer\":\"$p\",\"path\":\"direct\",\"rtt_ms\":12},{\"peer\":\"$q\",\"path\":\"peer\",\"via\":\"$p\"}]}"
seed "{\"endpoints\":[\"192.0.2.1:1\"],\"paths\":[{\"peer\":\"$p\",\"path\":\"relay\",\"via\":\"relay-1\",\"rtt_ms\":600000},{\"peer\":\"$q\",\"path\":\"turn\"}]}"
seed '{"paths":[]}'
seed "{\"paths\":[{\"peer\":\"$p\",\"path\":\"pigeon\"}]}"
seed "{\"paths\":[{\"peer\":\"$p\",\"path\":\"peer\"}]}"
seed "{\"paths\":[{\"peer\":\"$p\",\"path\":\"direct\"},{\"peer\":\"$p\",\"path\":\"turn\"}]}"
seed "{\"paths\":[{\"peer\":\"$p\",\"path\":\"direct\",\"rtt_ms\":-1,\"x\":1}]}"
many=$(for n in $(seq 1 65); do printf '{"peer":"%016x","path":"direct"},' "$n"; done)
seed "{\"paths\":[${many%,}]}"
echo "$i seeds in $out"
