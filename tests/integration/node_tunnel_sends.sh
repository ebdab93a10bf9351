#!/bin/bash
# node_tunnel_sends: nat lends its UDP socket to the tunnel, which sends its
# encrypted datagrams on it itself (connection.tunnel_sends, the default; one
# process hop less per packet), while only nat ever reads from it. Node a runs
# bifrost-tunnel, node b device and crypto apart (NODE_SPLIT): both layouts get
# the socket. Checked with the counters of `bifrostctl peers --json`, the
# processes' descriptor tables and strace:
#   - data leaves from crypto on both nodes, nat only sends the handshakes
#   - the tunnel holds nat's socket, sends on it and never reads it
#   - kill -9 of nat: the tunnel lets go of the old socket, the new nat binds
#     port 51820 again and lends the new one
#   - kill -9 of the tunnel: the new one gets the socket again
#   - tunnel_sends = false: every datagram goes through nat, and the ping works
. "$BIFROST_SRCDIR/tests/integration/node_lib.sh"

NODE_SPLIT="b"
two_nodes tun
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b through the tunnel"

# peers_json NODE: bifrostctl peers --json of the node into $T/NODE.json
peers_json () { ctl "$1" peers --json > "$T/$1.json" 2>/dev/null; }
# jq_ok NODE FILTER: the node's peers --json satisfies FILTER now
jq_ok () { peers_json "$1" && jq -e "$2" "$T/$1.json" >/dev/null; }
# udp_inode NODE: inode of the socket bound to UDP port 51820 (0xCA6C) in the namespace
udp_inode () { in_ns "$1" cat /proc/net/udp /proc/net/udp6 | awk '$2 ~ /:CA6C$/ { print $10; exit }'; }
# fd_of PID INODE: the descriptor numbers under which PID holds socket INODE
fd_of () {
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "socket:[$2]" ] && basename "$f"
    done
}
# sender NODE: the process that holds the key (tunnel on a, crypto on b)
sender () { case $1 in a) service_pid a tunnel ;; b) service_pid b crypto ;; esac; }

# 1. Data leaves from crypto on both nodes; nat sends only what crypto gives it
#    without a route (the handshake)
in_ns a ping -c 200 -i 0.01 -W 1 -q 10.100.0.2 > "$T/ping1" 2>&1
grep -q " 0% packet loss" "$T/ping1"
ok $? "200 pings a -> b, none lost"
for n in a b; do
    # SENT records reach nat a tick (100 ms) later
    wait_for 3 jq_ok $n '.peers[0].sends_direct == true and .crypto.wire_sent >= 200
                         and .nat.tunnel_sends == true and .nat.tunnel_datagrams >= 200
                         and .nat.tx_datagrams < 20 and .peers[0].wire_tx_bytes > 200 * 100'
    ok $? "$n: crypto sent $(jq .crypto.wire_sent "$T/$n.json") datagrams itself, nat $(jq .nat.tx_datagrams "$T/$n.json"); nat counts $(jq .nat.tunnel_datagrams "$T/$n.json") reported"
done

# 2. The key's process holds nat's socket and writes to it, but never reads it
for n in a b; do
    INODE=$(udp_inode $n)
    SPID=$(sender $n)
    FD=$(fd_of "$SPID" "$INODE")
    [ -n "$INODE" ] && [ -n "$FD" ] && [ -n "$(fd_of "$(service_pid $n nat)" "$INODE")" ]
    ok $? "$n: nat's socket (inode ${INODE:-?}) is descriptor ${FD:-none} of the sending process $SPID"
    timeout 5 strace -f -qq -e trace=read,readv,recvfrom,recvmsg,recvmmsg,sendto,sendmsg,sendmmsg \
        -o "$T/strace-$n" -p "$SPID" &
    STRACE=$!
    sleep 0.5
    in_ns a ping -c 100 -i 0.01 -W 1 -q 10.100.0.2 > /dev/null 2>&1
    kill -INT $STRACE 2>/dev/null; wait $STRACE 2>/dev/null
    WRITES=$(grep -cE "(sendto|sendmsg|sendmmsg)\(${FD:-x}," "$T/strace-$n")
    READS=$(grep -cE "(read|readv|recvfrom|recvmsg|recvmmsg)\(${FD:-x}," "$T/strace-$n")
    [ "$WRITES" -gt 0 ] && [ "$READS" -eq 0 ]
    ok $? "$n: during 100 pings the sending process wrote to nat's socket $WRITES times and read it $READS times"
done

# 3. kill -9 of nat on a: the old socket goes from the tunnel too, the new nat
#    binds 51820 again and lends its socket
OLD_INODE=$(udp_inode a)
OLD_NAT=$(service_pid a nat)
BEFORE=$(jq .crypto.wire_sent "$T/a.json")
kill -KILL "$OLD_NAT"
wait_restarted a nat "$OLD_NAT"
ok $? "a: kill -9 of nat ($OLD_NAT): restarted (now $(service_pid a nat))"
wait_for 10 ping_ok a 10.100.0.2
ok $? "a: ping a -> b after the nat restart"
in_ns a ping -c 50 -i 0.01 -W 1 -q 10.100.0.2 > /dev/null 2>&1
NEW_INODE=$(udp_inode a)
TPID=$(sender a)
wait_for 3 jq_ok a ".peers[0].sends_direct == true and .crypto.wire_sent >= $BEFORE + 50 and .nat.listen_port == 51820"
ok $? "a: the new nat listens on 51820 and the tunnel sends on its socket again (wire_sent $BEFORE -> $(jq .crypto.wire_sent "$T/a.json"))"
[ -n "$NEW_INODE" ] && [ "$NEW_INODE" != "$OLD_INODE" ] && [ -n "$(fd_of "$TPID" "$NEW_INODE")" ] && [ -z "$(fd_of "$TPID" "$OLD_INODE")" ]
ok $? "a: the tunnel holds the new socket ($NEW_INODE), not the old one ($OLD_INODE)"
grep -q "nat's socket went with nat" "$T/a/bifrostd.log"
ok $? "a: the tunnel logged that the socket went with nat"

# 4. kill -9 of the tunnel on a: the new tunnel gets the socket again
OLD_T=$(service_pid a tunnel)
kill -KILL "$OLD_T"
wait_restarted a tunnel "$OLD_T"
ok $? "a: kill -9 of the tunnel ($OLD_T): restarted (now $(service_pid a tunnel))"
wait_for 15 ping_ok a 10.100.0.2
ok $? "a: ping a -> b after the tunnel restart"
in_ns a ping -c 50 -i 0.01 -W 1 -q 10.100.0.2 > /dev/null 2>&1
wait_for 5 jq_ok a '.peers[0].sends_direct == true and .crypto.wire_sent >= 50'
ok $? "a: the new tunnel sends on nat's socket ($(jq .crypto.wire_sent "$T/a.json") datagrams)"

# 5. tunnel_sends = false on b: nat sends everything, and the tunnel still works
stop_node b
ok $? "b: stopped"
sed -i 's/keepalive_interval = "2s"; }/keepalive_interval = "2s"; tunnel_sends = false; }/' "$T/b/node.cfg"
grep -q 'tunnel_sends = false' "$T/b/node.cfg"
ok $? "b: config says tunnel_sends = false"
start_node b; ok $? "b: every service READY again"
wait_for 15 ping_ok a 10.100.0.2
ok $? "ping a -> b with b sending through nat"
in_ns a ping -c 100 -i 0.01 -W 1 -q 10.100.0.2 > "$T/ping5" 2>&1
grep -q " 0% packet loss" "$T/ping5"
ok $? "100 pings a -> b, none lost"
wait_for 3 jq_ok b '.peers[0].sends_direct == false and .crypto.wire_sent == 0
                    and .nat.tunnel_sends == false and .nat.tunnel_datagrams == 0 and .nat.tx_datagrams >= 100'
ok $? "b: crypto sent nothing itself, nat sent $(jq .nat.tx_datagrams "$T/b.json") datagrams"
[ -z "$(fd_of "$(sender b)" "$(udp_inode b)")" ]
ok $? "b: crypto does not hold nat's socket"

echo "1..$TESTNO"
[ "$FAILED" -eq 0 ]
