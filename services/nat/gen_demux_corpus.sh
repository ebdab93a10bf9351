#!/bin/sh
# Writes the seed corpus of fuzz_demux (fuzz/corpus/fuzz_demux/): valid headers of
# each type at and around their minimum sizes (WIRE_<TYPE>_SIZE of schemas/wire.def), malformed headers, and endpoint texts.
# Run from the source tree root: sh services/nat/gen_demux_corpus.sh
set -eu
dir=fuzz/corpus/fuzz_demux
mkdir -p "$dir"
# msg NAME TYPE RESERVED SIZE: type byte, 3 reserved bytes, receiver index, filler
msg () {
    { printf "\\$(printf '%03o' "$2")"; printf "$3"; printf '\170\126\064\022'
      head -c "$(($4 > 8 ? $4 - 8 : 0))" /dev/zero | tr '\0' '\245'; } | head -c "$4" > "$dir/$1"
}
msg initiation 1 '\0\0\0' 148
msg initiation-short 1 '\0\0\0' 147
msg initiation-long 1 '\0\0\0' 300
msg response 2 '\0\0\0' 92
msg response-short 2 '\0\0\0' 91
msg response-long 2 '\0\0\0' 200
msg cookie 3 '\0\0\0' 64
msg cookie-short 3 '\0\0\0' 63
msg cookie-long 3 '\0\0\0' 100
msg data-keepalive 4 '\0\0\0' 32
msg data-short 4 '\0\0\0' 31
msg data-1400 4 '\0\0\0' 1400
msg data-reserved1 4 '\1\0\0' 64
msg data-reserved2 4 '\0\1\0' 64
msg data-reserved3 4 '\0\0\377' 64
msg type0 0 '\0\0\0' 148
msg type7 7 '\0\0\0' 148
msg type255 255 '\0\0\0' 148
msg header-only 4 '\0\0\0' 4
msg three-bytes 4 '\0\0' 3
# routed NAME TTL RESERVED SOURCE DEST INNER-TYPE INNER-SIZE: a routing header
# (schemas/wire.def, ROUTED: type 5, TTL, 2 reserved bytes, source and destination
# ids as 16 hex digits written little-endian) and the message it carries
routed () {
    le () {     # hex digits, most significant first -> octal escapes, least significant first
        h=$1; out=""
        while [ -n "$h" ]; do rest=${h%??}; out="$out\\$(printf '%03o' $((0x${h#"$rest"})))"; h=$rest; done
        printf '%s' "$out"
    }
    { printf '\005'; printf "\\$(printf '%03o' "$2")"; printf "$3"
      printf "$(le "$4")"; printf "$(le "$5")"
      printf "\\$(printf '%03o' "$6")"; printf '\0\0\0'
      head -c "$(($7 > 4 ? $7 - 4 : 0))" /dev/zero | tr '\0' '\245'; } > "$dir/$1"
}
A=a1a1a1a1a1a1a1a1; C=c3c3c3c3c3c3c3c3
routed routed-data 8 '\0\0' $A $C 4 32
routed routed-data-1400 1 '\0\0' $A $C 4 1400
routed routed-initiation 16 '\0\0' $A $C 1 148
routed routed-initiation-short 8 '\0\0' $A $C 1 147
routed routed-response 8 '\0\0' $A $C 2 92
routed routed-announce 8 '\0\0' $A $C 6 33
routed routed-ttl0 0 '\0\0' $A $C 4 32
routed routed-ttl17 17 '\0\0' $A $C 4 32
routed routed-reserved 8 '\0\1' $A $C 4 32
routed routed-same-ids 8 '\0\0' $A $A 4 32
routed routed-zero-source 8 '\0\0' 0000000000000000 $C 4 32
routed routed-cookie 8 '\0\0' $A $C 3 64
routed routed-routed 8 '\0\0' $A $C 5 48
routed routed-header-only 8 '\0\0' $A $C 4 4
head -c 23 "$dir/routed-data" > "$dir/routed-short"
msg announce 6 '\0\0\0' 33
msg announce-short 6 '\0\0\0' 31
printf '' > "$dir/empty"
printf '\004' > "$dir/one-byte"
for e in 192.0.2.1:51820 '[2001:db8::1]:51820' host.example:51820 '[::ffff:192.0.2.1]:1' \
         ':1' '[]:1' 'host:0' 'host:65536' '[2001:db8::1' '2001:db8::1:5' 'a..b:1' '1.2.3:4'; do
    name=endpoint-$(printf '%s' "$e" | tr -c 'A-Za-z0-9.-' '_')
    printf '%s' "$e" > "$dir/$name"
done
