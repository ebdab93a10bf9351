#!/bin/sh
# Writes the seed corpus of fuzz_relay_proto (fuzz/corpus/fuzz_relay_proto/): every
# message type at its exact size (format: librelay/relay_proto.h), one byte
# short and long, bad version, reserved and address bytes, and credential texts.
# Run from the source tree root: sh librelay/gen_relay_corpus.sh
set -eu
dir=fuzz/corpus/fuzz_relay_proto
mkdir -p "$dir"
# msg NAME TYPE VERSION RESERVED SIZE [BODY]: header, then BODY (printf escapes),
# then filler bytes 0x11 up to SIZE
msg () {
    { printf "\\$(printf '%03o' "$2")\\$(printf '%03o' "$3")"; printf "$4"; printf "${6:-}"
      head -c "$5" /dev/zero | tr '\0' '\021'; } | head -c "$5" > "$dir/$1"
}
peer='\210\167\146\125\104\063\042\021'
net32='\001\002\003\004'
addr4='\004\000\024\312\300\000\002\001\0\0\0\0\0\0\0\0\0\0\0\0'
addr6='\006\000\240\017\040\001\015\270\0\0\0\0\0\0\0\0\0\0\0\001'
msg register 8 1 '\0\0' 68
msg register-short 8 1 '\0\0' 67
msg register-long 8 1 '\0\0' 69
msg registered-v4 9 1 '\0\0' 40 "$peer\\0\\0\\0\\0\\0\\0\\0\\0$addr4"
msg registered-v6 9 1 '\0\0' 40 "$peer\\0\\0\\0\\0\\0\\0\\0\\0$addr6"
msg registered-badfamily 9 1 '\0\0' 40 "$peer\\0\\0\\0\\0\\0\\0\\0\\0\\005"
msg established-v4 10 1 '\0\0' 32 "$peer$addr4"
msg established-v6 10 1 '\0\0' 32 "$peer$addr6"
msg established-short 10 1 '\0\0' 31 "$peer$addr4"
msg data-empty 11 1 '\0\0' 16 "$net32$peer"
msg data-1400 11 1 '\0\0' 1416 "$net32$peer"
msg data-short 11 1 '\0\0' 15 "$net32$peer"
msg ping 12 1 '\0\0' 24 "$net32$peer"
msg ping-padded 12 1 '\0\0' 1400 "$net32$peer"
msg ping-short 12 1 '\0\0' 23 "$net32$peer"
msg pong 13 1 '\0\0' 20 "$peer"
msg error 14 1 '\0\0' 16 '\001\000\000\000'
msg error-reserved 14 1 '\0\0' 16 '\001\000\000\001'
msg bad-version 8 2 '\0\0' 68
msg bad-reserved 11 1 '\0\1' 20
msg tunnel-data 4 0 '\0\0' 32
msg stun 0 1 '\0\0' 20
msg type15 15 1 '\0\0' 20
msg channeldata 64 0 '\0\4' 20
printf '' > "$dir/empty"
printf '\013' > "$dir/one-byte"
printf '\013\001\000' > "$dir/three-bytes"
printf '1800000000.%064d' 0 > "$dir/cred-text"
printf '1800000000.%063d' 0 > "$dir/cred-text-truncated"
printf '99999999999999999999.%064d' 0 > "$dir/cred-text-overflow"
printf '00112233aabbccdd' > "$dir/peer-id"
