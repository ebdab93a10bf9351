#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_classify: valid IPv4/IPv6 packets, Ethernet
frames (IPv4, IPv6, ARP, VLAN, LLDP) and vnet GSO frames. Byte 0 of each file
selects the path in the target: 0 TUN route, 1 TAP route, 2 TAP learn (bits 2-3
peer), 3 GSO split; bits 4-7 advance the clock by 100 ms each.
Usage: make-corpus.py OUTDIR"""
import os, socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ip4(src, dst, proto, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload

def ip6(src, dst, nh, payload):
    return struct.pack('!IHBB16s16s', 0x60000000, len(payload), nh, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload

def icmp_echo(seq, n=32):
    body = struct.pack('!BBHHH', 8, 0, 0, 0xbf01, seq) + bytes(range(n))
    return body[:2] + struct.pack('!H', csum(body)) + body[4:]

def udp(payload):
    return struct.pack('!HHHH', 40000, 53, 8 + len(payload), 0) + payload

def tcp(seq, flags, payload=b'', opts=b''):
    off = (20 + len(opts)) // 4
    return struct.pack('!HHIIBBHHH', 40000, 5201, seq, 1, off << 4, flags, 502, 0, 0) + opts + payload

def mac(s):
    return bytes(int(x, 16) for x in s.split(':'))

BC = 'ff:ff:ff:ff:ff:ff'
ME = '02:00:00:00:00:01'
P2 = '02:00:00:00:00:02'
P3 = '02:00:00:00:00:03'

def eth(dst, src, etype, payload, vlan=None):
    tag = struct.pack('!HH', 0x8100, vlan) if vlan is not None else b''
    return mac(dst) + mac(src) + tag + struct.pack('!H', etype) + payload

def arp(op, sha, spa, tha, tpa):
    return struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, op, mac(sha), socket.inet_aton(spa),
                       mac(tha), socket.inet_aton(tpa))

def vnet(gso_type, gso_size, csum_start, csum_off, pkt, flags=1):
    return struct.pack('<BBHHHH', flags, gso_type, 0, gso_size, csum_start, csum_off) + pkt

def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {}
    # TUN (mode 0)
    for i, dst in enumerate(['10.100.0.2', '10.100.7.9', '10.100.0.3', '255.255.255.255',
                             '10.100.255.255', '224.0.0.251', '192.0.2.1']):
        seeds['tun-ip4-%d' % i] = b'\x00' + ip4('10.100.0.1', dst, 1, icmp_echo(i))
    seeds['tun-ip4-udp'] = b'\x00' + ip4('10.100.0.1', '10.100.0.2', 17, udp(b'hello'))
    for i, dst in enumerate(['fd00::2', 'fd00::3', 'ff02::1']):
        seeds['tun-ip6-%d' % i] = b'\x00' + ip6('fd00::1', dst, 17, udp(b'hello6'))
    seeds['tun-ip4-options'] = b'\x00' + bytes([0x46]) + ip4('10.100.0.1', '10.100.0.2', 17, b'\1\1\1\0' + udp(b'x'))[1:]
    # TAP route (mode 1)
    seeds['tap-arp-request'] = b'\x01' + eth(BC, ME, 0x0806, arp(1, ME, '10.100.0.1', '00:00:00:00:00:00', '10.100.0.2'))
    seeds['tap-arp-unicast'] = b'\x01' + eth(P3, ME, 0x0806, arp(1, ME, '10.100.0.1', P3, '10.100.0.3'))
    seeds['tap-ip4-peer'] = b'\x01' + eth(P2, ME, 0x0800, ip4('10.100.0.1', '10.100.0.2', 1, icmp_echo(1)))
    seeds['tap-ip4-unknown'] = b'\x01' + eth(P3, ME, 0x0800, ip4('10.100.0.1', '10.100.0.3', 1, icmp_echo(2)))
    seeds['tap-ip6-mcast'] = b'\x01' + eth('33:33:00:00:00:01', ME, 0x86dd, ip6('fe80::1', 'ff02::1', 17, udp(b'mc')))
    seeds['tap-vlan-arp'] = b'\x01' + eth(BC, ME, 0x0806, arp(1, ME, '10.100.0.1', '00:00:00:00:00:00', '10.100.0.2'), vlan=7)
    seeds['tap-lldp'] = b'\x01' + eth('01:80:c2:00:00:0e', ME, 0x88cc, b'\x02\x07\x04' + mac(ME) + b'\0\0')
    seeds['tap-padded'] = b'\x01' + eth(P2, ME, 0x0800, ip4('10.100.0.1', '10.100.0.2', 17, udp(b''))) + b'\0' * 18
    # TAP learn from peers (mode 2, peer in bits 2-3, clock in bits 4-7)
    seeds['learn-arp-reply'] = bytes([0x02 | 3 << 2]) + eth(ME, P3, 0x0806, arp(2, P3, '10.100.0.3', ME, '10.100.0.1'))
    seeds['learn-vm'] = bytes([0x02 | 1 << 2 | 5 << 4]) + eth(BC, '52:54:00:00:00:09', 0x0800, ip4('10.100.9.9', '10.100.255.255', 17, udp(b'b')))
    seeds['learn-spoof-static'] = bytes([0x02 | 3 << 2]) + eth(BC, P2, 0x0800, ip4('10.100.0.2', '10.100.255.255', 17, udp(b's')))
    seeds['learn-spoof-self'] = bytes([0x02]) + eth(BC, ME, 0x0806, arp(1, ME, '10.100.0.1', '00:00:00:00:00:00', '10.100.0.9'))
    seeds['learn-aging'] = bytes([0x02 | 2 << 2 | 15 << 4]) + eth(ME, '02:00:00:00:01:0a', 0x86dd, ip6('fd00::a', 'fd00::1', 17, udp(b'a')))
    # GSO split (mode 3)
    payload = bytes((i * 7) & 0xff for i in range(3000))
    t4 = ip4('10.100.0.1', '10.100.0.2', 6, tcp(1000, 0x18, payload))
    seeds['gso-tcp4'] = b'\x03' + vnet(1, 1000, 20, 16, t4)
    t6 = ip6('fd00::1', 'fd00::2', 6, tcp(1000, 0x19, payload, b'\x01\x01\x08\x0a' + b'\0' * 8))
    seeds['gso-tcp6'] = b'\x03' + vnet(4, 1200, 40, 16, t6)
    seeds['gso-tcp4-ecn'] = b'\x03' + vnet(0x81, 536, 20, 16, ip4('10.100.0.1', '10.100.0.2', 6, tcp(5, 0x98, payload[:2000])))
    seeds['gso-none-csum'] = b'\x03' + vnet(0, 0, 20, 6, ip4('10.100.0.1', '10.100.0.2', 17, udp(b'partial')))
    seeds['gso-none-plain'] = b'\x03' + vnet(0, 0, 0, 0, ip4('10.100.0.1', '10.100.0.2', 1, icmp_echo(3)), flags=0)
    seeds['arp-only'] = b'\x03' + eth(BC, ME, 0x0806, arp(1, ME, '10.100.0.1', '00:00:00:00:00:00', '10.100.0.2'))
    for name, data in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds), out))

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'fuzz/corpus/fuzz_classify')
