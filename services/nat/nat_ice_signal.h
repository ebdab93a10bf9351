/*  nat_ice_signal: the ICE signalling between two nodes' nat services, as it
    travels in `discovery.signal` (type and JSON data) through the registry.

    Every byte of it comes from another node, through the registry: this is
    the only code that reads it, with a strict grammar (one JSON object, only
    the members its type allows, each a string of a fixed form) and a message
    for every mistake, before nat_ice or libice sees anything. Candidates and
    credentials are checked by ice_cand (libice), the same checks libice makes.

        ice-start  {"id":"<16 hex>"}                     I want an ICE session
        ice-creds  {"id":..,"to":..,"ufrag":..,"pwd":..} my session's credentials
        ice-cand   {"id":..,"to":..,"cand":"candidate:..."}  one of my candidates
        ice-end    {"id":..,"to":..}                     my end of candidates
        ice-bye    {"id":..,"to":..}                     my session is closed

    "id" is the sender's ICE id, "to" the addressee's as the sender knows it
    (so a signal of an older session of a restarted node is told apart). The
    ids are random per nat process (nat_ice.c says why). */
#ifndef NAT_ICE_SIGNAL_H_INCLUDED
#define NAT_ICE_SIGNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ice_cand.h"

#define NAT_ICE_SIGNAL_TYPE_MAX 16      //  longest type text and its NUL
#define NAT_ICE_SIGNAL_DATA_MAX 1024    //  longest JSON data accepted (bytes)

typedef enum {
    NAT_ICE_SIG_START = 1,
    NAT_ICE_SIG_CREDS,
    NAT_ICE_SIG_CAND,
    NAT_ICE_SIG_END,
    NAT_ICE_SIG_BYE
} nat_ice_sig_type_t;

typedef struct {
    nat_ice_sig_type_t type;
    uint64_t id;                        //  the sender's ICE id (never 0)
    uint64_t to;                        //  the addressee's (0 in ice-start)
    char ufrag [ICE_CRED_MAX + 1];      //  CREDS
    char pwd [ICE_CRED_MAX + 1];        //  CREDS
    char cand [ICE_CAND_TEXT_MAX + 1];  //  CAND: checked by ice_cand_parse
} nat_ice_sig_t;

//  Is this discovery.signal type one of ours ("ice-" prefix)?
bool nat_ice_signal_ours (const char *type);

//  Parses a signal. 0, or -1 with a message in err ("ice-cand: ...").
int nat_ice_signal_parse (const char *type, const char *data, nat_ice_sig_t *sig,
                          char *err, size_t errsize);

//  Writes a signal's type and JSON data. 0, or -1 when it does not fit.
int nat_ice_signal_format (const nat_ice_sig_t *sig, char *type, size_t typesize,
                           char *data, size_t datasize);

void nat_ice_signal_test (bool verbose);

#endif
