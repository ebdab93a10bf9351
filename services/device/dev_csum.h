/*  dev_csum: the Internet checksum (RFC 1071) for the headers the device builds
    or rewrites (GSO segments, ICMP and ARP in tests). Summed 8 bytes at a time
    in host order with end-around carry, which RFC 1071 shows is byte-order
    independent, so the folded result is stored back with memcpy as is. */
#ifndef DEV_CSUM_H_INCLUDED
#define DEV_CSUM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Adds len bytes to a running sum. Every chunk but the last must have an even
//  length (the checksum pairs bytes across chunk boundaries otherwise).
uint64_t dev_csum_add (uint64_t sum, const void *data, size_t len);
//  Folds to 16 bits and complements: the value to store in a checksum field
//  (as the bytes of a host-order uint16, see dev_csum_store).
uint16_t dev_csum_fold (uint64_t sum);
//  Stores a folded checksum at p (any alignment).
void dev_csum_store (uint8_t *p, uint16_t csum);
//  Sum of the TCP/UDP pseudo-header (family AF_INET or AF_INET6).
uint64_t dev_csum_pseudo (int family, const uint8_t *src, const uint8_t *dst,
                          uint8_t proto, uint32_t l4_len);
//  True if data (with its checksum field in place) sums to zero, i.e. verifies.
bool dev_csum_ok (uint64_t sum);

void dev_csum_test (bool verbose);
#endif
