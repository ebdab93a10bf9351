/*  reg_config: the registry's config, read once through the config schema
    (schemas/config/registry.def, turn.def and relay.def) and checked, so the service
    (reg_service) gets values it can use as they are. Every problem is recorded
    against its setting, so --check-config prints it with file and line. The
    strings point into the bus_config_t (or are the schema's defaults), so the
    config must outlive the checked values. */
#ifndef REG_CONFIG_H_INCLUDED
#define REG_CONFIG_H_INCLUDED

#include <stdbool.h>
#include "reg_api.h"
#include "reg_http.h"
#include "bus_config.h"

typedef struct {
    reg_api_config_t api;
    reg_http_config_t http;
    char database [512];        //  api.database points here
    const char *stun [9];       //  api.turn.extra_stun points here, NULL-terminated
    const char *relays [REG_RELAY_SERVERS_MAX + 1];    //  api.relay.servers points here
    uint8_t relay_secret [32];  //  api.relay.secret points here when relay.secret is set
} reg_config_t;

//  Reads and checks config into out (NULL config: the defaults, the admin
//  token from $BIFROST_ADMIN_TOKEN). Errors go into config with file:line.
//  out must not move afterwards: it points into itself.
void reg_config_check (bus_config_t *config, reg_config_t *out);
//  Forgets a checked config (it owns no memory of its own; the relay secret
//  is wiped).
void reg_config_clear (reg_config_t *self);

void reg_config_test (bool verbose);
#endif
