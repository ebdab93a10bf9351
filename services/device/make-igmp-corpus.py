#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_igmp: IGMPv1/v2/v3 reports and leaves, MLDv1/v2
reports and done messages, queries, as IP packets (byte 0 = 0) and Ethernet
frames (byte 0 = 1, also read by the anycast ARP/ND answerer, with an ARP request
and a neighbour solicitation); bits 4-7 of byte 0 advance the clock by 100 ms each.
Usage: make-igmp-corpus.py OUTDIR"""
import os, socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def with_csum(msg, off, pseudo=b''):
    return msg[:off] + struct.pack('!H', csum(pseudo + msg)) + msg[off + 2:]

def ip4(dst, igmp):
    igmp = with_csum(igmp, 2)
    h = struct.pack('!BBHHHBBH4s4s', 0x46, 0xc0, 24 + len(igmp), 0, 0, 1, 2, 0,
                    socket.inet_aton('10.100.0.1'), socket.inet_aton(dst)) + b'\x94\x04\0\0'
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + igmp

def ip6(dst, mld, src='fe80::1'):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    mld = with_csum(mld, 2, s + d + struct.pack('!IxxxB', len(mld), 58))
    hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
    return struct.pack('!IHBB16s16s', 0x60000000, len(hbh) + len(mld), 0, 1, s, d) + hbh + mld

def a4(g): return socket.inet_aton(g)
def a6(g): return socket.inet_pton(socket.AF_INET6, g)

def rec(t, group, sources=(), aux=b''):
    return struct.pack('!BBH', t, len(aux) // 4, len(sources)) + group + b''.join(sources) + aux

def eth(dst, etype, payload):
    return bytes.fromhex(dst.replace(':', '')) + bytes.fromhex('020000000001') + struct.pack('!H', etype) + payload

def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {}
    seeds['igmp-v1-report'] = ip4('239.1.2.3', struct.pack('!BBH4s', 0x12, 0, 0, a4('239.1.2.3')))
    seeds['igmp-v2-report'] = ip4('239.1.2.3', struct.pack('!BBH4s', 0x16, 0, 0, a4('239.1.2.3')))
    seeds['igmp-v2-leave'] = ip4('224.0.0.2', struct.pack('!BBH4s', 0x17, 0, 0, a4('239.1.2.3')))
    recs = [rec(2, a4('239.1.2.3')), rec(4, a4('239.1.2.4')), rec(3, a4('239.1.2.5')),
            rec(1, a4('239.1.2.6'), [a4('192.0.2.1'), a4('192.0.2.2')]), rec(6, a4('239.1.2.7'), [a4('192.0.2.1')]),
            rec(5, a4('239.1.2.8'), [a4('192.0.2.1')], b'\0\0\0\0'), rec(2, a4('224.0.0.1'))]
    seeds['igmp-v3-report'] = ip4('224.0.0.22', struct.pack('!BBHHH', 0x22, 0, 0, 0, len(recs)) + b''.join(recs))
    seeds['igmp-v3-leave'] = ip4('224.0.0.22', struct.pack('!BBHHH', 0x22, 0, 0, 0, 1) + rec(3, a4('239.1.2.3')))
    seeds['igmp-v3-query'] = ip4('224.0.0.1', struct.pack('!BBH4sBBH', 0x11, 100, 0, b'\0' * 4, 2, 125, 0))
    seeds['igmp-v2-query'] = ip4('224.0.0.1', struct.pack('!BBH4s', 0x11, 100, 0, b'\0' * 4))
    seeds['igmp-dvmrp'] = ip4('224.0.0.4', struct.pack('!BBH4s', 0x13, 1, 0, b'\0' * 4))
    seeds['mld-v1-report'] = ip6('ff15::1234', struct.pack('!BBHHH16s', 131, 0, 0, 0, 0, a6('ff15::1234')))
    seeds['mld-v1-done'] = ip6('ff02::2', struct.pack('!BBHHH16s', 132, 0, 0, 0, 0, a6('ff15::1234')))
    recs6 = [rec(4, a6('ff15::1')), rec(3, a6('ff15::2')), rec(1, a6('ff15::3'), [a6('2001:db8::1')]),
             rec(2, a6('ff02::1:ff00:1')), rec(2, a6('ff02::1'))]
    seeds['mld-v2-report'] = ip6('ff02::16', struct.pack('!BBHHH', 143, 0, 0, 0, len(recs6)) + b''.join(recs6))
    seeds['mld-v2-query'] = ip6('ff02::1', struct.pack('!BBHHH16sBBH', 130, 0, 0, 10000, 0, b'\0' * 16, 2, 125, 0))
    seeds['icmp6-echo'] = ip6('ff02::1', struct.pack('!BBHHH', 128, 0, 0, 1, 1) + b'ping')
    # Clock steps so held groups expire between inputs
    seeds['igmp-v2-report-late'] = bytes([0xf0]) + seeds['igmp-v2-report']
    data = {k: b'\x00' + v for k, v in seeds.items() if not k.endswith('-late')}
    data['igmp-v2-report-late'] = seeds['igmp-v2-report-late']
    # TAP: the same inside Ethernet (and one with an 802.1Q tag)
    data['tap-igmp-v3-report'] = b'\x01' + eth('01:00:5e:00:00:16', 0x0800, seeds['igmp-v3-report'])
    data['tap-mld-v2-report'] = b'\x01' + eth('33:33:00:00:00:16', 0x86dd, seeds['mld-v2-report'])
    data['tap-vlan-igmp'] = b'\x01' + bytes.fromhex('01005e000016020000000001') + b'\x81\x00\x00\x07\x08\x00' + seeds['igmp-v2-report']
    # The anycast answerer: an ARP request and a neighbour solicitation
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, bytes.fromhex('020000000001'), a4('10.100.0.1'),
                      b'\0' * 6, a4('10.100.0.200'))
    data['tap-arp-anycast'] = b'\x01' + eth('ff:ff:ff:ff:ff:ff', 0x0806, arp)
    t = a6('fd00::99')
    ns = struct.pack('!BBHI16sBB6s', 135, 0, 0, 0, t, 1, 1, bytes.fromhex('020000000001'))
    s6, d6 = a6('fd00::1'), a6('ff02::1:ff00:99')
    ns = with_csum(ns, 2, s6 + d6 + struct.pack('!IxxxB', len(ns), 58))
    ip = struct.pack('!IHBB16s16s', 0x60000000, len(ns), 58, 255, s6, d6) + ns
    data['tap-ns-anycast'] = b'\x01' + eth('33:33:ff:00:00:99', 0x86dd, ip)
    for name, blob in data.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(blob)
    print('%d seeds in %s' % (len(data), out))

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'fuzz/corpus/fuzz_igmp')
