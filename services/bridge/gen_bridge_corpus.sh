#!/bin/sh
# Writes the seed corpora of fuzz_bridge_params (a query, then optionally a
# newline and the Authorization header) and fuzz_bridge_status (a status
# message's JSON): valid requests and messages of every kind, and one of each
# refusal. Usage: gen_bridge_corpus.sh CORPUSDIR (fuzz/corpus)
set -eu
out=$1
k=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=
i=0
dir=$out/fuzz_bridge_params
mkdir -p "$dir"
seed () { i=$((i + 1)); printf '%s' "$1" > "$dir/seed-$(printf %03d $i)"; }
nl='
'
seed "target=192.0.2.1:4000&key=$k${nl}Bearer bpt_abc"
seed "target=%5B2001%3Adb8%3A%3A1%5D%3A65535&key=${k%=}%3D&cipher=chacha20poly1305&token=t"
seed "peer=0123456789abcdef&key=$k&cipher=aes256gcm${nl}bearer x"
seed "target=127.0.0.1:9&key=$k${nl}Bearer x"
seed "target=192.0.2.1:70000&key=$k${nl}Bearer x"
seed "target=192.0.2.1:0&key=$k${nl}Bearer x"
seed "target=example.com:80&key=$k${nl}Bearer x"
seed "target=2001:db8::1:80&key=$k${nl}Bearer x"
seed "target=[fe80::1%25eth0]:1&key=$k${nl}Bearer x"
seed "target=[::ffff:192.0.2.1]:1&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1&peer=0123456789abcdef&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1&key=AAAA${nl}Bearer x"
seed "target=192.0.2.1:1&key=$k&cipher=aes${nl}Bearer x"
seed "target=192.0.2.1:1&target=192.0.2.1:1&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1&key=$k&port=1${nl}Bearer x"
seed "target=192.0.2.1:1%zz&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1&key=$k&token=x${nl}Bearer x"
seed "target=192.0.2.1:1&key=$k${nl}Basic eDp5"
seed "target=192.0.2.1:1&key=$k"
seed "target=%5B2001%3Adb8%3A%3A1%5D%3A4000%2C192.0.2.1:4000&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1,192.0.2.2:1,192.0.2.3:1,192.0.2.4:1,192.0.2.5:1&key=$k${nl}Bearer x"
seed "target=192.0.2.1:1,,192.0.2.1:1&key=$k${nl}Bearer x"
seed "&&&="
i=0
dir=$out/fuzz_bridge_status
mkdir -p "$dir"
seed '{"state":"CONNECTED"}'
seed '{"state":"UDP_WAITING","target":"192.0.2.1:4000","cipher":"aes256gcm"}'
seed '{"state":"UDP_WAITING","peer":"0123456789abcdef","target":"[2001:db8::1]:4000"}'
seed '{"state":"UDP_ESTABLISHED","target":"[2001:db8::1]:4000","cipher":"chacha20poly1305","rtt_ms":12}'
seed '{"state":"ERROR","code":4400,"reason":"bad parameter: target: port 70000 is out of range 1..65535"}'
seed '{"state":"CONNECTED","target":"192.0.2.1:4000","udp":"203.0.113.10:41503","cipher":"aes256gcm"}'
seed '{"state":"UDP_WAITING","target":"[2001:db8::1]:4000","udp":"[2001:db8::10]:41503"}'
seed '{"state":"ERROR","code":4408,"reason":"idle","udp":"203.0.113.10:1"}'
seed '{"state":"CONNECTED","udp":"bridge.example:1"}'
seed '{"state":"UDP_LOST"}'
seed '{"state":"CONNECTED","extra":1}'
seed '{"state":"ERROR","code":4400}'
seed '{"state":"CONNECTED","code":4400,"reason":"x"}'
seed '{"state":"ERROR","code":4999,"reason":"x"}'
seed '{"state":"CONNECTED","target":"example.com:80"}'
seed '{"state":"UDP_WAITING","rtt_ms":5}'
seed '{"state":"UDP_WAITING","cipher":"auto"}'
seed '{"state":"CONNECTED","state":"ERROR"}'
seed '[]'
seed '{'
