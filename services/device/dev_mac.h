/*  dev_mac: Ethernet addresses for a TAP device. A node's MAC is derived from its
    public key so it stays the same across restarts and machines (peers' ARP
    caches and learned tables stay valid) without storing anything, and two
    nodes get different MACs with overwhelming probability. */
#ifndef DEV_MAC_H_INCLUDED
#define DEV_MAC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEV_MAC_TEXT 18         //  "aa:bb:cc:dd:ee:ff" plus NUL

//  BLAKE2b (keyed with a fixed domain string) of the 32-byte public key; the
//  first 6 bytes, made locally administered (bit 1 of byte 0 set) and unicast
//  (bit 0 clear).
void dev_mac_from_key (const uint8_t key [32], uint8_t mac [6]);
//  Parses exactly "aa:bb:cc:dd:ee:ff" (hex digits in either case, ':' or '-').
int dev_mac_parse (const char *text, uint8_t mac [6], char *err, size_t errsize);
void dev_mac_format (const uint8_t mac [6], char text [DEV_MAC_TEXT]);
bool dev_mac_is_multicast (const uint8_t mac [6]);  //  includes broadcast
bool dev_mac_is_broadcast (const uint8_t mac [6]);

void dev_mac_test (bool verbose);
#endif
