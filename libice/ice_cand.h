/*  ice_cand: the ICE signalling text that comes from the network, checked before
    anything else sees it. A remote peer's candidates and credentials travel
    through the registry or the relay, so every byte is untrusted: this class
    parses them with a strict grammar and a clear message for each mistake,
    never an assert, and never hands libnice a string (libnice's own SDP parser
    is not written for hostile input). The format is the candidate attribute of
    RFC 8839 (what nice_agent_generate_local_candidate_sdp writes), with or
    without the leading "a=":

        candidate:<foundation> <component> UDP <priority> <ip> <port> typ <type>
                  [raddr <ip> rport <port>] [<extension name> <value>]...

    Only UDP, only IP literals (no FQDN, no mDNS ".local" names: nat resolves
    nothing a peer sends), at most ICE_CAND_TEXT_MAX bytes, printable ASCII.
    Extension pairs (generation 0, network-id 1, ...) are checked and skipped.

    Also here: the ICE credentials (ufrag, pwd; RFC 8445 section 5.3: ice-chars
    "A-Z a-z 0-9 + /", ufrag 4-256 characters, pwd 22-256) and "ip:port" /
    "[ipv6]:port" addresses as the relay reports them. No libnice, no glib: the
    fuzz target links this file alone. */
#ifndef ICE_CAND_H_INCLUDED
#define ICE_CAND_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ICE_CAND_TEXT_MAX        512    //  longest candidate line accepted (bytes)
#define ICE_CAND_FOUNDATION_MAX  32     //  RFC 8445: 1-32 ice-chars
#define ICE_CAND_ADDR_MAX        46     //  INET6_ADDRSTRLEN
#define ICE_CAND_EXT_MAX         8      //  extension pairs skipped at most
#define ICE_UFRAG_MIN            4
#define ICE_PWD_MIN              22
#define ICE_CRED_MAX             256

typedef enum {
    ICE_CAND_HOST = 0,
    ICE_CAND_SRFLX = 1,
    ICE_CAND_PRFLX = 2,
    ICE_CAND_RELAY = 3
} ice_cand_type_t;

typedef struct {
    char foundation [ICE_CAND_FOUNDATION_MAX + 1];
    unsigned component;                     //  1-256
    uint32_t priority;                      //  1 .. 2^31-1
    char addr [ICE_CAND_ADDR_MAX];          //  canonical text of the IP literal
    int family;                             //  AF_INET or AF_INET6
    uint16_t port;                          //  1-65535
    ice_cand_type_t type;
    bool has_related;
    char raddr [ICE_CAND_ADDR_MAX];
    uint16_t rport;                         //  0 allowed (RFC 8839: "rport 0" hides it)
} ice_cand_t;

//  Parses one candidate line. 0, or -1 with a message in err ("candidate: ...").
int ice_cand_parse (const char *text, ice_cand_t *cand, char *err, size_t errsize);

//  Writes the candidate in the form above (no "a=", no extensions): always
//  parses back to the same candidate. The length written, or -1 when it does
//  not fit in size.
int ice_cand_format (const ice_cand_t *cand, char *buf, size_t size);

//  "host", "srflx", "prflx", "relay"; NULL for an unknown value.
const char *ice_cand_type_name (ice_cand_type_t type);

//  Checks remote ICE credentials. 0, or -1 with a message in err.
int ice_cand_check_credentials (const char *ufrag, const char *pwd, char *err, size_t errsize);

//  Parses "192.0.2.1:3478" or "[2001:db8::1]:3478" into its canonical IP text
//  (ip must hold ICE_CAND_ADDR_MAX bytes) and port (1-65535). 0, or -1 with err.
int ice_cand_parse_addr (const char *text, char *ip, uint16_t *port, int *family, char *err, size_t errsize);

void ice_cand_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
